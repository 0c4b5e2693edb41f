#!/usr/bin/env bash
# Installs what VRSky needs from the machine's package manager, when missing:
# the PostgreSQL server binaries (vrsky dev and the tests run a private
# cluster from them). Safe to run again: it does nothing when all is there.
set -euo pipefail

have_postgres() {
  [ -n "${VRSKY_PG_BIN:-}" ] && [ -x "${VRSKY_PG_BIN}/initdb" ] && return 0
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1
}

if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: Go is not installed; install Go 1.22 or newer (the build fetches the toolchain it needs)" >&2
  exit 1
fi

if ! have_postgres; then
  echo "install-deps: installing the PostgreSQL server (apt-get install postgresql)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq postgresql >/dev/null
  # Debian starts a system cluster on install; VRSky runs its own private one.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
      $SUDO pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
  fi
fi

if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "install-deps: creating the postgres system user (PostgreSQL refuses to run as root)"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
