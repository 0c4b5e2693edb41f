package dataplane

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/vrsky/vrsky/internal/spec"
)

// Every stream, subject, consumer, KV bucket, KV key and object key of the
// data plane is named or built in this file, from names checked by
// spec.ValidName — never from raw user strings.

// Buckets of the platform account written by the control plane and the
// runners.
const (
	// DesiredStateBucket holds each integration's spec and desired status.
	DesiredStateBucket = "vrsky_desired_state"
	// StatusBucket holds what the runners report back.
	StatusBucket = "vrsky_status"
	// MessageStateBucket counts failed attempts of messages that are
	// retrying; the happy path never writes to it.
	MessageStateBucket = "vrsky_message_state"
	// EgressBucket mirrors each tenant's egress policy (key: the tenant
	// ID) from PostgreSQL for the runners; a missing key is the default
	// policy.
	EgressBucket = "vrsky_egress"
	// PlacementsBucket mirrors each tenant's Placement (key: the tenant
	// ID) from PostgreSQL for ingress and the runners; a missing key is
	// Shared.
	PlacementsBucket = "vrsky_placements"
)

// CountsBucket holds, per pipeline and stage, how many messages the stage
// finished without a consumer of its own: deliveries made straight from the
// process stage (ADR 0009), which JetStream's consumer counters cannot see.
const CountsBucket = "vrsky_counts"

// FailuresCount is the counts-bucket "stage" (Pipeline.CountKey) under
// which runners add up a pipeline's failed attempts: each retried or
// dead-lettered one. No consumer is named like it.
const FailuresCount = "failures"

// TakenCount is the counts-bucket "stage" (Pipeline.CountKey) under which
// runners add up what a pipeline's process stage took from its stream,
// each attempt. Its writes tell the metrics history that the integration
// moved (internal/history), including messages a filter dropped, which no
// other count sees. No consumer is named like it.
const TakenCount = "taken"

// LatencyCount is the counts-bucket "stage" (Pipeline.CountKey) under
// which runners add up a pipeline's end-to-end latency histogram
// (latency.go). No consumer is named like it.
const LatencyCount = "latency"

// RestsCount is the counts-bucket "stage" (Pipeline.CountKey) under which
// runners record, for each stage whose consumer may be removed while it
// parks, what that consumer had finished (resting.go). No consumer is
// named like it.
const RestsCount = "rests"

// RunsBucket holds the run requests and results of scheduled pipelines.
const RunsBucket = "vrsky_runs"

// RunnersBucket is where runners register: one key per runner (RunnerKey),
// rewritten every few seconds with what the runner says of itself. A
// runner not heard from for a while is taken for gone, and its
// integrations move to the others (hotpath's membership).
const RunnersBucket = "vrsky_runners"

// LeaseBucket holds the leases of singleton consumers: one key per
// pipeline (Pipeline.Key), held by one runner at a time.
const LeaseBucket = "vrsky_leases"

// TenantRatesBucket mirrors, in the platform account, the tenants whose
// ingress quotas differ from the platform's (IngressQuota): how many
// messages per second the webhook ingress takes from each, how many
// delivery keys it remembers for each. The API writes an entry after
// storing a tenant's limits in PostgreSQL; every api process follows the
// bucket, so a change holds within a moment everywhere. (It is named for
// the first of those quotas.)
const TenantRatesBucket = "vrsky_tenant_rates"

// Object key prefixes of the blob store.
const (
	// ClaimPrefix holds claim-checked bodies.
	ClaimPrefix = "claims/"
	// DLQClaimPrefix holds dead-lettered bodies.
	DLQClaimPrefix = "dlq/"
)

// WebhookConnector is the consumer served by the API's webhook ingress rather
// than by a runner.
const WebhookConnector = "http-webhook"

// Pipeline identifies one integration of one tenant.
type Pipeline struct {
	Tenant      string
	Integration string
}

// reservedIntegration is the subject token after the tenant's that holds
// its dead letters (vrsky.<tenant>.dlq.>): an integration of that name
// would have its stream's subjects overlap the tenant's DLQ stream.
const reservedIntegration = "dlq"

// Validate checks both names, and refuses an integration name the
// platform's own subjects use.
func (p Pipeline) Validate() error {
	if !spec.ValidName(p.Tenant) {
		return fmt.Errorf("invalid tenant name %q", p.Tenant)
	}
	if !spec.ValidName(p.Integration) {
		return fmt.Errorf("invalid integration name %q", p.Integration)
	}
	if p.Integration == reservedIntegration {
		return fmt.Errorf("integration name %q is reserved: the tenant's dead letters use it", p.Integration)
	}
	return nil
}

func (p Pipeline) String() string { return p.Tenant + "/" + p.Integration }

// Stream is the integration's work-queue stream holding every hop.
func (p Pipeline) Stream() string { return "VRSKY_" + p.Tenant + "_" + p.Integration }

// InSubject is where the consumer publishes what it took in.
func (p Pipeline) InSubject() string { return "vrsky." + p.Tenant + "." + p.Integration + ".in" }

// OutSubject is where processed messages wait for one producer.
func (p Pipeline) OutSubject(producer string) string {
	return "vrsky." + p.Tenant + "." + p.Integration + ".out." + producer
}

// MaxDeliveriesAdvisories is the subject of JetStream's advisories about
// messages of the pipeline's stream that reached a consumer's MaxDeliver.
func (p Pipeline) MaxDeliveriesAdvisories() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + p.Stream() + ".*"
}

// AllMaxDeliveriesAdvisories is the subject of JetStream's advisories
// about messages of any stream of an account that reached a consumer's
// MaxDeliver: one subscription per tenant account serves all its
// pipelines.
func AllMaxDeliveriesAdvisories() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.*.*"
}

