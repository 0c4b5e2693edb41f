package ssrf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // substring; "" means public
		always bool   // link-local or metadata: never allowed
	}{
		{"8.8.8.8", "", false},
		{"1.1.1.1", "", false},
		{"2606:4700:4700::1111", "", false},
		{"0.0.0.0", "unspecified", false},
		{"0.1.2.3", "this network", false},
		{"10.0.0.1", "private address (10.0.0.0/8)", false},
		{"10.255.255.255", "private", false},
		{"100.64.0.1", "carrier-grade NAT", false},
		{"100.127.255.255", "carrier-grade NAT", false},
		{"100.128.0.1", "", false},
		{"127.0.0.1", "loopback", false},
		{"127.255.0.9", "loopback", false},
		{"169.254.1.1", "link-local", true},
		{"169.254.169.254", "cloud metadata", true},
		{"169.254.170.2", "cloud metadata", true},
		{"100.100.100.200", "cloud metadata", true},
		{"192.0.0.192", "cloud metadata", true},
		{"172.16.0.1", "private address (172.16.0.0/12)", false},
		{"172.31.255.255", "private", false},
		{"172.32.0.1", "", false},
		{"192.168.1.1", "private address (192.168.0.0/16)", false},
		{"198.18.0.1", "benchmarking", false},
		{"224.0.0.1", "multicast", false},
		{"239.255.255.250", "multicast", false},
		{"255.255.255.255", "broadcast", false},
		{"240.0.0.1", "reserved", false},
		{"::", "unspecified", false},
		{"::1", "loopback", false},
		{"::127.0.0.1", "IPv4-compatible", false},
		{"fc00::1", "private address (fc00::/7)", false},
		{"fd12:3456::1", "private", false},
		{"fd00:ec2::254", "cloud metadata", true},
		{"fe80::1", "link-local", true},
		{"fe80::1%eth0", "link-local", true},
		{"febf::1", "link-local", true},
		{"fec0::1", "site-local", false},
		{"ff02::1", "multicast", false},
		{"2001:db8::1", "documentation", false},
		{"::ffff:127.0.0.1", "IPv4-mapped loopback", false},
		{"::ffff:10.1.2.3", "IPv4-mapped private", false},
		{"::ffff:169.254.169.254", "IPv4-mapped cloud metadata", true},
		{"::ffff:0.0.0.0", "IPv4-mapped unspecified", false},
		{"::ffff:8.8.8.8", "", false},
		{"64:ff9b::127.0.0.1", "NAT64 address embedding a loopback", false},
		{"64:ff9b::10.0.0.1", "NAT64 address embedding a private", false},
		{"64:ff9b::a9fe:a9fe", "NAT64 address embedding a cloud metadata", true},
		{"64:ff9b::8.8.8.8", "", false},
		{"64:ff9b:1::192.168.0.1", "NAT64", false},
		{"::ffff:0:127.0.0.1", "NAT64 address embedding a loopback", false},
		{"2002:7f00:1::", "6to4 address embedding a loopback", false},
		{"2002:0808:0808::", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			reason, md := classify(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				require.Empty(t, reason)
			} else {
				require.Contains(t, reason, tt.reason)
			}
			require.Equal(t, tt.always, md)
		})
	}
	reason, _ := classify(netip.Addr{})
	require.Equal(t, "invalid address", reason)
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		name  string
		guard Guard
		addr  string
		ok    bool
	}{
		{"public", Guard{}, "93.184.216.34:443", true},
		{"loopback", Guard{}, "127.0.0.1:80", false},
		{"mapped loopback", Guard{}, "[::ffff:127.0.0.1]:80", false},
		{"private allowed", *New(sdk.EgressPolicy{AllowPrivate: true}), "10.0.0.1:80", true},
		{"loopback allowed", *New(sdk.EgressPolicy{AllowPrivate: true}), "[::1]:80", true},
		{"metadata stays refused with allowPrivate", *New(sdk.EgressPolicy{AllowPrivate: true}), "169.254.169.254:80", false},
		{"mapped metadata stays refused", *New(sdk.EgressPolicy{AllowPrivate: true}), "[::ffff:169.254.169.254]:80", false},
		{"metadata stays refused when listed", *New(sdk.EgressPolicy{AllowHosts: []string{"169.254.169.254"}}), "169.254.169.254:80", false},
		{"link-local stays refused with allowPrivate", *New(sdk.EgressPolicy{AllowPrivate: true}), "169.254.1.1:80", false},
		{"v6 link-local stays refused when listed", *New(sdk.EgressPolicy{AllowHosts: []string{"fe80::1"}}), "[fe80::1]:80", false},
		{"allowed host any port", *New(sdk.EgressPolicy{AllowHosts: []string{"10.0.0.5"}}), "10.0.0.5:8443", true},
		{"allowed host:port", *New(sdk.EgressPolicy{AllowHosts: []string{"10.0.0.5:8443"}}), "10.0.0.5:8443", true},
		{"allowed host, other port", *New(sdk.EgressPolicy{AllowHosts: []string{"10.0.0.5:8443"}}), "10.0.0.5:22", false},
		{"allowed v6 bracketed", *New(sdk.EgressPolicy{AllowHosts: []string{"[fd00::1]"}}), "[fd00::1]:80", true},
		{"allowed v6 with port", *New(sdk.EgressPolicy{AllowHosts: []string{"[fd00::1]:80"}}), "[fd00::1]:80", true},
		{"allowed v4 matches mapped", *New(sdk.EgressPolicy{AllowHosts: []string{"10.0.0.5"}}), "[::ffff:10.0.0.5]:80", true},
		{"other private host", *New(sdk.EgressPolicy{AllowHosts: []string{"10.0.0.5"}}), "10.0.0.6:80", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.guard.CheckAddr(netip.MustParseAddrPort(tt.addr))
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, sdk.IsPermanent(err))
			require.True(t, IsRefused(err))
			require.Contains(t, err.Error(), "refused to connect to "+netip.MustParseAddrPort(tt.addr).String())
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name  string
		guard Guard
		url   string
		want  string // error substring; "" means allowed
	}{
		{"https name", Guard{}, "https://hooks.example.com/services/x", ""},
		{"http name with port", Guard{}, "http://example.com:8080/x?y=1", ""},
		{"upper-case scheme", Guard{}, "HTTPS://example.com/", ""},
		{"public ip", Guard{}, "http://93.184.216.34/", ""},
		{"file scheme", Guard{}, "file:///etc/passwd", `scheme "file"`},
		{"gopher", Guard{}, "gopher://example.com/", `scheme "gopher"`},
		{"no scheme", Guard{}, "example.com/path", `scheme ""`},
		{"opaque", Guard{}, "http:example.com", "no host"},
		{"no host", Guard{}, "http:///path", "no host"},
		{"port only", Guard{}, "http://:80/", "no host"},
		{"userinfo", Guard{}, "https://user:pass@example.com/", "user name or password"},
		{"user only", Guard{}, "https://user@example.com/", "user name or password"},
		{"bad port", Guard{}, "http://example.com:0/", "port"},
		{"big port", Guard{}, "http://example.com:70000/", "port"},
		{"unparsable", Guard{}, "http://exa mple.com/", "parse url"},
		{"loopback", Guard{}, "http://127.0.0.1/", "refused to connect to 127.0.0.1:80: loopback"},
		{"loopback https port", Guard{}, "https://127.0.0.1/", "127.0.0.1:443"},
		{"v6 loopback", Guard{}, "http://[::1]:9000/", "[::1]:9000"},
		{"mapped", Guard{}, "http://[::ffff:127.0.0.1]/", "IPv4-mapped loopback"},
		{"mapped hex", Guard{}, "http://[::ffff:7f00:1]/", "IPv4-mapped loopback"},
		{"nat64", Guard{}, "http://[64:ff9b::10.0.0.1]/", "NAT64"},
		{"link-local zone", Guard{}, "http://[fe80::1%25eth0]/", "link-local"},
		{"metadata", Guard{}, "http://169.254.169.254/latest/meta-data/", "cloud metadata"},
		{"metadata with allowPrivate", *New(sdk.EgressPolicy{AllowPrivate: true}), "http://169.254.169.254/", "cloud metadata"},
		{"unspecified", Guard{}, "http://0.0.0.0:8080/", "unspecified"},
		{"localhost", Guard{}, "http://localhost:8080/", "local host name"},
		{"localhost upper dot", Guard{}, "http://LOCALHOST./", "local host name"},
		{"sub.localhost", Guard{}, "http://api.localhost/", "local host name"},
		{"decimal ip", Guard{}, "http://2130706433/", "non-standard IP"},
		{"hex ip", Guard{}, "http://0x7f.1/", "non-standard IP"},
		{"octal ip", Guard{}, "http://0177.0.0.1/", "non-standard IP"},
		{"short ip", Guard{}, "http://127.1/", "non-standard IP"},
		{"hexlike name is a name", Guard{}, "http://cafe.be/", ""},
		{"private allowed", *New(sdk.EgressPolicy{AllowPrivate: true}), "http://10.1.2.3/", ""},
		{"allowed host", *New(sdk.EgressPolicy{AllowHosts: []string{"127.0.0.1:8080"}}), "http://127.0.0.1:8080/", ""},
		{"allowed host wrong port", *New(sdk.EgressPolicy{AllowHosts: []string{"127.0.0.1:8080"}}), "http://127.0.0.1:8081/", "127.0.0.1:8081"},
		{"allowed localhost", *New(sdk.EgressPolicy{AllowHosts: []string{"LocalHost"}}), "http://localhost:8080/", ""},
		{"allowed name default port", *New(sdk.EgressPolicy{AllowHosts: []string{"erp.internal:443"}}), "https://erp.internal/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.guard.CheckURL(tt.url)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.True(t, sdk.IsPermanent(err), "%v", err)
		})
	}
}

