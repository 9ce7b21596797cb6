# Production image: a static binary on an empty base, run as uid 65532.
#   docker build --build-arg VERSION=1.0.0 -t askeladden .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/askeladden:1.0.0 --push .
# Needs BuildKit (Docker 23+ by default, or DOCKER_BUILDKIT=1) for the
# cache mounts and the platform arguments.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=scratch

# The build stage runs on the machine that builds, whatever the target: Go
# cross-compiles a static binary, so no emulator (QEMU) is ever needed, and
# one Go image serves every target.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# No separate `go mod download`: it would fetch every module go.mod lists
# (air's and the tests' too), while the build fetches only the 18 it
# compiles, into a cache that outlives the image.
COPY go.mod go.sum *.go ./
ARG VERSION=dev
# Set by BuildKit from --platform (default: the builder's own).
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/askeladden . \
 && mkdir -p /out/etc \
 && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > /out/etc/passwd \
 && echo 'nonroot:x:65532:' > /out/etc/group

# The target's platform, and no RUN: nothing here executes at build time.
FROM ${RUNTIME_IMAGE}
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/askeladden /askeladden
USER 65532:65532
EXPOSE 8090
# No shell in the image: the binary probes itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/askeladden", "-healthcheck"]
ENTRYPOINT ["/askeladden"]
