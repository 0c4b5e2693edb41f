// Package deploy holds VRSky's production deployment descriptions (the root
// docker-compose.yml and Dockerfile today; the Helm chart, dashboards, alert
// rules and network policies as they are written) and the tests that check
// them statically, without a container engine. It has no code of its own and
// nothing in it is used at run time. It is a Go module of its own
// (github.com/vrsky/vrsky/deploy), so the libraries its checks need (Helm,
// Kubernetes types, the compose loader) never reach the vrsky binary's module.
package deploy
