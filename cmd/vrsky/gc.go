package main

import (
	"context"
	"runtime/debug"

	"github.com/vrsky/vrsky/internal/gctarget"
)

// followsMessages are the commands whose processes move messages: their
// garbage collector's target follows the message flow (internal/gctarget,
// docs/adr/0030). The others (the bench's load generator, a dedicated
// NATS server, the CLI) keep the busy target all along.
var followsMessages = map[string]bool{"dev": true, "api": true, "worker": true, "runner": true}

// setGC sets the garbage collector's target for command until ctx ends,
// unless getenv("GOGC") is set: GOGC, when set, wins.
func setGC(ctx context.Context, command string, getenv func(string) string) {
	switch {
	case getenv("GOGC") != "":
	case followsMessages[command]:
		go gctarget.Follow(ctx)
	default:
		debug.SetGCPercent(gctarget.BusyPercent)
	}
}
