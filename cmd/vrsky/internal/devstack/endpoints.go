package devstack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
)

// EndpointsFile is the name, inside the data directory, of the file that
// tells scripts where each part of a running dev stack listens.
const EndpointsFile = "endpoints.json"

// Files in the data directory holding NATS secrets (mode 0600): the
// operator and account keys, and the platform account's credentials.
const (
	NATSKeysFile      = "nats-keys.json"
	PlatformCredsFile = "platform.creds"
)

// Endpoints are the addresses a running dev stack serves on.
type Endpoints struct {
	HTTP string `json:"http"` // host:port of the API, webhooks and UI
	// NATS is nats://host:port, or a cluster's URLs comma-separated (as
	// nats.Connect and VRSKY_NATS_URL take them).
	NATS      string `json:"nats"`
	NATSCreds string `json:"nats_creds"` // the platform account's .creds file
	// NATSReplicas is the replica count of the stack's streams and KV
	// buckets, which roles attached with --dev use too.
	NATSReplicas int `json:"nats_replicas"`
	// NATSMonitor is the http:// URL of NATS's monitoring endpoints.
	NATSMonitor string `json:"nats_monitor"`
	Temporal    string `json:"temporal"`    // host:port of the Temporal frontend
	TemporalUI  string `json:"temporal_ui"` // http://host:port
	S3          string `json:"s3"`          // http://host:port
	Postgres    string `json:"postgres"`    // postgres://… URL of the metadata database
	// Runner tells whether the stack runs a hot-path runner of its own;
	// false with Config.NoRunner, when integrations wait for one to attach.
	Runner bool `json:"runner"`
}

// ReadEndpoints reads DIR/endpoints.json as written by a running dev stack.
func ReadEndpoints(dataDir string) (Endpoints, error) {
	var ep Endpoints
	b, err := os.ReadFile(filepath.Join(dataDir, EndpointsFile))
	if err != nil {
		return ep, fmt.Errorf("read endpoints of the dev stack in %s (is vrsky dev running?): %w", dataDir, err)
	}
	if err := json.Unmarshal(b, &ep); err != nil {
		return ep, fmt.Errorf("parse %s: %w", EndpointsFile, err)
	}
	return ep, nil
}

// writeEndpoints writes the file atomically so readers never see half of it.
func writeEndpoints(dataDir string, ep Endpoints) error {
	b, err := json.MarshalIndent(ep, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dataDir, EndpointsFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write endpoints: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dataDir, EndpointsFile)); err != nil {
		return fmt.Errorf("write endpoints: %w", err)
	}
	return nil
}

// NATSOptions are the options connecting to the stack's NATS as the
// platform account.
func (ep Endpoints) NATSOptions() []nats.Option {
	if ep.NATSCreds == "" {
		return nil
	}
	return []nats.Option{nats.UserCredentials(ep.NATSCreds)}
}
