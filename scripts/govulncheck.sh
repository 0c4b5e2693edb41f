#!/usr/bin/env bash
# Runs govulncheck against a local copy of the Go vulnerability database.
#
# The online database (vuln.go.dev) is not reachable from every machine we
# build on, but the Go module proxy is, and it serves the golang.org/x/vulndb
# module, whose data/osv directory holds every report as OSV JSON. This script
# fetches that module at a pinned version, turns data/osv into the file layout
# govulncheck reads (index/db.json, index/modules.json, index/vulns.json,
# ID/GO-*.json) with the module's own cmd/indexdb, caches the result, and runs
# govulncheck with -db file://... on it.
#
# Usage: scripts/govulncheck.sh [govulncheck args...]   (default: ./...)
#
# Environment:
#   VRSKY_VULNDB_CACHE  where generated databases are kept
#                       (default: ${XDG_CACHE_HOME:-$HOME/.cache}/vrsky/vulndb)
#   VULNCHECK_SCAN      govulncheck's -scan level (default: package, see below)
#
# Bump the database by setting VULNDB_VERSION to the pseudo-version printed by
#   go list -m golang.org/x/vulndb@latest
# and VULNDB_SUM to the "Sum" printed by
#   go mod download -json golang.org/x/vulndb@<that version>
set -euo pipefail

GOVULNCHECK_VERSION=v1.10.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
VULNDB_SUM=h1:mfngRv0Yoh0VApsXKEN82CjD99kl7mtparN3bs3JnqI=

export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"
export PATH="$PATH:/usr/local/go/bin"
GO="${GO:-go}"

cd "$(dirname "$0")/.."
repo_root="$PWD"

cache_root="${VRSKY_VULNDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vrsky/vulndb}"
db_dir="$cache_root/$VULNDB_VERSION"

if [ ! -f "$db_dir/.complete" ]; then
	echo "govulncheck: building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION into $db_dir" >&2
	mkdir -p "$cache_root"
	# Outside any module, so nothing here touches VRSky's go.mod or go.sum.
	cd "${TMPDIR:-/tmp}"
	info="$(GOWORK=off "$GO" mod download -json "golang.org/x/vulndb@$VULNDB_VERSION")"
	field() { printf '%s\n' "$info" | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p"; }
	src="$(field Dir)"
	sum="$(field Sum)"
	if [ "$sum" != "$VULNDB_SUM" ]; then
		echo "govulncheck: golang.org/x/vulndb@$VULNDB_VERSION has sum $sum, expected $VULNDB_SUM" >&2
		exit 1
	fi
	tmp="$(mktemp -d "$cache_root/.build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	GOWORK=off "$GO" run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$tmp/db"
	# The OSV files in the repository carry no timestamps (they are stamped
	# when vuln.go.dev is deployed), so record the snapshot's commit time as
	# the database's last-modified time, which govulncheck reports.
	modified="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(field Info)")"
	printf '{"modified":"%s"}' "$modified" >"$tmp/db/index/db.json"
	gzip -n -c "$tmp/db/index/db.json" >"$tmp/db/index/db.json.gz"
	touch "$tmp/db/.complete"
	rm -rf "$db_dir"
	mv "$tmp/db" "$db_dir"
	rm -rf "$tmp"
	trap - EXIT
	cd "$repo_root"
fi

# Package level by default: it reports every known vulnerability in a package
# VRSky's build imports, and takes seconds. Symbol level (govulncheck's own
# default) also works out which are reachable from VRSky's code, but on this
# code base, which links the whole Temporal server, it needs more than 10 GB
# of memory and tens of minutes; run it with VULNCHECK_SCAN=symbol.
scan="${VULNCHECK_SCAN:-package}"
if [ "$#" -eq 0 ]; then
	set -- ./...
fi

# Installed rather than started with `go run`, which turns govulncheck's exit
# status 3 (vulnerabilities found) into 1.
bin_dir="$cache_root/bin/govulncheck@$GOVULNCHECK_VERSION"
if [ ! -x "$bin_dir/govulncheck" ]; then
	(cd "${TMPDIR:-/tmp}" && GOWORK=off GOBIN="$bin_dir" "$GO" install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION")
fi

rc=0
out="$("$bin_dir/govulncheck" \
	-db "file://$db_dir" -scan "$scan" "$@" 2>&1)" || rc=$?
printf '%s\n' "$out"
case "$rc" in
0) exit 0 ;;
3) ;; # vulnerabilities found; checked against the allow-list below
*) exit "$rc" ;;
esac

# Findings listed in scripts/govulncheck.allow (one ID a line, reasons in
# docs/security-vulncheck.md) do not fail the build; any other finding does.
allow="$repo_root/scripts/govulncheck.allow"
found="$(printf '%s\n' "$out" | sed -n 's/^Vulnerability #[0-9]*: \(GO-[0-9]*-[0-9]*\)$/\1/p' | sort -u)"
unexpected=""
for id in $found; do
	if ! grep -q "^$id\b" "$allow" 2>/dev/null; then
		unexpected="$unexpected $id"
	fi
done
if [ -z "$found" ]; then
	echo "govulncheck: exit status 3 but no finding could be read from its output" >&2
	exit 3
fi
if [ -n "$unexpected" ]; then
	echo "govulncheck: new vulnerabilities:$unexpected" >&2
	echo "govulncheck: fix them (usually by upgrading the module), or, if VRSky cannot reach them," >&2
	echo "govulncheck: add them to scripts/govulncheck.allow with the reason in docs/security-vulncheck.md" >&2
	exit 3
fi
echo "govulncheck: every finding is a documented exception (scripts/govulncheck.allow, docs/security-vulncheck.md)" >&2
