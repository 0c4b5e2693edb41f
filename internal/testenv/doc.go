// Package testenv gives tests real infrastructure — PostgreSQL, NATS,
// Temporal, S3 — started in-process or as private child processes, cleaned
// up with t.Cleanup. It is for tests only.
package testenv
