package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// postConn POSTs requests over one kept-alive HTTP/1.1 connection, one at a
// time, from the calling goroutine. It is the load generator's client:
// net/http's client runs two goroutines per connection and hands every
// request and answer between them, CPU the stack under test then lacks on
// a small machine. It speaks just enough HTTP/1.1 for the webhook ingress:
// Content-Length or chunked answers, Connection: close, and a new
// connection after any error.
type postConn struct {
	addr, host, path string
	timeout          time.Duration

	conn net.Conn
	r    *bufio.Reader
	req  []byte
}

// newPostConn returns a connection to rawURL's host (http only); it dials
// on first use.
func newPostConn(rawURL string, timeout time.Duration) (*postConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("load generator: %q is not an http:// URL", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &postConn{addr: addr, host: u.Host, path: u.RequestURI(), timeout: timeout}, nil
}

// post sends body of contentType with the Idempotency-Key key (none when
// empty) and returns the answer's status. A keyed request that fails on a
// kept-alive connection before any answer is sent once more on a new one:
// the key makes the repeat harmless. One without a key is not repeated.
func (c *postConn) post(ctx context.Context, contentType, key string, body []byte) (int, error) {
	reused := c.conn != nil
	status, answered, err := c.roundTrip(ctx, contentType, key, body)
	if err != nil && reused && !answered && ctx.Err() == nil && key != "" {
		status, _, err = c.roundTrip(ctx, contentType, key, body)
	}
	return status, err
}

func (c *postConn) roundTrip(ctx context.Context, contentType, key string, body []byte) (status int, answered bool, err error) {
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.conn == nil {
		d := net.Dialer{Timeout: c.timeout}
		if c.conn, err = d.DialContext(ctx, "tcp", c.addr); err != nil {
			return 0, false, err
		}
		c.r = bufio.NewReaderSize(c.conn, 4<<10)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	c.req = append(c.req[:0], "POST "...)
	c.req = append(c.req, c.path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.host...)
	c.req = append(c.req, "\r\nContent-Type: "...)
	c.req = append(c.req, contentType...)
	if key != "" {
		c.req = append(c.req, "\r\nIdempotency-Key: "...)
		c.req = append(c.req, key...)
	}
	c.req = append(c.req, "\r\nContent-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, false, err
	}
	return c.readAnswer()
}

// readAnswer reads one answer to its end and returns its status.
func (c *postConn) readAnswer() (status int, answered bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 202 Accepted"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, true, fmt.Errorf("load generator: bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, true, fmt.Errorf("load generator: bad status line %q", line)
	}
	length, chunked, closing := int64(-1), false, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return status, true, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, true, fmt.Errorf("load generator: bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return status, true, fmt.Errorf("load generator: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.skipChunks()
	case length >= 0:
		_, err = c.r.Discard(int(length))
	default: // the body runs to the end of the connection
		_, err = io.Copy(io.Discard, c.r)
		closing = true
	}
	if err != nil {
		return status, true, err
	}
	if closing {
		c.Close()
	}
	return status, true, nil
}

// skipChunks reads a chunked body to its end.
func (c *postConn) skipChunks() error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		sizeField, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeField)), 16, 64)
		if err != nil || size < 0 {
			return errors.New("load generator: bad chunk size")
		}
		if size == 0 { // the last chunk, then trailers up to a blank line
			for {
				line, err := c.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := c.r.Discard(int(size) + 2); err != nil {
			return err
		}
	}
}

// Close closes the connection; the next post dials again.
func (c *postConn) Close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn, c.r = nil, nil
	}
}
