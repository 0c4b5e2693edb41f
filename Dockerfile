# Builds the one vrsky binary; every role runs from this image.
FROM golang:1.26-bookworm AS build
ENV GOTOOLCHAIN=go1.27.3
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/vrsky ./cmd/vrsky
# /keys holds the NATS keys (docker-compose.yml): a volume mounted there
# starts owned by the user the roles run as.
RUN mkdir -p /out/keys

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vrsky /usr/local/bin/vrsky
COPY --from=build --chown=nonroot:nonroot /out/keys /keys
USER nonroot
ENTRYPOINT ["/usr/local/bin/vrsky"]
