package testenv

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func double(_ workflow.Context, n int) (int, error) { return 2 * n, nil }

func TestTemporalRunsAWorkflow(t *testing.T) {
	c := Temporal(t)
	w := worker.New(c, "testenv", worker.Options{})
	w.RegisterWorkflow(double)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "testenv"}, double, 21)
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var got int
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("run workflow: %v", err)
	}
	if got != 42 {
		t.Errorf("double(21) = %d, want 42", got)
	}
}

// otherTB is a testing.TB that is not a *testing.T, as a benchmark's is.
type otherTB struct{ testing.TB }

func TestTemporalWithAnyTB(t *testing.T) {
	c := Temporal(otherTB{t})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		t.Fatalf("check health: %v", err)
	}
}
