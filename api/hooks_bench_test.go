package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

// onePipeline is a Pipelines with one webhook integration.
type onePipeline struct{ d dataplane.Desired }

func (o onePipeline) Lookup(dataplane.Pipeline) (dataplane.Desired, bool) { return o.d, true }

// discardPublisher stores nothing and succeeds.
type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, dataplane.Pipeline, []sdk.Message) error { return nil }

// BenchmarkWebhookIngress is the ingress's own cost per request (routing,
// reading the body, headers, the answer), without NATS.
func BenchmarkWebhookIngress(b *testing.B) {
	d := dataplane.Desired{Tenant: "acme", Integration: "orders", Version: 1, Status: dataplane.DesiredRunning,
		Spec: spec.Integration{Name: "orders", Consumer: spec.Step{Connector: dataplane.WebhookConnector}}}
	srv := New(Options{})
	srv.RegisterWebhooks(&Webhooks{Pipelines: onePipeline{d}, Publisher: discardPublisher{}})
	h := srv.Handler()
	body := `{"seq":1,"items":[{"sku":"a","qty":2,"price":3}],"pad":"` + strings.Repeat("x", 900) + `"}`
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodPost, "/v1/hooks/acme/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "bench-"+strconv.Itoa(i))
		req.Header.Set("User-Agent", "Go-http-client/1.1")
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
