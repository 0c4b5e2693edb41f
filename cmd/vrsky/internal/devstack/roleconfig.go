package devstack

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/roles"
	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/temporaldev"
)

// RoleConfig is the configuration of a production role (`vrsky api|worker|
// runner --dev DATA_DIR`) that attaches to the dev stack running on dataDir,
// in place of the VRSKY_… variables: the addresses from endpoints.json, the
// NATS operator keys, the embedded S3's fixed credentials and bucket, the
// data directory's file root, the platform admin key and the key ring of
// tenant secrets. Like the stack's, its allow-list of environment variables
// tenants may read is empty: integrations reach databases through tenant
// secrets. Start the stack with Config.NoRunner to run its runner in a
// process of its own.
func RoleConfig(dataDir string) (roles.Config, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return roles.Config{}, fmt.Errorf("data directory %q: %w", dataDir, err)
	}
	ep, err := ReadEndpoints(dir)
	if err != nil {
		return roles.Config{}, err
	}
	s3, err := url.Parse(ep.S3)
	if err != nil || s3.Host == "" {
		return roles.Config{}, fmt.Errorf("%s: s3 %q is not an http://host:port URL", EndpointsFile, ep.S3)
	}
	natsKeys := filepath.Join(dir, NATSKeysFile)
	if _, err := os.Stat(natsKeys); err != nil {
		return roles.Config{}, fmt.Errorf("NATS keys of the dev stack in %s: %w", dir, err)
	}
	adminHash, err := adminKeyHash(dir)
	if err != nil {
		return roles.Config{}, err
	}
	var keys *secretbox.KeyRing
	if _, err := os.Stat(filepath.Join(dir, SecretsKeyFile)); err == nil {
		if keys, err = secretbox.ReadFile(filepath.Join(dir, SecretsKeyFile)); err != nil {
			return roles.Config{}, err
		}
	}
	return roles.Config{
		DatabaseURL:       ep.Postgres,
		NATSURL:           ep.NATS,
		TemporalAddr:      ep.Temporal,
		TemporalNamespace: temporaldev.DefaultNamespace,
		S3: blobstore.Config{
			Endpoint: s3.Host, Secure: s3.Scheme == "https",
			AccessKey: s3AccessKey, SecretKey: s3SecretKey, Bucket: Bucket,
		},
		FileRoot:     filepath.Join(dir, "files"),
		AdminKeyHash: adminHash,
		NATSKeysFile: natsKeys,
		NATSReplicas: max(ep.NATSReplicas, 1),
		SecretKeys:   keys,
	}, nil
}

// adminKeyHash is the SHA-256 of the admin key in DATA_DIR/admin-key, or
// nil when there is none. Unlike adminKey it never creates the key.
func adminKeyHash(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, AdminKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read admin key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if !adminKeyPattern.MatchString(key) {
		return nil, fmt.Errorf("admin key in %s is malformed; remove the file to get a new key", path)
	}
	return store.HashSecret(key), nil
}
