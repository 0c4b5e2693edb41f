package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// natsScope says which servers the NATS dashboard shows.
const natsScope = "Platform NATS servers only, as the worker role scrapes their monitoring endpoints (vrsky dev: its embedded server). Dedicated per-tenant NATS servers do not exist yet, so they are not shown."

// NATS is the platform NATS cluster's dashboard.
func NATS() *dashboard.DashboardBuilder {
	return base("vrsky-nats", "VRSky / NATS", "The platform NATS (JetStream) cluster. "+natsScope+" See docs/operations.md.").
		WithRow(dashboard.NewRowBuilder("Cluster")).
		WithPanel(single("Servers up", natsScope, "short",
			promQuery(`sum(vrsky_nats_up)`, "up"))).
		WithPanel(single("Servers down", "Servers whose monitoring endpoint does not answer. Above 0 fires VRSkyNATSNodeDown.", "short",
			promQuery(`count(vrsky_nats_up == 0) or vector(0)`, "down"))).
		WithPanel(single("Meta leaders", "Servers reporting themselves JetStream meta leader: 1 when healthy, 0 fires VRSkyNATSNoMetaLeader.", "short",
			promQuery(`sum(vrsky_nats_jetstream_meta_leader)`, "leaders"))).
		WithPanel(single("Cluster size", "JetStream cluster size each server reports (1 for a single server).", "short",
			promQuery(`max(vrsky_nats_jetstream_cluster_size)`, "size"))).
		WithPanel(graph("Up by server", natsScope, "short",
			promQuery(`max by (server) (vrsky_nats_up)`, "{{server}}"))).
		WithPanel(graph("Meta leader by server", "Which server holds the JetStream meta leadership; a change is a leader election.", "short",
			promQuery(`max by (server) (vrsky_nats_jetstream_meta_leader)`, "{{server}}"))).
		WithRow(dashboard.NewRowBuilder("Load and storage")).
		WithPanel(graph("Connections by server", "Client connections per server.", "short",
			promQuery(`sum by (server) (vrsky_nats_connections)`, "{{server}}"))).
		WithPanel(graph("JetStream storage used", "Share of each server's JetStream storage limit in use. VRSkyJetStreamStorageNearLimit fires above 85 %.", "percentunit",
			promQuery(`max by (server) (vrsky_nats_jetstream_storage_used_bytes / vrsky_nats_jetstream_storage_max_bytes)`, "{{server}}"))).
		WithPanel(graph("JetStream storage bytes", "Bytes stored and the limit, per server.", "bytes",
			promQuery(`max by (server) (vrsky_nats_jetstream_storage_used_bytes)`, "{{server}} used"),
			promQuery(`max by (server) (vrsky_nats_jetstream_storage_max_bytes)`, "{{server}} limit")))
}
