package ssrf

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Attack: a platform admin widens a tenant's policy as far as it goes, even
// naming metadata endpoints; link-local and metadata addresses stay out of
// reach.
func TestNoPolicyOpensMetadataOrLinkLocal(t *testing.T) {
	policies := map[string]sdk.EgressPolicy{
		"allowPrivate": {AllowPrivate: true},
		"listed": {AllowHosts: []string{
			"169.254.169.254", "169.254.169.254:80", "metadata.google.internal", "fd00:ec2::254", "[fd00:ec2::254]:80", "169.254.10.1", "fe80::1",
		}},
	}
	urls := []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/",
		"http://metadata.google.internal/computeMetadata/v1/",
		"http://METADATA.google.internal./",
		"http://[fd00:ec2::254]/",
		"http://169.254.10.1/",
		"http://[fe80::1]/",
		"http://[64:ff9b::a9fe:a9fe]/",
	}
	for name, policy := range policies {
		g := New(policy)
		for _, u := range urls {
			t.Run(name+" "+u, func(t *testing.T) {
				err := g.CheckURL(u)
				require.True(t, IsRefused(err), "%v", err)
				require.True(t, sdk.IsPermanent(err))
				require.ErrorContains(t, err, "never allowed")
			})
		}
		for _, addr := range []string{"169.254.169.254:80", "[fd00:ec2::254]:80", "metadata.google.internal:80", "169.254.10.1:80", "[fe80::1]:80"} {
			t.Run(name+" dial "+addr, func(t *testing.T) {
				_, err := g.DialContext(context.Background(), "tcp", addr)
				require.True(t, IsRefused(err), "%v", err)
			})
		}
	}
	// A listed host may resolve to anything but these.
	require.True(t, IsRefused(controlAlways("tcp", "169.254.169.254:80", nil)))
	require.True(t, IsRefused(controlAlways("tcp", "[fe80::1%eth0]:80", nil)))
	require.NoError(t, controlAlways("tcp", "10.0.0.1:80", nil))
	require.ErrorContains(t, controlAlways("tcp", "nonsense", nil), "unparsable")
}

func TestRefusalNamesThePlatformPolicy(t *testing.T) {
	err := (&Guard{}).CheckURL("http://10.0.0.1/")
	require.ErrorContains(t, err, "the platform's egress policy for this tenant refuses it")
	require.ErrorContains(t, err, "PATCH /v1/tenants/{id}")
	require.True(t, sdk.IsPermanent(err))
}

func TestWidestRefusesOnlyWhatIsAlwaysRefused(t *testing.T) {
	g := Widest()
	require.NoError(t, g.CheckURL("http://127.0.0.1:8080/"))
	require.NoError(t, g.CheckURL("http://localhost:8080/"))
	require.NoError(t, g.CheckURL("http://10.1.2.3/"))
	require.True(t, IsRefused(g.CheckURL("http://169.254.169.254/")))
}

func TestDialUnixSocketIsLocal(t *testing.T) {
	_, err := (&Guard{}).DialContext(context.Background(), "unix", "/tmp/.s.PGSQL.5432")
	require.True(t, IsRefused(err), "%v", err)
	dir := t.TempDir()
	ln, err := net.Listen("unix", dir+"/sock")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	conn, err := New(sdk.EgressPolicy{AllowPrivate: true}).DialContext(context.Background(), "unix", dir+"/sock")
	require.NoError(t, err)
	conn.Close()
}

func TestGuardPostgresRefusesBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{}, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, dsn := range []string{
		"postgres://u@127.0.0.1:" + strconv.Itoa(port) + "/db?sslmode=disable",
		"postgres://u@localhost:" + strconv.Itoa(port) + "/db?sslmode=disable",
		"postgres://u@[::ffff:127.0.0.1]:" + strconv.Itoa(port) + "/db?sslmode=disable",
		"host=10.0.0.1,127.0.0.1 port=" + strconv.Itoa(port) + " user=u sslmode=disable",
		"postgres://u@169.254.169.254/db?sslmode=disable",
		"host=/tmp user=u sslmode=disable",
	} {
		t.Run(dsn, func(t *testing.T) {
			cfg, err := pgconn.ParseConfig(dsn)
			require.NoError(t, err)
			(&Guard{}).GuardPostgres(cfg)
			_, err = pgconn.ConnectConfig(context.Background(), cfg)
			require.True(t, IsRefused(err), "%v", err)
			require.True(t, sdk.IsPermanent(err))
		})
	}
	require.Empty(t, accepted, "no refused address was connected to")
}

func TestGuardPostgresBoundsTheConnect(t *testing.T) {
	cfg, err := pgconn.ParseConfig("postgres://u@127.0.0.1/db")
	require.NoError(t, err)
	New(sdk.EgressPolicy{}).GuardPostgres(cfg)
	require.Equal(t, PostgresConnectTimeout, cfg.ConnectTimeout)
	cfg, err = pgconn.ParseConfig("postgres://u@127.0.0.1/db?connect_timeout=600")
	require.NoError(t, err)
	New(sdk.EgressPolicy{}).GuardPostgres(cfg)
	require.Equal(t, PostgresConnectTimeout, cfg.ConnectTimeout, "a longer connect_timeout is capped")

	// Attack: a host that accepts the connection and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	cfg, err = pgconn.ParseConfig("postgres://u@" + ln.Addr().String() + "/db?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	New(sdk.EgressPolicy{AllowHosts: []string{ln.Addr().String()}}).GuardPostgres(cfg)
	start := time.Now()
	_, err = pgconn.ConnectConfig(context.Background(), cfg)
	require.Error(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestGuardPostgresConnectsWhereAllowed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	got := make(chan netip.AddrPort, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		got <- netip.MustParseAddrPort(c.LocalAddr().String())
		c.Close()
	}()
	cfg, err := pgconn.ParseConfig("postgres://u@localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/db?sslmode=disable")
	require.NoError(t, err)
	New(sdk.EgressPolicy{AllowPrivate: true}).GuardPostgres(cfg)
	_, err = pgconn.ConnectConfig(context.Background(), cfg)
	require.Error(t, err, "the stand-in is no PostgreSQL server")
	require.False(t, IsRefused(err), "%v", err)
	require.Equal(t, ln.Addr().String(), (<-got).String())
}

// FuzzValidatePolicy: an allowHosts entry a policy accepts never names a
// metadata service or a link-local address, and a guard built from it
// still refuses every such address.
func FuzzValidatePolicy(f *testing.F) {
	for _, seed := range []string{
		"erp.internal", "10.0.0.5:8443", "[fd00::1]:80", "169.254.169.254", "metadata.google.internal.", "[fd00:ec2::254]",
		"::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "fe80::1%eth0", "[fe80::1%25eth0]:80", "METADATA", "instance-data:80",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		policy := sdk.EgressPolicy{AllowPrivate: true, AllowHosts: []string{entry}}
		if err := ValidatePolicy(policy); err == nil {
			h, _, perr := parseAllowEntry(entry)
			require.NoError(t, perr)
			require.False(t, isMetadataName(h), "metadata name %q accepted", entry)
			if addr, err := netip.ParseAddr(h); err == nil {
				_, always := classify(addr)
				require.False(t, always, "%q accepted", entry)
			}
		}
		g := New(policy)
		for _, ap := range []string{"169.254.169.254:80", "[fd00:ec2::254]:80", "[fe80::1]:443", "[::ffff:169.254.169.254]:80"} {
			require.True(t, IsRefused(g.CheckAddr(netip.MustParseAddrPort(ap))), ap)
		}
	})
}
