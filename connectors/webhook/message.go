package webhook

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Request headers and limits of the http-webhook ingress.
const (
	// HeaderIdempotencyKey names a request; a repeat stores nothing twice.
	HeaderIdempotencyKey = "Idempotency-Key"
	// MaxIdempotencyKey bounds the Idempotency-Key header.
	MaxIdempotencyKey = 200
	// MaxBatchRecords bounds the records of one NDJSON request.
	MaxBatchRecords = 1000
	// NDJSONType is the content type of a batch: one message per line.
	NDJSONType = "application/x-ndjson"
	// MaxForwardedHeaders bounds the request headers kept with a message.
	MaxForwardedHeaders = 32
	// MaxHeaderValue bounds each header value kept with a message; longer
	// ones are cut.
	MaxHeaderValue = 1024
)

// Accepted is the 202 answer: the message is stored.
type Accepted struct {
	ID string `json:"id" doc:"The message ID: the Idempotency-Key when given. For an NDJSON batch, record i (from 0) has the ID <id>-<i>."`
	// Count is the number of messages stored from an NDJSON batch.
	Count int `json:"count,omitempty" doc:"For an NDJSON batch (Content-Type application/x-ndjson): how many records were stored, one message each."`
}

// Ignored is the 200 answer to an event the integration does not store.
type Ignored struct {
	Ignored bool   `json:"ignored" doc:"Always true: the request was authenticated and answered, and nothing was stored."`
	Event   string `json:"event" doc:"The request's event type (X-GitHub-Event by default); empty when it had none."`
}

// ValidKey reports whether k may be an Idempotency-Key or a delivery ID: 1
// to MaxIdempotencyKey printable ASCII characters.
func ValidKey(k string) bool {
	return len(k) <= MaxIdempotencyKey && sdk.ValidMessageID(k)
}

// newMessageID is a random message ID, for requests the sender did not
// name.
func newMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// MediaType is a Content-Type without its parameters, in lower case.
func MediaType(contentType string) string {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// SplitRecords makes one message per non-empty line of batch's body: record
// i gets the ID <batch ID>-<i> and the content type application/json, and
// shares the batch's headers and arrival time. It stops after one record
// more than MaxBatchRecords: the caller refuses such a batch.
func SplitRecords(batch sdk.Message) []sdk.Message {
	var msgs []sdk.Message
	for rest := batch.Body; len(rest) > 0 && len(msgs) <= MaxBatchRecords; {
		line, after, _ := bytes.Cut(rest, []byte("\n"))
		rest = after
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		m := batch
		m.ID = batch.ID + "-" + strconv.Itoa(len(msgs))
		m.ContentType = "application/json"
		m.Body = line
		msgs = append(msgs, m)
	}
	return msgs
}

// ForwardedHeaders keeps the request headers a pipeline may route on
// (X-… headers such as X-GitHub-Event, and User-Agent), at most
// MaxForwardedHeaders, each value cut to MaxHeaderValue, names in lower
// case. Credentials (Authorization, Cookie, X-Api-Key, signature and token
// headers…) are never kept: a stored message is shown by the DLQ API. nil
// when none is kept.
func ForwardedHeaders(h http.Header) map[string]string {
	var out map[string]string
	for k, v := range h {
		if len(out) >= MaxForwardedHeaders || len(v) == 0 || !forwarded(k) {
			continue
		}
		val := v[0]
		if len(val) > MaxHeaderValue {
			val = val[:MaxHeaderValue]
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[strings.ToLower(k)] = val
	}
	return out
}

// forwarded reports whether header k is kept with the message: X-… and
// User-Agent, in any case, except credentials. net/http admits only ASCII
// header names.
func forwarded(k string) bool {
	if strings.EqualFold(k, "User-Agent") {
		return true
	}
	return len(k) >= 2 && (k[0] == 'x' || k[0] == 'X') && k[1] == '-' && !Credential(k)
}

// credentialWords mark a header that carries a credential or a proof of
// one: API keys and tokens, signatures (which verify only with the
// secret, and let whoever reads the dead letter replay the request),
// session and auth headers. Matched in lower case anywhere in the name.
var credentialWords = [...]string{"auth", "token", "secret", "signature", "password", "passwd", "cookie", "session", "api-key", "apikey", "credential", "csrf", "xsrf"}

// Credential reports whether header k is one never stored: any name
// holding a credential word (X-Api-Key, X-Hub-Signature-256,
// X-Slack-Signature, X-Auth-Token, X-Webhook-Token, X-Amz-Security-Token…),
// and any name over 128 bytes.
func Credential(k string) bool {
	var lower [128]byte
	if len(k) > len(lower) {
		return true // no legitimate routing header is that long
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	name := string(lower[:len(k)])
	for _, w := range credentialWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// acceptedAnswer is the 202 answer for message id (and count records).
func acceptedAnswer(id string, count int) sdk.Answer {
	a := Accepted{ID: id, Count: count}
	return sdk.Answer{Status: http.StatusAccepted, ContentType: "application/json", Body: a.appendJSON(make([]byte, 0, 32+len(id)))}
}

// ignoredAnswer is the 200 answer for an event not stored.
func ignoredAnswer(event string) sdk.Answer {
	b, _ := json.Marshal(Ignored{Ignored: true, Event: event}) // a struct of a bool and a string always marshals
	return sdk.Answer{Status: http.StatusOK, ContentType: "application/json", Body: append(b, '\n')}
}

// appendJSON appends what json.NewEncoder(w).Encode(a) writes, without
// reflection: IDs are printable ASCII (ValidKey, newMessageID).
func (a Accepted) appendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	for i := 0; i < len(a.ID); i++ {
		switch c := a.ID[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '<', '>', '&':
			b = append(b, `\u00`...)
			b = append(b, hex.EncodeToString([]byte{c})...)
		default:
			b = append(b, c)
		}
	}
	b = append(b, '"')
	if a.Count != 0 {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(a.Count), 10)
	}
	return append(b, "}\n"...)
}
