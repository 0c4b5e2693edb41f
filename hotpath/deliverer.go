package hotpath

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// writeTimeout bounds one producer write; it stays below the consumer's ack
// wait so a slow write is not redelivered while it is still running.
const writeTimeout = 25 * time.Second

// deliverer feeds one producer: from its `out.<producer>` subject, and, when
// the producer is the pipeline's only one, straight from the process stage
// (ADR 0009).
type deliverer struct {
	p        dataplane.Pipeline
	stage    string
	producer sdk.Producer
	claims   *dataplane.ClaimCheck
	failures *failures
	metrics  *pipelineMetrics
	log      *slog.Logger
	// writing holds the producer while one goroutine writes to it: the
	// SDK promises producers one writer at a time.
	writing sync.Mutex
}

// maxBatchBytes bounds the bodies one producer write holds in memory; a
// batch of claim-checked bodies is split into writes of at most this size
// (a single larger body still goes alone). A variable so tests can shrink it.
var maxBatchBytes int64 = 32 << 20

// fetchers is how many claim-checked bodies are fetched at once.
const fetchers = 4

// handle delivers one batch from the stream.
func (d *deliverer) handle(batch []jetstream.Msg) {
	ctx := context.Background()
	msgs := make([]jetstream.Msg, 0, len(batch))
	envs := make([]dataplane.Envelope, 0, len(batch))
	for _, m := range batch {
		env, err := dataplane.DecodeEnvelope(d.p, m.Headers(), m.Data())
		if err != nil {
			d.metrics.in.Inc()
			d.failures.fail(ctx, d.p, d.stage, m, env, sdk.PermanentError(err))
			continue
		}
		msgs, envs = append(msgs, m), append(envs, env)
	}
	d.deliver(ctx, msgs, envs)
}

// deliver writes decoded messages to the producer, in writes of at most
// maxBatchBytes of bodies, and returns how many it finished (acknowledged
// or dead-lettered). msgs[i] is the JetStream message to settle for envs[i].
func (d *deliverer) deliver(ctx context.Context, msgs []jetstream.Msg, envs []dataplane.Envelope) (finished int) {
	var (
		from  int
		bytes int64
	)
	for i, env := range envs {
		d.metrics.in.Inc()
		if sp, ok := d.producer.(sdk.StreamProducer); ok && needsBody(env) && sp.CanStream(env.Msg) {
			if from < i { // what came before is written first
				finished += d.write(ctx, msgs[from:i], envs[from:i])
			}
			finished += d.stream(ctx, sp, msgs[i], env)
			from, bytes = i+1, 0
			continue
		}
		size := env.Size
		if env.BodyRef == "" {
			size = int64(len(env.Msg.Body))
		}
		if from < i && bytes+size > maxBatchBytes {
			finished += d.write(ctx, msgs[from:i], envs[from:i])
			from, bytes = i, 0
		}
		bytes += size
	}
	if from < len(envs) {
		finished += d.write(ctx, msgs[from:], envs[from:])
	}
	return finished
}

// write resolves claim-checked bodies and writes one part of a batch; it
// returns how many messages it finished.
// INVARIANT: a message is acked only after the producer confirmed its write;
// this is the only place the deliver stage acks.
func (d *deliverer) write(ctx context.Context, batch []jetstream.Msg, decoded []dataplane.Envelope) int {
	began := time.Now()
	resolved := d.resolveBodies(ctx, decoded)
	msgs := make([]jetstream.Msg, 0, len(batch))
	envs := make([]dataplane.Envelope, 0, len(batch))
	finished := 0
	for i, m := range batch {
		if err := resolved[i]; err != nil {
			if d.bodyFailed(ctx, m, decoded[i], err) {
				finished++
			}
			continue
		}
		d.metrics.bytes.Add(float64(len(decoded[i].Msg.Body)))
		msgs = append(msgs, m)
		envs = append(envs, decoded[i])
	}
	if len(msgs) == 0 {
		return finished
	}
	out := make([]sdk.Message, len(envs))
	for i := range envs {
		out[i] = envs[i].Msg
	}
	d.lock(msgs)
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	err := d.producer.Write(wctx, out)
	cancel()
	d.writing.Unlock()
	return finished + d.settle(ctx, msgs, envs, err, began)
}

// bodyFailed handles a message whose claim-checked body could not be had:
// a body that is gone fails it permanently (to the DLQ with the reason),
// blob store trouble brings it back later without counting an attempt. It
// reports whether the message is finished.
func (d *deliverer) bodyFailed(ctx context.Context, m jetstream.Msg, env dataplane.Envelope, err error) bool {
	if sdk.IsPermanent(err) {
		return d.failures.fail(ctx, d.p, d.stage, m, env, err)
	}
	return d.failures.infraFailed(ctx, d.p, d.stage, m, env, err)
}

