#!/usr/bin/env bash
# The one test command (`make test`): installs and starts everything the
# tests need, runs lint and every test, and stops what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/authgate/target}"

bash scripts/setup.sh

echo "[test] cargo fmt --check" >&2
cargo fmt --check
echo "[test] cargo clippy" >&2
cargo clippy --all-targets --quiet -- -D warnings

STATE="$(mktemp -d /tmp/authgate-cp.XXXXXX)"
cleanup() {
  bash tests/controlplane/cp.sh stop "$STATE" || true
  rm -rf "$STATE"
}
trap cleanup EXIT
bash tests/controlplane/cp.sh start "$STATE"
eval "$(bash tests/controlplane/cp.sh env)"

export AUTHGATE_TEST_KUBECONFIG="$STATE/kubeconfig"
export AUTHGATE_CP_STATE="$STATE"
export AUTHGATE_CP_SCRIPT="$ROOT/tests/controlplane/cp.sh"
export AUTHGATE_KUBECTL="$CP_BIN/kubectl"
export PATH="$CP_BIN:$PATH"

echo "[test] cargo test" >&2
cargo test --no-fail-fast -- "$@"
