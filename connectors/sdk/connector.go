package sdk

import (
	"context"
	"encoding/json"
	"log/slog"
)

// Converter turns one message into another (JSON mapping, XML↔JSON,
// CSV→JSON).
//
// Convert must not block on I/O beyond what the conversion needs, must honour
// ctx, and may be called concurrently from several goroutines. It returns a
// permanent error for input it can never convert (malformed JSON: the message
// goes to the DLQ with the reason) and a retryable one otherwise.
type Converter interface {
	Convert(ctx context.Context, msg Message) (Message, error)
}

// Decision is a Filter's verdict on one message.
type Decision struct {
	// Drop filters the message out: it is acknowledged and goes nowhere.
	Drop bool
	// Routes names the producers the message goes to. nil leaves the
	// routing unchanged (all producers unless an earlier step chose).
	Routes []string
}

// Filter drops, keeps or routes messages (conditional routing, filtering).
//
// Filter may be called concurrently and must honour ctx. Errors follow the
// same rules as Converter.
type Filter interface {
	Filter(ctx context.Context, msg Message) (Decision, error)
}

// Producer writes batches of messages to an outside system.
//
// Write is called by one goroutine at a time per producer instance, with a
// batch of one or more messages; it returns once the outside system has
// confirmed the write (or with an error). A nil error means every message
// was written. To fail only some messages return a *BatchError; any other
// error fails the whole batch. Retryable errors are redelivered by the hot
// path with backoff; permanent errors send the messages to the DLQ. Write
// must honour ctx and must not retry in a loop itself. Writes must be
// idempotent on Message.ID where the target allows it, because a
// redelivered batch may repeat messages that were already written.
type Producer interface {
	Write(ctx context.Context, batch []Message) error
	// Close releases the producer's resources; it is idempotent.
	Close(ctx context.Context) error
}

// Sink receives the messages a Consumer takes in. Publish returns once the
// messages are durable in the platform; only then may the consumer
// acknowledge its source (return 2xx, confirm a WAL position, move a file).
type Sink interface {
	Publish(ctx context.Context, msgs []Message) error
}

// Consumer takes data in from an outside system.
//
// Run blocks until ctx ends or the consumer fails; it hands messages to sink
// and acknowledges its source only after sink.Publish returned nil. A
// consumer that cannot proceed returns a retryable error; the runner restarts
// it with backoff.
type Consumer interface {
	Run(ctx context.Context, sink Sink) error
}

// Kind says which interface a connector implements, and so where a spec
// names it. A consumer is either pulled (Consumer, maybe Poller) or pushed to
// (Ingress; see Connector.Ingress).
type Kind string

// The connector kinds.
const (
	KindConsumer  Kind = "consumer"
	KindConverter Kind = "converter"
	KindFilter    Kind = "filter"
	KindProducer  Kind = "producer"
)

// Env is what a connector may use when it is built: where it runs, and
// platform services it is allowed to reach.
type Env struct {
	Tenant      string
	Integration string
	// Name is the step's or producer's name within the integration.
	Name string
	// FileRoot is the tenant's directory for file connectors ("" when the
	// role has none).
	FileRoot string
	Logger   *slog.Logger
	// Secrets resolves tenant secrets ({"secret": NAME}); nil where the
	// role has none.
	Secrets SecretResolver
	// LookupEnv reads an environment variable for {"env": NAME}; the
	// platform lets through only the names its operator allows tenants.
	// nil refuses every name.
	LookupEnv func(name string) (string, bool)
	// Egress is the platform's egress policy for the tenant.
	Egress EgressPolicy
}

// Connector describes a connector to the registry.
type Connector struct {
	Name    string
	Kind    Kind
	Summary string
	// Example is a config that passes the connector's checks, shown next
	// to its schema in the docs, the API (GET /v1/connectors) and the UI;
	// nil when the empty config is the example.
	Example json.RawMessage
	// NewConfig returns a pointer to a zero config struct; it feeds the
	// JSON Schema and the docs.
	NewConfig func() any
	// Build checks raw (JSON) config and returns the connector instance: a
	// Converter, Filter, Producer or Consumer according to Kind, or an
	// Ingress for a consumer with Ingress set.
	Build func(ctx context.Context, env Env, raw json.RawMessage) (any, error)
	// Polls says that the consumers Build returns also implement Poller,
	// so that an integration may run this consumer on a schedule.
	Polls bool
	// Ingress says that this consumer is pushed to: Build returns an
	// Ingress, which the platform's HTTP ingress serves (POST
	// /v1/hooks/{tenant}/{integration}); no runner runs or polls it. It
	// stays a consumer (Kind KindConsumer) where a spec names it.
	Ingress bool
}
