package natsauth

import (
	"fmt"
	"os"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Limits cap what one tenant may hold in JetStream, so one tenant cannot
// fill the disk or the memory of the shared server. The server enforces
// them: a publish that would take the account over DiskBytes is refused
// with "resource limits exceeded for account" (JetStream error 10002),
// and only that account's publishes are.
//
// A standalone nats-server reserves every positive byte limit when it is
// set (account DiskBytes and MemoryBytes, a stream's MaxBytes) against its
// max_file_store and max_memory_store; a cluster does not reserve account
// limits. OvercommittedStore sizes a standalone server for that; see
// docs/adr/0016-tenant-quotas.md.
type Limits struct {
	// DiskBytes caps the bytes of all the tenant's file streams together.
	DiskBytes int64 `json:"disk_bytes"`
	// MemoryBytes caps memory streams; tenants' streams are all on disk,
	// so 0 (no memory streams) is the default and reserves nothing.
	MemoryBytes int64 `json:"memory_bytes"`
	Streams     int64 `json:"streams"`
	Consumers   int64 `json:"consumers"`
	// DLQBytes caps the tenant's DLQ stream (its MaxBytes; the oldest
	// dead letters go first). 0 means DefaultLimits.DLQBytes. It must not
	// exceed DiskBytes.
	DLQBytes int64 `json:"dlq_bytes,omitempty"`
}

// DefaultLimits are a tenant's JetStream limits unless told otherwise.
var DefaultLimits = Limits{DiskBytes: 1 << 30, MemoryBytes: 0, Streams: 200, Consumers: 2000, DLQBytes: 128 << 20}

// DLQ returns the DLQ stream's MaxBytes under these limits.
func (l Limits) DLQ() int64 {
	if l.DLQBytes > 0 {
		return l.DLQBytes
	}
	return min(DefaultLimits.DLQBytes, l.DiskBytes)
}

// Validate reports limits that would disable JetStream, are negative, or
// give the DLQ more than the disk quota.
func (l Limits) Validate() error {
	if l.DiskBytes <= 0 || l.MemoryBytes < 0 || l.Streams <= 0 || l.Consumers <= 0 || l.DLQBytes < 0 {
		return fmt.Errorf("jetstream limits %+v: disk, streams and consumers must be positive, memory and dlq not negative", l)
	}
	if l.DLQBytes > l.DiskBytes {
		return fmt.Errorf("jetstream limits: dlq_bytes %d exceeds disk_bytes %d", l.DLQBytes, l.DiskBytes)
	}
	return nil
}

// Creds are a user's credentials: its JWT and its seed.
type Creds struct {
	JWT  string
	Seed string
}

// Option is the connect option authenticating with c.
func (c Creds) Option() nats.Option { return nats.UserJWTAndSeed(c.JWT, c.Seed) }

// OperatorClaims returns the operator the server trusts, naming the system
// account.
func (k *Keys) OperatorClaims() (*jwt.OperatorClaims, error) {
	oc := jwt.NewOperatorClaims(public(k.Operator))
	oc.Name = "vrsky"
	oc.SystemAccount = public(k.System)
	token, err := oc.Encode(k.Operator)
	if err != nil {
		return nil, fmt.Errorf("sign operator: %w", err)
	}
	return jwt.DecodeOperatorClaims(token)
}

// SystemAccountJWT returns the signed system account.
func (k *Keys) SystemAccountJWT() (string, error) {
	ac := jwt.NewAccountClaims(public(k.System))
	ac.Name = "SYS"
	return k.sign(ac)
}

// PlatformAccountJWT returns the signed platform account: VRSky's own KV
// buckets (desired state, status, leases) live there, without limits.
func (k *Keys) PlatformAccountJWT() (string, error) {
	ac := jwt.NewAccountClaims(public(k.Platform))
	ac.Name = "VRSKY"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit}
	return k.sign(ac)
}

// TenantAccountJWT returns tenant's signed account with its JetStream
// limits.
func (k *Keys) TenantAccountJWT(tenant string, limits Limits) (string, error) {
	if err := limits.Validate(); err != nil {
		return "", err
	}
	pub, err := k.TenantAccountID(tenant)
	if err != nil {
		return "", err
	}
	ac := jwt.NewAccountClaims(pub)
	ac.Name = "tenant-" + tenant
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{
		DiskStorage: limits.DiskBytes, MemoryStorage: limits.MemoryBytes,
		Streams: limits.Streams, Consumer: limits.Consumers,
	}
	return k.sign(ac)
}

func (k *Keys) sign(ac *jwt.AccountClaims) (string, error) {
	token, err := ac.Encode(k.Operator)
	if err != nil {
		return "", fmt.Errorf("sign account %s: %w", ac.Name, err)
	}
	return token, nil
}

// SystemUser returns credentials in the system account, which may push and
// delete account JWTs.
func (k *Keys) SystemUser(name string) (Creds, error) { return user(k.System, name) }

// PlatformUser returns credentials in the platform account.
func (k *Keys) PlatformUser(name string) (Creds, error) { return user(k.Platform, name) }

// TenantUser returns the platform's credentials in tenant's account, with
// which VRSky's roles run the tenant's streams. They see that account only,
// whatever subjects they use.
func (k *Keys) TenantUser(tenant, name string) (Creds, error) {
	account, err := k.TenantAccount(tenant)
	if err != nil {
		return Creds{}, err
	}
	return user(account, name)
}

// TenantClientUser returns credentials a tenant's own client could be given:
// in the tenant's account, and even there limited to the tenant's subjects
// (vrsky.<tenant>.>) and reply inboxes, with no JetStream, KV, object-store
// or system API at all.
func (k *Keys) TenantClientUser(tenant, name string) (Creds, error) {
	account, err := k.TenantAccount(tenant)
	if err != nil {
		return Creds{}, err
	}
	own := "vrsky." + tenant + ".>"
	return user(account, name, func(uc *jwt.UserClaims) {
		uc.Pub.Allow.Add(own)
		uc.Sub.Allow.Add(own, "_INBOX.>")
		uc.Pub.Deny.Add("$JS.>", "$KV.>", "$O.>", "$SYS.>")
	})
}

// user mints a user of account, signed by the account's own key; limit, if
// any, narrows its permissions.
func user(account nkeys.KeyPair, name string, limit ...func(*jwt.UserClaims)) (Creds, error) {
	u, err := nkeys.CreateUser()
	if err != nil {
		return Creds{}, err
	}
	uc := jwt.NewUserClaims(public(u))
	uc.Name = name
	for _, l := range limit {
		l(uc)
	}
	token, err := uc.Encode(account)
	if err != nil {
		return Creds{}, fmt.Errorf("sign user %s: %w", name, err)
	}
	seed, err := u.Seed()
	if err != nil {
		return Creds{}, err
	}
	return Creds{JWT: token, Seed: string(seed)}, nil
}

// WriteFile writes c as a standard .creds file (mode 0600), which
// nats.UserCredentials and the nats CLI read.
func (c Creds) WriteFile(path string) error {
	raw, err := jwt.FormatUserConfig(c.JWT, []byte(c.Seed))
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}
