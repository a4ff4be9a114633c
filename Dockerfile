# syntax=docker/dockerfile:1
#
# authgate's image, for your own builds (the release workflow builds the
# published one from this file):
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t authgate:dev .
#
# The builder runs on the build machine's own platform and cross-compiles
# for each target platform with cargo's --target, so no emulation is
# needed. The binary is statically linked (glibc with +crt-static; the DNS
# and /etc/hosts lookups it needs are built into glibc since 2.34), and the
# final image is FROM scratch: the binary, Debian's CA bundle and a
# passwd/group naming user 65532. No shell, no package manager.
# `make image` builds the same image offline, without a daemon
# (scripts/image.sh).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ARG BUILDARCH
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The target triple and its C compiler (ring builds C): the image's own gcc
# for a native build, else Debian's cross gcc and static C library. Versions
# are those of the Debian release the rust image is built on (pinning them
# would break at its next point release).
# hadolint ignore=DL3008
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-gnu; gnu=x86_64-linux-gnu; gcc_pkg=gcc-x86-64-linux-gnu ;; \
      arm64) target=aarch64-unknown-linux-gnu; gnu=aarch64-linux-gnu; gcc_pkg=gcc-aarch64-linux-gnu ;; \
      *) echo "unsupported TARGETARCH=$TARGETARCH" >&2; exit 1 ;; \
    esac; \
    cc=gcc; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "$gcc_pkg" "libc6-dev-${TARGETARCH}-cross"; \
      rm -rf /var/lib/apt/lists/*; \
      cc="${gnu}-gcc"; \
    fi; \
    rustup target add "$target"; \
    echo "$target" > /cross.target; \
    { echo "export CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER=$cc"; \
      echo "export CC_$(echo "$target" | tr '-' '_')=$cc"; } > /cross.env
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,id=authgate-target-${TARGETARCH},sharing=locked \
    set -eux; \
    target="$(cat /cross.target)"; \
    . /cross.env; \
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" --bin authgate; \
    mkdir -p /out/etc/ssl/certs; \
    cp "target/$target/release/authgate" /out/authgate; \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt; \
    printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' > /out/etc/passwd; \
    printf 'nonroot:x:65532:\n' > /out/etc/group

FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="authgate" \
      org.opencontainers.image.description="Kubernetes operator and authenticating reverse proxy that puts single sign-on in front of internal services" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/authgate"]
