#!/usr/bin/env bash
# Installs what VRSky needs from the machine's package manager, when missing:
# the PostgreSQL server binaries (vrsky dev and the tests run a private
# cluster from them) and chromium (the admin UI's end-to-end tests drive it
# headless) and iproute2 (the NATS partition test); checks that Node.js and
# npm, which build the admin UI, are there.
# Safe to run again: it does nothing when all is there.
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

# The admin UI (ui/) is built with Vite 8, which needs Node.js 20.19+ or 22.12+.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: Node.js and npm are not installed; install Node.js 20.19 or newer (https://nodejs.org) to build the admin UI" >&2
  exit 1
fi
node_version="$(node -p 'process.versions.node')"
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)||(a===20&&b>=19)||a===21?0:1)'; then
  echo "install-deps: Node.js ${node_version} is too old for the admin UI's build (Vite 8): install 20.19+ or 22.12+" >&2
  exit 1
fi

# The UI's end-to-end suite drives the distribution's chromium through
# playwright-core (Playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ] && [ -z "${VRSKY_CHROMIUM:-}" ]; then
  echo "install-deps: installing chromium for the admin UI's end-to-end tests (apt-get install chromium)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi

# The NATS partition test puts each server in a network namespace of its
# own (ip netns, veth, bridges): iproute2.
if ! command -v ip >/dev/null 2>&1; then
  echo "install-deps: installing iproute2 for the NATS partition test (apt-get install iproute2)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq iproute2 >/dev/null
fi
