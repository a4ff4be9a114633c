#!/usr/bin/env bash
# bench/controller-scale.sh — controller scale benchmark (issue 3, item 7).
#
# Starts a private local control plane (tests/controlplane/cp.sh: kube-apiserver,
# etcd, controller-manager, scheduler, kwok), installs the CRDs, builds the
# release controller and runs bench/controller_scale.rs, which for 1, 100 and
# 1000 AuthPolicies over 10 namespaces reports apply→Ready latency (p50/p99),
# the controller's peak memory, writes per reconcile and the writes during a
# steady-state window. Not a timed test: run it by hand and record the figures
# in docs/benchmarks.md.
#
#   bench/controller-scale.sh                    # full run (5-minute steady windows)
#   STEADY_SECONDS=60 bench/controller-scale.sh  # quick run
#   ROUNDS=100 STEADY_SECONDS=30 bench/controller-scale.sh
#
# Environment:
#   ROUNDS                 policy counts, comma-separated (default 1,100,1000)
#   NAMESPACES             namespaces the policies are spread over (default 10)
#   CONCURRENCY            create calls in flight (default 32)
#   RESYNC_SECONDS         controller --resync-seconds (default 30)
#   STEADY_SECONDS         steady-state window per round (default 300)
#   READY_TIMEOUT_SECONDS  per round (default 900)
#   BENCH_STATE            control-plane state dir (default: a fresh temp dir, removed after)
#   BENCH_OUT              results dir (default .state/bench/controller-scale-<UTC time>)
#   BENCH_KEEP_CP=1        leave the control plane running afterwards
#   BENCH_KCM_QPS=N        profiling only: restart kube-controller-manager with
#                          --kube-api-qps=N --kube-api-burst=2N (default: stock 20/30),
#                          to separate its client-side throttling from our controller's time
#   CP_*_PORT              control-plane ports; defaults below avoid the test suite's
#   CARGO_TARGET_DIR       default $HOME/.cache/authgate/target
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/authgate/target}"
export CP_APISERVER_PORT="${CP_APISERVER_PORT:-19443}"
export CP_ETCD_PORT="${CP_ETCD_PORT:-15379}"
export CP_KCM_PORT="${CP_KCM_PORT:-19444}"
export CP_SCHEDULER_PORT="${CP_SCHEDULER_PORT:-19445}"
export CP_KWOK_PORT="${CP_KWOK_PORT:-19446}"
export ROUNDS="${ROUNDS:-1,100,1000}"
export NAMESPACES="${NAMESPACES:-10}"
export CONCURRENCY="${CONCURRENCY:-32}"
export RESYNC_SECONDS="${RESYNC_SECONDS:-30}"
export STEADY_SECONDS="${STEADY_SECONDS:-300}"
export READY_TIMEOUT_SECONDS="${READY_TIMEOUT_SECONDS:-900}"

log() { printf '[bench] %s\n' "$*" >&2; }

CP="$ROOT/tests/controlplane/cp.sh"
eval "$("$CP" env)" # CP_BIN, CP_K8S_VERSION, ...
KUBECTL="$CP_BIN/kubectl"

OWN_STATE=0
if [[ -z "${BENCH_STATE:-}" ]]; then
  BENCH_STATE="$(mktemp -d "${TMPDIR:-/tmp}/authgate-bench-cp.XXXXXX")"
  OWN_STATE=1
fi
export BENCH_STATE
export BENCH_OUT="${BENCH_OUT:-$ROOT/.state/bench/controller-scale-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$BENCH_OUT"

