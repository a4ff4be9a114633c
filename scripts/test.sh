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
echo "[test] lint the release workflow and the Dockerfile" >&2
bash scripts/lint-release.sh
# The OCI image tests/image.rs unpacks and runs (its static build is cached).
echo "[test] make image" >&2
bash scripts/image.sh

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

export AUTHGATE_HELM="${AUTHGATE_HELM:-${AUTHGATE_CACHE:-$HOME/.cache/authgate}/tools/helm-v3.22.0/helm}"

LOG="$STATE/test.log"
status=0
echo "[test] cargo test (controller as cluster admin)" >&2
cargo test --no-fail-fast -- --skip controller_survives_an_apiserver_restart "$@" 2>&1 | tee "$LOG" || status=1
# The reconcile suite again, with the controller holding only the Helm
# chart's ServiceAccount token and RBAC: a missing permission fails here.
echo "[test] cargo test (controller under the chart's RBAC)" >&2
AUTHGATE_TEST_RBAC=chart cargo test --no-fail-fast --test controller --test controller_ha --test controller_expose --test controller_routes --test controller_revoke --test controller_device --test controller_api_token -- "$@" 2>&1 | tee -a "$LOG" || status=1

# Last, as it restarts the apiserver under everyone's feet.
echo "[test] cargo test (apiserver restart)" >&2
cargo test --no-fail-fast --test controller_restart -- "$@" 2>&1 | tee -a "$LOG" || status=1

# One closing line over every test binary and both passes.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$LOG"
exit "$status"
