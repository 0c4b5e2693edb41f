// Package bench measures the real VRSky pipeline end to end on the machine it
// runs on: it drives a dev stack's webhook ingress with open-loop load at a
// fixed offered rate, reads what the file producer writes, and reports
// latency (from each message's intended send time to its arrival in the
// sink file), throughput, losses, duplicates, the stack's CPU and memory
// (and, with a split runner, the runner process's apart from it), and a raw
// JetStream publish+consume baseline measured on the same NATS server in the
// same run. Its CDC scenario drives a postgres-cdc → postgres integration
// instead: it inserts rows open-loop into a source table of the stack's
// database and reads the rows the producer writes into a target table. Its
// scale scenario creates many tenants through the API, deploys many small
// integrations over them, measures what they cost idle (with none and with
// all deployed, the stack and any runner processes it started), reads the
// runners' registry, loads some of them, then the same rate on one of them
// alone, and optionally the spread load again beside a flooding tenant.
//
// It counts what arrived at the sink, never the engine's own counters. It
// reports; it must never assert thresholds or decide pass/fail on its own
// (the one exception is --find-max, whose stop rule is part of what it
// reports), and it must never touch tenants other than its own — the
// "bench" tenant and the scale scenario's "bs-<run>-…" tenants, which it
// deletes from an attached stack when done — files outside those tenants'
// file roots, or database objects other than its own: the vrsky_bench
// schema and the replication slots and publications its integrations
// create.
package bench
