package connectors

import (
	"github.com/vrsky/vrsky/connectors/cloudevents"
	"github.com/vrsky/vrsky/connectors/csv"
	"github.com/vrsky/vrsky/connectors/file"
	"github.com/vrsky/vrsky/connectors/httpout"
	"github.com/vrsky/vrsky/connectors/jsontransform"
	"github.com/vrsky/vrsky/connectors/postgres"
	"github.com/vrsky/vrsky/connectors/postgrescdc"
	"github.com/vrsky/vrsky/connectors/router"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/slack"
	"github.com/vrsky/vrsky/connectors/webhook"
	"github.com/vrsky/vrsky/connectors/xml"
)

// Catalog returns a catalog of every connector.
func Catalog() *sdk.Catalog {
	return sdk.NewCatalog(all()...)
}

// all lists the connectors; add a new one here.
func all() []sdk.Connector {
	return []sdk.Connector{
		jsontransform.Connector,
		jsontransform.FieldMap,
		router.Connector,
		router.FilterConnector,
		file.ProducerConnector,
		postgres.Connector,
		postgrescdc.Connector,
		file.ConsumerConnector,
		httpout.Connector,
		slack.Connector,
		webhook.Connector,
		cloudevents.Connector,
		xml.Connector,
		csv.Connector,
	}
}