cleanup() {
  local rc=$?
  # The bench stops its controller; if it was interrupted, stop it here (by its pid only).
  if [[ -f "$BENCH_OUT/controller.pid" ]]; then
    local pid; pid="$(cat "$BENCH_OUT/controller.pid")"
    if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "$BENCH_OUT/authgate"; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  fi
  # Keep the control plane's logs with the results.
  if [[ -d "$BENCH_STATE/logs" ]]; then
    cp -r "$BENCH_STATE/logs" "$BENCH_OUT/cp-logs" 2>/dev/null || true
  fi
  if [[ "${BENCH_KEEP_CP:-}" == 1 ]]; then
    log "control plane left running: $CP stop $BENCH_STATE"
  else
    "$CP" stop "$BENCH_STATE" || true
    if [[ "$OWN_STATE" == 1 ]]; then rm -rf "$BENCH_STATE"; fi
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the release controller and the bench (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release --bin authgate
BENCH_EXE="$(cargo bench --bench controller_scale --no-run --message-format=json \
  | sed -n 's/.*"executable":"\([^"]*controller_scale[^"]*\)".*/\1/p' | tail -1)"
[[ -x "$BENCH_EXE" ]] || { log "could not find the controller_scale bench executable"; exit 1; }
# Private copies: the shared target dir may be rebuilt by someone else mid-run.
cp "$CARGO_TARGET_DIR/release/authgate" "$BENCH_OUT/authgate"
cp "$BENCH_EXE" "$BENCH_OUT/controller_scale"
export BENCH_CONTROLLER_BIN="$BENCH_OUT/authgate"

log "starting the control plane in $BENCH_STATE (apiserver :$CP_APISERVER_PORT)"
KCFG="$("$CP" start "$BENCH_STATE")"
export BENCH_KUBECONFIG="$KCFG"
k() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }

k apply --server-side --force-conflicts -f crds/ > /dev/null
k wait --for=condition=Established --timeout=60s crd/identityproviders.authgate.dev crd/authpolicies.authgate.dev > /dev/null

# Every gateway Deployment has one replica, so the largest round needs that many pods
# on the fake node(s). kwok's fast node stage gives kwok-node-0 1M pods; if the node
# reports fewer than needed, raise its capacity through the status subresource.
max_round=0
IFS=',' read -ra rs <<< "$ROUNDS"
for r in "${rs[@]}"; do ((r > max_round)) && max_round=$r; done
need=$((max_round + 50))
pods="$(k get node kwok-node-0 -o jsonpath='{.status.allocatable.pods}')"
log "kwok-node-0 allocatable pods: $pods (need $need)"
case "$pods" in # a resource.Quantity: kwok's fast node stage says 1M
  *k) pods=$((${pods%k} * 1000)) ;;
  *M) pods=$((${pods%M} * 1000000)) ;;
esac
if [[ "$pods" =~ ^[0-9]+$ ]] && ((pods < need)); then
  k patch node kwok-node-0 --subresource=status --type=merge \
    -p "{\"status\":{\"capacity\":{\"pods\":\"$need\"},\"allocatable\":{\"pods\":\"$need\"}}}" > /dev/null
  log "raised kwok-node-0 pods capacity to $need"
fi

# Optional, for profiling: lift kube-controller-manager's client rate limit (20 QPS, burst 30
# by default), which is what paces Deployment→Available when hundreds of gateways roll out
# at once. cp.sh has no knob for it, so relaunch kcm the way cp.sh does (argv in
# args/<name>, pid = process group in pids/<name>.pid), so `cp.sh stop` still stops it.
if [[ -n "${BENCH_KCM_QPS:-}" ]]; then
  kcm_pid="$(cat "$BENCH_STATE/pids/kube-controller-manager.pid")"
  kill -TERM -- "-$kcm_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$kcm_pid" 2>/dev/null || break; sleep 0.1; done
  mapfile -d '' -t kcm_argv < "$BENCH_STATE/args/kube-controller-manager"
  kcm_argv+=("--kube-api-qps=$BENCH_KCM_QPS" "--kube-api-burst=$((BENCH_KCM_QPS * 2))")
  printf '%s\0' "${kcm_argv[@]}" > "$BENCH_STATE/args/kube-controller-manager"
  setsid "${kcm_argv[@]}" >> "$BENCH_STATE/logs/kube-controller-manager.log" 2>&1 < /dev/null &
  echo $! > "$BENCH_STATE/pids/kube-controller-manager.pid"
  for _ in $(seq 300); do curl -skf "https://127.0.0.1:$CP_KCM_PORT/healthz" > /dev/null 2>&1 && break; sleep 0.2; done
  log "kube-controller-manager restarted with --kube-api-qps=$BENCH_KCM_QPS --kube-api-burst=$((BENCH_KCM_QPS * 2))"
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet -- src 2>/dev/null || echo ' (src/ modified)')"
  echo "kubernetes: $CP_K8S_VERSION (server $(k version -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | tail -1)), etcd $CP_ETCD_VERSION, kwok $CP_KWOK_VERSION"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  if [[ -n "${BENCH_KCM_QPS:-}" ]]; then
    echo "kube-controller-manager client: --kube-api-qps=$BENCH_KCM_QPS --kube-api-burst=$((BENCH_KCM_QPS * 2)) (profiling run)"
  else
    echo "kube-controller-manager client: stock (20 QPS, burst 30)"
  fi
  echo "command: ${BENCH_KCM_QPS:+BENCH_KCM_QPS=$BENCH_KCM_QPS }ROUNDS=$ROUNDS NAMESPACES=$NAMESPACES CONCURRENCY=$CONCURRENCY RESYNC_SECONDS=$RESYNC_SECONDS STEADY_SECONDS=$STEADY_SECONDS bench/controller-scale.sh"
} | tee "$BENCH_OUT/meta.txt" >&2

log "running the benchmark (results in $BENCH_OUT)"
"$BENCH_OUT/controller_scale" 2>&1 | tee "$BENCH_OUT/output.txt"
exit "${PIPESTATUS[0]}"