// AllSubjects is the stream's subject filter.
func (p Pipeline) AllSubjects() string { return "vrsky." + p.Tenant + "." + p.Integration + ".>" }

// DLQSubject is where this integration's dead letters go.
func (p Pipeline) DLQSubject() string { return "vrsky." + p.Tenant + ".dlq." + p.Integration }

// Key is the pipeline's key in the desired-state and status buckets.
func (p Pipeline) Key() string { return p.Tenant + "." + p.Integration }

// RunRequestKey is the pipeline's key in the runs bucket holding its last
// run request.
func (p Pipeline) RunRequestKey() string { return p.Key() }

// RunResultKey is the key in the runs bucket holding the pipeline's last run
// result (and, in its history, the ones before).
func (p Pipeline) RunResultKey() string { return p.Key() + ".result" }

// ClaimKey is the object key of a claim-checked body.
func (p Pipeline) ClaimKey(messageID string) string {
	return ClaimPrefix + p.Tenant + "/" + p.Integration + "/" + hashID(messageID)
}

// DLQClaimKey is where a dead-lettered message's body is kept.
func (p Pipeline) DLQClaimKey(messageID string) string {
	return DLQClaimPrefix + p.Tenant + "/" + p.Integration + "/" + hashID(messageID)
}

// TenantObjectPrefixes are the object-key prefixes holding a tenant's
// bodies: claim-checked ones and dead-lettered ones.
func TenantObjectPrefixes(tenant string) []string {
	return []string{ClaimPrefix + tenant + "/", DLQClaimPrefix + tenant + "/"}
}

// AttemptKey is the message-state key counting a message's failed attempts
// at one stage.
func (p Pipeline) AttemptKey(stage, messageID string) string {
	return p.Tenant + "." + p.Integration + "." + stage + "." + hashID(messageID)
}

// CountKey is the counts-bucket key of one stage of the pipeline.
func (p Pipeline) CountKey(stage string) string { return p.Key() + "." + stage }

// StageSubject is the subject a stage consumes: `in` for the process stage,
// `out.<producer>` for a producer's delivery. A dead letter records it, so a
// replay goes back to the stage that failed.
func (p Pipeline) StageSubject(stage string) string {
	if producer, ok := strings.CutPrefix(stage, StageDeliverPrefix); ok {
		return p.OutSubject(producer)
	}
	return p.InSubject()
}

// DLQStream is the tenant's dead-letter stream.
func DLQStream(tenant string) string { return "VRSKY_DLQ_" + tenant }

// IsTenantStream reports whether the stream named name belongs to tenant:
// one of its pipelines' streams or its DLQ. Tenant names have no "_", so
// one tenant's prefix is never another's.
func IsTenantStream(tenant, name string) bool {
	return name == DLQStream(tenant) || strings.HasPrefix(name, "VRSKY_"+tenant+"_")
}

// DLQSubjects is the tenant's dead-letter subject filter.
func DLQSubjects(tenant string) string { return "vrsky." + tenant + ".dlq.>" }

// Stage names used in consumer names, metrics and DLQ headers.
const (
	StageProcess = "process"
	// StageDeliverPrefix begins the name of every delivery stage.
	StageDeliverPrefix = "deliver-"
)

// DeliverStage is the stage name of one producer's delivery.
func DeliverStage(producer string) string { return StageDeliverPrefix + producer }

// hashID makes any message ID safe for keys: IDs can come from users
// (idempotency keys) and contain anything.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// SecretsBucket mirrors, in the platform account, each tenant secret as
// the API sealed it (internal/secretbox), so that runners, which have no
// PostgreSQL, can resolve {"secret": NAME}. It never holds a plaintext.
const SecretsBucket = "vrsky_tenant_secrets"

// SecretKey is the key of tenant's secret name in SecretsBucket:
// "<tenant>.<name>". Tenants pass spec.ValidName (no dots); a name must be
// a valid secret name whose dots separate non-empty tokens.
func SecretKey(tenant, name string) (string, error) {
	if !spec.ValidName(tenant) {
		return "", fmt.Errorf("invalid tenant name %q", tenant)
	}
	if !validSecretKeyName(name) {
		return "", fmt.Errorf("invalid secret name %q: want a letter or _ first, then letters, digits, _, - or single dots, at most 128 characters", name)
	}
	return tenant + "." + name, nil
}

// TenantSecretsFilter matches every key of tenant in SecretsBucket.
func TenantSecretsFilter(tenant string) string { return tenant + ".>" }

func validSecretKeyName(name string) bool {
	if name == "" || len(name) > 128 || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'):
		case i > 0 && (c == '-' || c == '.' || (c >= '0' && c <= '9')):
		default:
			return false
		}
	}
	return true
}

// KeySubject is where the record of a delivery key stored in p lives: in
// p's own stream, next to its messages but outside AllSubjects, so no
// stage consumes it and its waiting counts leave it out. The key is
// hashed, since keys may hold characters a subject may not. "_key" is no
// valid integration name, so no other stream's subjects overlap.
func (p Pipeline) KeySubject(key string) string {
	sum := sha256.Sum256([]byte(key))
	return p.keySubjectPrefix() + hex.EncodeToString(sum[:16])
}

// KeySubjects is the stream's filter for its key records.
func (p Pipeline) KeySubjects() string { return p.keySubjectPrefix() + "*" }

func (p Pipeline) keySubjectPrefix() string {
	return "vrsky." + p.Tenant + "._key." + p.Integration + "."
}

// RunnerKey is a runner's key in RunnersBucket: its name, with the characters a KV key may
// not hold replaced.
func RunnerKey(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c == '-' || c == '_' || c == '=' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !ok || (c == '.' && (i == 0 || i == len(b)-1)) {
			b[i] = '_'
		}
	}
	return string(b)
}
