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

// deliverer feeds one producer: from its `out.<producer>` subject (the
// deliver stage: decode → sink), and, when the producer is the pipeline's
// only one, straight from the process stage (ADR 0009). Its sink is the
// producer write; the messages' settlers act on the outcomes.
type deliverer struct {
	p        dataplane.Pipeline
	stage    string
	producer sdk.Producer
	claims   *dataplane.ClaimCheck
	metrics  *pipelineMetrics
	log      *slog.Logger
	settler  *settler
	// writing holds the producer while one goroutine writes to it: the
	// SDK promises producers one writer at a time, and both the deliver
	// stage and the process stage's workers write to the only producer.
	writing sync.Mutex
}

// maxBatchBytes bounds the bodies one producer write holds in memory; a
// batch of claim-checked bodies is split into writes of at most this size
// (a single larger body still goes alone). A variable so tests can shrink it.
var maxBatchBytes int64 = 32 << 20

// fetchers is how many claim-checked bodies are fetched at once.
const fetchers = 4

// handle delivers one batch from the stream.
func (dl *deliverer) handle(batch []jetstream.Msg) {
	ctx := context.Background()
	ds, release := deliveries(len(batch))
	defer release()
	b := dl.batch()
	for i, m := range batch {
		d := &ds[i]
		d.msg, d.settler = m, dl.settler
		if o := dl.decode(ctx, d); o.decided() {
			dl.metrics.in.Inc()
			finish(ctx, d, o)
			continue
		}
		b.put(ctx, d)
	}
	b.flush(ctx)
}

// decode is the deliver stage's first part.
func (dl *deliverer) decode(ctx context.Context, d *delivery) outcome {
	return recovering(func(context.Context, *delivery) outcome {
		env, err := dataplane.DecodeEnvelope(dl.p, d.msg.Headers(), d.msg.Data())
		d.env = env
		if err != nil {
			return failed(sdk.PermanentError(err))
		}
		return outcome{}
	})(ctx, d)
}

// producerBatch gathers decoded messages for the producer and writes them
// in writes of at most maxBatchBytes of bodies; a claim-checked body goes
// alone, streamed, to a producer that can stream it.
type producerBatch struct {
	dl    *deliverer
	ds    []*delivery
	bytes int64
}

// batch starts gathering a write.
func (dl *deliverer) batch() *producerBatch { return &producerBatch{dl: dl} }

// put adds d to the write, writing first what the batch holds when d
// would take it over maxBatchBytes.
func (b *producerBatch) put(ctx context.Context, d *delivery) {
	dl := b.dl
	dl.metrics.in.Inc()
	env := d.env
	if sp, ok := dl.producer.(sdk.StreamProducer); ok && needsBody(env) && sp.CanStream(env.Msg) {
		b.flush(ctx) // what came before is written first
		dl.stream(ctx, sp, d)
		return
	}
	size := env.Size
	if env.BodyRef == "" {
		size = int64(len(env.Msg.Body))
	}
	if len(b.ds) > 0 && b.bytes+size > maxBatchBytes {
		b.flush(ctx)
	}
	b.ds = append(b.ds, d)
	b.bytes += size
}

// flush writes what the batch holds.
func (b *producerBatch) flush(ctx context.Context) {
	if len(b.ds) > 0 {
		b.dl.write(ctx, b.ds)
	}
	b.ds, b.bytes = b.ds[:0], 0
}

// write resolves claim-checked bodies and writes one part of a batch; each
// message is done once the producer confirmed its write.
func (dl *deliverer) write(ctx context.Context, batch []*delivery) {
	began := time.Now()
	resolved := dl.resolveBodies(ctx, batch)
	ds := make([]*delivery, 0, len(batch))
	for i, d := range batch {
		if err := resolved[i]; err != nil {
			finish(ctx, d, failed(bodyFailure(err)))
			continue
		}
		dl.metrics.bytes.Add(float64(len(d.env.Msg.Body)))
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return
	}
	out := make([]sdk.Message, len(ds))
	for i, d := range ds {
		out[i] = d.env.Msg
	}
	dl.lock(ds)
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	err := recovered(func() error { return dl.producer.Write(wctx, out) })
	cancel()
	dl.writing.Unlock()
	dl.written(ctx, ds, err, began)
}