// stream writes one claim-checked message with its body read straight from
// the blob store. A blob store that fails while the body is read does not
// count as an attempt: the message comes back later.
func (d *deliverer) stream(ctx context.Context, sp sdk.StreamProducer, m jetstream.Msg, env dataplane.Envelope) int {
	began := time.Now()
	r, err := d.claims.Open(ctx, env)
	if err != nil {
		if d.bodyFailed(ctx, m, env, err) {
			return 1
		}
		return 0
	}
	defer r.Close()
	body := &readErrors{r: r}
	d.lock([]jetstream.Msg{m})
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	err = sp.WriteStream(wctx, env.Msg, body, env.Size)
	cancel()
	d.writing.Unlock()
	if err != nil && body.err != nil {
		d.log.Warn("claim-checked body could not be read while streamed", "stage", d.stage, "message_id", env.Msg.ID, "error", body.err)
		if d.failures.infraFailed(ctx, d.p, d.stage, m, env, body.err) {
			return 1
		}
		return 0
	}
	d.metrics.bytes.Add(float64(env.Size))
	d.metrics.claimBytes.Add(float64(body.n))
	return d.settle(ctx, []jetstream.Msg{m}, []dataplane.Envelope{env}, err, began)
}

// lockWaitNoticed is how long a write may wait for the producer before the
// messages it holds get their ack timers restarted.
const lockWaitNoticed = time.Second

// lock takes the producer for a write of msgs. Another worker may hold it
// for up to writeTimeout, and msgs' ack timers run meanwhile: after a long
// wait they are restarted (InProgress), so that the write has its whole
// writeTimeout before JetStream would deliver msgs again.
func (d *deliverer) lock(msgs []jetstream.Msg) {
	began := time.Now()
	d.writing.Lock()
	if time.Since(began) < lockWaitNoticed {
		return
	}
	for _, m := range msgs {
		_ = m.InProgress()
	}
}

// readErrors passes reads through and keeps the first error that is not
// io.EOF, and the bytes read.
type readErrors struct {
	r   io.Reader
	n   int64
	err error
}

func (e *readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}

// settle acks the messages a write confirmed and hands the others to the
// failure handling. err is the producer's answer for msgs. It returns how
// many messages it finished: acknowledged or dead-lettered.
func (d *deliverer) settle(ctx context.Context, msgs []jetstream.Msg, envs []dataplane.Envelope, err error, began time.Time) (finished int) {
	var batchErr *sdk.BatchError
	switch {
	case err == nil:
	case errors.As(err, &batchErr):
	default:
		d.log.Warn("producer write failed", "stage", d.stage, "messages", len(msgs), "error", err)
	}
	now := time.Now()
	for i, m := range msgs {
		failure := err
		if batchErr != nil {
			failure = batchErr.Failed[i]
		}
		if failure != nil {
			if d.failures.fail(ctx, d.p, d.stage, m, envs[i], failure) {
				d.claims.Release(ctx, envs[i].Owned) // the DLQ keeps its own copy
				finished++
			}
			continue
		}
		d.failures.succeeded(ctx, d.p, d.stage, m, envs[i].Msg.ID)
		if owned := envs[i].Owned; owned == "" {
			_ = m.Ack()
		} else if err := m.DoubleAck(ctx); err == nil {
			// Delivered and confirmed gone from the stream (a large body:
			// the round trip is cheap beside it): its body can go too.
			d.claims.Release(ctx, owned)
		}
		finished++
		d.metrics.out.Inc()
		if !envs[i].Msg.Received.IsZero() {
			d.metrics.endToEnd.Observe(now.Sub(envs[i].Msg.Received).Seconds())
		}
	}
	d.metrics.latency.Observe(time.Since(began).Seconds() / float64(len(msgs)))
	return finished
}

// needsBody reports whether env's body is in the blob store and not here.
func needsBody(env dataplane.Envelope) bool { return env.BodyRef != "" && env.Msg.Body == nil }

// resolveBodies fetches the claim-checked bodies of envs, a few at a time,
// and returns each message's fetch error (nil when it has its body).
func (d *deliverer) resolveBodies(ctx context.Context, envs []dataplane.Envelope) []error {
	errs := make([]error, len(envs))
	if !slices.ContainsFunc(envs, needsBody) {
		return errs
	}
	sem := make(chan struct{}, fetchers)
	var wg sync.WaitGroup
	for i := range envs {
		if !needsBody(envs[i]) {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if errs[i] = d.claims.Resolve(ctx, &envs[i]); errs[i] == nil {
				d.metrics.claimBytes.Add(float64(len(envs[i].Msg.Body)))
			}
		})
	}
	wg.Wait()
	return errs
}