func TestCheckURLKeepsSecretsOutOfErrors(t *testing.T) {
	err := (&Guard{}).CheckURL("ftp://hooks.example.com/services/T000/B000/sekrit")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "sekrit")
	err = (&Guard{}).CheckURL("http://127.0.0.1/services/T000/B000/sekrit")
	require.NotContains(t, err.Error(), "sekrit")
	err = (&Guard{}).CheckURL("http://exa mple.com/sekrit")
	require.NotContains(t, err.Error(), "sekrit")
}

func TestValidatePolicy(t *testing.T) {
	require.NoError(t, ValidatePolicy(sdk.EgressPolicy{AllowHosts: []string{"erp.internal", "10.0.0.1:8080", "[::1]:80", "::1", "[fd00::1]"}}))
	for _, bad := range []string{"", "http://x", "x/y", "a@b", "x:0", "x:port", ":80", "a:b:c:d:e:f:g:h:i", "x y"} {
		t.Run(bad, func(t *testing.T) {
			require.ErrorContains(t, ValidatePolicy(sdk.EgressPolicy{AllowHosts: []string{bad}}), "allowHosts entry")
		})
	}
	for _, never := range []string{"169.254.169.254", "169.254.169.254:80", "metadata.google.internal", "Metadata.Google.Internal.", "fd00:ec2::254", "[fd00:ec2::254]:80", "fe80::1", "169.254.10.1", "::ffff:169.254.169.254"} {
		t.Run(never, func(t *testing.T) {
			err := ValidatePolicy(sdk.EgressPolicy{AllowHosts: []string{never}})
			require.ErrorContains(t, err, "never allowed")
		})
	}
	// An invalid entry allows nothing.
	require.Error(t, (New(sdk.EgressPolicy{AllowHosts: []string{"127.0.0.1:0"}})).CheckURL("http://127.0.0.1/"))
}

