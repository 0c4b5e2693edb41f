package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrsky/vrsky/internal/logging"
)

// Webhook outcomes, the values of vrsky_webhook_messages_total's outcome.
const (
	// OutcomeAccepted counts messages stored (one per NDJSON record).
	OutcomeAccepted = "accepted"
	// OutcomeDuplicate counts messages already stored under the same ID.
	OutcomeDuplicate = "duplicate"
	// OutcomeRefused counts requests refused for what they are: over the
	// tenant's rate, unauthenticated, too large, too slow, malformed, a
	// reused ID with another body, or a config that cannot be used.
	OutcomeRefused = "refused"
	// OutcomeQuotaFull counts requests refused because the tenant's
	// storage quota is full.
	OutcomeQuotaFull = "quota_full"
	// OutcomeUnavailable counts requests that could not be stored for a
	// reason of the platform's (message store down, ingress busy).
	OutcomeUnavailable = "unavailable"
)

// unmatchedRoute is the route label of every request no route matched, so
// that scanners' paths cannot add series.
const unmatchedRoute = "unmatched"

// HTTPMetrics are the API's and the webhook ingress's Prometheus metrics.
// Their labels are bounded: the route pattern (never the raw path), a known
// method or "other", the status code, and for webhooks a tenant that exists.
type HTTPMetrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	requestBody  *prometheus.CounterVec
	responseBody *prometheus.CounterVec
	inFlight     prometheus.Gauge
	webhooks     *prometheus.CounterVec
}

// NewHTTPMetrics creates the HTTP metrics and registers them with reg. When
// reg already holds them (an API and its admin listener built on one
// registry), the registered ones are used.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vrsky_http_requests_total", Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vrsky_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route pattern and method.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		requestBody: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vrsky_http_request_body_bytes_total", Help: "Request body bytes read, by route pattern.",
		}, []string{"route"}),
		responseBody: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vrsky_http_response_body_bytes_total", Help: "Response body bytes written, by route pattern.",
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vrsky_http_requests_in_flight", Help: "HTTP requests being answered.",
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vrsky_webhook_messages_total",
			Help: "Webhook messages by tenant and outcome: accepted and duplicate count messages (an NDJSON record each), the other outcomes count requests.",
		}, []string{"tenant", "outcome"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
		m.requestBody = register(reg, m.requestBody)
		m.responseBody = register(reg, m.responseBody)
		m.inFlight = register(reg, m.inFlight)
		m.webhooks = register(reg, m.webhooks)
	}
	return m
}

// register registers c with reg, or returns the collector reg already holds
// under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// webhook counts n webhook messages of tenant with outcome; m may be nil.
func (m *HTTPMetrics) webhook(tenant, outcome string, n int) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(tenant, outcome).Add(float64(n))
}

// instrument serves every request through next with a request ID (kept
// from X-Request-ID when valid, else generated; echoed in the response and
// in the request's context for logs and problem details) and, when m is not
// nil, records the HTTP metrics under the route pattern next matched.
func instrument(next http.Handler, m *HTTPMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestID(r.Header.Get(RequestIDHeader))
		w.Header().Set(RequestIDHeader, id)
		r = r.WithContext(logging.WithRequestID(r.Context(), id))
		if m == nil {
			next.ServeHTTP(w, r)
			return
		}
		began := time.Now()
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		cw := &countingWriter{ResponseWriter: w}
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		next.ServeHTTP(cw, r)
		// The mux sets the matched pattern on the request it was given.
		route := routeLabel(r.Pattern)
		method := methodLabel(r.Method)
		m.requests.WithLabelValues(route, method, strconv.Itoa(cw.status())).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(began).Seconds())
		if body != nil && body.n > 0 {
			m.requestBody.WithLabelValues(route).Add(float64(body.n))
		}
		if cw.n > 0 {
			m.responseBody.WithLabelValues(route).Add(float64(cw.n))
		}
	})
}

// routeLabel is a ServeMux pattern ("[METHOD ][HOST]/path") without its
// method and host, or unmatchedRoute.
func routeLabel(pattern string) string {
	if pattern == "" {
		return unmatchedRoute
	}
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return unmatchedRoute
}

// methodLabel keeps the standard methods and folds any other into "other".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// countingWriter records the status code and counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Flush passes a flush on, for streamed answers.
func (w *countingWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection (read
// deadlines, full duplex).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
