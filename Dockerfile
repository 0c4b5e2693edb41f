# syntax=docker/dockerfile:1
# The production image: one vrsky binary, built with -tags vrsky_production
# (no vrsky dev, bench or demo, none of the servers they embed), on a
# distroless base, running as a non-root user. Every role (api, worker,
# runner, migrate, nats-config) runs from it.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t vrsky .
#
# The build stage runs on the builder's own platform and cross-compiles
# (the binary needs no cgo), so a multi-platform build needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ENV GOTOOLCHAIN=go1.27.3 CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# What `vrsky version` prints and the API's OpenAPI document gives as its
# version; the Makefile's VERSION, COMMIT and BUILD_DATE.
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -tags vrsky_production \
	-ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildDate=${BUILD_DATE}" \
	-o /out/vrsky ./cmd/vrsky
# /keys holds the NATS keys (docker-compose.yml): a volume mounted there
# starts owned by the user the roles run as.
RUN mkdir -p /out/keys

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="vrsky" \
	org.opencontainers.image.description="VRSky, a multi-tenant integration platform: the api, worker and runner roles" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/vrsky /usr/local/bin/vrsky
COPY --from=build --chown=nonroot:nonroot /out/keys /keys
USER nonroot
ENTRYPOINT ["/usr/local/bin/vrsky"]
