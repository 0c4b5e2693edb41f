package roles

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/tenancy"
)

// Config locates the infrastructure of a production role. Every field has a
// VRSKY_… environment variable (see FromEnv).
type Config struct {
	DatabaseURL       string
	NATSURL           string
	TemporalAddr      string
	TemporalNamespace string
	S3                blobstore.Config
	FileRoot          string
	// AdminKeyHash is the SHA-256 of the platform admin key (from
	// VRSKY_ADMIN_KEY_SHA256, hex); empty means no admin key.
	AdminKeyHash []byte
	// NATSKeysFile (VRSKY_NATS_KEYS_FILE) holds the operator and account
	// keys of a NATS server in operator mode, one account per tenant;
	// empty means every tenant shares one account.
	NATSKeysFile string
	// NATSReplicas (VRSKY_NATS_REPLICAS) is the replica count of every
	// stream and KV bucket the role creates: 1 (the default) for a single
	// server, 3 for the platform cluster.
	NATSReplicas int
	// TenantEnvAllow (VRSKY_TENANT_ENV_ALLOW) lists the glob patterns of
	// the environment variables tenants may read with {"env": NAME}; empty
	// allows none.
	TenantEnvAllow []string
	// SecretKeys (VRSKY_SECRETS_KEY or VRSKY_SECRETS_KEY_FILE) seals and
	// opens tenant secrets; nil when neither is set.
	SecretKeys *secretbox.KeyRing
}

// FromEnv reads the configuration from VRSKY_… environment variables.
func FromEnv() (Config, error) {
	secure, err := strconv.ParseBool(cmp.Or(os.Getenv("VRSKY_S3_SECURE"), "false"))
	if err != nil {
		return Config{}, fmt.Errorf("VRSKY_S3_SECURE: %w", err)
	}
	var adminHash []byte
	if h := os.Getenv("VRSKY_ADMIN_KEY_SHA256"); h != "" {
		if adminHash, err = hex.DecodeString(h); err != nil || len(adminHash) != sha256.Size {
			return Config{}, errors.New("VRSKY_ADMIN_KEY_SHA256: want the 64 hex digits of the admin key's SHA-256 (sha256sum)")
		}
	}
	envAllow, err := tenancy.ParseEnvAllow(os.Getenv(tenancy.EnvAllowVar))
	if err != nil {
		return Config{}, err
	}
	keys, err := secretbox.FromEnv(os.Getenv)
	if err != nil {
		return Config{}, err
	}
	replicas, err := natscluster.ReplicasFromEnv()
	if err != nil {
		return Config{}, err
	}
	return Config{
		NATSReplicas:      replicas,
		TenantEnvAllow:    envAllow,
		SecretKeys:        keys,
		DatabaseURL:       os.Getenv("VRSKY_DATABASE_URL"),
		NATSURL:           os.Getenv("VRSKY_NATS_URL"),
		TemporalAddr:      os.Getenv("VRSKY_TEMPORAL_ADDR"),
		TemporalNamespace: cmp.Or(os.Getenv("VRSKY_TEMPORAL_NAMESPACE"), "default"),
		S3: blobstore.Config{
			Endpoint:  os.Getenv("VRSKY_S3_ENDPOINT"),
			Bucket:    cmp.Or(os.Getenv("VRSKY_S3_BUCKET"), "vrsky"),
			AccessKey: os.Getenv("VRSKY_S3_ACCESS_KEY"),
			SecretKey: os.Getenv("VRSKY_S3_SECRET_KEY"),
			Secure:    secure,
			Region:    os.Getenv("VRSKY_S3_REGION"),
		},
		FileRoot:     os.Getenv("VRSKY_FILE_ROOT"),
		AdminKeyHash: adminHash,
		NATSKeysFile: os.Getenv("VRSKY_NATS_KEYS_FILE"),
	}, nil
}

// Needs says which connections a role requires.
type Needs struct {
	DB, NATS, Temporal, S3 bool
	// Tenancy wires the platform's Tenancy (WireTenancy, on NATS): the
	// roles that build connectors, api and runner.
	Tenancy bool
}

// Connect opens the connections a role needs and returns them with a
// function that closes them.
func Connect(ctx context.Context, cfg Config, needs Needs, logger *slog.Logger) (_ Deps, closeAll func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := Deps{Registry: reg, FileRoot: cfg.FileRoot, Logger: logger, AdminKeyHash: cfg.AdminKeyHash}
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	var missing []string
	if needs.DB && cfg.DatabaseURL == "" {
		missing = append(missing, "VRSKY_DATABASE_URL")
	}
	if needs.NATS && cfg.NATSURL == "" {
		missing = append(missing, "VRSKY_NATS_URL")
	}
	if needs.Temporal && cfg.TemporalAddr == "" {
		missing = append(missing, "VRSKY_TEMPORAL_ADDR")
	}
	if needs.S3 && cfg.S3.Endpoint == "" {
		missing = append(missing, "VRSKY_S3_ENDPOINT")
	}
	if len(missing) > 0 {
		return d, closeAll, fmt.Errorf("missing configuration: %s", strings.Join(missing, ", "))
	}
	if needs.DB {
		if d.DB, err = pgxpool.New(ctx, cfg.DatabaseURL); err != nil {
			return d, closeAll, fmt.Errorf("connect to postgres: %w", err)
		}
		closers = append(closers, d.DB.Close)
	}
	if needs.NATS {
		var keys *natsauth.Keys
		if cfg.NATSKeysFile != "" {
			if keys, err = natsauth.LoadKeys(cfg.NATSKeysFile); err != nil {
				return d, closeAll, fmt.Errorf("VRSKY_NATS_KEYS_FILE: %w", err)
			}
		}
		n, err := ConnectNATS(cfg.NATSURL, keys, "vrsky", cfg.NATSReplicas)
		if err != nil {
			return d, closeAll, err
		}
		closers = append(closers, n.Close)
		d.NATS, d.JS, d.Accounts, d.NATSAdmin = n.Conn, n.JS, n.Accounts, n.Admin
		if needs.Tenancy {
			if err := WireTenancy(ctx, &d, cfg.TenantEnvAllow, cfg.SecretKeys); err != nil {
				return d, closeAll, err
			}
		}
	}
	if needs.Temporal {
		handler, stopMetrics := TemporalMetrics(reg, logger)
		closers = append(closers, func() { _ = stopMetrics.Close() })
		d.Temporal, err = client.Dial(client.Options{
			HostPort: cfg.TemporalAddr, Namespace: cfg.TemporalNamespace,
			Logger:         sdklog.NewStructuredLogger(QuietLogger(logger, "temporal-client")),
			MetricsHandler: handler,
		})
		if err != nil {
			return d, closeAll, fmt.Errorf("connect to temporal: %w", err)
		}
		closers = append(closers, d.Temporal.Close)
	}
	if needs.S3 {
		if d.Blobs, err = blobstore.New(cfg.S3); err != nil {
			return d, closeAll, err
		}
		if err := d.Blobs.EnsureBucket(ctx); err != nil {
			return d, closeAll, err
		}
	}
	return d, closeAll, nil
}

// QuietLogger passes on only warnings and errors: the Temporal SDK logs
// every poll at info level.
func QuietLogger(base *slog.Logger, component string) *slog.Logger {
	if base == nil {
		base = slog.Default()
	}
	return slog.New(warnOnly{base.Handler()}).With("component", component)
}

type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnOnly) WithAttrs(a []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(a)} }
func (h warnOnly) WithGroup(n string) slog.Handler      { return warnOnly{h.Handler.WithGroup(n)} }
