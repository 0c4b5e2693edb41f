// Package dataplane is the contract between VRSky's control plane and its
// data plane: the name of every stream, subject, KV bucket, key and object
// (names.go); the setup of streams and buckets; the desired state and
// status the control plane and the runners exchange; scheduled runs;
// counters; the DLQ's reading, replay and discard; the wire format of a
// message in a stream and its claim-checked body; the ingress publisher
// and its idempotency; and the mirrors the API writes for the runners
// (egress policies, tenant rates).
//
// The API, the workflows, the activities and the runtime in hotpath import
// it. It must never import hotpath, a metrics library, Temporal, or any
// connector but the SDK's types: what the control plane links for a few
// names stays small, and the runtime can change without touching it.
package dataplane