func TestLooksNumeric(t *testing.T) {
	for host, want := range map[string]bool{
		"2130706433": true, "0x7f000001": true, "0x7F.0.0.1": true, "127.1": true,
		"example.com": false, "1.2.3.com": false, "0xg.1": false, "a..b": false, "1..2": false,
	} {
		require.Equal(t, want, looksNumeric(host), host)
	}
}

func TestControlRefusesResolvedAddresses(t *testing.T) {
	// Control sees the address after resolution, whatever name was asked
	// for: this is what defeats DNS rebinding.
	g := &Guard{}
	for _, addr := range []string{"10.0.0.1:80", "127.0.0.1:443", "[::1]:80", "[::ffff:127.0.0.1]:80", "169.254.169.254:80", "[fe80::1%eth0]:80"} {
		err := g.control("tcp", addr, nil)
		require.Error(t, err, addr)
		require.True(t, IsRefused(err))
		require.True(t, sdk.IsPermanent(err))
	}
	require.NoError(t, g.control("tcp4", "93.184.216.34:443", nil))
	require.ErrorContains(t, g.control("tcp", "nonsense", nil), "unparsable")
}

// server starts a loopback test server counting its requests.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}

func TestClientRefusesLoopbackBeforeConnecting(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, target := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		resp, err := (&Guard{}).Client(time.Second).Get(target)
		if resp != nil {
			resp.Body.Close()
		}
		require.Error(t, err, target)
		require.True(t, sdk.IsPermanent(err), "%v", err)
		require.True(t, IsRefused(err))
	}
	require.Zero(t, hits.Load(), "the refused server was never reached")
}

func TestClientAllowsListedHosts(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, tt := range []struct {
		name   string
		guard  Guard
		target string
	}{
		{"ip:port", *New(sdk.EgressPolicy{AllowHosts: []string{hostOf(t, srv.URL)}}), srv.URL},
		{"ip", *New(sdk.EgressPolicy{AllowHosts: []string{"127.0.0.1"}}), srv.URL},
		{"allowPrivate", *New(sdk.EgressPolicy{AllowPrivate: true}), srv.URL},
		{"localhost by name", *New(sdk.EgressPolicy{AllowHosts: []string{"localhost"}}), fmt.Sprintf("http://localhost:%d/", port)},
		{"localhost resolved to an allowed address", *New(sdk.EgressPolicy{AllowHosts: []string{"localhost", "127.0.0.1"}}), fmt.Sprintf("http://localhost:%d/", port)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.guard.Client(5 * time.Second).Get(tt.target)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			require.Equal(t, "hello", string(b))
		})
	}
	require.EqualValues(t, 5, hits.Load())
}

