package connectors

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

func TestCatalog(t *testing.T) {
	listed := all()
	cat := Catalog()
	require.Len(t, cat.All(), len(listed), "every connector's kind and name must be unique")

	for _, c := range listed {
		t.Run(string(c.Kind)+":"+c.Name, func(t *testing.T) {
			require.NotEmpty(t, c.Name)
			require.NotEmpty(t, c.Summary)
			require.Contains(t, []sdk.Kind{sdk.KindConsumer, sdk.KindConverter, sdk.KindFilter, sdk.KindProducer}, c.Kind)
			require.NotNil(t, c.Build)
			require.NotNil(t, c.NewConfig)
			v := reflect.ValueOf(c.NewConfig())
			require.Equal(t, reflect.Pointer, v.Kind())
			require.Equal(t, reflect.Struct, v.Elem().Kind())

			found, ok := cat.Lookup(c.Name, c.Kind)
			require.True(t, ok)
			require.Equal(t, c.Summary, found.Summary)
		})
	}

	for _, want := range []struct {
		name string
		kind sdk.Kind
	}{
		{"json-transform", sdk.KindConverter},
		{"router", sdk.KindFilter},
		{"filter", sdk.KindFilter},
		{"file", sdk.KindProducer},
		{"postgres", sdk.KindProducer},
		{"postgres-cdc", sdk.KindConsumer},
		{"file", sdk.KindConsumer},
		{"http", sdk.KindProducer},
		{"slack", sdk.KindProducer},
		{"http-webhook", sdk.KindConsumer},
		{"cloudevents", sdk.KindConsumer},
		{"xml", sdk.KindConverter},
		{"csv", sdk.KindConverter},
	} {
		_, ok := cat.Lookup(want.name, want.kind)
		require.True(t, ok, "%s %s is missing", want.kind, want.name)
	}
}

// TestIngressConnectorsArePushedTo: the API's ingress serves exactly the
// consumers marked Ingress, and no connector both polls and is pushed to.
func TestIngressConnectorsArePushedTo(t *testing.T) {
	var ingress []string
	for _, c := range all() {
		if c.Ingress {
			require.Equal(t, sdk.KindConsumer, c.Kind, c.Name)
			require.False(t, c.Polls, "%s is pushed to; it cannot also poll", c.Name)
			ingress = append(ingress, c.Name)
		}
	}
	require.ElementsMatch(t, []string{"http-webhook", "cloudevents"}, ingress)
}
