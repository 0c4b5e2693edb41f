package hotpath

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// A stage is composed of parts, each taking a message a step further:
//
//	decode → steps → sink
//
// decode reads the stored message, steps run the converters and filters
// (the process stage only), and the sink makes the outputs durable:
// publishes them to the next stage's subject, or writes them to the
// producer. Any part may end a message with an outcome
// (stage_outcome.go); the settler of the stage that owns the message then
// acts on it (settle.go), at once. A message that reaches the end of the
// sink without failing is done. Cross-cutting behaviour wraps the parts
// as middleware: received counts what the process stage takes in,
// recovering turns a panic into a failed outcome (recovered does the same
// for a sink's write or publish). The deliver stage counts what it takes
// in at its sink, where the process stage's direct deliveries enter too,
// and the body bytes once a claim-checked body is fetched.
//
// With a single producer (ADR 0009), the process stage's sink is the
// producer's own: a message that needs no second hop is handed over to
// the deliverer's settler, and the producer's write settles it.

// delivery is one JetStream message on its way through a stage.
type delivery struct {
	msg jetstream.Msg
	// env is the message decoded; after a hand-over to the only producer,
	// what the producer gets.
	env dataplane.Envelope
	// settler is the stage whose rules settle the message.
	settler *settler
	outcome outcome
	// out and routes are what the steps made of the message and the
	// producers it goes to (nil: all of them); futures are its outputs'
	// publish acknowledgements.
	out     sdk.Message
	routes  []string
	futures []jetstream.PubAckFuture
}

// deliveryBuffers recycles the per-batch records of the stages: a batch
// of maxBatch messages would otherwise allocate (and the GC scan) a few
// hundred bytes per message.
var deliveryBuffers = sync.Pool{New: func() any { b := make([]delivery, 0, maxBatch); return &b }}

// deliveries returns n zeroed records and the function that gives them
// back once the batch is settled (nothing may refer to them after that).
func deliveries(n int) ([]delivery, func()) {
	b := deliveryBuffers.Get().(*[]delivery)
	if cap(*b) < n {
		*b = make([]delivery, 0, n)
	}
	ds := (*b)[:n]
	return ds, func() {
		clear(ds)
		*b = ds[:0]
		deliveryBuffers.Put(b)
	}
}

// id is the message's ID, or a name derived from its JetStream message ID
// when it could not be decoded.
func (d *delivery) id() string {
	if d.env.Msg.ID != "" {
		return d.env.Msg.ID
	}
	return "undecodable-" + d.msg.Headers().Get(nats.MsgIdHdr)
}

// finish gives d outcome o and settles it. Nothing reads d's bodies
// afterwards: they are dropped at once, so that a batch of large bodies
// written in parts (maxBatchBytes) is not held until the batch ends.
func finish(ctx context.Context, d *delivery, o outcome) bool {
	d.outcome = o
	finished := d.settler.settle(ctx, d)
	d.env.Msg.Body, d.out.Body, d.futures = nil, nil, nil
	return finished
}

// A part takes one message a step further: it returns the message's
// outcome, or the zero outcome to let it go on.
type part func(ctx context.Context, d *delivery) outcome

// recovering wraps a part: a panic in it becomes a failed outcome whose
// reason holds the panic and its stack. The failure counts as an attempt
// like any error that is not marked permanent: after the last one the
// message goes to the DLQ with the reason.
func recovering(p part) part {
	return func(ctx context.Context, d *delivery) (o outcome) {
		defer func() {
			if v := recover(); v != nil {
				o = failed(panicked(v))
			}
		}()
		return p(ctx, d)
	}
}

// received wraps a stage's first part: it counts each message the stage
// receives, and its stored bytes, before anything can fail it.
func received(m *pipelineMetrics, p part) part {
	return func(ctx context.Context, d *delivery) outcome {
		m.in.Inc()
		m.bytes.Add(float64(len(d.msg.Data())))
		return p(ctx, d)
	}
}

// recovered runs f, which makes a batch's outputs durable, and returns its
// error, or the panic it raised as an error.
func recovered(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicked(v)
		}
	}()
	return f()
}

// panicError is a recovered panic.
type panicError struct {
	value any
	stack []byte
}

// maxPanicStack bounds the stack a panic's reason keeps.
const maxPanicStack = 2048

// panicked is the panic v as an error, with the stack from where it was
// raised (what a dead letter's reason keeps).
func panicked(v any) error {
	stack := debug.Stack()
	// Skip the frames of the recovery itself, up to and including panic().
	if i := bytes.Index(stack, []byte("\npanic(")); i >= 0 {
		rest := stack[i+1:]
		for range 2 { // the panic( line and its file:line
			if j := bytes.IndexByte(rest, '\n'); j >= 0 {
				rest = rest[j+1:]
			}
		}
		stack = rest
	}
	if len(stack) > maxPanicStack {
		stack = stack[:maxPanicStack]
	}
	return &panicError{value: v, stack: stack}
}

// isPanic reports whether err is a recovered panic.
func isPanic(err error) bool {
	var e *panicError
	return errors.As(err, &e)
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.value, e.stack) }
