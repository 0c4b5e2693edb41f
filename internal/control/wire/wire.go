// Package wire is what VRSky's control-plane client (internal/control) and
// its workflows (workflows/) share: the task queue, workflow type names,
// workflow and schedule IDs, update and query names, memo keys, error
// types, and the workflow inputs and results that travel between them.
//
// It is a leaf: it imports only the standard library, so that the API, the
// client, the workflows and the activities can all depend on it without
// depending on each other. It must never hold behaviour beyond building
// names: what a workflow does lives in workflows/, how Temporal is called
// lives in internal/control.
//
// Changing a field here changes workflow histories: inputs and results are
// encoded as JSON by field name, so renaming or retyping a field breaks the
// replay of recorded histories (workflows/testdata).
package wire

import "time"

// ControlTaskQueue is the task queue the control-plane worker polls.
const ControlTaskQueue = "vrsky-control"

// Workflow type names: the names the worker registers each workflow under
// (its Go function's name) and the client starts it by.
const (
	TenantProvisionWorkflow      = "TenantProvision"
	TenantDecommissionWorkflow   = "TenantDecommission"
	TenantLimitsWorkflow         = "TenantLimits"
	IntegrationLifecycleWorkflow = "IntegrationLifecycle"
	IntegrationRunWorkflow       = "IntegrationRun"
	DLQReplayWorkflow            = "DLQReplay"
	BlobJanitorWorkflow          = "BlobJanitor"
)

// BlobJanitorScheduleID is the ID of the schedule that runs BlobJanitor.
const BlobJanitorScheduleID = "blob-janitor"

// BlobJanitorInterval is how often the blob janitor runs.
const BlobJanitorInterval = 5 * time.Minute

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

// TenantProvisionWorkflowID is the ID of a tenant's TenantProvision run: a
// second create of the same tenant finds the first.
func TenantProvisionWorkflowID(tenant string) string { return "tenant/" + tenant + "/provision" }

// TenantLimitsWorkflowID is the ID of the TenantLimits run applying a
// tenant's changed limits.
func TenantLimitsWorkflowID(tenant string) string { return "tenant/" + tenant + "/limits" }

// TenantDecommissionWorkflowID is the ID of a tenant's TenantDecommission
// run.
func TenantDecommissionWorkflowID(tenant string) string { return "tenant/" + tenant + "/decommission" }

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

// Application error types that cross from the workflows to the client.
const (
	// ErrInvalidTransition is the type of a lifecycle change refused in the
	// integration's current state (for example start before deploy).
	ErrInvalidTransition = "InvalidTransition"
	// ErrInvalidSchedule is the type of a schedule Temporal refuses
	// (retrying cannot fix it).
	ErrInvalidSchedule = "InvalidSchedule"
)

// RefusedDeleted ends the message of a change refused because the
// integration is deleted.
const RefusedDeleted = "the integration is deleted"

// Memo keys of a DLQReplay run: how many dead letters it selected when it
// started, and whether that count is exact.
const (
	MemoTotal      = "total"
	MemoTotalExact = "total_exact"
)

// Policies of integrations' schedules.
const (
	// ScheduleCatchupWindow is how late a run missed while Temporal was
	// unavailable may still start when it is back; runs of one integration
	// never overlap, so at most one late run starts.
	ScheduleCatchupWindow = 24 * time.Hour
	// MaxBackfillWindow bounds the window of one backfill.
	MaxBackfillWindow = 31 * 24 * time.Hour
	// DefaultRunWait is how long one scheduled run may take when its input
	// sets no bound.
	DefaultRunWait = 30 * time.Minute
	// RunExecutionTimeout bounds one IntegrationRun workflow.
	RunExecutionTimeout = DefaultRunWait + 10*time.Minute
)

