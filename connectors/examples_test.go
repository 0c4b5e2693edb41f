package connectors

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
)

// Every connector's example is a config its checks accept in a spec, and
// the examples of converters and filters build (their expressions and
// templates compile), so the docs, the API and the UI never show one that
// would be refused.
func TestEveryConnectorHasAnExampleThatPasses(t *testing.T) {
	for _, c := range all() {
		t.Run(string(c.Kind)+":"+c.Name, func(t *testing.T) {
			require.NotEmpty(t, c.Example, "give the connector an Example")
			require.True(t, json.Valid(c.Example))
			file := spec.Step{Connector: "file", Config: json.RawMessage(`{"dir":"out"}`)}
			in := spec.Integration{
				Name:      "example",
				Consumer:  spec.Step{Connector: "http-webhook"},
				Producers: map[string]spec.Step{"orders-db": file, "sales-slack": file},
			}
			step := spec.Step{Connector: c.Name, Config: c.Example}
			switch c.Kind {
			case sdk.KindConsumer:
				in.Consumer = step
			case sdk.KindProducer:
				in.Producers["orders-db"] = step
			default:
				in.Steps = []spec.Step{step}
				_, err := c.Build(context.Background(), sdk.Env{Tenant: "acme", Integration: "example"}, c.Example)
				require.NoError(t, err)
			}
			require.NoError(t, ValidateSpec(in))
		})
	}
}
