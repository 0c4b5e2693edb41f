package devstack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vrsky/vrsky/internal/store"
)

// AdminKeyFile is the name, inside the data directory, of the file holding
// the dev stack's platform admin key (mode 0600). It is created on first
// start and reused afterwards.
const AdminKeyFile = "admin-key"

// SecretsKeyFile is the name, inside the data directory, of the file
// holding the dev stack's key ring for tenant secrets (mode 0600, see
// secretbox.Parse). It is created on first start and reused afterwards.
const SecretsKeyFile = "secrets-key"

// adminKeyPrefix starts the platform admin key, so it is told apart from
// tenants' keys at a glance.
const adminKeyPrefix = "vrsky_admin_"

var adminKeyPattern = regexp.MustCompile(`^vrsky_admin_[0-9a-f]{64}$`)

// adminKey returns the platform admin key kept in DATA_DIR/admin-key,
// creating the file on first start. The key is never logged; only the
// file's path is.
func adminKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, AdminKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		key := strings.TrimSpace(string(b))
		if !adminKeyPattern.MatchString(key) {
			return "", fmt.Errorf("admin key in %s is malformed; remove the file to get a new key", path)
		}
		// Keep it private even if someone loosened the mode.
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("admin key: %w", err)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read admin key: %w", err)
	}

	key := store.NewSecret(adminKeyPrefix)
	// Written to a temporary file and renamed, so a crash never leaves half
	// a key behind.
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("write admin key: %w", err)
	}
	_, werr := f.WriteString(key + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("write admin key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("write admin key: %w", err)
	}
	return key, nil
}
