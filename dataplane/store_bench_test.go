package dataplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/testenv"
)

// BenchmarkStoreOneMessage measures, on a real NATS server, what storing
// one webhook message costs the ingress: without a key (one publish, its
// ID left to JetStream's 2-minute duplicate window) and with one
// remembered for a day (the publish on condition that the key is not
// recorded, then the record, not waited for: docs/adr/0034). 64
// concurrent senders, as the ingress sees under load; the msgs/s of one
// run are comparable with each other only.
//
//	go test ./dataplane -run '^$' -bench StoreOneMessage -benchtime 5s
func BenchmarkStoreOneMessage(b *testing.B) {
	_, js := testenv.JetStream(b)
	ctx := context.Background()
	pub := &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}
	idem := &Idempotency{Publisher: pub}
	body := bytes.Repeat([]byte("b"), 1024)
	var ids atomic.Int64
	store := map[string]func(p Pipeline, id string) error{
		"window only": func(p Pipeline, id string) error {
			return pub.Publish(ctx, p, []sdk.Message{{ID: id, Body: body, Received: time.Now()}})
		},
		"remembered a day": func(p Pipeline, id string) error {
			sum := Digest(sha256.Sum256(append([]byte(id), body...)))
			_, err := idem.Store(ctx, p, id, sum, []sdk.Message{{ID: id, Body: body, Received: time.Now()}})
			return err
		},
	}
	for _, name := range []string{"window only", "remembered a day"} {
		b.Run(name, func(b *testing.B) {
			p := Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "orders"}
			if _, err := EnsureStreams(ctx, js, p); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := store[name](p, "m"+strconv.FormatInt(ids.Add(1), 10)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
