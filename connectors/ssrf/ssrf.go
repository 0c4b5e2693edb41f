// Package ssrf guards outbound HTTP requests to URLs that tenants supply
// (the HTTP and Slack producers), so that a tenant cannot make VRSky reach
// the platform's own network: loopback, private and link-local ranges, cloud
// metadata endpoints, and the IPv4-mapped, NAT64 and 6to4 spellings of them.
//
// The guard decides on the address actually being dialled, after DNS
// resolution, so a name that resolves to a public address at config time
// and to a private one later (DNS rebinding) is still refused. Every
// redirect target is checked again before it is followed.
//
// This package must never connect to an address before deciding it is
// allowed, never follow a redirect to a refused address, never use an
// HTTP proxy from the environment (the proxy would do the dialling), and
// never put a whole URL in an error: URLs such as Slack webhooks are
// secrets.
package ssrf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// MaxRedirects is how many redirects a guarded client follows for one
// request.
const MaxRedirects = 5

// Guard decides which addresses outbound requests may reach. The zero value
// allows public addresses only.
type Guard struct {
	// AllowPrivate allows loopback, private, link-local and other
	// non-public addresses, for targets on the tenant's own network. Cloud
	// metadata endpoints (169.254.169.254 and friends) stay refused; name
	// them in AllowHosts to reach them.
	AllowPrivate bool
	// AllowHosts lists hosts ("erp.internal", "10.0.0.5", "[fd00::1]") or
	// host:port pairs ("10.0.0.5:8443") allowed whatever their address,
	// for on-premise targets. A name listed here is trusted with whatever
	// it resolves to.
	AllowHosts []string
}

// RefusedError says which address or host the guard refused, and why.
type RefusedError struct {
	// Target is the refused address ("10.0.0.1:80") or host name.
	Target string
	// Reason names the class of address ("private address").
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("ssrf: refused to connect to %s: %s (allow it with allowPrivate or allowHosts)", e.Target, e.Reason)
}

// refuse returns the permanent error for a refused target.
func refuse(target, reason string) error {
	return sdk.PermanentError(&RefusedError{Target: target, Reason: reason})
}

// IsRefused reports whether err is, or wraps, a refusal by a Guard.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// Validate checks that every AllowHosts entry is a host or host:port.
func (g *Guard) Validate() error {
	var errs []error
	for _, h := range g.AllowHosts {
		if _, _, err := parseAllowEntry(h); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckURL validates a URL when a config is checked: the scheme is http or
// https, there is a host and no user info, and a host given as an IP
// address (or as "localhost") is allowed. Host names are checked again, on
// their resolved addresses, each time they are dialled. Errors are
// permanent.
func (g *Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return sdk.PermanentError(fmt.Errorf("ssrf: parse url: %w", err))
	}
	return g.checkURL(u)
}

func (g *Guard) checkURL(u *url.URL) error {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return sdk.Permanentf("ssrf: url scheme %q: want http or https", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return sdk.Permanentf("ssrf: url has no host")
	}
	if u.User != nil {
		return sdk.Permanentf("ssrf: url must not hold a user name or password; put credentials in headers or secrets")
	}
	host := u.Hostname()
	if host == "" {
		return sdk.Permanentf("ssrf: url has no host")
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return sdk.Permanentf("ssrf: url port %q: want 1 to 65535", port)
	}
	return g.checkHost(host, port)
}

// checkHost decides on a host (name or IP literal) and port before any
// resolution.
func (g *Guard) checkHost(host, port string) error {
	if g.hostAllowed(host, port) {
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		p, _ := strconv.ParseUint(port, 10, 16)
		return g.CheckAddr(netip.AddrPortFrom(addr, uint16(p)))
	}
	if isLocalName(host) {
		return refuse(net.JoinHostPort(host, port), "local host name")
	}
	if looksNumeric(host) {
		return refuse(host, "non-standard IP address notation")
	}
	return nil
}

// CheckAddr decides on a resolved address about to be dialled. A refusal is
// a permanent error wrapping a *RefusedError.
func (g *Guard) CheckAddr(ap netip.AddrPort) error {
	if g.addrAllowed(ap) {
		return nil
	}
	reason, metadata := classify(ap.Addr())
	switch {
	case reason == "":
		return nil
	case g.AllowPrivate && !metadata:
		return nil
	}
	return refuse(ap.String(), reason)
}

// Client returns an HTTP client that dials only addresses the guard allows,
// re-checks every redirect target, follows at most MaxRedirects redirects,
// ignores proxy settings from the environment, and gives up on a request
// after timeout (0 means no limit beyond the request's context). Later
// changes to g do not affect the client.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	snap := &Guard{AllowPrivate: g.AllowPrivate, AllowHosts: slices.Clone(g.AllowHosts)}
	guarded := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: snap.control}
	trusted := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		// No proxy: it would dial the target on our behalf, unchecked.
		Proxy:                  nil,
		DialContext:            snap.dialContext(guarded, trusted),
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	return &http.Client{Transport: transport, Timeout: timeout, CheckRedirect: snap.checkRedirect}
}

