package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// ErrSignature is what every verification failure wraps. Its reasons are
// short and never contain the secret or the expected signature.
var ErrSignature = errors.New("invalid or missing signature")

// Verifier checks one request's signature. Verify returns nil when the
// signature is valid and an error wrapping ErrSignature otherwise. It is safe
// for concurrent use and does no I/O.
type Verifier interface {
	Verify(h http.Header, body []byte, now time.Time) error
}

// Headers of the built-in schemes.
const (
	HeaderGitHub         = "X-Hub-Signature-256"
	HeaderSlack          = "X-Slack-Signature"
	HeaderSlackTimestamp = "X-Slack-Request-Timestamp"
	HeaderStandardID     = "Webhook-Id"
	HeaderStandardTime   = "Webhook-Timestamp"
	HeaderStandardSig    = "Webhook-Signature"
)

// maxSignatures bounds the Standard Webhooks signatures tried per request.
const maxSignatures = 8

// NewVerifier builds the verifier of an http-webhook config, resolving its
// secret once. It returns a nil Verifier when no signature is configured,
// and the configured body limit (0 when the config sets none, so the
// integration's limit applies).
func NewVerifier(ctx context.Context, env sdk.Env, raw json.RawMessage) (Verifier, int64, error) {
	cfg, err := Decode(raw)
	if err != nil {
		return nil, 0, err
	}
	v, err := newVerifier(ctx, env, cfg)
	if err != nil {
		return nil, 0, err
	}
	return v, cfg.MaxBytes, nil
}

// newVerifier builds cfg's verifier, nil when it has no signature.
func newVerifier(ctx context.Context, env sdk.Env, cfg Config) (Verifier, error) {
	if cfg.Signature == nil {
		return nil, nil
	}
	sig := cfg.Signature
	secret, err := sig.Secret.Resolve(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%s: resolve signature secret: %w", Name, err)
	}
	if secret == "" {
		return nil, fmt.Errorf("%s: signature secret %s is empty", Name, sig.Secret)
	}
	tolerance, _ := sig.tolerance() // checked by Decode
	var v Verifier
	switch sig.Scheme {
	case SchemeGitHub:
		v = &hmacVerifier{key: []byte(secret), newHash: sha256.New, header: HeaderGitHub, prefix: "sha256=", decode: hex.DecodeString}
	case SchemeSlack:
		v = &slackVerifier{key: []byte(secret), tolerance: tolerance}
	case SchemeStandard:
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil || len(key) == 0 {
			// The decode error could quote the secret: do not wrap it.
			return nil, fmt.Errorf("%s: signature secret %s is not base64 (optionally prefixed whsec_)", Name, sig.Secret)
		}
		v = &standardVerifier{key: key, tolerance: tolerance}
	case SchemeHMAC:
		hv := &hmacVerifier{key: []byte(secret), newHash: sha256.New, header: DefaultHeader, prefix: sig.Prefix, decode: hex.DecodeString}
		switch sig.Algorithm {
		case AlgorithmSHA1:
			hv.newHash = sha1.New
		case AlgorithmSHA512:
			hv.newHash = sha512.New
		}
		if sig.Header != "" {
			hv.header = sig.Header
		}
		if sig.Encoding == EncodingBase64 {
			hv.decode = base64.StdEncoding.DecodeString
		}
		v = hv
	}
	return v, nil
}

func fail(reason string) error { return fmt.Errorf("%w: %s", ErrSignature, reason) }

func sign(newHash func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// hmacVerifier checks one header holding prefix + encoded HMAC(body): the
// github and hmac schemes.
type hmacVerifier struct {
	key     []byte
	newHash func() hash.Hash
	header  string
	prefix  string
	decode  func(string) ([]byte, error)
}

func (v *hmacVerifier) Verify(h http.Header, body []byte, _ time.Time) error {
	value := strings.TrimSpace(h.Get(v.header))
	if value == "" {
		return fail("no " + v.header + " header")
	}
	encoded, ok := strings.CutPrefix(value, v.prefix)
	if !ok {
		return fail(v.header + " does not start with the expected prefix")
	}
	got, err := v.decode(encoded)
	if err != nil {
		return fail(v.header + " is not well-formed")
	}
	if !hmac.Equal(got, sign(v.newHash, v.key, body)) {
		return fail(v.header + " does not match")
	}
	return nil
}

type slackVerifier struct {
	key       []byte
	tolerance time.Duration
}

func (v *slackVerifier) Verify(h http.Header, body []byte, now time.Time) error {
	ts := h.Get(HeaderSlackTimestamp)
	if err := checkTimestamp(HeaderSlackTimestamp, ts, now, v.tolerance); err != nil {
		return err
	}
	value := strings.TrimSpace(h.Get(HeaderSlack))
	if value == "" {
		return fail("no " + HeaderSlack + " header")
	}
	encoded, ok := strings.CutPrefix(value, "v0=")
	if !ok {
		return fail(HeaderSlack + " is not a v0 signature")
	}
	got, err := hex.DecodeString(encoded)
	if err != nil {
		return fail(HeaderSlack + " is not well-formed")
	}
	if !hmac.Equal(got, sign(sha256.New, v.key, []byte("v0:"+ts+":"), body)) {
		return fail(HeaderSlack + " does not match")
	}
	return nil
}

type standardVerifier struct {
	key       []byte
	tolerance time.Duration
}

func (v *standardVerifier) Verify(h http.Header, body []byte, now time.Time) error {
	id := h.Get(HeaderStandardID)
	if id == "" {
		return fail("no " + HeaderStandardID + " header")
	}
	ts := h.Get(HeaderStandardTime)
	if err := checkTimestamp(HeaderStandardTime, ts, now, v.tolerance); err != nil {
		return err
	}
	value := h.Get(HeaderStandardSig)
	if value == "" {
		return fail("no " + HeaderStandardSig + " header")
	}
	want := sign(sha256.New, v.key, []byte(id+"."+ts+"."), body)
	tried := 0
	for _, s := range strings.Fields(value) {
		version, encoded, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue // other versions (v1a: asymmetric) are not ours to check
		}
		if tried++; tried > maxSignatures {
			break
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	if tried == 0 {
		return fail(HeaderStandardSig + " holds no v1 signature")
	}
	return fail(HeaderStandardSig + " does not match")
}

// checkTimestamp accepts ts, Unix seconds in decimal digits, within
// tolerance of now either way.
func checkTimestamp(header, ts string, now time.Time, tolerance time.Duration) error {
	if ts == "" {
		return fail("no " + header + " header")
	}
	if len(ts) > 12 || strings.Trim(ts, "0123456789") != "" {
		return fail(header + " is not Unix seconds")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fail(header + " is not Unix seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fail(header + " is outside the accepted window")
	}
	return nil
}
