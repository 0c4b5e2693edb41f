// Package natsauth is VRSky's NATS security model: an operator that signs one
// NATS account for the platform, one for the server's system account and one
// per tenant, the JetStream limits each tenant account gets, and the user
// credentials VRSky's roles connect with.
//
// The server enforces the isolation: a connection of tenant A's account
// cannot see B's subjects, streams or KV buckets, whatever it asks for. This
// package only mints the JWTs, pushes them to the server through the system
// account, and keeps a connection per tenant for the platform's own work.
//
// A tenant's account key is derived from the keys file's secret and the
// tenant ID, so provisioning is idempotent and nothing per tenant has to be
// stored.
package natsauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"
)

// Keys are the platform's signing keys: the operator's, the system account's,
// the platform account's, and the secret tenant account keys derive from.
// They are secrets: the file holding them is mode 0600.
type Keys struct {
	Operator     nkeys.KeyPair
	System       nkeys.KeyPair
	Platform     nkeys.KeyPair
	tenantSecret []byte
}

// keysFile is the on-disk form of Keys.
type keysFile struct {
	Operator     string `json:"operator_seed"`
	System       string `json:"system_account_seed"`
	Platform     string `json:"platform_account_seed"`
	TenantSecret string `json:"tenant_secret"`
}

// NewKeys creates a fresh set of keys.
func NewKeys() (*Keys, error) {
	op, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	sys, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	platform, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return &Keys{Operator: op, System: sys, Platform: platform, tenantSecret: secret}, nil
}

// LoadOrCreateKeys reads the keys file at path, creating it (mode 0600) with
// fresh keys when it does not exist.
func LoadOrCreateKeys(path string) (*Keys, error) {
	k, err := LoadKeys(path)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if k, err = NewKeys(); err != nil {
		return nil, fmt.Errorf("create nats keys: %w", err)
	}
	if err := k.save(path); err != nil {
		return nil, err
	}
	return k, nil
}

// LoadKeys reads a keys file.
func LoadKeys(path string) (*Keys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read nats keys: %w", err)
	}
	var f keysFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("nats keys %s: %w", path, err)
	}
	k := &Keys{}
	for _, s := range []struct {
		seed   string
		prefix nkeys.PrefixByte
		into   *nkeys.KeyPair
		what   string
	}{
		{f.Operator, nkeys.PrefixByteOperator, &k.Operator, "operator_seed"},
		{f.System, nkeys.PrefixByteAccount, &k.System, "system_account_seed"},
		{f.Platform, nkeys.PrefixByteAccount, &k.Platform, "platform_account_seed"},
	} {
		kp, err := nkeys.FromSeed([]byte(s.seed))
		if err != nil {
			return nil, fmt.Errorf("nats keys %s: %s: %w", path, s.what, err)
		}
		if pub, _ := kp.PublicKey(); nkeys.Prefix(pub) != s.prefix {
			return nil, fmt.Errorf("nats keys %s: %s is not the right kind of seed", path, s.what)
		}
		*s.into = kp
	}
	if k.tenantSecret, err = hex.DecodeString(f.TenantSecret); err != nil || len(k.tenantSecret) < 32 {
		return nil, fmt.Errorf("nats keys %s: tenant_secret: want at least 64 hex digits", path)
	}
	return k, nil
}

func (k *Keys) save(path string) error {
	f := keysFile{TenantSecret: hex.EncodeToString(k.tenantSecret)}
	for _, s := range []struct {
		kp   nkeys.KeyPair
		into *string
	}{{k.Operator, &f.Operator}, {k.System, &f.System}, {k.Platform, &f.Platform}} {
		seed, err := s.kp.Seed()
		if err != nil {
			return err
		}
		*s.into = string(seed)
	}
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write nats keys: %w", err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("write nats keys: %w", err)
	}
	return nil
}

// TenantAccount returns tenant's account key pair, derived from the tenant
// secret: the same tenant always gets the same account.
func (k *Keys) TenantAccount(tenant string) (nkeys.KeyPair, error) {
	mac := hmac.New(sha256.New, k.tenantSecret)
	mac.Write([]byte("vrsky tenant account\x00" + tenant))
	return nkeys.FromRawSeed(nkeys.PrefixByteAccount, mac.Sum(nil))
}

// TenantAccountID returns the public key naming tenant's NATS account.
func (k *Keys) TenantAccountID(tenant string) (string, error) {
	kp, err := k.TenantAccount(tenant)
	if err != nil {
		return "", err
	}
	return kp.PublicKey()
}

// public returns kp's public key; key pairs made here always have one.
func public(kp nkeys.KeyPair) string {
	pub, err := kp.PublicKey()
	if err != nil {
		panic(fmt.Sprintf("natsauth: key pair without a public key: %v", err))
	}
	return pub
}
