// Package natsmetrics exposes the health of NATS servers as Prometheus
// metrics (vrsky_nats_*), read from their HTTP monitoring endpoints (/varz
// and /jsz) at each scrape.
//
// It only reads: it never connects to NATS as a client, never follows a
// redirect, and reads at most MaxResponseBytes of any answer, so a
// misbehaving endpoint costs a scrape a bounded time and memory.
package natsmetrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of a Collector.
const (
	// DefaultTimeout bounds the reading of one server's endpoints.
	DefaultTimeout = 3 * time.Second
	// MaxResponseBytes bounds one endpoint's answer; a longer one counts
	// as the server being down.
	MaxResponseBytes = 1 << 20
)

var (
	upDesc = prometheus.NewDesc("vrsky_nats_up",
		"1 when the NATS server's monitoring endpoints answered, else 0.", []string{"server"}, nil)
	connectionsDesc = prometheus.NewDesc("vrsky_nats_connections",
		"Client connections open on the NATS server.", []string{"server"}, nil)
	storageUsedDesc = prometheus.NewDesc("vrsky_nats_jetstream_storage_used_bytes",
		"JetStream file storage the server uses.", []string{"server"}, nil)
	storageMaxDesc = prometheus.NewDesc("vrsky_nats_jetstream_storage_max_bytes",
		"JetStream file storage the server may use.", []string{"server"}, nil)
	metaLeaderDesc = prometheus.NewDesc("vrsky_nats_jetstream_meta_leader",
		"1 on the server that is the JetStream meta leader (a single server leads itself), else 0.", []string{"server"}, nil)
	clusterSizeDesc = prometheus.NewDesc("vrsky_nats_jetstream_cluster_size",
		"Servers in the JetStream meta cluster as this server knows it (1 for a single server).", []string{"server"}, nil)
)

// Collector reads the monitoring endpoints of a list of NATS servers at
// each Collect. It is safe for concurrent use.
type Collector struct {
	servers []server
	client  *http.Client
	timeout time.Duration
}

type server struct {
	label string // host:port, the server label
	base  string // the monitoring URL without a trailing slash
}

// New returns a Collector of the servers whose monitoring URLs
// (http://host:8222) are given. It refuses a URL that is not http(s) with a
// host. The server label is the URL's host:port.
func New(urls []string) (*Collector, error) {
	c := &Collector{
		timeout: DefaultTimeout,
		client: &http.Client{
			Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	seen := map[string]bool{}
	for _, raw := range urls {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("NATS monitoring URL %q: want http(s)://host:port", raw)
		}
		if seen[u.Host] {
			continue
		}
		seen[u.Host] = true
		c.servers = append(c.servers, server{label: u.Host, base: strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/")})
	}
	return c, nil
}

// ParseURLs splits a comma-separated list of monitoring URLs
// (VRSKY_NATS_MONITOR_URLS), dropping empty items.
func ParseURLs(list string) []string {
	var urls []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, connectionsDesc, storageUsedDesc, storageMaxDesc, metaLeaderDesc, clusterSizeDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads every server at once,
// each within the timeout.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, s := range c.servers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			defer cancel()
			st, err := c.read(ctx, s)
			if err != nil {
				ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0, s.label)
				return
			}
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.label)
			}
			gauge(upDesc, 1)
			gauge(connectionsDesc, float64(st.connections))
			if st.jetStream {
				gauge(storageUsedDesc, float64(st.storageUsed))
				gauge(storageMaxDesc, float64(st.storageMax))
				gauge(metaLeaderDesc, boolValue(st.metaLeader))
				gauge(clusterSizeDesc, float64(st.clusterSize))
			}
		})
	}
	wg.Wait()
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// status is what one scrape learned of a server.
type status struct {
	connections             int
	jetStream               bool
	storageUsed, storageMax int64
	metaLeader              bool
	clusterSize             int
}

// varz and jsz are the parts of /varz and /jsz read here.
type varz struct {
	ServerName  string `json:"server_name"`
	ID          string `json:"server_id"`
	Connections int    `json:"connections"`
}

type jsz struct {
	Disabled bool  `json:"disabled"`
	Storage  int64 `json:"storage"`
	Config   struct {
		MaxStorage int64 `json:"max_storage"`
	} `json:"config"`
	Meta *struct {
		Leader      string `json:"leader"`
		ClusterSize int    `json:"cluster_size"`
	} `json:"meta_cluster"`
}

func (c *Collector) read(ctx context.Context, s server) (status, error) {
	var v varz
	if err := c.get(ctx, s.base+"/varz", &v); err != nil {
		return status{}, err
	}
	st := status{connections: v.Connections}
	var j jsz
	if err := c.get(ctx, s.base+"/jsz", &j); err != nil {
		return status{}, err
	}
	if j.Disabled {
		return st, nil
	}
	st.jetStream = true
	st.storageUsed, st.storageMax = j.Storage, j.Config.MaxStorage
	st.clusterSize, st.metaLeader = 1, true
	if j.Meta != nil && j.Meta.ClusterSize > 0 {
		st.clusterSize = j.Meta.ClusterSize
		st.metaLeader = j.Meta.Leader != "" && j.Meta.Leader == v.ServerName
	}
	return st, nil
}

// errTooLarge is an answer over MaxResponseBytes.
var errTooLarge = errors.New("monitoring answer over the size limit")

// get reads url's JSON answer into v, at most MaxResponseBytes of it.
func (c *Collector) get(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return err
	}
	if len(body) > MaxResponseBytes {
		return errTooLarge
	}
	return json.Unmarshal(body, v)
}
