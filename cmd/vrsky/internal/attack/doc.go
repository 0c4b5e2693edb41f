// Package attack is VRSky's hostile-tenant suite: a tenant with a valid,
// write-scoped key plays each known attack against one shared dev stack
// while an innocent tenant runs at load beside it. Every attack must get a
// clear refusal, the innocent tenant must lose nothing, and the shared
// processes must stay up.
//
// It holds tests only; nothing imports it.
package attack