// bodyFailure is the failure of a message whose claim-checked body could
// not be had: a body that is gone is permanent (to the DLQ with the
// reason), blob store trouble is VRSky's (the message comes back later
// without counting an attempt).
func bodyFailure(err error) error {
	if sdk.IsPermanent(err) {
		return err
	}
	return infraFailure(err)
}

// stream writes one claim-checked message with its body read straight from
// the blob store. A blob store that fails while the body is read does not
// count as an attempt: the message comes back later.
func (dl *deliverer) stream(ctx context.Context, sp sdk.StreamProducer, d *delivery) {
	began := time.Now()
	env := d.env
	r, err := dl.claims.Open(ctx, env)
	if err != nil {
		finish(ctx, d, failed(bodyFailure(err)))
		return
	}
	defer r.Close()
	body := &readErrors{r: r}
	dl.lock([]*delivery{d})
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	err = recovered(func() error { return sp.WriteStream(wctx, env.Msg, body, env.Size) })
	cancel()
	dl.writing.Unlock()
	if err != nil && body.err != nil {
		dl.log.Warn("claim-checked body could not be read while streamed", "stage", dl.stage, "message_id", env.Msg.ID, "error", body.err)
		finish(ctx, d, failed(infraFailure(body.err)))
		return
	}
	dl.metrics.bytes.Add(float64(env.Size))
	dl.metrics.claimBytes.Add(float64(body.n))
	dl.written(ctx, []*delivery{d}, err, began)
}

// lockWaitNoticed is how long a write may wait for the producer before the
// messages it holds get their ack timers restarted.
const lockWaitNoticed = time.Second

// lock takes the producer for a write of ds. Another worker may hold it
// for up to writeTimeout, and ds' ack timers run meanwhile: after a long
// wait they are restarted (settler.extend), so that the write has its
// whole writeTimeout before JetStream would deliver them again.
func (dl *deliverer) lock(ds []*delivery) {
	began := time.Now()
	dl.writing.Lock()
	if time.Since(began) >= lockWaitNoticed {
		dl.settler.extend(ds)
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

// written gives each message of a write its outcome: done when the
// producer confirmed it, failed with the producer's error otherwise. err is
// the producer's answer for ds; a *sdk.BatchError names the messages that
// failed.
func (dl *deliverer) written(ctx context.Context, ds []*delivery, err error, began time.Time) {
	var batchErr *sdk.BatchError
	switch {
	case err == nil:
	case errors.As(err, &batchErr):
	default:
		dl.log.Warn("producer write failed", "stage", dl.stage, "messages", len(ds), "error", err)
	}
	now := time.Now()
	for i, d := range ds {
		failure := err
		if batchErr != nil {
			failure = batchErr.Failed[i]
		}
		if failure != nil {
			finish(ctx, d, failed(failure))
			continue
		}
		finish(ctx, d, done())
		dl.metrics.out.Inc()
		if !d.env.Msg.Received.IsZero() {
			dl.metrics.delivered(now.Sub(d.env.Msg.Received))
		}
	}
	dl.metrics.latency.Observe(time.Since(began).Seconds() / float64(len(ds)))
}

// needsBody reports whether env's body is in the blob store and not here.
func needsBody(env dataplane.Envelope) bool { return env.BodyRef != "" && env.Msg.Body == nil }

// resolveBodies fetches the claim-checked bodies of ds, a few at a time,
// and returns each message's fetch error (nil when it has its body).
func (dl *deliverer) resolveBodies(ctx context.Context, ds []*delivery) []error {
	errs := make([]error, len(ds))
	if !slices.ContainsFunc(ds, func(d *delivery) bool { return needsBody(d.env) }) {
		return errs
	}
	sem := make(chan struct{}, fetchers)
	var wg sync.WaitGroup
	for i, d := range ds {
		if !needsBody(d.env) {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if errs[i] = dl.claims.Resolve(ctx, &d.env); errs[i] == nil {
				dl.metrics.claimBytes.Add(float64(len(d.env.Msg.Body)))
			}
		})
	}
	wg.Wait()
	return errs
}
