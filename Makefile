# VRSky — the two commands a newcomer needs are `make dev` and `make test`.
# The Temporal server needs a newer Go than many machines have; the go
# command fetches this toolchain by itself.
export GOTOOLCHAIN := go1.27.3
export PATH := $(PATH):/usr/local/go/bin

GO      ?= go
BIN     := bin/vrsky
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# What `vrsky version` prints and the API's OpenAPI document gives as its
# version (cmd/vrsky/buildinfo.go). The Dockerfile takes the same three as
# build arguments.
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)
# The production build leaves out vrsky dev, bench and demo and the servers
# they embed (cmd/vrsky/production.go); the Dockerfile builds it.
PRODUCTION_TAGS := vrsky_production
# The systems the binary must build for; `make cross` checks them all.
CROSS_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
# Extra flags for `vrsky dev`, e.g. make dev DEV_FLAGS="--http-addr 127.0.0.1:9090".
DEV_FLAGS ?=
TEST_FLAGS ?= -count=1 -timeout 30m -cover

.PHONY: dev test deps build release cross dist vet fmt clean vuln ui ui-test openapi-lint

## dev: install what is missing, build, and run everything in one process.
dev: deps ui build
	./$(BIN) dev $(DEV_FLAGS)

## test: install what is missing and run the whole test suite.
test: deps vuln ui cross openapi-lint
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

## release: a stripped production binary (no vrsky dev, bench or demo).
release: ui
	$(GO) build -trimpath -tags $(PRODUCTION_TAGS) -ldflags "-s -w $(LDFLAGS)" -o $(BIN) ./cmd/vrsky

## cross: build ./cmd/vrsky for every system in CROSS_TARGETS, and the
## production build for each linux one, without keeping the binaries.
## Builds for another system run without cgo (the go command's default), as
## the release binaries do; the host's build shares the test run's cache.
cross:
	@set -e; for t in $(CROSS_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; \
		echo "cross: $$os/$$arch"; \
		GOOS=$$os GOARCH=$$arch $(GO) build -o /dev/null ./cmd/vrsky; \
		if [ "$$os" = linux ]; then \
			echo "cross: $$os/$$arch -tags $(PRODUCTION_TAGS)"; \
			GOOS=$$os GOARCH=$$arch $(GO) build -tags $(PRODUCTION_TAGS) -o /dev/null ./cmd/vrsky; \
		fi; \
	done

## dist: the release files in dist/: vrsky for every CROSS_TARGETS system,
## the production build for the linux ones, and their SHA256SUMS.
dist: ui
	rm -rf dist && mkdir -p dist
	@set -e; for t in $(CROSS_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; \
		echo "dist: vrsky-$$os-$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o dist/vrsky-$$os-$$arch ./cmd/vrsky; \
		if [ "$$os" = linux ]; then \
			echo "dist: vrsky-production-$$os-$$arch"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -tags $(PRODUCTION_TAGS) -ldflags "-s -w $(LDFLAGS)" -o dist/vrsky-production-$$os-$$arch ./cmd/vrsky; \
		fi; \
	done
	cd dist && sha256sum vrsky-* > SHA256SUMS

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist

## ui: build the admin UI into ui/dist (embedded by the binary) when its
## sources are newer than the last build; npm ci only when the lockfile changed.
UI_SOURCES := $(shell find ui/src ui/public ui/docs ui/scripts -type f 2>/dev/null) \
	ui/index.html ui/package.json ui/vite.config.ts ui/tsconfig.json ui/openapi.json
ui: ui/dist/app/index.html
ui/node_modules/.package-lock.json: ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
ui/dist/app/index.html: ui/node_modules/.package-lock.json $(UI_SOURCES)
	cd ui && npm run build

## openapi-lint: lint the API's OpenAPI document (ui/openapi.json) with
## Redocly CLI's recommended rules (tools/openapi-lint); npm ci only when its
## lockfile changed.
openapi-lint: tools/openapi-lint/node_modules/.package-lock.json
	cd tools/openapi-lint && npm run --silent lint
tools/openapi-lint/node_modules/.package-lock.json: tools/openapi-lint/package-lock.json
	cd tools/openapi-lint && npm ci --no-audit --no-fund

## ui-test: the UI's unit tests (Vitest) and its end-to-end suite, which
## builds the binary, starts `vrsky dev` and drives chromium.
ui-test: ui/node_modules/.package-lock.json
	cd ui && npm test
	cd ui && npm run e2e
