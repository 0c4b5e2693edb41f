# VRSky — the two commands a newcomer needs are `make dev` and `make test`.
# The Temporal server needs a newer Go than many machines have; the go
# command fetches this toolchain by itself.
export GOTOOLCHAIN := go1.27.3
export PATH := $(PATH):/usr/local/go/bin

GO      ?= go
BIN     := bin/vrsky
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Extra flags for `vrsky dev`, e.g. make dev DEV_FLAGS="--http-addr 127.0.0.1:9090".
DEV_FLAGS ?=
TEST_FLAGS ?= -count=1 -timeout 30m -cover

.PHONY: dev test deps build release vet fmt clean vuln ui ui-test

## dev: install what is missing, build, and run everything in one process.
dev: deps ui build
	./$(BIN) dev $(DEV_FLAGS)

## test: install what is missing and run the whole test suite.
test: deps vuln ui
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...
	cd deploy && $(GO) vet ./... && $(GO) test $(TEST_FLAGS) ./...
	$(MAKE) ui-test

## vuln: govulncheck against a local copy of the Go vulnerability database
## (see docs/security-vulncheck.md).
vuln:
	@scripts/govulncheck.sh

## deps: install the machine packages VRSky needs (PostgreSQL server binaries).
deps:
	@scripts/install-deps.sh

build: ui
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vrsky

## release: a stripped binary for distribution.
release: ui
	$(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(BIN) ./cmd/vrsky

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

## ui: build the admin UI into ui/dist (embedded by the binary) when its
## sources are newer than the last build; npm ci only when the lockfile changed.
UI_SOURCES := $(shell find ui/src ui/public ui/docs ui/scripts -type f 2>/dev/null) \
	ui/index.html ui/package.json ui/vite.config.ts ui/tsconfig.json ui/openapi.json
ui: ui/dist/app/index.html
ui/node_modules/.package-lock.json: ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
ui/dist/app/index.html: ui/node_modules/.package-lock.json $(UI_SOURCES)
	cd ui && npm run build

## ui-test: the UI's unit tests (Vitest) and its end-to-end suite, which
## builds the binary, starts `vrsky dev` and drives chromium.
ui-test: ui/node_modules/.package-lock.json
	cd ui && npm test
	cd ui && npm run e2e
