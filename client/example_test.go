package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/vrsky/vrsky/client"
)

// Deploy a spec and read its status, as client/README.md shows. (No
// Output: it needs a running API.)
func Example() {
	ctx := context.Background()
	api, err := client.New("http://127.0.0.1:8080", os.Getenv("VRSKY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	spec := []byte(`
name: orders
consumer: { connector: http-webhook }
producers:
  out: { connector: file, config: { dir: orders, format: ndjson } }
`)
	got, err := api.Deploy(ctx, "orders", spec, "first deploy", false)
	if err != nil {
		log.Fatal(err) // e.g. "store integration orders: 422 Unprocessable Entity: …"
	}
	fmt.Println(got.Name, got.Version, got.Status) // orders 1 running

	r, err := api.GetIntegrationStatusWithResponse(ctx, "orders")
	if err := client.Check("status of orders", r, err, http.StatusOK); err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.JSON200.Status, r.JSON200.DeadLetters)
}
