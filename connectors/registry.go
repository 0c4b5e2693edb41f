package connectors

import (
	"github.com/vrsky/vrsky/connectors/file"
	"github.com/vrsky/vrsky/connectors/jsontransform"
	"github.com/vrsky/vrsky/connectors/router"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// Catalog returns a catalog of every connector.
func Catalog() *sdk.Catalog {
	return sdk.NewCatalog(all()...)
}

// all lists the connectors; add a new one here.
func all() []sdk.Connector {
	return []sdk.Connector{
		jsontransform.Connector,
		router.Router,
		router.FilterConnector,
		file.Producer,
	}
}
