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
