package bench

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1 µs to
// 60 s with 3 significant figures; slower arrivals are recorded as 60 s.
const (
	histMinMicros = 1
	histMaxMicros = 60_000_000
	histSigFigs   = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
}

// recordLatency records d in h, clamped to the histogram's range.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	us = max(us, histMinMicros)
	us = min(us, histMaxMicros)
	_ = h.RecordValue(us) // in range by construction
}

// Schedule is an open-loop schedule: message seq is due at T0 + seq/Rate,
// or, with a Tick, at the first tick (T0 + k·Tick) at or after that, so
// that messages are sent in groups, one group per tick. Seqs [0, Warmup)
// warm the pipeline up and are left out of every result; seqs [Warmup,
// Warmup+Measured) are measured.
type Schedule struct {
	T0       time.Time
	Rate     float64
	Tick     time.Duration
	Warmup   int64
	Measured int64
}

// Total is the number of messages the schedule sends.
func (s Schedule) Total() int64 { return s.Warmup + s.Measured }

// Intended is seq's intended send time.
func (s Schedule) Intended(seq int64) time.Time {
	d := time.Duration(float64(seq) * float64(time.Second) / s.Rate)
	if s.Tick > 0 {
		if rem := d % s.Tick; rem != 0 {
			d += s.Tick - rem
		}
	}
	return s.T0.Add(d)
}

// IsMeasured reports whether seq is in the measured range.
func (s Schedule) IsMeasured(seq int64) bool { return seq >= s.Warmup && seq < s.Total() }

// MeasuredStart is the intended send time of the first measured message.
func (s Schedule) MeasuredStart() time.Time { return s.Intended(s.Warmup) }

// MeasuredEnd is the intended send time of the last measured message.
func (s Schedule) MeasuredEnd() time.Time { return s.Intended(max(s.Total()-1, 0)) }

// Collector gathers what the ingress answered and what arrived at the sink
// for one schedule. Record* methods are safe for concurrent use, except
// SetStatus, which must be called at most once per seq.
type Collector struct {
	sched Schedule
	// dropped reports whether the pipeline is meant to filter seq out.
	dropped func(seq int64) bool

	// statuses[seq] is the ingress's HTTP status for seq (0: not sent or
	// no answer). Each index is written by one load worker only.
	statuses []uint16
	// failed names status 0 in ErrorsByStatus.
	failed string

	ackMu   sync.Mutex
	ackHist *hdrhistogram.Histogram

	mu          sync.Mutex
	arrivals    []uint32 // times each seq arrived at the sink
	hist        *hdrhistogram.Histogram
	lastArrival time.Time // of a measured seq
	unknown     int64     // lines whose seq is not in the schedule
	malformed   int64     // lines without a readable seq
}

// NewCollector returns a collector for sched; dropped (nil: none) says
// which seqs the pipeline is meant to filter out.
func NewCollector(sched Schedule, dropped func(seq int64) bool) *Collector {
	if dropped == nil {
		dropped = func(int64) bool { return false }
	}
	return &Collector{
		sched:    sched,
		dropped:  dropped,
		failed:   "no answer",
		statuses: make([]uint16, sched.Total()),
		ackHist:  newHistogram(),
		arrivals: make([]uint32, sched.Total()),
		hist:     newHistogram(),
	}
}

// SetStatus records the ingress's answer to seq, received at at. status 0
// means the request failed without an answer.
func (c *Collector) SetStatus(seq int64, status int, at time.Time) {
	if seq < 0 || seq >= int64(len(c.statuses)) {
		return
	}
	c.statuses[seq] = uint16(status)
	if status == http.StatusAccepted && c.sched.IsMeasured(seq) {
		c.ackMu.Lock()
		recordLatency(c.ackHist, at.Sub(c.sched.Intended(seq)))
		c.ackMu.Unlock()
	}
}

// RecordLines records the complete lines of one read from the sink, all
// arrived at at.
func (c *Collector) RecordLines(lines [][]byte, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, line := range lines {
		seq, ok := ParseSeq(line)
		if !ok {
			c.malformed++
			continue
		}
		c.arrivedLocked(seq, at)
	}
}

// RecordArrival records that seq arrived at the sink at at.
func (c *Collector) RecordArrival(seq int64, at time.Time) {
	c.mu.Lock()
	c.arrivedLocked(seq, at)
	c.mu.Unlock()
}

