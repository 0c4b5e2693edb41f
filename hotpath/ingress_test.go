package hotpath

import (
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// ingressStub stands for the http-webhook consumer in test catalogs: an
// ingress connector, which the API's ingress serves and no runner runs, so
// it is never built here.
var ingressStub = sdk.Connector{Name: dataplane.WebhookConnector, Kind: sdk.KindConsumer, Ingress: true}
