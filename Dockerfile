# syntax=docker/dockerfile:1
#
# The wxoidc image: one static binary (CGO_ENABLED=0; SQLite is pure Go) on
# distroless/static, run as a non-root user (65532), with nothing to write
# on the root filesystem, so `docker run --read-only` and Kubernetes'
# readOnlyRootFilesystem work. See docs/deploy.md.
#
#   docker build -t wxoidc \
#     --build-arg VERSION=v0.4.0 \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg COMMIT_TIME=$(TZ=UTC git show -s --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd) .
#   docker run --read-only -p 8080:8080 -e WXOIDC_SECRET=… -e WXOIDC_STORAGE_DSN=postgres://… \
#     -v "$PWD/wxoidc.yaml:/etc/wxoidc/wxoidc.yaml:ro" wxoidc
#
# The entrypoint is `wxoidc serve`; the default arguments are
# `--config /etc/wxoidc/wxoidc.yaml` (replace them to pass others, e.g.
# `--check`). Other commands: `--entrypoint /usr/local/bin/wxoidc … migrate`.
#
# Health: there is deliberately no HEALTHCHECK (the orchestrator probes, and
# Docker's HEALTHCHECK would need a shell or curl in the image). On the
# public port (8080):
#   GET /healthz  200 while the process serves requests      → liveness
#   GET /readyz   200 when storage answers and signing keys   → readiness
#                 are loaded, 503 otherwise
#
# Storage: use PostgreSQL (WXOIDC_STORAGE_DSN). For a single SQLite
# instance instead, mount a writable volume at /var/lib/wxoidc (the default
# DSN is sqlite:///var/lib/wxoidc/wxoidc.db); the directory is owned by the
# runtime user.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=""
ARG REVISION=""
ARG COMMIT_TIME=""
# .ci/run builds the binary with this same command and checks the example
# configuration of docs/deploy.md with it; keep the two in step.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION} -X main.commitTime=${COMMIT_TIME}" -o /out/wxoidc ./cmd/wxoidc
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wxoidc /usr/local/bin/wxoidc
COPY --from=build --chown=65532:65532 /out/data /var/lib/wxoidc
USER 65532:65532
ENV WXOIDC_HTTP_ADDR=:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/wxoidc", "serve"]
CMD ["--config", "/etc/wxoidc/wxoidc.yaml"]
