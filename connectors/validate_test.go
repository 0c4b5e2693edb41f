package connectors

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/spec"
)

func validSpec() spec.Integration {
	return spec.Integration{
		Name:     "orders",
		Consumer: spec.Step{Connector: "http-webhook"},
		Steps: []spec.Step{
			{Connector: "json-transform", Config: json.RawMessage(`{"remove":["secret"]}`)},
			{Connector: "router", Config: json.RawMessage(`{"routes":[{"when":"total > 100","to":["big"]}],"default":["archive"]}`)},
			{Connector: "filter", Config: json.RawMessage(`{"keep":"total > 0"}`)},
		},
		Producers: map[string]spec.Step{
			"big":     {Connector: "file", Config: json.RawMessage(`{"dir":"big"}`)},
			"archive": {Connector: "file"},
		},
	}
}

func TestValidateSpecAcceptsAValidSpec(t *testing.T) {
	require.NoError(t, ValidateSpec(validSpec()))
}

func TestValidateSpecLocatesEveryError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*spec.Integration)
		want   []string
		errors int
	}{
		{
			name: "unknown connectors, by role",
			change: func(s *spec.Integration) {
				s.Consumer.Connector = "file-x"
				s.Producers["big"] = spec.Step{Connector: "x"}
			},
			want:   []string{`consumer.connector: unknown consumer "file-x"`, `producers.big.connector: unknown producer "x"`},
			errors: 2,
		},
		{
			name:   "a producer is not a step",
			change: func(s *spec.Integration) { s.Steps[0].Connector = "postgres" },
			want:   []string{`steps[0].connector: unknown converter or filter "postgres"`},
			errors: 1,
		},
		{
			name:   "unknown config field",
			change: func(s *spec.Integration) { s.Steps[0].Config = json.RawMessage(`{"remvoe":["x"]}`) },
			want:   []string{`steps[0].config: decode config:`, `remvoe`},
			errors: 1,
		},
		{
			name: "config Validate, each error on its own",
			change: func(s *spec.Integration) {
				s.Steps[1].Config = json.RawMessage(`{"routes":[{"when":"","to":[]}],"mode":"some"}`)
			},
			want:   []string{`steps[1].config: routes[0]: when is empty`, `steps[1].config: routes[0]: to names no producer`, `steps[1].config: mode "some"`},
			errors: 3,
		},
		{
			name: "router targets must be producers",
			change: func(s *spec.Integration) {
				s.Steps[1].Config = json.RawMessage(`{"routes":[{"when":"true","to":["big","nope"]}],"default":["gone"]}`)
			},
			want:   []string{`steps[1].config.routes[0].to: unknown producer "nope"`, `steps[1].config.default: unknown producer "gone"`},
			errors: 2,
		},
		{
			name:   "consumer config",
			change: func(s *spec.Integration) { s.Consumer.Config = json.RawMessage(`{"maxBytes":-1}`) },
			want:   []string{`consumer.config: maxBytes: -1 is out of range`},
			errors: 1,
		},
		{
			name: "producer config",
			change: func(s *spec.Integration) {
				s.Producers["archive"] = spec.Step{Connector: "file", Config: json.RawMessage(`{"format":"xls"}`)}
			},
			want:   []string{`producers.archive.config: format "xls"`},
			errors: 1,
		},
		{
			name:   "a schedule on a consumer that cannot poll",
			change: func(s *spec.Integration) { s.Schedule = "*/5 * * * *" },
			want:   []string{`schedule: consumer "http-webhook" does not support schedules`, `polls (file)`},
			errors: 1,
		},
		{
			name: "a schedule on the CDC consumer",
			change: func(s *spec.Integration) {
				s.Consumer = spec.Step{Connector: "postgres-cdc", Config: json.RawMessage(`{"url":{"env":"DB_URL"},"tables":["t"]}`)}
				s.Schedule = "0 * * * *"
			},
			want:   []string{`schedule: consumer "postgres-cdc" does not support schedules`},
			errors: 1,
		},
		{
			name: "a schedule that is not cron",
			change: func(s *spec.Integration) {
				s.Consumer = spec.Step{Connector: "file", Config: json.RawMessage(`{"dir":"in"}`)}
				s.Schedule = "every five minutes"
			},
			want:   []string{`schedule: "every five minutes": want 5 fields`},
			errors: 1,
		},
		{
			name: "shape and connectors together",
			change: func(s *spec.Integration) {
				s.Name = "Orders!"
				s.Steps[2] = spec.Step{}
				s.Producers["archive"] = spec.Step{Connector: "file", Config: json.RawMessage(`[1]`)}
			},
			want:   []string{`name: "Orders!" is not a valid name`, `steps[2].connector: required`, `producers.archive.config: decode config`},
			errors: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := validSpec()
			tc.change(&in)
			err := ValidateSpec(in)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			// Every problem is its own error, with its location.
			for _, e := range flatten(err) {
				var fe *FieldError
				if errors.As(e, &fe) {
					require.NotEmpty(t, fe.Location)
					require.True(t, strings.HasPrefix(e.Error(), fe.Location+": "))
					require.NotNil(t, errors.Unwrap(e))
				}
			}
			if tc.errors > 0 {
				require.Len(t, flatten(err), tc.errors)
			}
		})
	}
}

func TestValidateSpecAcceptsAScheduledFileConsumer(t *testing.T) {
	in := validSpec()
	in.Consumer = spec.Step{Connector: "file", Config: json.RawMessage(`{"dir":"in","format":"csv"}`)}
	in.Schedule = "0 6 * * MON-FRI"
	require.NoError(t, ValidateSpec(in))
}

func TestFlatten(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	require.Nil(t, flatten(nil))
	require.Equal(t, []error{a}, flatten(a))
	require.Equal(t, []error{a, b, c}, flatten(errors.Join(a, errors.Join(b, nil, c))))
}
