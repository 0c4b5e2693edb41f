package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// The hot path allocates for every message; at Go's default of 100 the
// collector took 12 % of the stack's CPU at saturation, at 200 the stack
// needs ~10 % less CPU per message for a heap that may grow to three times
// what is live instead of two (docs/adr/0010). GOGC, when set, wins.
const defaultGCPercent = 200

// setGCDefault applies defaultGCPercent unless getenv("GOGC") is set.
func setGCDefault(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
