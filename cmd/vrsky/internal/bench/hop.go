package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dialHop connects the publisher and the consumer of the hop called name
// to url, each on a connection of its own (vrsky-bench-<name>-publisher,
// -consumer); opts authenticate them.
func dialHop(url string, opts []nats.Option, name string) (pub, sub *nats.Conn, err error) {
	if pub, err = nats.Connect(url, slices.Concat(opts, []nats.Option{nats.Name("vrsky-bench-" + name + "-publisher")})...); err != nil {
		return nil, nil, fmt.Errorf("connect to nats: %w", err)
	}
	if sub, err = nats.Connect(url, slices.Concat(opts, []nats.Option{nats.Name("vrsky-bench-" + name + "-consumer")})...); err != nil {
		pub.Close()
		return nil, nil, fmt.Errorf("connect to nats: %w", err)
	}
	return pub, sub, nil
}

// createHop creates the raw JetStream hop of the baseline and the floor: a
// stream named after name (BENCH_<NAME>_<rand>) on one subject, configured
// like a pipeline's (file storage, work queue, replicas copies), and an
// explicit-ack durable consumer opened through sub. remove deletes the
// stream, even once ctx has ended.
func createHop(ctx context.Context, pub, sub jetstream.JetStream, name string, replicas int) (subject string, consumer jetstream.Consumer, remove func() error, err error) {
	id := randomID()
	stream, subject := "BENCH_"+strings.ToUpper(name)+"_"+id, "bench."+name+"."+id
	s, err := pub.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{subject},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
		Replicas: max(replicas, 1),
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("create stream %s: %w", stream, err)
	}
	remove = func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := pub.DeleteStream(dctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", stream, err)
		}
		return nil
	}
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: baselineMaxAckPending,
	}); err != nil {
		return "", nil, nil, errors.Join(fmt.Errorf("create consumer: %w", err), remove())
	}
	if consumer, err = sub.Consumer(ctx, stream, name); err != nil {
		return "", nil, nil, errors.Join(fmt.Errorf("open consumer: %w", err), remove())
	}
	return subject, consumer, remove, nil
}
