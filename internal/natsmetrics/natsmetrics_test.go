package natsmetrics

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/natsserver"
)

// scrape gathers c from a registry of its own: metric name → server →
// value.
func scrape(t *testing.T, c *Collector) map[string]map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if out[f.GetName()] == nil {
				out[f.GetName()] = map[string]float64{}
			}
			out[f.GetName()][label(m, "server")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	return strings.TrimPrefix(rawURL, "http://")
}

func TestCollectorReadsARealServer(t *testing.T) {
	t.Parallel()
	srv, err := natsserver.Start(context.Background(), natsserver.Options{StoreDir: t.TempDir(), MonitorAddr: "127.0.0.1:0", MaxStore: 64 << 20})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	require.NotEmpty(t, srv.MonitorURL())

	// Two clients and some stored bytes.
	for range 2 {
		nc, err := nats.Connect(srv.ClientURL())
		require.NoError(t, err)
		t.Cleanup(nc.Close)
	}
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "METRICS", Subjects: []string{"m.>"}})
	require.NoError(t, err)
	for range 10 {
		_, err := js.Publish(ctx, "m.x", make([]byte, 1024))
		require.NoError(t, err)
	}

	// A server that is down answers nothing.
	down, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	downURL := "http://" + down.Addr().String()
	require.NoError(t, down.Close())

	c, err := New([]string{srv.MonitorURL(), downURL + "/", " "})
	require.NoError(t, err)
	got := scrape(t, c)
	server := hostOf(t, srv.MonitorURL())
	require.Equal(t, 1.0, got["vrsky_nats_up"][server])
	require.GreaterOrEqual(t, got["vrsky_nats_connections"][server], 3.0)
	require.Greater(t, got["vrsky_nats_jetstream_storage_used_bytes"][server], 10*1024.0)
	require.Equal(t, float64(64<<20), got["vrsky_nats_jetstream_storage_max_bytes"][server])
	require.Equal(t, 1.0, got["vrsky_nats_jetstream_meta_leader"][server], "a single server leads itself")
	require.Equal(t, 1.0, got["vrsky_nats_jetstream_cluster_size"][server])

	downServer := hostOf(t, downURL)
	require.Equal(t, 0.0, got["vrsky_nats_up"][downServer])
	require.NotContains(t, got["vrsky_nats_connections"], downServer, "a down server has no other metric")

	// The server stops: the next scrape says so.
	srv.Shutdown()
	require.Equal(t, 0.0, scrape(t, c)["vrsky_nats_up"][server])
}

func TestCollectorSurvivesHostileEndpoints(t *testing.T) {
	t.Parallel()
	handlers := map[string]http.HandlerFunc{
		"malformed": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"connections": "many"`)) },
		"oversize": func(w http.ResponseWriter, r *http.Request) {
			// A valid JSON prefix that never ends within the limit.
			_, _ = w.Write([]byte(`{"server_name":"`))
			chunk := []byte(strings.Repeat("a", 64<<10))
			for range (MaxResponseBytes / len(chunk)) + 4 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			_, _ = w.Write([]byte(`"}`))
		},
		"error status": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) },
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
		},
		"hangs": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewServer(h)
			t.Cleanup(ts.Close)
			c, err := New([]string{ts.URL})
			require.NoError(t, err)
			c.timeout = 300 * time.Millisecond
			began := time.Now()
			got := scrape(t, c)
			require.Equal(t, 0.0, got["vrsky_nats_up"][hostOf(t, ts.URL)])
			require.Len(t, got, 1, "only vrsky_nats_up for a server that did not answer well")
			require.Less(t, time.Since(began), 5*time.Second)
		})
	}
}

func TestCollectorReadsAClusterMember(t *testing.T) {
	t.Parallel()
	// The monitoring answers of a follower in a 3-node cluster.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/varz":
			_, _ = w.Write([]byte(`{"server_name":"nats-1","connections":7}`))
		case "/jsz":
			_, _ = w.Write([]byte(`{"storage":100,"config":{"max_storage":1000},"meta_cluster":{"leader":"nats-0","cluster_size":3}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	c, err := New([]string{ts.URL})
	require.NoError(t, err)
	got := scrape(t, c)
	s := hostOf(t, ts.URL)
	require.Equal(t, 7.0, got["vrsky_nats_connections"][s])
	require.Equal(t, 0.0, got["vrsky_nats_jetstream_meta_leader"][s])
	require.Equal(t, 3.0, got["vrsky_nats_jetstream_cluster_size"][s])
	require.Equal(t, 100.0, got["vrsky_nats_jetstream_storage_used_bytes"][s])
	require.Equal(t, 1000.0, got["vrsky_nats_jetstream_storage_max_bytes"][s])

	// JetStream off: no JetStream metrics.
	off := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jsz" {
			_, _ = w.Write([]byte(`{"disabled":true}`))
			return
		}
		_, _ = w.Write([]byte(`{"server_name":"plain","connections":1}`))
	}))
	t.Cleanup(off.Close)
	c, err = New([]string{off.URL})
	require.NoError(t, err)
	got = scrape(t, c)
	require.Equal(t, 1.0, got["vrsky_nats_up"][hostOf(t, off.URL)])
	require.NotContains(t, got, "vrsky_nats_jetstream_cluster_size")
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, bad := range []string{"nats://127.0.0.1:4222", "127.0.0.1:8222", "http://", "http://user:pw@host:8222", "file:///etc/passwd", "http://%zz"} {
		_, err := New([]string{bad})
		require.Error(t, err, bad)
	}
	c, err := New(ParseURLs(" http://a:8222, ,http://a:8222/,https://b:8222 "))
	require.NoError(t, err)
	require.Len(t, c.servers, 2, "duplicates and empty items are dropped")
	require.Empty(t, ParseURLs(""))
	require.Equal(t, 6, testutil.CollectAndCount(describeOnly{c}), "every metric is described")
}

// describeOnly collects a metric per description, to count them.
type describeOnly struct{ c *Collector }

func (d describeOnly) Describe(ch chan<- *prometheus.Desc) { d.c.Describe(ch) }
func (d describeOnly) Collect(ch chan<- prometheus.Metric) {
	descs := make(chan *prometheus.Desc, 10)
	d.c.Describe(descs)
	close(descs)
	for desc := range descs {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, 1, "s")
	}
}
