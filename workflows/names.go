// Package workflows holds VRSky's Temporal workflows: the control plane's
// lifecycles (tenants, integrations, schedules, DLQ replay, janitors).
//
// Workflows are deterministic: no I/O, no time.Now, no native goroutines; one
// workflow per file, a single input struct and a single result struct.
// Message bodies never pass through a workflow. This package holds no
// client code: starting, updating and reading workflows is
// internal/control's job, and the names and types both sides share are in
// internal/control/wire (the names below are the same values, for the
// workflows' own code and tests).
package workflows

import "github.com/vrsky/vrsky/internal/control/wire"

// Names shared with the client, from wire.
const (
	ControlTaskQueue      = wire.ControlTaskQueue
	BlobJanitorScheduleID = wire.BlobJanitorScheduleID
	IntegrationDeploy     = wire.IntegrationDeploy
	IntegrationStart      = wire.IntegrationStart
	IntegrationStop       = wire.IntegrationStop
	IntegrationUpdate     = wire.IntegrationUpdate
	IntegrationDelete     = wire.IntegrationDelete
	IntegrationStateQuery = wire.IntegrationStateQuery
	ErrInvalidTransition  = wire.ErrInvalidTransition
	ErrInvalidSchedule    = wire.ErrInvalidSchedule
	MaxBackfillWindow     = wire.MaxBackfillWindow
	ScheduleCatchupWindow = wire.ScheduleCatchupWindow
)

// IDs built from business keys, from wire.
var (
	IntegrationWorkflowID        = wire.IntegrationWorkflowID
	IntegrationScheduleID        = wire.IntegrationScheduleID
	IntegrationRunWorkflowID     = wire.IntegrationRunWorkflowID
	DLQReplayWorkflowID          = wire.DLQReplayWorkflowID
	TenantProvisionWorkflowID    = wire.TenantProvisionWorkflowID
	TenantLimitsWorkflowID       = wire.TenantLimitsWorkflowID
	TenantDecommissionWorkflowID = wire.TenantDecommissionWorkflowID
)

// Inputs and results, from wire.
type (
	TenantProvisionInput       = wire.TenantProvisionInput
	TenantProvisionResult      = wire.TenantProvisionResult
	TenantDecommissionInput    = wire.TenantDecommissionInput
	TenantDecommissionResult   = wire.TenantDecommissionResult
	TenantLimitsInput          = wire.TenantLimitsInput
	IntegrationLifecycleInput  = wire.IntegrationLifecycleInput
	IntegrationLifecycleResult = wire.IntegrationLifecycleResult
	IntegrationState           = wire.IntegrationState
	ChangeRequest              = wire.ChangeRequest
	IntegrationRunInput        = wire.IntegrationRunInput
	DLQReplayInput             = wire.DLQReplayInput
	DLQReplayResult            = wire.DLQReplayResult
	BlobJanitorInput           = wire.BlobJanitorInput
)
