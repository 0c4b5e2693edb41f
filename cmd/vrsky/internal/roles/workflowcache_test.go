package roles

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/internal/testenv"
)

// waitingWorkflow is a workflow that, like an integration's lifecycle,
// waits for the rest of its life once it has started.
func waitingWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	if err := workflow.ExecuteActivity(ctx, "started").Get(ctx, nil); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return false })
}

// A process that runs a Temporal server of its own (vrsky dev) makes SDK
// workers before the worker role: the cache bound still holds, so a
// thousand waiting lifecycles do not each keep a goroutine and their state.
func TestWorkersKeepFewWaitingWorkflowsInMemory(t *testing.T) {
	ts := testenv.TemporalServer(t) // the server and its own workers, in this process
	var started atomic.Int64
	ts.NewWorker("cache-bound", func(r worker.Registry) {
		r.RegisterWorkflow(waitingWorkflow)
		r.RegisterActivityWithOptions(func(context.Context) error {
			started.Add(1)
			return nil
		}, activity.RegisterOptions{Name: "started"})
	})
	c := ts.GetDefaultClient()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const workflows = stickyWorkflowCacheSize + 100
	for i := range workflows {
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("waiting-%d", i), TaskQueue: "cache-bound"}, waitingWorkflow)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return started.Load() == workflows }, time.Minute, 50*time.Millisecond)
	// Then each workflow's next task puts it to waiting.
	require.Eventually(t, func() bool {
		for i := range workflows {
			d, err := c.DescribeWorkflowExecution(ctx, fmt.Sprintf("waiting-%d", i), "")
			if err != nil || d.PendingWorkflowTask != nil {
				return false
			}
		}
		return true
	}, time.Minute, 200*time.Millisecond)
	require.LessOrEqual(t, countGoroutinesIn("roles.waitingWorkflow"), stickyWorkflowCacheSize)
}

// countGoroutinesIn counts the goroutines with fn on their stack.
func countGoroutinesIn(fn string) int {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			n++
		}
	}
	return n
}
