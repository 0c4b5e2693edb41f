// Package csv is the csv converter: it turns CSV into JSON (a whole
// document into one {"rows": [...]} message, or one record into one
// object) and JSON rows into CSV.
//
// A file consumer that hands over whole files produces document messages;
// one that splits files into records produces row messages, and the header
// then comes from the config. Malformed CSV (a bare quote, a record with the
// wrong number of fields, a cell that does not convert to its column's type)
// fails permanently, naming the line and column or row, so the message goes
// to the DLQ with a reason a person can act on. A UTF-8 byte order mark is
// stripped. Written CSV defuses spreadsheet formulas unless told otherwise.
//
// It must never log, retry, ack or keep a message after Convert returns.
package csv

import (
	"encoding/json"

	"github.com/vrsky/vrsky/connectors/formatconv"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// ContentTypeCSV is the content type of a message converted to CSV; one
// converted to JSON is formatconv.ContentTypeJSON.
const ContentTypeCSV = "text/csv"

var format = formatconv.Format{Name: "csv", Direction: ToCSV, ContentType: ContentTypeCSV}

// Connector registers the csv converter.
var Connector = func() sdk.Connector {
	c := formatconv.Connector(format,
		"Convert CSV to JSON rows (typed, BOM and ragged rows handled) or JSON rows to CSV with formula injection defused.",
		New)
	c.Example = json.RawMessage(`{"direction": "toJson", "types": {"qty": "int", "price": "float"}}`)
	return c
}()

// Converter is the built csv converter. It is safe for concurrent use. Its
// Convert fails permanently on input it cannot convert, but not on a
// cancelled ctx.
type Converter = formatconv.Converter

// New validates cfg and returns the csv converter it configures.
func New(cfg Config) (*Converter, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	return formatconv.New(format, s.direction, s.maxBytes, s.toJSON, s.toCSV), nil
}
