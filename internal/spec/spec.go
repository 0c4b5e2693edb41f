// Package spec is the integration spec: what users write (YAML for the CLI,
// JSON for the API) and what the control plane hands to the runners.
//
// It parses and checks the shape and the names; each connector checks its
// own config when it is built. It never resolves secrets.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Integration is one integration's spec.
type Integration struct {
	Name      string          `json:"name"`
	Consumer  Step            `json:"consumer"`
	Steps     []Step          `json:"steps,omitempty"`
	Producers map[string]Step `json:"producers"`
	// Schedule, when set, is a cron expression (see CheckSchedule): the
	// consumer does not run continuously but polls its source once per
	// scheduled run.
	Schedule string `json:"schedule,omitempty"`
	// Runners is how many runners share this integration's stages; 0 means
	// one. A hot integration asks for more; each runner it is assigned to
	// takes a share of its messages.
	Runners int `json:"runners,omitempty"`
}

// MaxRunners bounds Integration.Runners.
const MaxRunners = 64

// Step names a connector and its config.
type Step struct {
	Connector string          `json:"connector"`
	Config    json.RawMessage `json:"config,omitempty"`
}

// MaxSpecBytes bounds a spec document.
const MaxSpecBytes = 1 << 20

// ValidName reports whether s is usable as a tenant, integration or producer
// name: lowercase letters, digits and hyphens, starting with a letter or
// digit, at most 63 characters. These names end up in NATS subjects, stream
// names and object keys, so nothing else is allowed.
// It is checked on every webhook request, so it is a loop, not a regexp.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ParseJSON decodes a JSON spec, rejecting unknown fields, and validates it.
func ParseJSON(b []byte) (Integration, error) {
	var in Integration
	if len(b) > MaxSpecBytes {
		return in, fmt.Errorf("spec is %d bytes, over the %d-byte limit", len(b), MaxSpecBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, fmt.Errorf("parse spec: %w", err)
	}
	return in, in.Validate()
}

// ParseYAML decodes a YAML spec (the same shape as JSON) and validates it.
func ParseYAML(b []byte) (Integration, error) {
	if len(b) > MaxSpecBytes {
		return Integration{}, fmt.Errorf("spec is %d bytes, over the %d-byte limit", len(b), MaxSpecBytes)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Integration{}, fmt.Errorf("parse spec: %w", err)
	}
	j, err := json.Marshal(doc)
	if err != nil {
		return Integration{}, fmt.Errorf("parse spec: %w", err)
	}
	return ParseJSON(j)
}

// Validate checks names and shape, reporting every problem with its location.
func (in Integration) Validate() error {
	var errs []error
	if !ValidName(in.Name) {
		errs = append(errs, fmt.Errorf("name: %q is not a valid name (lowercase letters, digits, hyphens; at most 63)", in.Name))
	}
	if in.Consumer.Connector == "" {
		errs = append(errs, errors.New("consumer.connector: required"))
	}
	for i, s := range in.Steps {
		if s.Connector == "" {
			errs = append(errs, fmt.Errorf("steps[%d].connector: required", i))
		}
	}
	if len(in.Producers) == 0 {
		errs = append(errs, errors.New("producers: at least one producer is required"))
	}
	for _, name := range in.ProducerNames() {
		if !ValidName(name) {
			errs = append(errs, fmt.Errorf("producers.%s: not a valid producer name (lowercase letters, digits, hyphens)", name))
		}
		if in.Producers[name].Connector == "" {
			errs = append(errs, fmt.Errorf("producers.%s.connector: required", name))
		}
	}
	if in.Runners < 0 || in.Runners > MaxRunners {
		errs = append(errs, fmt.Errorf("runners: %d is out of range (0 to %d)", in.Runners, MaxRunners))
	}
	if in.Schedule != "" {
		if err := CheckSchedule(in.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("schedule: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ProducerNames returns the producer names in sorted order.
func (in Integration) ProducerNames() []string {
	names := make([]string, 0, len(in.Producers))
	for name := range in.Producers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// String is a short description for logs.
func (in Integration) String() string {
	return fmt.Sprintf("%s(%s → %d steps → %s)", in.Name, in.Consumer.Connector, len(in.Steps), strings.Join(in.ProducerNames(), ","))
}
