#!/usr/bin/env bash
# Installs what the tests need on a fresh machine; a no-op when present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v lua5.4 >/dev/null 2>&1 || need_apt+=(lua5.4)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if ((${#need_apt[@]})); then
  echo "[setup] installing ${need_apt[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
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
