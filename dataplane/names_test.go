package dataplane

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/spec"
)

func TestStageSubjectIsWhatTheStageConsumes(t *testing.T) {
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	require.Equal(t, p.InSubject(), p.StageSubject(StageProcess))
	require.Equal(t, p.OutSubject("crm"), p.StageSubject(DeliverStage("crm")))
}

func TestRunnerKeyIsAlwaysAValidKey(t *testing.T) {
	require.Equal(t, "host-1", RunnerKey("host-1"))
	require.Equal(t, "a_b_c_d", RunnerKey("a b*c>d"))
	require.Equal(t, "_x_", RunnerKey(".x."))
	require.Equal(t, "host.example-12", RunnerKey("host.example-12"))
}

// TestNamesKeepTenantsAndPipelinesApart: every name is built from checked
// names, and one tenant's streams, keys and objects never fall under
// another's prefix.
func TestNamesKeepTenantsAndPipelinesApart(t *testing.T) {
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	require.NoError(t, p.Validate())
	require.Equal(t, "acme/orders", p.String())
	require.Equal(t, "VRSKY_acme_orders", p.Stream())
	require.Equal(t, "vrsky.acme.orders.>", p.AllSubjects())
	require.Equal(t, "vrsky.acme.dlq.orders", p.DLQSubject())
	require.Equal(t, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.VRSKY_acme_orders.*", p.MaxDeliveriesAdvisories())
	require.Equal(t, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.*.*", AllMaxDeliveriesAdvisories(), "every stream's, one subscription per account")
	require.Equal(t, "acme.orders", p.Key())
	require.Equal(t, p.Key(), p.RunRequestKey())
	require.Equal(t, "acme.orders.result", p.RunResultKey())
	require.Equal(t, "acme.orders.deliver-crm", p.CountKey(DeliverStage("crm")))
	require.Equal(t, "acme.orders."+FailuresCount, p.CountKey(FailuresCount))

	for _, bad := range []Pipeline{{"", "x"}, {"acme", ""}, {"Acme", "x"}, {"acme", "a.b"}, {"acme", "a>"}, {"acme", "dlq"}} {
		require.Error(t, bad.Validate(), "%+v", bad)
	}

	// Object and message-state keys hash the message ID: any ID is safe.
	for _, id := range []string{"m1", "a.b>c*", strings.Repeat("x", 10000), "../../etc"} {
		for _, key := range []string{p.ClaimKey(id), p.DLQClaimKey(id), p.AttemptKey(StageProcess, id)} {
			require.NotContains(t, key, "..")
			require.NotContains(t, key, ">")
			require.Less(t, len(key), 100)
		}
	}
	require.True(t, strings.HasPrefix(p.ClaimKey("m1"), ClaimPrefix+"acme/orders/"))
	require.True(t, strings.HasPrefix(p.DLQClaimKey("m1"), DLQClaimPrefix+"acme/orders/"))
	require.Equal(t, []string{"claims/acme/", "dlq/acme/"}, TenantObjectPrefixes("acme"))
	require.NotEqual(t, p.AttemptKey(StageProcess, "m1"), p.AttemptKey(DeliverStage("crm"), "m1"))

	require.True(t, IsTenantStream("acme", p.Stream()))
	require.True(t, IsTenantStream("acme", DLQStream("acme")))
	require.False(t, IsTenantStream("acme", Pipeline{Tenant: "acme2", Integration: "orders"}.Stream()))
	require.False(t, IsTenantStream("acme", DLQStream("other")))
	require.Equal(t, "vrsky.acme.dlq.>", DLQSubjects("acme"))
	require.Equal(t, "acme.>", TenantSecretsFilter("acme"))

	// Every bucket has its own name.
	buckets := []string{DesiredStateBucket, StatusBucket, MessageStateBucket, EgressBucket, CountsBucket, RunsBucket,
		RunnersBucket, LeaseBucket, TenantRatesBucket, SecretsBucket}
	seen := map[string]bool{}
	for _, b := range buckets {
		require.True(t, strings.HasPrefix(b, "vrsky_"), b)
		require.False(t, seen[b], "bucket %s named twice", b)
		seen[b] = true
	}
}

// TestKeyRecordsStayOutOfEveryStagesSubjects: a key record's subject is in
// its pipeline's stream, outside the subjects any stage, any other
// integration of the tenant (whatever its valid name) or the DLQ covers,
// and the key's characters never reach it.
func TestKeyRecordsStayOutOfEveryStagesSubjects(t *testing.T) {
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	key := "order 1.*>/é"
	subject := p.KeySubject(key)
	require.Regexp(t, `^vrsky\.acme\._key\.orders\.[0-9a-f]{32}$`, subject)
	require.Equal(t, subject, p.KeySubject(key), "one key, one record")
	require.NotEqual(t, subject, p.KeySubject("order 2"))
	require.NotEqual(t, subject, Pipeline{Tenant: "acme", Integration: "refunds"}.KeySubject(key))
	require.True(t, subjectMatches(p.KeySubjects(), subject))
	for _, name := range []string{"orders", "key", "dlq", "in", "a"} {
		other := Pipeline{Tenant: "acme", Integration: name}
		require.False(t, subjectMatches(other.AllSubjects(), subject), name)
	}
	require.False(t, subjectMatches(DLQSubjects("acme"), subject))
	require.False(t, spec.ValidName("_key"), "no integration can be named like the key records' token")
}

// subjectMatches reports whether subject matches the NATS filter.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}
