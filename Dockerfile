# syntax=docker/dockerfile:1
#
# registrar's image: one static binary that runs every subcommand (serve,
# demo, publish, vendorsim).
#
#   docker build -t registrar .
#   docker run --rm -v $PWD/registrar.yaml:/etc/registrar/registrar.yaml:ro -p 127.0.0.1:9090:9090 registrar
#
# Final stage: Alpine, not distroless/scratch. The binary itself needs
# nothing but CA certificates (vendor APIs are HTTPS), but the orchestrator's
# health check has to run *inside* the container, and distroless and scratch
# have nothing to run it with. Alpine's BusyBox wget checks /readyz
# (compose.yaml) for a few MB more, without adding a health-check
# subcommand to the binary. The process still runs as a
# non-root user with a numeric UID (so Kubernetes' runAsNonRoot can verify
# it) and owns nothing but its working directory.

ARG GO_VERSION=1.26
ARG ALPINE_VERSION=3.22

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/registrar ./cmd/registrar

FROM alpine:${ALPINE_VERSION}
RUN apk add --no-cache ca-certificates \
 && addgroup -S -g 10001 registrar \
 && adduser -S -D -H -u 10001 -G registrar -h /var/lib/registrar registrar \
 && install -d -o registrar -g registrar -m 0700 /var/lib/registrar \
 && install -d -m 0755 /etc/registrar
COPY --from=build /out/registrar /usr/local/bin/registrar
# The working directory holds the embedded state (./registrar-data) when
# the configuration uses no external NATS or database.
WORKDIR /var/lib/registrar
USER 10001:10001
# The admin port: /healthz, /readyz, /metrics, /v1/registrations/{id}. The
# configuration must listen on 0.0.0.0:9090 for it to be reachable (the
# default, 127.0.0.1:9090, is only reachable from inside the container).
EXPOSE 9090
ENTRYPOINT ["registrar"]
CMD ["serve", "--config", "/etc/registrar/registrar.yaml"]
