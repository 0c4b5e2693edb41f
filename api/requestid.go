package api

import (
	"crypto/rand"
	"encoding/hex"
)

// RequestIDHeader carries a request's ID: taken from the request when it is
// a short safe token (validRequestID), else generated, and always echoed in
// the response. The ID is on every log line of the request and in its
// problem details ("request_id").
const RequestIDHeader = "X-Request-ID"

// MaxRequestID bounds an incoming X-Request-ID; a longer one is replaced.
const MaxRequestID = 64

// validRequestID reports whether an incoming ID may be kept: 1 to
// MaxRequestID characters of [A-Za-z0-9._-], so that it can go into logs,
// headers and JSON as is, without escaping and without forging log lines.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestID is the ID of a request whose X-Request-ID header is incoming:
// incoming itself when it is valid, else a new random one (32 hex digits).
func requestID(incoming string) string {
	if validRequestID(incoming) {
		return incoming
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
