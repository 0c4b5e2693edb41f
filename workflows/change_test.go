package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// closingLifecycle stands in for the server while an integration's
// lifecycle run that recorded a deletion is still open: the first change
// meets that run and is refused as deleted (first), later ones meet a new
// run (then). It records which run a caller waited for.
type closingLifecycle struct {
	client.Client
	first, then error
	calls       int
	waitedFor   string
}

func (c *closingLifecycle) NewWithStartWorkflowOperation(client.StartWorkflowOptions, any, ...any) client.WithStartWorkflowOperation {
	return nil
}

func (c *closingLifecycle) UpdateWithStartWorkflow(_ context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	c.calls++
	if c.calls == 1 {
		return knownOutcome{run: "old", err: c.first}, nil
	}
	return knownOutcome{run: "new", err: c.then}, nil
}

func (c *closingLifecycle) GetWorkflow(_ context.Context, _, runID string) client.WorkflowRun {
	c.waitedFor = runID
	return closedRun{}
}

// knownOutcome is an update handle whose knownOutcome is known.
type knownOutcome struct {
	client.WorkflowUpdateHandle
	run string
	err error
}

func (o knownOutcome) WorkflowID() string             { return "lifecycle" }
func (o knownOutcome) RunID() string                  { return o.run }
func (o knownOutcome) Get(context.Context, any) error { return o.err }
func (o knownOutcome) UpdateID() string               { return "u" }

// closedRun is a workflow run that has closed.
type closedRun struct{ client.WorkflowRun }

func (closedRun) Get(context.Context, any) error { return nil }

func TestChangeAfterADeleteWaitsForTheOldLifecycleToClose(t *testing.T) {
	deleted := temporal.NewNonRetryableApplicationError("deploy: "+refusedDeleted, ErrInvalidTransition, nil)
	c := &closingLifecycle{first: deleted}
	h, err := ChangeIntegration(context.Background(), c, "acme", "orders", IntegrationDeploy, "", ChangeRequest{Version: 1, Actor: "a"})
	require.NoError(t, err)
	require.Equal(t, "new", h.RunID(), "the change went to a new run")
	require.Equal(t, "old", c.waitedFor, "after the old one closed")
	require.Equal(t, 2, c.calls)
}

func TestOtherOutcomesAreNotAskedAgain(t *testing.T) {
	for name, first := range map[string]error{
		"accepted": context.Canceled, // what Get says of an accepted change without waiting
		"refused":  temporal.NewNonRetryableApplicationError("stop: nothing is deployed yet", ErrInvalidTransition, nil),
		"failed":   errors.New("boom"),
	} {
		t.Run(name, func(t *testing.T) {
			c := &closingLifecycle{first: first}
			h, err := ChangeIntegration(context.Background(), c, "acme", "orders", IntegrationStop, "", ChangeRequest{Actor: "a"})
			require.NoError(t, err)
			require.Equal(t, "old", h.RunID())
			require.Equal(t, 1, c.calls)
			require.Empty(t, c.waitedFor)
		})
	}
}