func (c *Collector) arrivedLocked(seq int64, at time.Time) {
	if seq < 0 || seq >= int64(len(c.arrivals)) {
		c.unknown++
		return
	}
	c.arrivals[seq]++
	if c.arrivals[seq] > 1 || !c.sched.IsMeasured(seq) {
		return
	}
	recordLatency(c.hist, at.Sub(c.sched.Intended(seq)))
	if at.After(c.lastArrival) {
		c.lastArrival = at
	}
}

// Missing counts the measured seqs the ingress accepted, the pipeline should
// deliver and that have not arrived yet. Call it once the load is over.
func (c *Collector) Missing() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for seq := c.sched.Warmup; seq < c.sched.Total(); seq++ {
		if c.expected(seq) && c.arrivals[seq] == 0 {
			n++
		}
	}
	return n
}

func (c *Collector) expected(seq int64) bool {
	return c.statuses[seq] == http.StatusAccepted && !c.dropped(seq)
}

// Counts are a step's message counts, all over the measured range only.
type Counts struct {
	Sent           int64            // requests answered 202
	Errors         int64            // requests answered otherwise, or not at all
	ErrorsByStatus map[string]int64 // "503", "no answer" (for a CDC run "insert failed"), …
	Expected       int64            // accepted and not meant to be filtered
	Delivered      int64            // expected and arrived at least once
	Lost           int64            // expected and never arrived
	Duplicates     int64            // arrivals beyond the first of a seq
	Unexpected     int64            // arrived although filtered or not accepted
	Unknown        int64            // lines whose seq is not in the schedule (all seqs)
	Malformed      int64            // lines without a readable seq (all seqs)
}

// Counts tallies the measured range. Call it once the load is over.
func (c *Collector) Counts() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := Counts{ErrorsByStatus: map[string]int64{}, Unknown: c.unknown, Malformed: c.malformed}
	for seq := c.sched.Warmup; seq < c.sched.Total(); seq++ {
		switch st := c.statuses[seq]; st {
		case http.StatusAccepted:
			n.Sent++
		case 0:
			n.Errors++
			n.ErrorsByStatus[c.failed]++
		default:
			n.Errors++
			n.ErrorsByStatus[strconv.Itoa(int(st))]++
		}
		arrived := c.arrivals[seq]
		if arrived > 1 {
			n.Duplicates += int64(arrived - 1)
		}
		switch {
		case c.expected(seq) && arrived > 0:
			n.Expected++
			n.Delivered++
		case c.expected(seq):
			n.Expected++
			n.Lost++
		case arrived > 0:
			n.Unexpected++
		}
	}
	return n
}

// Latencies are percentiles of a latency histogram, in milliseconds.
type Latencies struct {
	P50, P99, P999, Max, Mean float64
	Count                     int64
}

func latencies(h *hdrhistogram.Histogram) Latencies {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latencies{
		P50:   ms(h.ValueAtQuantile(50)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
		Mean:  h.Mean() / 1000,
		Count: h.TotalCount(),
	}
}

// ArrivalLatencies are the intended-send-to-sink latencies of the measured
// messages' first arrivals.
func (c *Collector) ArrivalLatencies() Latencies {
	c.mu.Lock()
	defer c.mu.Unlock()
	return latencies(c.hist)
}

// AckLatencies are the intended-send-to-202 latencies of the measured
// messages.
func (c *Collector) AckLatencies() Latencies {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	return latencies(c.ackHist)
}

// SustainedRate is the number of distinct measured messages that arrived
// at the sink per second, from the first measured message's intended send
// time to the last measured arrival.
func (c *Collector) SustainedRate() float64 {
	arrived, last := c.measuredArrivals()
	return ratePerSecond(arrived, last.Sub(c.sched.MeasuredStart()))
}

// ratePerSecond is n per d, or 0 when d is not positive.
func ratePerSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// mergeArrivalsInto adds the measured messages' arrival latencies to h, so
// that several collectors' latencies make one distribution.
func (c *Collector) mergeArrivalsInto(h *hdrhistogram.Histogram) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h.Merge(c.hist)
}

// measuredArrivals is the number of distinct measured messages that
// arrived and when the last of them did.
func (c *Collector) measuredArrivals() (n int64, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for seq := c.sched.Warmup; seq < c.sched.Total(); seq++ {
		if c.arrivals[seq] > 0 {
			n++
		}
	}
	return n, c.lastArrival
}

// mergeAcksInto adds the measured messages' ack latencies to h.
func (c *Collector) mergeAcksInto(h *hdrhistogram.Histogram) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	h.Merge(c.ackHist)
}