func TestClientRefusesRedirectToBlockedAddress(t *testing.T) {
	blocked, blockedHits := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secret") })
	allowed, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, blocked.URL+"/internal", http.StatusFound)
	})
	g := New(sdk.EgressPolicy{AllowHosts: []string{hostOf(t, allowed.URL)}})
	resp, err := g.Client(5 * time.Second).Get(allowed.URL)
	if resp != nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	require.True(t, sdk.IsPermanent(err), "%v", err)
	require.True(t, IsRefused(err))
	require.ErrorContains(t, err, "refused to connect to "+hostOf(t, blocked.URL))
	require.Zero(t, blockedHits.Load())
}

func TestClientRefusesRedirectToOtherScheme(t *testing.T) {
	allowed, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "file:///etc/passwd")
		w.WriteHeader(http.StatusFound)
	})
	g := New(sdk.EgressPolicy{AllowHosts: []string{hostOf(t, allowed.URL)}})
	resp, err := g.Client(5 * time.Second).Get(allowed.URL)
	if resp != nil {
		resp.Body.Close()
	}
	require.ErrorContains(t, err, `scheme "file"`)
	require.True(t, sdk.IsPermanent(err))
}

func TestClientStopsAfterMaxRedirects(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/again", http.StatusFound)
	})
	g := New(sdk.EgressPolicy{AllowHosts: []string{hostOf(t, srv.URL)}})
	resp, err := g.Client(5 * time.Second).Get(srv.URL)
	if resp != nil {
		resp.Body.Close()
	}
	require.ErrorContains(t, err, "stopped after 5 redirects")
	require.True(t, sdk.IsPermanent(err))
	require.EqualValues(t, MaxRedirects+1, hits.Load())
}

func TestClientIgnoresEnvironmentProxy(t *testing.T) {
	proxy, proxyHits := server(t, func(w http.ResponseWriter, r *http.Request) {})
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	target, hits := server(t, func(w http.ResponseWriter, r *http.Request) {})
	g := New(sdk.EgressPolicy{AllowHosts: []string{hostOf(t, target.URL)}})
	resp, err := g.Client(5 * time.Second).Get(target.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.EqualValues(t, 1, hits.Load())
	require.Zero(t, proxyHits.Load())
}

func TestNewCopiesPolicy(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {})
	policy := sdk.EgressPolicy{AllowHosts: []string{hostOf(t, srv.URL)}}
	c := New(policy).Client(5 * time.Second)
	policy.AllowHosts[0] = "example.com"
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
}

func TestDialContextRejectsBadAddress(t *testing.T) {
	g := &Guard{}
	_, err := g.DialContext(context.Background(), "tcp", "no-port")
	require.True(t, sdk.IsPermanent(err))
	_, err = g.DialContext(context.Background(), "tcp", "localhost:1")
	require.True(t, IsRefused(err))
	var r *RefusedError
	require.True(t, errors.As(err, &r))
	require.Equal(t, "local host name", r.Reason)
}

func FuzzCheckURL(f *testing.F) {
	for _, seed := range []string{
		"https://example.com/x", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]:80/", "http://[64:ff9b::a00:1]/",
		"http://2130706433/", "http://0x7f.1/", "file:///etc/passwd", "http://user:pw@example.com/",
		"http://localhost./", "http://[fe80::1%25eth0]/", "HTTP://169.254.169.254/", "http://[::]/", "//example.com",
		"http://example.com:65536/", "http://%31%32%37.0.0.1/", "http://[2002:7f00:1::]/",
	} {
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, raw string, allowPrivate bool) {
		g := New(sdk.EgressPolicy{AllowPrivate: allowPrivate})
		err := g.CheckURL(raw)
		if err != nil {
			require.True(t, sdk.IsPermanent(err), "CheckURL errors are permanent: %v", err)
			return
		}
		u, perr := url.Parse(raw)
		require.NoError(t, perr)
		require.Contains(t, []string{"http", "https"}, strings.ToLower(u.Scheme))
		require.Nil(t, u.User)
		host := u.Hostname()
		require.NotEmpty(t, host)
		require.False(t, isMetadataName(host), "metadata name %q allowed", host)
		if !allowPrivate {
			require.False(t, isLocalName(host), "local name %q allowed", host)
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			reason, always := classify(addr)
			if allowPrivate {
				require.False(t, always, "link-local or metadata %s allowed", addr)
			} else {
				require.Empty(t, reason, "%s allowed although %s", addr, reason)
			}
		}
	})
}
