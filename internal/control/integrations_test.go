package control

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/internal/control/wire"
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
	deleted := temporal.NewNonRetryableApplicationError("deploy: "+wire.RefusedDeleted, wire.ErrInvalidTransition, nil)
	c := &closingLifecycle{first: deleted}
	ch, err := New(c).ChangeIntegration(context.Background(), "acme", "orders", wire.IntegrationDeploy, "", wire.ChangeRequest{Version: 1, Actor: "a"})
	require.NoError(t, err)
	require.Equal(t, Change{WorkflowID: "lifecycle", UpdateID: "u"}, ch)
	require.Equal(t, "old", c.waitedFor, "after the old one closed")
	require.Equal(t, 2, c.calls)
}

func TestOtherOutcomesAreNotAskedAgain(t *testing.T) {
	for name, tc := range map[string]struct {
		first   error
		refusal string
	}{
		"accepted": {first: context.Canceled}, // what Get says of an accepted change without waiting
		"refused":  {first: temporal.NewNonRetryableApplicationError("stop: nothing is deployed yet", wire.ErrInvalidTransition, nil), refusal: "stop: nothing is deployed yet"},
		"failed":   {first: errors.New("boom")},
	} {
		t.Run(name, func(t *testing.T) {
			c := &closingLifecycle{first: tc.first}
			_, err := New(c).ChangeIntegration(context.Background(), "acme", "orders", wire.IntegrationStop, "", wire.ChangeRequest{Actor: "a"})
			if tc.refusal != "" {
				var refused *RefusedError
				require.ErrorAs(t, err, &refused)
				require.Equal(t, tc.refusal, refused.Reason)
				require.ErrorIs(t, err, ErrRefused)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, 1, c.calls)
			require.Empty(t, c.waitedFor)
		})
	}
}

// unreachable is a lifecycle whose server does not answer.
type unreachable struct{ closingLifecycle }

func (unreachable) UpdateWithStartWorkflow(context.Context, client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return nil, errors.New("connection refused")
}

func TestAnUnansweredChangeIsUnavailable(t *testing.T) {
	_, err := New(&unreachable{}).ChangeIntegration(context.Background(), "acme", "orders", wire.IntegrationStop, "", wire.ChangeRequest{Actor: "a"})
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "stop integration acme/orders")
}
