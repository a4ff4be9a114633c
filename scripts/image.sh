#!/usr/bin/env bash
# `make image`: builds authgate's OCI image here, offline and without a
# container daemon, into an OCI layout (tests/image.rs unpacks and runs it).
#
# - A statically linked release binary (glibc, +crt-static) for
#   x86_64-unknown-linux-gnu, in its own target dir outside the repository,
#   keyed by the toolchain's version, so later builds are incremental.
# - Debian's CA bundle: the certificates the ca-certificates package ships
#   (not the host's /etc/ssl/certs, which may hold locally added CAs).
# - passwd/group naming user 65532, and nothing else: FROM scratch, as the
#   Dockerfile builds it.
# - Assembled with Debian's umoci, tagged with the chart's appVersion.
#
# Environment:
#   AUTHGATE_IMAGE_LAYOUT   the OCI layout (default: target/image/authgate-oci)
#   AUTHGATE_STATIC_TARGET  cargo target dir of the static build
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${AUTHGATE_CACHE:-$HOME/.cache/authgate}"
LAYOUT="${AUTHGATE_IMAGE_LAYOUT:-$ROOT/target/image/authgate-oci}"
TARGET=x86_64-unknown-linux-gnu
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

log() { echo "[image] $*" >&2; }

# umoci, and `file`, from Debian, as scripts/setup.sh installs packages.
need_apt=()
command -v umoci >/dev/null 2>&1 || need_apt+=(umoci)
command -v file >/dev/null 2>&1 || need_apt+=(file)
dpkg -s ca-certificates >/dev/null 2>&1 || need_apt+=(ca-certificates)
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The static binary. Its own target dir: RUSTFLAGS differ from the normal
# build's, and sharing one dir would rebuild everything on each switch.
rust_version="$(rustc --version | awk '{ split($2, v, "."); print v[1] "." v[2] }')"
STATIC_TARGET="${AUTHGATE_STATIC_TARGET:-$CACHE/target-static-rust$rust_version}"
log "cargo build --release --target $TARGET (+crt-static) into $STATIC_TARGET"
start=$SECONDS
CARGO_TARGET_DIR="$STATIC_TARGET" RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --quiet --target "$TARGET" --bin authgate
log "binary built in $((SECONDS - start))s"
BIN="$STATIC_TARGET/$TARGET/release/authgate"

# Static means no program interpreter and no needed libraries: the image
# has no ld.so and no libc to load.
if ! file -b "$BIN" | grep -Eq 'static(-pie)? linked|statically linked'; then
  log "$BIN is not statically linked: $(file -b "$BIN")"
  exit 1
fi
if ldd "$BIN" 2>&1 | grep -q '=>'; then
  log "$BIN needs shared libraries:"; ldd "$BIN" >&2
  exit 1
fi

# The chart's appVersion is the image's tag and version.
VERSION="$(awk -F'"' '/^appVersion:/ { print $2 }' charts/authgate/Chart.yaml)"
[[ -n "$VERSION" ]] || { log "no appVersion in charts/authgate/Chart.yaml"; exit 1; }
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# Every timestamp is the commit's, so the same commit gives the same layer.
EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
CREATED="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
CA_VERSION="$(dpkg-query -W -f='${Version}' ca-certificates)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/authgate-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The root filesystem, staged.
stage="$WORK/stage"
mkdir -p "$stage/etc/ssl/certs"
install -m 0755 "$BIN" "$stage/authgate"
# Debian's certificates, in the package's order; the same set
# update-ca-certificates writes with the default configuration.
dpkg -L ca-certificates | grep -E '^/usr/share/ca-certificates/.+\.crt$' | sort | xargs cat >"$stage$CA_BUNDLE"
chmod 0644 "$stage$CA_BUNDLE"
grep -q 'BEGIN CERTIFICATE' "$stage$CA_BUNDLE" || { log "empty CA bundle"; exit 1; }
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$stage/etc/passwd"
printf 'nonroot:x:65532:\n' >"$stage/etc/group"
chmod 0644 "$stage/etc/passwd" "$stage/etc/group"
find "$stage" -exec touch -h -d "@$EPOCH" {} +

# The image: an empty one, its rootfs filled with the stage, one layer.
layout="$WORK/authgate-oci"
umoci init --layout "$layout"
umoci new --image "$layout:$VERSION"
umoci unpack --rootless --image "$layout:$VERSION" "$WORK/bundle" >/dev/null
cp -a "$stage/." "$WORK/bundle/rootfs/"
touch -h -d "@$EPOCH" "$WORK/bundle/rootfs"
umoci repack --image "$layout:$VERSION" \
  --history.created "$CREATED" --history.created_by "scripts/image.sh" \
  --history.comment "authgate $VERSION, static binary and Debian ca-certificates $CA_VERSION" \
  "$WORK/bundle"
umoci config --image "$layout:$VERSION" \
  --created "$CREATED" --os linux --architecture amd64 \
  --config.entrypoint /authgate \
  --config.user 65532:65532 \
  --config.env "SSL_CERT_FILE=$CA_BUNDLE" \
  --config.label "org.opencontainers.image.title=authgate" \
  --config.label "org.opencontainers.image.description=$(awk -F'"' '/^description/ { print $2 }' Cargo.toml)" \
  --config.label "org.opencontainers.image.version=$VERSION" \
  --config.label "org.opencontainers.image.revision=$REVISION" \
  --config.label "org.opencontainers.image.created=$CREATED" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0" \
  --config.label "org.opencontainers.image.base.name=scratch" \
  --history.created "$CREATED" --history.created_by "scripts/image.sh: entrypoint, user, labels"
umoci gc --layout "$layout"

# Replace the previous layout in one step.
mkdir -p "$(dirname "$LAYOUT")"
rm -rf "$LAYOUT.old"
[[ -e "$LAYOUT" ]] && mv "$LAYOUT" "$LAYOUT.old"
mv "$layout" "$LAYOUT"
rm -rf "$LAYOUT.old"
log "built $LAYOUT:$VERSION ($(du -sh "$LAYOUT" | cut -f1)) in $((SECONDS))s"
