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
	"context"
	"encoding/json"
	"fmt"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// Content types of converted messages.
const (
	ContentTypeJSON = "application/json"
	ContentTypeCSV  = "text/csv"
)

// Connector registers the csv converter.
var Connector = sdk.Connector{
	Name:      "csv",
	Kind:      sdk.KindConverter,
	Summary:   "Convert CSV to JSON rows (typed, BOM and ragged rows handled) or JSON rows to CSV with formula injection defused.",
	NewConfig: func() any { return new(Config) },
	Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
		var cfg Config
		if err := config.Decode(raw, &cfg); err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		c, err := New(cfg)
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		return c, nil
	},
}

// Converter is the built csv converter. It is safe for concurrent use.
type Converter struct {
	s settings
}

var _ sdk.Converter = (*Converter)(nil)

// New validates cfg and returns its converter.
func New(cfg Config) (*Converter, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	return &Converter{s: s}, nil
}

// Convert converts msg's body in the configured direction. Input it cannot
// convert is a permanent error; a cancelled ctx is not.
func (c *Converter) Convert(ctx context.Context, msg sdk.Message) (sdk.Message, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Message{}, fmt.Errorf("csv: %w", err)
	}
	if int64(len(msg.Body)) > c.s.maxBytes {
		return sdk.Message{}, sdk.Permanentf("csv: body is %d bytes, over the %d-byte limit", len(msg.Body), c.s.maxBytes)
	}
	var (
		body []byte
		ct   string
		err  error
	)
	if c.s.direction == ToCSV {
		body, err = c.ToCSV(msg.Body)
		ct = ContentTypeCSV
	} else {
		body, err = c.ToJSON(msg.Body)
		ct = ContentTypeJSON
	}
	if err != nil {
		return sdk.Message{}, fmt.Errorf("csv: %w", err)
	}
	out := msg
	out.Body = body
	out.ContentType = ct
	return out, nil
}
