# syntax=docker/dockerfile:1
#
# kinehook container image: a static binary on scratch, run as a non-root
# user, state in /data.
#
#   docker build -t kinehook --build-arg VERSION=$(git describe --tags --always) \
#       --build-arg COMMIT=$(git rev-parse --short HEAD) .
#   docker run -p 8080:8080 -v kinehook-data:/data -e KINEHOOK_ADMIN_KEY=... kinehook
#
# cmd/kinehook/packaging_test.go runs this file's `go build` line and CMD
# against the binary it builds: keep them one command each.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG TARGETOS
ARG TARGETARCH
# modernc.org/sqlite is pure Go: CGO_ENABLED=0 gives a static binary for any
# target platform, cross-compiled on the build platform.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w -X github.com/kinehook/kinehook/internal/buildinfo.version=${VERSION} -X github.com/kinehook/kinehook/internal/buildinfo.commit=${COMMIT}" -o /out/kinehook ./cmd/kinehook
# The final image has no shell: make the user entries and the data
# directory (owned by that user, 0700) here.
RUN mkdir -p /out/etc /out/data && chmod 0700 /out/data && chown 65532:65532 /out/data \
    && echo 'kinehook:x:65532:65532:kinehook:/data:/sbin/nologin' > /out/etc/passwd \
    && echo 'kinehook:x:65532:' > /out/etc/group

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="kinehook" \
      org.opencontainers.image.description="Webhook platform for video platforms" \
      org.opencontainers.image.source="https://github.com/kinehook/kinehook" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# CA certificates: deliveries to https:// endpoints and TLS to PostgreSQL.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /data
COPY --from=build /out/kinehook /usr/local/bin/kinehook
ENV PATH=/usr/local/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /data
# The embedded store (kinehook.db) and its generated encryption.key live
# here; with --database postgres://... it stays empty.
VOLUME ["/data"]
EXPOSE 8080
# `kinehook healthcheck` GETs http://127.0.0.1:8080/healthz (or
# KINEHOOK_HEALTHCHECK_URL when --addr is changed) and exits 0 or 1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["kinehook", "healthcheck"]
# SIGTERM (docker stop) finishes in-flight deliveries within
# --shutdown-timeout (30s): give `docker stop` a --time above it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["kinehook"]
CMD ["serve", "--addr", ":8080", "--data", "/data"]
