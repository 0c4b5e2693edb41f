// Package deploy holds VRSky's production deployment descriptions (the root
// docker-compose.yml and Dockerfile today; the Helm chart, dashboards, alert
// rules and network policies as they are written) and the tests that check
// them statically, without a container engine. It has no code of its own and
// nothing in it is used at run time.
package deploy
