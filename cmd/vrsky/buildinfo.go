package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time by the Makefile and the Dockerfile:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=0123abc -X main.buildDate=2026-12-06T12:00:00Z"
//
// version is also what the API's OpenAPI document gives as info.version.
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

// productionTag is the build tag that leaves the development servers out
// of the binary (production.go).
const productionTag = "vrsky_production"

// errDevOnly marks a command the production build does not include.
var errDevOnly = errors.New("left out of the production build")

// devOnly is the error a production binary answers for what needs the
// development servers.
func devOnly(what string) error {
	return fmt.Errorf("%s: %w (-tags %s), which has no development servers; "+
		"`make build` or `go build ./cmd/vrsky` builds a vrsky with dev, bench and demo", what, errDevOnly, productionTag)
}

// buildInfo is what `vrsky version` prints.
type buildInfo struct {
	Version, Commit, Date, Go, Flavour string
}

// currentBuild reads the stamped variables. A plain `go build` inside a git
// checkout records the commit itself (-buildvcs), so that is the fallback
// for the commit; the build date has none.
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: cmp.Or(buildDate, "unknown"), Go: runtime.Version(),
		Flavour: "development (includes vrsky dev, bench and demo)"}
	if productionBuild {
		b.Flavour = "production (-tags " + productionTag + ")"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			var rev, modified string
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" {
				b.Commit = rev
				if modified == "true" {
					b.Commit += "-dirty"
				}
			}
		}
	}
	return b
}

// writeVersion prints the build, one fact a line, the version first.
func writeVersion(w io.Writer) {
	b := currentBuild()
	fmt.Fprintf(w, "vrsky %s\ncommit: %s\nbuilt:  %s\ngo:     %s/%s %s\nbuild:  %s\n",
		b.Version, b.Commit, b.Date, b.Go, runtime.GOOS, runtime.GOARCH, b.Flavour)
}
