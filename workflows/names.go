// Package workflows holds VRSky's Temporal workflows: the control plane's
// lifecycles (tenants, integrations, schedules, DLQ replay, janitors).
//
// Workflows are deterministic: no I/O, no time.Now, no native goroutines; one
// workflow per file, a single input struct and a single result struct, IDs
// built from business keys in this file. Message bodies never pass through a
// workflow.
package workflows

// ControlTaskQueue is the task queue the control-plane worker polls.
const ControlTaskQueue = "vrsky-control"

// BlobJanitorScheduleID is the ID of the schedule that runs BlobJanitor.
const BlobJanitorScheduleID = "blob-janitor"

// IntegrationWorkflowID is the ID of an integration's IntegrationLifecycle
// workflow: one per integration, so a second start finds the first.
func IntegrationWorkflowID(tenant, integration string) string {
	return "integration/" + tenant + "/" + integration
}

// IntegrationScheduleID is the ID of the Temporal Schedule of an
// integration whose deployed spec has a schedule; it starts IntegrationRun.
// (Schedule IDs and workflow IDs do not share a namespace.)
func IntegrationScheduleID(tenant, integration string) string {
	return "integration/" + tenant + "/" + integration
}

// IntegrationRunWorkflowID is the ID the integration's schedule gives the
// IntegrationRun workflows it starts; Temporal appends each run's
// scheduled time.
func IntegrationRunWorkflowID(tenant, integration string) string {
	return "integration-run/" + tenant + "/" + integration
}

// DLQReplayWorkflowID is the ID of one DLQReplay run, asked for by a
// request of the tenant: a repeated request ID finds the first run.
func DLQReplayWorkflowID(tenant, requestID string) string {
	return "dlq-replay/" + tenant + "/" + requestID
}

// Updates and queries of IntegrationLifecycle. Every update takes a
// ChangeRequest and returns the resulting IntegrationState.
const (
	// IntegrationDeploy runs ChangeRequest.Version (desired status running).
	IntegrationDeploy = "deploy"
	// IntegrationStart runs the deployed version.
	IntegrationStart = "start"
	// IntegrationStop stops the deployed version.
	IntegrationStop = "stop"
	// IntegrationUpdate rolls out a newer ChangeRequest.Version, keeping the
	// desired status.
	IntegrationUpdate = "update"
	// IntegrationDelete removes the integration; the workflow then ends.
	IntegrationDelete = "delete"
	// IntegrationStateQuery returns the current IntegrationState.
	IntegrationStateQuery = "state"
)

// TenantProvisionWorkflowID is the ID of a tenant's TenantProvision run: a
// second create of the same tenant finds the first.
func TenantProvisionWorkflowID(tenant string) string { return "tenant/" + tenant + "/provision" }

// TenantLimitsWorkflowID is the ID of the TenantLimits run applying a
// tenant's changed limits.
func TenantLimitsWorkflowID(tenant string) string { return "tenant/" + tenant + "/limits" }

// TenantDecommissionWorkflowID is the ID of a tenant's TenantDecommission
// run.
func TenantDecommissionWorkflowID(tenant string) string { return "tenant/" + tenant + "/decommission" }
