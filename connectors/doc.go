// Package connectors lists every connector VRSky ships: Catalog is the one
// place a connector is registered, explicitly, so the runner, the API and
// the docs see the same set.
//
// Each connector lives in its own package under connectors/ and exports an
// sdk.Connector value. This package must never hold connector logic or
// register anything from an init function.
package connectors
