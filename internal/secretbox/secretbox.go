// Package secretbox encrypts tenant secrets at rest: AES-256-GCM with a key
// ring, so that keys can be rotated. The current key encrypts; older keys
// only decrypt. Every sealed value records the ID of the key that sealed it,
// and is bound (as GCM additional data) to its tenant and name, so a sealed
// value copied to another tenant or another name does not open.
//
// It only encrypts and decrypts: it never stores, logs or prints a key or a
// plaintext.
package secretbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// DefaultKeyID is the ID of a key given without one (plain base64).
const DefaultKeyID = "1"

// format is the first byte of a sealed value; a later format would change
// it.
const format byte = 1

// ErrCannotOpen is returned when a sealed value does not open: a key that
// is not in the ring, a value changed or copied from another tenant or
// name, or one that is not a sealed value at all.
var ErrCannotOpen = errors.New("secretbox: cannot decrypt")

var keyID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// KeyRing holds the keys. The zero value has none and seals nothing; build
// one with New or Parse. It is safe for concurrent use.
type KeyRing struct {
	current string
	aeads   map[string]cipher.AEAD
}

// Key is one key of a ring.
type Key struct {
	ID     string
	Secret []byte
}

// New returns a ring of keys; the first one is the current key, which
// seals, and the others only open.
func New(keys ...Key) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, errors.New("secretbox: no key")
	}
	r := &KeyRing{current: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if !keyID.MatchString(k.ID) {
			return nil, fmt.Errorf("secretbox: key ID %q: want 1 to 32 letters, digits, _ or -", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("secretbox: key %s: want %d bytes, not %d", k.ID, KeySize, len(k.Secret))
		}
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("secretbox: key ID %s given twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %s: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %s: %w", k.ID, err)
		}
		r.aeads[k.ID] = aead
	}
	return r, nil
}

// Parse reads a ring as written in VRSKY_SECRETS_KEY: either one key in
// standard base64 (32 bytes; its ID is DefaultKeyID), or entries
// "id:base64" separated by commas, spaces or newlines, the current key
// first. Error messages never contain key material.
func Parse(s string) (*KeyRing, error) {
	entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
	if len(entries) == 0 {
		return nil, errors.New("secretbox: no key")
	}
	keys := make([]Key, 0, len(entries))
	for i, e := range entries {
		id, b64, ok := strings.Cut(e, ":")
		if !ok {
			if len(entries) > 1 {
				return nil, fmt.Errorf("secretbox: entry %d: want id:base64 when several keys are given", i+1)
			}
			id, b64 = DefaultKeyID, e
		}
		secret, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %q: not standard base64", id)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	return New(keys...)
}

// GenerateKey returns a new random key in base64, as Parse reads it.
func GenerateKey() string {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return base64.StdEncoding.EncodeToString(key)
}

// CurrentID is the ID of the key that seals.
func (r *KeyRing) CurrentID() string { return r.current }

// Seal encrypts plaintext as tenant's secret name with the current key.
func (r *KeyRing) Seal(tenant, name string, plaintext []byte) ([]byte, error) {
	if r == nil || r.aeads == nil {
		return nil, errors.New("secretbox: no key")
	}
	aead := r.aeads[r.current]
	header := append([]byte{format, byte(len(r.current))}, r.current...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	out := append(header, nonce...)
	return aead.Seal(out, nonce, plaintext, additionalData(header, tenant, name)), nil
}

// Open decrypts a value Seal returned for the same tenant and name, with
// whichever key of the ring sealed it.
func (r *KeyRing) Open(tenant, name string, sealed []byte) ([]byte, error) {
	if r == nil || r.aeads == nil {
		return nil, errors.New("secretbox: no key")
	}
	id, rest, err := split(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: sealed with key %s, which is not in the key ring", ErrCannotOpen, id)
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrCannotOpen)
	}
	header := sealed[:len(sealed)-len(rest)]
	nonce, ct := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ct, additionalData(header, tenant, name))
	if err != nil {
		return nil, fmt.Errorf("%w: not sealed for this tenant and name, or altered", ErrCannotOpen)
	}
	return plain, nil
}

// KeyID returns the ID of the key that sealed a value.
func KeyID(sealed []byte) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

func split(sealed []byte) (id string, rest []byte, err error) {
	if len(sealed) < 2 || sealed[0] != format || len(sealed) < 2+int(sealed[1]) {
		return "", nil, fmt.Errorf("%w: not a sealed value", ErrCannotOpen)
	}
	n := int(sealed[1])
	return string(sealed[2 : 2+n]), sealed[2+n:], nil
}

// additionalData binds a sealed value to its header, tenant and name.
// Tenant IDs and secret names hold no NUL, so the encoding is unambiguous.
func additionalData(header []byte, tenant, name string) []byte {
	var b bytes.Buffer
	b.WriteString("vrsky tenant secret\x00")
	b.Write(header)
	b.WriteByte(0)
	b.WriteString(tenant)
	b.WriteByte(0)
	b.WriteString(name)
	return b.Bytes()
}