// dialContext dials hosts named in AllowHosts without checks and every
// other host through the guarded dialer, whose Control sees each resolved
// address.
func (g *Guard) dialContext(guarded, trusted *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, sdk.PermanentError(fmt.Errorf("ssrf: dial address %q: %w", addr, err))
		}
		if g.hostAllowed(host, port) {
			return trusted.DialContext(ctx, network, addr)
		}
		if isLocalName(host) {
			return nil, refuse(addr, "local host name")
		}
		return guarded.DialContext(ctx, network, addr)
	}
}

// control runs after the address is resolved and the socket created, just
// before connect: the last moment to refuse.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refuse(address, "unparsable address")
	}
	return g.CheckAddr(ap)
}

// checkRedirect re-checks each redirect target and bounds their number.
func (g *Guard) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return sdk.Permanentf("ssrf: stopped after %d redirects", MaxRedirects)
	}
	if err := g.checkURL(req.URL); err != nil {
		return fmt.Errorf("ssrf: redirect: %w", err)
	}
	return nil
}

// hostAllowed reports whether AllowHosts names host, or host:port.
func (g *Guard) hostAllowed(host, port string) bool {
	host = normalHost(host)
	addr, ipErr := netip.ParseAddr(host)
	for _, entry := range g.AllowHosts {
		h, p, err := parseAllowEntry(entry)
		if err != nil || (p != "" && p != port) {
			continue
		}
		if h == host {
			return true
		}
		if a, err := netip.ParseAddr(h); err == nil && ipErr == nil && a.WithZone("") == addr.WithZone("") {
			return true
		}
	}
	return false
}

// addrAllowed reports whether AllowHosts names the IP address of ap (with
// or without its port).
func (g *Guard) addrAllowed(ap netip.AddrPort) bool {
	return g.hostAllowed(ap.Addr().WithZone("").Unmap().String(), strconv.Itoa(int(ap.Port()))) ||
		g.hostAllowed(ap.Addr().WithZone("").String(), strconv.Itoa(int(ap.Port())))
}

// parseAllowEntry splits an AllowHosts entry into a normalised host and an
// optional port.
func parseAllowEntry(entry string) (host, port string, err error) {
	e := strings.TrimSpace(entry)
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("allowHosts entry %q: %s", entry, why)
	}
	if e == "" {
		return bad("empty")
	}
	if strings.ContainsAny(e, "/@?# \t") {
		return bad("want a host or host:port, not a URL")
	}
	if h, p, err := net.SplitHostPort(e); err == nil {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return bad("port must be 1 to 65535")
		}
		if h == "" {
			return bad("no host")
		}
		return normalHost(h), p, nil
	}
	if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
		e = e[1 : len(e)-1]
	}
	if _, err := netip.ParseAddr(e); err != nil && strings.Contains(e, ":") {
		return bad("want a host or host:port")
	}
	return normalHost(e), "", nil
}

// normalHost lower-cases a host name and drops a trailing dot.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// isLocalName reports whether a host name always means this machine.
func isLocalName(host string) bool {
	h := normalHost(host)
	switch h {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback":
		return true
	}
	return strings.HasSuffix(h, ".localhost")
}

// looksNumeric reports whether host is made of numeric labels only (decimal,
// octal or 0x-hex) without being a standard IP address: "2130706433",
// "0x7f.1", "0177.0.0.1". Resolvers disagree on what such names mean.
func looksNumeric(host string) bool {
	labels := strings.Split(normalHost(host), ".")
	for _, l := range labels {
		if l == "" {
			return false
		}
		digits := l
		if strings.HasPrefix(l, "0x") {
			digits = l[2:]
			if strings.Trim(digits, "0123456789abcdef") != "" {
				return false
			}
			continue
		}
		if strings.Trim(digits, "0123456789") != "" {
			return false
		}
	}
	return true
}