// Limits are a tenant's JetStream limits (the same fields as
// natsauth.Limits, which converts to and from it).
type Limits struct {
	DiskBytes   int64 `json:"disk_bytes"`
	MemoryBytes int64 `json:"memory_bytes"`
	Streams     int64 `json:"streams"`
	Consumers   int64 `json:"consumers"`
	DLQBytes    int64 `json:"dlq_bytes,omitempty"`
}

// TenantLimits are a tenant's quotas (the same JSON as store.TenantLimits).
type TenantLimits struct {
	Limits
	Integrations      int   `json:"integrations"`
	MessagesPerSecond int   `json:"messages_per_second,omitempty"`
	RememberedKeys    int64 `json:"remembered_keys,omitempty"`
}

// NewTenant is a tenant to provision with its first API key, by hash: the
// secret never enters a workflow's history.
type NewTenant struct {
	ID, Name  string
	KeyID     string
	KeyPrefix string
	KeyHash   []byte
	Scopes    []string
	// Limits are the tenant's quotas; nil means the defaults.
	Limits *TenantLimits `json:",omitempty"`
}

// TenantProvisionInput is the tenant to provision: its rows, quotas and
// first key, and the JetStream limits of its NATS account.
type TenantProvisionInput struct {
	Tenant NewTenant
	Limits Limits
}

// TenantProvisionResult is the provisioned tenant's ID.
type TenantProvisionResult struct {
	Tenant string
}

// TenantDecommissionInput names the tenant to remove.
type TenantDecommissionInput struct {
	Tenant string
}

// TenantDecommissionResult counts what was removed.
type TenantDecommissionResult struct {
	Integrations int
	Streams      int
	Objects      int
}

// TenantLimitsInput is a tenant and the JetStream limits it now has (the
// store already holds them).
type TenantLimitsInput struct {
	Tenant string
	Limits Limits
}

// IntegrationState is an integration as the control plane knows it.
type IntegrationState struct {
	// Version is the deployed spec version; 0 before the first deploy.
	Version int
	// DesiredStatus is running or stopped ("" before the first deploy).
	DesiredStatus string
	// Status is what the runners reported: running, stopped or degraded;
	// pending when they have not confirmed in time, deleted once deleted.
	Status    string
	LastError string
}

// IntegrationLifecycleInput names the integration. State carries what an
// earlier run knew across ContinueAsNew; it is zero for a new integration.
type IntegrationLifecycleInput struct {
	Tenant      string
	Integration string
	State       IntegrationState
	// MaxTransitions is how many changes one run handles before it continues
	// as new; zero means the workflow's default.
	MaxTransitions int
}

// IntegrationLifecycleResult is the integration's final state; the workflow
// ends only when the integration is deleted.
type IntegrationLifecycleResult struct {
	State IntegrationState
}

// ChangeRequest asks for one lifecycle change. Version is the spec version
// for deploy and update, ignored otherwise. Actor (who asks) is required;
// both Actor and Reason go into the integration's execution log.
type ChangeRequest struct {
	Version int
	Actor   string
	Reason  string
}

// IntegrationRunInput names the scheduled integration to run once.
type IntegrationRunInput struct {
	Tenant      string
	Integration string
	// MaxWait bounds how long the run may take; zero means DefaultRunWait.
	MaxWait time.Duration
}

// DLQFilter selects dead letters (the same fields as dataplane.DLQFilter,
// which converts to and from it).
type DLQFilter struct {
	Integration   string
	Producer      string
	Since         time.Time
	Until         time.Time
	ErrorContains string
}

// DLQReplayInput selects the tenant's dead letters to replay into their
// pipelines or, with Discard, to remove: those matching Filter, or only the
// DLQ sequences in Seqs when set (Filter still applies). MaxMessages bounds
// how many are handled; 0 means all. The remaining fields carry a run's
// progress across ContinueAsNew and are zero when it is started.
type DLQReplayInput struct {
	Tenant      string
	Filter      DLQFilter
	Seqs        []uint64
	Discard     bool
	MaxMessages int

	// PagesPerRun is how many pages one run handles before it continues as
	// new; 0 means the workflow's default.
	PagesPerRun int
	AfterSeq    uint64
	UpToSeq     uint64
	Done        int
}

