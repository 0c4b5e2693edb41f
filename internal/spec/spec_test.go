package spec

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const orderRouting = `
name: order-routing
consumer:
  connector: http-webhook
  config:
    signature: { scheme: github, secret: { env: ORDERS_HOOK_SECRET } }
steps:
  - connector: json-transform
    config:
      set:
        total: "sum(map(items, #.qty * #.price))"
  - connector: router
    config:
      routes:
        - when: "total > 1000"
          to: [orders-db, sales-slack]
      default: [orders-db]
producers:
  orders-db:
    connector: postgres
    config: { table: orders, mode: upsert, key: [id] }
  sales-slack:
    connector: slack
    config: { webhookUrl: { env: SLACK_WEBHOOK_URL }, text: "Big order {{ .id }}: {{ .total }}" }
schedule: "*/5 * * * *"
`

func TestParseYAMLTheDesignExample(t *testing.T) {
	in, err := ParseYAML([]byte(orderRouting))
	require.NoError(t, err)
	require.Equal(t, "order-routing", in.Name)
	require.Len(t, in.Steps, 2)
	require.Equal(t, []string{"orders-db", "sales-slack"}, in.ProducerNames())
	require.JSONEq(t, `{"table":"orders","mode":"upsert","key":["id"]}`, string(in.Producers["orders-db"].Config))
	require.Equal(t, "*/5 * * * *", in.Schedule)
	require.Equal(t, "order-routing(http-webhook → 2 steps → orders-db,sales-slack)", in.String())

	again, err := ParseJSON([]byte(`{"name":"order-routing","consumer":{"connector":"http-webhook"},"producers":{"db":{"connector":"postgres"}}}`))
	require.NoError(t, err)
	require.Equal(t, "order-routing", again.Name)
}

func TestParseRejectsBadSpecsWithLocations(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"malformed yaml", "name: [", []string{"parse spec"}},
		{"unknown field", `{"name":"a","consumer":{"connector":"x"},"producers":{"p":{"connector":"y"}},"tenant":"evil"}`, []string{`unknown field "tenant"`}},
		{"everything wrong", `{"name":"Bad Name","consumer":{},"steps":[{}],"producers":{"Bad_Name":{}}}`, []string{
			"name:", "consumer.connector: required", "steps[0].connector: required", "producers.Bad_Name: not a valid producer name", "producers.Bad_Name.connector: required"}},
		{"no producers", `{"name":"a","consumer":{"connector":"x"}}`, []string{"producers: at least one"}},
		{"too many runners", `{"name":"a","consumer":{"connector":"x"},"producers":{"p":{"connector":"y"}},"runners":65}`, []string{"runners: 65 is out of range"}},
		{"negative runners", `{"name":"a","consumer":{"connector":"x"},"producers":{"p":{"connector":"y"}},"runners":-1}`, []string{"runners: -1 is out of range"}},
		{"oversize", `{"name":"` + strings.Repeat("a", MaxSpecBytes) + `"}`, []string{"over the"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tt.doc))
			if strings.HasPrefix(tt.doc, "name: [") {
				_, err = ParseYAML([]byte(tt.doc))
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
	_, err := ParseYAML([]byte(strings.Repeat("#", MaxSpecBytes+1)))
	require.ErrorContains(t, err, "over the")
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "acme", "orders-db", "a1", strings.Repeat("a", 63)} {
		require.True(t, ValidName(ok), ok)
	}
	for _, bad := range []string{"", "-a", "A", "a_b", "a.b", "a>", "a*", "a b", "../x", strings.Repeat("a", 64)} {
		require.False(t, ValidName(bad), bad)
	}
}

// FuzzValidNameMatchesThePattern holds ValidName to the rule it documents.
func FuzzValidNameMatchesThePattern(f *testing.F) {
	pattern := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	for _, s := range []string{"", "a", "-a", "a-", "Ab", "a\x00", "é", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		require.Equal(t, pattern.MatchString(s), ValidName(s), "%q", s)
	})
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte(orderRouting))
	f.Add([]byte(`{"name":"a"}`))
	f.Add([]byte("producers: {x: {connector: y}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseYAML(b)
		if err == nil {
			require.NoError(t, in.Validate())
			require.True(t, ValidName(in.Name))
		}
	})
}
