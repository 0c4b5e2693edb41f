// Package workflows holds VRSky's Temporal workflows: the control plane's
// lifecycles (tenants, integrations, schedules, DLQ replay, janitors).
//
// Workflows are deterministic: no I/O, no time.Now, no native goroutines; one
// workflow per file, a single input struct and a single result struct.
// Message bodies never pass through a workflow. This package holds no
// client code: starting, updating and reading workflows is
// internal/control's job, and the names and types both sides share (task
// queue, IDs, update names, inputs and results) are in internal/control/wire.
package workflows
