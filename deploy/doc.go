// Package deploy holds VRSky's production deployment descriptions — the root
// docker-compose.yml and Dockerfile, the Helm chart, Grafana dashboards,
// Prometheus alert rules, Alloy, Prometheus, Grafana and Traefik
// configuration — and the tests that check them statically, without a
// container engine or a cluster. It has no code of its own and nothing in it
// is used at run time. It is a Go module of its own
// (github.com/vrsky/vrsky/deploy), so the libraries its checks need (Helm,
// Kubernetes types, the compose loader) never reach the vrsky binary's module.
package deploy
