// Package formatconv is a converter between JSON and one other text format,
// in a configured direction, under a size limit.
//
// A format's package (csv, xml) owns its options and its two conversions;
// this package owns what every such converter shares: the direction and
// maxBytes options, the registration, and Convert, which checks the
// context and the body's size, converts in the configured direction and
// sets the content type of the result.
//
// It must never log, retry, ack or keep a message after Convert returns.
package formatconv

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// ToJSON is the direction that converts the format to JSON (the default).
const ToJSON = "toJson"

// ContentTypeJSON is the content type of a message converted to JSON.
const ContentTypeJSON = "application/json"

// Body size limits.
const (
	DefaultMaxBytes = 16 << 20
	MaxMaxBytes     = 64 << 20
)

// Format is what a converter knows of its other format.
type Format struct {
	// Name is the connector's name; it starts every error.
	Name string
	// Direction is the direction that converts JSON to the format, such as
	// toCsv.
	Direction string
	// ContentType is the content type of a message in the format.
	ContentType string
}

// CheckDirection checks a direction option: empty (meaning ToJSON), ToJSON
// or f.Direction. It returns the direction with its default applied.
func (f Format) CheckDirection(direction string) (string, error) {
	if direction == "" {
		return ToJSON, nil
	}
	if direction != ToJSON && direction != f.Direction {
		return direction, fmt.Errorf("direction: %q is not %s or %s", direction, ToJSON, f.Direction)
	}
	return direction, nil
}

// CheckMaxBytes checks a maxBytes option: 0 (meaning DefaultMaxBytes) or 1
// to MaxMaxBytes. It returns the limit with its default applied.
func CheckMaxBytes(maxBytes int64) (int64, error) {
	switch {
	case maxBytes == 0:
		return DefaultMaxBytes, nil
	case maxBytes < 1 || maxBytes > MaxMaxBytes:
		return maxBytes, fmt.Errorf("maxBytes: %d is out of range (1 to %d)", maxBytes, MaxMaxBytes)
	}
	return maxBytes, nil
}

// Connector registers the converter of format f. Build decodes the config
// strictly into a C and builds the converter with newConverter; summary is
// the one-line description.
func Connector[C any, T sdk.Converter](f Format, summary string, newConverter func(C) (T, error)) sdk.Connector {
	return sdk.Connector{
		Name:      f.Name,
		Kind:      sdk.KindConverter,
		Summary:   summary,
		NewConfig: func() any { return new(C) },
		Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
			var cfg C
			if err := config.Decode(raw, &cfg); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			c, err := newConverter(cfg)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			return c, nil
		},
	}
}

// Conversion converts a body. Input it cannot convert is a permanent error.
type Conversion func(data []byte) ([]byte, error)

// Converter converts message bodies between JSON and a format. It is safe
// for concurrent use when its conversions are.
type Converter struct {
	format   Format
	toFormat bool
	maxBytes int64
	toJSON   Conversion
	fromJSON Conversion
}

var _ sdk.Converter = (*Converter)(nil)

// New returns the converter of format f that converts in direction (checked
// by CheckDirection) bodies of at most maxBytes (checked by CheckMaxBytes):
// with toJSON from the format to JSON, with fromJSON from JSON to the
// format.
func New(f Format, direction string, maxBytes int64, toJSON, fromJSON Conversion) *Converter {
	return &Converter{
		format:   f,
		toFormat: direction == f.Direction,
		maxBytes: maxBytes,
		toJSON:   toJSON,
		fromJSON: fromJSON,
	}
}

// Convert converts msg's body in the configured direction and sets its
// content type; ID, headers and the rest are kept. A body over the limit is
// a permanent error, as are the conversion's; a cancelled ctx is not.
func (c *Converter) Convert(ctx context.Context, msg sdk.Message) (sdk.Message, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Message{}, fmt.Errorf("%s: %w", c.format.Name, err)
	}
	if int64(len(msg.Body)) > c.maxBytes {
		return sdk.Message{}, sdk.Permanentf("%s: body is %d bytes, over the %d-byte limit", c.format.Name, len(msg.Body), c.maxBytes)
	}
	convert, ct := c.toJSON, ContentTypeJSON
	if c.toFormat {
		convert, ct = c.fromJSON, c.format.ContentType
	}
	body, err := convert(msg.Body)
	if err != nil {
		return sdk.Message{}, fmt.Errorf("%s: %w", c.format.Name, err)
	}
	out := msg
	out.Body = body
	out.ContentType = ct
	return out, nil
}
