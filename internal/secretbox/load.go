package secretbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// The environment variables holding the platform's key ring.
const (
	// KeyVar holds the ring itself, as Parse reads it.
	KeyVar = "VRSKY_SECRETS_KEY"
	// KeyFileVar names a file holding the ring, as Parse reads it.
	KeyFileVar = "VRSKY_SECRETS_KEY_FILE"
)

// FromEnv loads the ring from KeyVar or, when that is empty, from the file
// named by KeyFileVar. It returns nil and no error when neither is set:
// tenant secrets are then unavailable.
func FromEnv(getenv func(string) string) (*KeyRing, error) {
	if v := getenv(KeyVar); strings.TrimSpace(v) != "" {
		r, err := Parse(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KeyVar, err)
		}
		return r, nil
	}
	if path := getenv(KeyFileVar); path != "" {
		r, err := ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KeyFileVar, err)
		}
		return r, nil
	}
	return nil, nil
}

// ReadFile loads a ring from a file.
func ReadFile(path string) (*KeyRing, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	r, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return r, nil
}

// LoadOrCreateFile loads the ring kept in path, first writing a new random
// key there (mode 0600) when the file does not exist. It keeps the file's
// mode at 0600.
func LoadOrCreateFile(path string) (*KeyRing, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := writeNewKey(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return ReadFile(path)
}

// writeNewKey writes a new key to a temporary file and renames it, so a
// crash never leaves half a key behind.
func writeNewKey(path string) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	_, werr := f.WriteString(DefaultKeyID + ":" + GenerateKey() + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}
