#!/usr/bin/env bash
# Installs what the tests need on a fresh machine; a no-op when present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v lua5.4 >/dev/null 2>&1 || need_apt+=(lua5.4)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# redis-server: the session store's tests start one per test on loopback;
# the package's service is never started (policy-rc.d below).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# nginx: only the binary (with http_auth_request_module), run by the tests
# themselves; the package's service is never started (policy-rc.d below).
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
if ((${#need_apt[@]})); then
  echo "[setup] installing ${need_apt[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  # Keep maintainer scripts from starting services (nginx's would otherwise
  # start on a machine with an init system); removed again afterwards.
  own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null || rc=$?
  ((own_policy)) && $SUDO rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || { echo "[setup] apt-get install ${need_apt[*]} failed ($rc)" >&2; exit "$rc"; }
fi
nginx_bin="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
if ! "$nginx_bin" -V 2>&1 | grep -q with-http_auth_request_module; then
  echo "[setup] $nginx_bin lacks http_auth_request_module" >&2
  exit 1
fi

# The real OpenID Provider (npm oidc-provider), pinned by the lockfile.
lock="$ROOT/tests/e2e/package-lock.json"
stamp="$ROOT/tests/e2e/node_modules/.authgate-lock"
if [[ ! -f "$stamp" ]] || ! cmp -s "$lock" "$stamp"; then
  echo "[setup] npm ci in tests/e2e" >&2
  (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$lock" "$stamp"
fi

# The control plane binaries (cached outside the repo, keyed by version).
bash "$ROOT/tests/controlplane/cp.sh" build

# GitOps tooling for tests/gitops.rs, built with Go into the cache (a no-op
# when cached): helm, and the kstatus program (tests/kstatus, the real
# sigs.k8s.io/cli-utils kstatus library) keyed by a hash of its sources.
# tests/gitops.rs computes the same paths (AUTHGATE_HELM / AUTHGATE_KSTATUS override).
TOOLS="${AUTHGATE_CACHE:-$HOME/.cache/authgate}/tools"
HELM_VERSION=v3.22.0
# Built as Helm's own release builds are: `helm template` and `helm lint`
# assume the Kubernetes version of helm's client-go (v0.37 -> 1.37) instead of
# the source default 1.20, which the chart's kubeVersion (>=1.28) refuses.
HELM_KUBE_MINOR=37
helm_stamp="$TOOLS/helm-$HELM_VERSION/.kube-1.$HELM_KUBE_MINOR"
if [[ ! -x "$TOOLS/helm-$HELM_VERSION/helm" || ! -f "$helm_stamp" ]]; then
  echo "[setup] go install helm $HELM_VERSION" >&2
  mkdir -p "$TOOLS"
  tmp="$(mktemp -d "$TOOLS/.helm.XXXXXX")"
  ldflags=""
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_KUBE_MINOR"
  done
  GOBIN="$tmp" go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$TOOLS/helm-$HELM_VERSION"
  mv -f "$tmp/helm" "$TOOLS/helm-$HELM_VERSION/helm"
  touch "$helm_stamp"
  rm -rf "$tmp"
fi
kstatus_hash="$(cd "$ROOT/tests/kstatus" && cat go.mod go.sum main.go | sha256sum | cut -c1-16)"
if [[ ! -x "$TOOLS/kstatus-$kstatus_hash/kstatus" ]]; then
  echo "[setup] go build tests/kstatus" >&2
  mkdir -p "$TOOLS/kstatus-$kstatus_hash"
  (cd "$ROOT/tests/kstatus" && go build -mod=readonly -trimpath -buildvcs=false -o "$TOOLS/kstatus-$kstatus_hash/kstatus.tmp" .)
  mv -f "$TOOLS/kstatus-$kstatus_hash/kstatus.tmp" "$TOOLS/kstatus-$kstatus_hash/kstatus"
fi

# Traefik for the forwardAuth tests, built from its Go module into the cache
# (a no-op when cached). tests/traefik is a wrapper module carrying Traefik's
# replace/exclude lines, which `go install ...@version` refuses; see
# tests/traefik/README.md. AUTHGATE_TRAEFIK overrides the path in tests.
TRAEFIK_VERSION="$(awk '$1 == "require" { $1 = ""; $0 = $0 } $1 == "github.com/traefik/traefik/v3" && $2 ~ /^v/ {print $2; exit}' "$ROOT/tests/traefik/go.mod")"
[[ -n "$TRAEFIK_VERSION" ]] || { echo "[setup] no Traefik version in tests/traefik/go.mod" >&2; exit 1; }
if [[ ! -x "$TOOLS/traefik-$TRAEFIK_VERSION/traefik" ]]; then
  echo "[setup] go build traefik $TRAEFIK_VERSION (cold: ~13 min on 2 cores)" >&2
  mkdir -p "$TOOLS/traefik-$TRAEFIK_VERSION"
  tmp="$TOOLS/traefik-$TRAEFIK_VERSION/traefik.tmp"
  v=github.com/traefik/traefik/v3/pkg/version
  if ! (cd "$ROOT/tests/traefik" && CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
        -ldflags="-s -w -X $v.Version=$TRAEFIK_VERSION -X $v.BuildDate=1970-01-01T00:00:00Z" \
        -o "$tmp" github.com/traefik/traefik/v3/cmd/traefik); then
    rm -f "$tmp"
    echo "[setup] building Traefik $TRAEFIK_VERSION from tests/traefik failed" >&2
    exit 1
  fi
  mv -f "$tmp" "$TOOLS/traefik-$TRAEFIK_VERSION/traefik"
fi
# Gateway API CRDs (standard channel) for tests/controller_expose.rs, taken
# from the sigs.k8s.io/gateway-api Go module; the test computes the same
# path (AUTHGATE_GATEWAY_API_CRDS overrides).
GATEWAY_API_VERSION=v1.3.0
crds="$TOOLS/gateway-api-$GATEWAY_API_VERSION"
if [[ ! -f "$crds/gateway.networking.k8s.io_httproutes.yaml" ]]; then
  echo "[setup] Gateway API $GATEWAY_API_VERSION CRDs" >&2
  dir="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  mkdir -p "$crds"
  cp "$dir"/config/crd/standard/*.yaml "$crds/"
fi