// DLQReplayResult counts the dead letters replayed or discarded.
type DLQReplayResult struct {
	Replayed  int
	Discarded int
}

// ReplayPageResult says how many dead letters one page of a DLQReplay
// replayed or discarded, where the next page starts and whether there may
// be one. The client adds the finished pages up to tell a run's progress.
type ReplayPageResult struct {
	Done    int
	LastSeq uint64
	UpToSeq uint64
	More    bool
}

// ReplayProgress is what a DLQReplay page heartbeats: after a worker crash
// the retried attempt resumes after LastSeq instead of replaying again, and
// the client reads Done of the page in progress.
type ReplayProgress struct {
	LastSeq uint64
	Done    int
}

// BlobJanitorInput selects what the janitor sweeps. The zero value uses the
// platform defaults.
type BlobJanitorInput struct {
	ClaimTTL time.Duration
	DLQTTL   time.Duration
}

// IntegrationSchedule is the Temporal Schedule of an integration whose spec
// has a schedule, as the activities ask the client to put it.
type IntegrationSchedule struct {
	Tenant      string
	Integration string
	// Cron is the spec's schedule.
	Cron string
	// Paused is the state a new schedule starts in, and the state an
	// existing one is put in unless KeepPaused.
	Paused     bool
	KeepPaused bool
	// Note says why, for the schedule's pause note.
	Note string
}

// Tenant placement: where a tenant's NATS streams live (docs/nats.md).
const (
	// TenantPlacementWorkflow moves one tenant between the shared cluster
	// and a dedicated instance, and watches its dedicated instance while it
	// has one.
	TenantPlacementWorkflow = "TenantPlacement"
	// PlacementSweepWorkflow compares every tenant's usage with the
	// thresholds and asks TenantPlacement to move those that crossed them.
	PlacementSweepWorkflow = "PlacementSweep"
	// PlacementSweepScheduleID is the ID of the schedule that runs
	// PlacementSweep.
	PlacementSweepScheduleID = "placement-sweep"
	// PlacementSignal carries a PlacementRequest to TenantPlacement.
	PlacementSignal = "placement"
	// PlacementStateQuery returns TenantPlacement's PlacementState.
	PlacementStateQuery = "placement"
)

// TenantPlacementWorkflowID is the ID of a tenant's TenantPlacement run;
// a request signals it, starting it when it is not running.
func TenantPlacementWorkflowID(tenant string) string { return "tenant/" + tenant + "/placement" }

// Placement states, as the API shows them.
const (
	PlacementShared            = "shared"
	PlacementDedicated         = "dedicated"
	PlacementMovingToDedicated = "moving-to-dedicated"
	PlacementMovingToShared    = "moving-to-shared"
)

// TenantPlacementInput starts a tenant's TenantPlacement.
type TenantPlacementInput struct {
	Tenant string `json:"tenant"`
}

// PlacementRequest asks TenantPlacement to move a tenant.
type PlacementRequest struct {
	// Target is PlacementShared or PlacementDedicated.
	Target string `json:"target"`
	// Forced is true when an admin asked for the move: thresholds then do
	// not move the tenant back until an admin asks again.
	Forced bool `json:"forced,omitempty"`
	// Reason says why, for the tenant's placement history.
	Reason string `json:"reason"`
}

// PlacementState is what TenantPlacement reports.
type PlacementState struct {
	Tenant string `json:"tenant"`
	// Placement is one of the Placement states.
	Placement string `json:"placement"`
	// Step is the step of a move in progress, "" when settled.
	Step string `json:"step,omitempty"`
	// Forced is true while an admin's request holds the placement.
	Forced bool `json:"forced,omitempty"`
}
