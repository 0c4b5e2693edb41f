package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
)

// Registry reading bounds: what the bench accepts from the bucket.
const (
	maxRegistryRunners    = 1000
	maxRegistryValueBytes = 64 << 10
	maxRegistryProblems   = 20
	// maxQuotedBytes bounds how much of a name or value a problem quotes.
	maxQuotedBytes  = 80
	registryTimeout = 10 * time.Second
)

// RegisteredRunner is one runner's entry in the registry.
type RegisteredRunner struct {
	Name      string `json:"name"`
	Pipelines int    `json:"pipelines"`
	UpdatedAt string `json:"updated_at"`
}

// RunnerRegistry is what the runner registry said at the end of the idle
// window with every integration deployed.
type RunnerRegistry struct {
	// Available is false when the bucket does not exist (runners that do
	// not register themselves) or could not be read (Problems says why).
	Available bool `json:"available"`
	// Runners are the valid entries, by name.
	Runners []RegisteredRunner `json:"runners,omitempty"`
	// Pipelines is the sum of the entries' pipelines.
	Pipelines int `json:"pipelines"`
	// Problems are entries left out, each with why.
	Problems []string `json:"problems,omitempty"`
}

// readRunnerRegistry reads every entry of the runner registry. A bucket
// that does not exist is reported unavailable, not as an error; entries
// that are too large, not JSON, without a pipeline count or with a
// negative one, or naming another runner than their key are left out and
// said in Problems.
func readRunnerRegistry(ctx context.Context, js jetstream.JetStream) RunnerRegistry {
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	var reg RunnerRegistry
	kv, err := js.KeyValue(ctx, dataplane.RunnersBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return reg
	}
	if err != nil {
		reg.problem("open bucket %s: %v", dataplane.RunnersBucket, err)
		return reg
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		reg.problem("list bucket %s: %v", dataplane.RunnersBucket, err)
		return reg
	}
	defer func() { _ = keys.Stop() }()
	reg.Available = true
	n := 0
	for key := range keys.Keys() {
		if n++; n > maxRegistryRunners {
			reg.problem("more than %d runners registered: the rest are left out", maxRegistryRunners)
			break
		}
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deregistered meanwhile
		}
		if err != nil {
			reg.problem("runner %s: %v", quote(key), err)
			continue
		}
		r, err := parseRegisteredRunner(key, entry.Value())
		if err != nil {
			reg.problem("runner %s: %v", quote(key), err)
			continue
		}
		reg.Runners = append(reg.Runners, r)
		reg.Pipelines += r.Pipelines
	}
	slices.SortFunc(reg.Runners, func(a, b RegisteredRunner) int { return strings.Compare(a.Name, b.Name) })
	return reg
}

// parseRegisteredRunner checks one registry entry stored under key.
func parseRegisteredRunner(key string, value []byte) (RegisteredRunner, error) {
	if len(value) > maxRegistryValueBytes {
		return RegisteredRunner{}, fmt.Errorf("entry of %d bytes: more than %d", len(value), maxRegistryValueBytes)
	}
	var raw struct {
		Name      string `json:"name"`
		Pipelines *int64 `json:"pipelines"`
		UpdatedAt string `json:"updated_at"`
	}
	if err := json.Unmarshal(value, &raw); err != nil {
		return RegisteredRunner{}, fmt.Errorf("entry %s is not the registry's JSON: %v", quote(string(value)), err)
	}
	switch {
	case registryKey(raw.Name) != key:
		return RegisteredRunner{}, fmt.Errorf("entry names runner %s", quote(raw.Name))
	case raw.Pipelines == nil:
		return RegisteredRunner{}, errors.New("entry has no pipeline count")
	case *raw.Pipelines < 0 || *raw.Pipelines > maxScaleIntegrations*10:
		return RegisteredRunner{}, fmt.Errorf("pipeline count %d out of range", *raw.Pipelines)
	}
	if raw.UpdatedAt != "" {
		if _, err := time.Parse(time.RFC3339, raw.UpdatedAt); err != nil {
			return RegisteredRunner{}, fmt.Errorf("updated_at %s is not RFC 3339", quote(raw.UpdatedAt))
		}
	}
	return RegisteredRunner{Name: raw.Name, Pipelines: int(*raw.Pipelines), UpdatedAt: raw.UpdatedAt}, nil
}

// registryKey is the key a runner named name registers under: its name
// with every character a KV key may not hold (and a dot at either end)
// replaced by '_'.
func registryKey(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c == '-' || c == '_' || c == '=' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !ok || (c == '.' && (i == 0 || i == len(b)-1)) {
			b[i] = '_'
		}
	}
	return string(b)
}

// problem records why something was left out, up to maxRegistryProblems.
func (r *RunnerRegistry) problem(format string, args ...any) {
	if len(r.Problems) < maxRegistryProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// quote quotes s for a report, cut to maxQuotedBytes.
func quote(s string) string {
	if len(s) > maxQuotedBytes {
		return fmt.Sprintf("%q…", s[:maxQuotedBytes])
	}
	return fmt.Sprintf("%q", s)
}
