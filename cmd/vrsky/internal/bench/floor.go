package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Floor settings.
const (
	// floorBatch bounds how many messages the floor's writer takes at once,
	// as the file sink's deliverer bounds its batches.
	floorBatch = 256
	floorFile  = "floor.ndjson"
)

// FloorResult is what the least a durable platform does per message took
// at the step's rate: latencies in milliseconds, as in Report.
type FloorResult struct {
	Rate      float64 `json:"sustained_rate"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	AckP99    float64 `json:"ack_p99_ms"`
	Delivered int64   `json:"delivered"`
	Lost      int64   `json:"lost"`
	Errors    int64   `json:"errors"`
	// CPUPerMessage is the CPU of the stack (whose NATS server stored the
	// messages) and of this process (publishers, consumer, file, sink
	// reader) over the measured window and drain, in microseconds per
	// message sent.
	CPUPerMessage float64 `json:"cpu_us_per_msg"`
}

// FloorConfig is one floor run: the NATS server at URL (Options
// authenticate) run by process StackPID, streams kept Replicas times, a
// sink file in a new directory under Dir, and the load of the step it is
// compared with.
type FloorConfig struct {
	URL      string
	StackPID int
	Options  []nats.Option
	Replicas int
	Dir      string
	Sched    Schedule
	Size     int
	Workers  int
	// NoFsync leaves the sink file to the page cache, as --sink-no-fsync
	// does the file producer.
	NoFsync bool
}

// Floor sends the same open-loop load as a pipeline step through the least
// a webhook platform with VRSky's guarantees does per message, and nothing
// else: each message is one HTTP request to a bare handler in this process
// that publishes the body to JetStream, waits for the acknowledgement and
// answers 202 (the ingress), on a file-storage work-queue stream; one pull
// consumer writes what it received as lines to a file, fsyncs it once per
// batch, and only then acknowledges the messages (the file sink's
// delivery). No authentication, no stages, no ID memory. Latencies are
// measured as a step's are, from the intended send time to the 202 and to
// the line in the file, so a step's p99 divided by the floor's says how
// much the platform adds on this machine. The stream and the directory are deleted
// afterwards.
func Floor(ctx context.Context, cfg FloorConfig) (res FloorResult, err error) {
	pubConn, subConn, err := dialHop(cfg.URL, cfg.Options, "floor")
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	defer pubConn.Close()
	defer subConn.Close()
	pubJS, err := jetstream.New(pubConn)
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	subJS, err := jetstream.New(subConn)
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}

	subject, consumer, removeHop, err := createHop(ctx, pubJS, subJS, "floor", cfg.Replicas)
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	defer func() {
		if rerr := removeHop(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("floor: %w", rerr))
		}
	}()

	dir := filepath.Join(cfg.Dir, "bench-floor-"+randomID())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	file, err := os.OpenFile(filepath.Join(dir, floorFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	defer file.Close()

	sink := NewCollector(cfg.Sched, nil)
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopBG(); wg.Wait() }()
	received := make(chan jetstream.Msg, floorBatch)
	var writeErr error
	wg.Go(func() { writeErr = writeFloor(bg, file, received, !cfg.NoFsync) })
	cc, err := consumer.Consume(func(m jetstream.Msg) {
		select {
		case received <- m:
		case <-bg.Done():
		}
	})
	if err != nil {
		return res, fmt.Errorf("floor: consume: %w", err)
	}
	defer cc.Stop()
	var tailErr error
	tail := NewTail(dir, sink)
	wg.Go(func() { tailErr = tail.Run(bg) })

	url, stopIngress, err := serveFloorIngress(pubJS, subject)
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	defer stopIngress()
	load := &Load{URL: url, Size: cfg.Size, Workers: cfg.Workers}
	sample := func() (procSample, error) { return sampleProcesses(cfg.StackPID, 0) }
	before, after, _, err := measureWindow(ctx, cfg.Sched, sink, sample, func() error { return load.Run(ctx, cfg.Sched, sink) })
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	stopBG()
	wg.Wait()
	if err := errors.Join(writeErr, tailErr); err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	var rep Report
	fillCounts(&rep, sink)
	fillProcesses(&rep, before, after)
	return FloorResult{
		Rate: rep.SustainedRate, P50: rep.P50, P99: rep.P99, P999: rep.P999, AckP99: rep.AckP99,
		Delivered: rep.Delivered, Lost: rep.Lost, Errors: rep.Errors,
		CPUPerMessage: rep.cpuPerMessage(),
	}, nil
}

// floorMaxBody bounds a body the floor's ingress reads (the claimcheck
// scenario's are 1 MiB).
const floorMaxBody = 64 << 20

// serveFloorIngress serves floorIngress on a free loopback port; it
// returns the URL to POST to and what stops the server.
func serveFloorIngress(js jetstream.JetStream, subject string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("ingress: %w", err)
	}
	srv := &http.Server{Handler: floorIngress(js, subject), ReadHeaderTimeout: requestTimeout}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/", func() { _ = srv.Close() }, nil
}

// floorIngress is the floor's webhook: it reads the body, publishes it to
// subject, waits for JetStream's acknowledgement and answers 202; 413 for
// a body over floorMaxBody, 400 for one that cannot be read, 503 when the
// publish fails.
func floorIngress(js jetstream.JetStream, subject string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, floorMaxBody))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := js.Publish(r.Context(), subject, body); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// writeFloor is the floor's sink: it takes what has been received (at
// least one message, at most floorBatch), appends each body as a line,
// fsyncs the file when sync is set, then acknowledges the messages. It
// returns when ctx ends, or with the first write error.
func writeFloor(ctx context.Context, file *os.File, received <-chan jetstream.Msg, sync bool) error {
	batch := make([]jetstream.Msg, 0, floorBatch)
	var buf []byte
	for {
		select {
		case m := <-received:
			batch = append(batch[:0], m)
		case <-ctx.Done():
			return nil
		}
	more:
		for len(batch) < floorBatch {
			select {
			case m := <-received:
				batch = append(batch, m)
			default:
				break more
			}
		}
		buf = buf[:0]
		for _, m := range batch {
			buf = append(append(buf, m.Data()...), '\n')
		}
		if _, err := file.Write(buf); err != nil {
			return fmt.Errorf("write sink file: %w", err)
		}
		if sync {
			if err := file.Sync(); err != nil {
				return fmt.Errorf("fsync sink file: %w", err)
			}
		}
		for _, m := range batch {
			_ = m.Ack() // an unacknowledged message is redelivered, and counted a duplicate
		}
	}
}
