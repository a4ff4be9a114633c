#!/usr/bin/env bash
# cp.sh — build and run a real local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok) for authgate's integration tests.
#
#   cp.sh build                     build binaries into the cache (no-op when warm)
#   cp.sh env                       print CP_BIN=<cache bin dir> (and versions)
#   cp.sh start STATE_DIR           start everything; prints the kubeconfig path last
#   cp.sh stop STATE_DIR            stop everything (idempotent)
#   cp.sh restart-apiserver STATE_DIR
#                                   stop kube-apiserver, wait, start it again
#   cp.sh status STATE_DIR          list components; exit 1 if any is not running
#
# start writes STATE_DIR/{kubeconfig,logs/*.log,pids/*.pid,args/*,pki/,etcd/,kwok.yaml}.
# Environment:
#   AUTHGATE_CACHE     cache root (default $HOME/.cache/authgate)
#   CP_APISERVER_PORT  kube-apiserver secure port (default 16443)
#   CP_ETCD_PORT       etcd client port (default 12379; peer port = CP_ETCD_PORT+1)
#   CP_KCM_PORT        kube-controller-manager secure port (default 16444)
#   CP_SCHEDULER_PORT  kube-scheduler secure port (default 16445)
#   CP_KWOK_PORT       kwok metrics/health port (default 16446)
#   CP_TIMEOUT         seconds to wait for each component to become ready (default 90)
#   CP_STOP_GRACE      seconds between SIGTERM and SIGKILL when stopping (default 20)
#   CP_RESTART_PAUSE   seconds restart-apiserver waits while it is down (default 2)
#   CP_KCM_CONTROLLERS override kube-controller-manager --controllers
#   CP_KEEP_ON_FAILURE=1  leave already-started components running if start fails
#   GO                 go command (default: `go` on PATH, else /usr/local/go/bin/go)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

K8S_VERSION="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$HERE/go.mod")"
ETCD_VERSION="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' "$HERE/go.mod")"
KWOK_VERSION="v0.8.0"

CACHE_ROOT="${AUTHGATE_CACHE:-$HOME/.cache/authgate}"
CP_BIN="$CACHE_ROOT/controlplane/$K8S_VERSION/bin"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
STAMP="k8s=$K8S_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION"

APISERVER_PORT="${CP_APISERVER_PORT:-16443}"
ETCD_PORT="${CP_ETCD_PORT:-12379}"
ETCD_PEER_PORT="$((ETCD_PORT + 1))"
KCM_PORT="${CP_KCM_PORT:-16444}"
SCHEDULER_PORT="${CP_SCHEDULER_PORT:-16445}"
KWOK_PORT="${CP_KWOK_PORT:-16446}"
TIMEOUT="${CP_TIMEOUT:-90}"
STOP_GRACE="${CP_STOP_GRACE:-20}"
SERVICE_CIDR="10.96.0.0/16"
NODE_NAME="kwok-node-0"

log() { printf '[cp] %s\n' "$*" >&2; }
die() { printf '[cp] ERROR: %s\n' "$*" >&2; exit 1; }

find_go() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
  die "no go toolchain found (set GO=/path/to/go)"
}

# ---------------------------------------------------------------- build

is_warm() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$CP_BIN/$b" ]] || return 1; done
  [[ -f "$CP_BIN/.stamp" && "$(cat "$CP_BIN/.stamp")" == "$STAMP" ]]
}

cmd_build() {
  if is_warm; then
    log "binaries up to date in $CP_BIN ($STAMP)"
    return 0
  fi
  local go; go="$(find_go)"
  local start=$SECONDS
  local tmp="$CACHE_ROOT/controlplane/$K8S_VERSION/bin.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  # shellcheck disable=SC2064 # expand $tmp now: it is a local
  trap "rm -rf '$tmp'" EXIT

  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local x=""
  local kv
  for kv in "gitVersion=$K8S_VERSION" "gitMajor=1" "gitMinor=$minor" "gitTreeState=clean" \
            "buildDate=1970-01-01T00:00:00Z"; do
    x+=" -X k8s.io/client-go/pkg/version.$kv -X k8s.io/component-base/version.$kv"
  done

  log "building Kubernetes $K8S_VERSION + etcd $ETCD_VERSION into $CP_BIN (cold build: tens of minutes on 2 cores)"
  (
    cd "$HERE"
    "$go" build -trimpath -buildvcs=false -ldflags="-s -w$x" -o "$tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl
    "$go" build -trimpath -buildvcs=false -ldflags="-s -w" -o "$tmp/etcd" ./etcd
  )
  log "building kwok $KWOK_VERSION"
  (
    cd "$tmp"  # outside our module: go install pkg@version uses kwok's own go.mod
    GOBIN="$tmp" "$go" install -trimpath -buildvcs=false -ldflags="-s -w" \
      "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  )
  echo "$STAMP" > "$tmp/.stamp"
  rm -rf "$CP_BIN"
  mv "$tmp" "$CP_BIN"
  trap - EXIT
  log "built in $((SECONDS - start))s: $CP_BIN"
}

cmd_env() {
  echo "CP_BIN=$CP_BIN"
  echo "CP_K8S_VERSION=$K8S_VERSION"
  echo "CP_ETCD_VERSION=$ETCD_VERSION"
  echo "CP_KWOK_VERSION=$KWOK_VERSION"
}

# ---------------------------------------------------------------- runtime helpers

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok) # start order
KCM_CONTROLLERS="${CP_KCM_CONTROLLERS:-garbage-collector-controller,namespace-controller,deployment-controller,replicaset-controller,serviceaccount-controller,serviceaccount-token-controller}"
# (canonical names of garbagecollector,namespace,deployment,replicaset,serviceaccount,serviceaccount-token)

state_init() { # STATE_DIR [create]
  [[ -n "${1:-}" ]] || die "missing STATE_DIR argument"
  if [[ "${2:-}" == create ]]; then mkdir -p "$1"; fi
  STATE="$(cd "$1" 2>/dev/null && pwd)" || return 1
  PKI="$STATE/pki"
  LOGS="$STATE/logs"
  PIDS="$STATE/pids"
  ARGS="$STATE/args"
  KCFG="$STATE/kubeconfig"
}

pid_of() { [[ -f "$PIDS/$1.pid" ]] && cat "$PIDS/$1.pid"; }

# Live (non-zombie) processes in process group $1?
group_alive() { ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ {found = 1} END {exit !found}'; }

# Is component $1 running (its pid is alive and is still the binary we started)?
is_running() {
  local pid argv0
  pid="$(pid_of "$1")" || return 1
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  argv0="$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | head -n 1)"
  [[ -n "$argv0" && -f "$ARGS/$1" && "$argv0" == "$(tr '\0' '\n' < "$ARGS/$1" | head -n 1)" ]]
}

save_args() { # NAME ARGV...
  local name=$1; shift
  mkdir -p "$ARGS"
  printf '%s\0' "$@" > "$ARGS/$name"
}

# Start component $1 from its saved argv, in its own session/process group.
launch() {
  local name=$1 pid
  local -a argv
  mapfile -d '' -t argv < "$ARGS/$name"
  mkdir -p "$LOGS" "$PIDS"
  printf -- '---- %s cp.sh starting %s\n' "$(date -u +%FT%TZ)" "${argv[*]}" >> "$LOGS/$name.log"
  setsid "${argv[@]}" >> "$LOGS/$name.log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$PIDS/$name.pid"
  # Let setsid exec the binary, so is_running (which compares argv[0]) is meaningful.
  local i
  for ((i = 0; i < 50; i++)); do
    is_running "$name" && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  log "started $name (pid $pid, log $LOGS/$name.log)"
}

stop_component() {
  local name=$1 pid i
  pid="$(pid_of "$name" || true)"
  if [[ -n "$pid" ]] && { is_running "$name" || group_alive "$pid"; }; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE * 10; i++)); do group_alive "$pid" || break; sleep 0.1; done
    if group_alive "$pid"; then
      log "$name (pgid $pid) still alive after ${STOP_GRACE}s; sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do group_alive "$pid" || break; sleep 0.1; done
    fi
    wait "$pid" 2>/dev/null || true # reap if it is our own child
    log "stopped $name"
  fi
  rm -f "$PIDS/$name.pid"
}

stop_all() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop_component "${COMPONENTS[$i]}"; done
}

FAIL_STOPS_ALL=0
fail_component() { # NAME MESSAGE
  printf '[cp] ERROR: %s %s\n' "$1" "$2" >&2
  printf '[cp] ---- last 50 lines of %s ----\n' "$LOGS/$1.log" >&2
  tail -n 50 "$LOGS/$1.log" >&2 || true
  printf '[cp] ---- end of %s ----\n' "$LOGS/$1.log" >&2
  if [[ "$FAIL_STOPS_ALL" == 1 && "${CP_KEEP_ON_FAILURE:-}" != 1 ]]; then
    log "stopping the components started so far (set CP_KEEP_ON_FAILURE=1 to keep them)"
    stop_all
  fi
  exit 1
}

wait_for() { # NAME WHAT CHECK_CMD...
  local name=$1 what=$2
  shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" > /dev/null 2>&1; do
    is_running "$name" || fail_component "$name" "exited before becoming ready ($what)"
    ((SECONDS < deadline)) || fail_component "$name" "not ready after ${TIMEOUT}s ($what)"
    sleep 0.5
  done
  log "$name ready ($what)"
}

port_busy() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

admin_token() { cat "$PKI/admin.token"; }

check_etcd() { curl -sf "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
check_apiserver() {
  local port
  port="$(sed -n 's|^ *server: https://127.0.0.1:\([0-9]*\)$|\1|p' "$KCFG")"
  curl -sf --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(admin_token)" \
    "https://127.0.0.1:$port/readyz" | grep -qx ok
}
check_https_healthz() { curl -skf "https://127.0.0.1:$1/healthz" | grep -qx ok; }
check_kwok() { curl -sf "http://127.0.0.1:$KWOK_PORT/healthz" | grep -qx ok; }

gen_pki() {
  mkdir -p "$PKI"
  (
    cd "$PKI"
    if [[ ! -f ca.crt ]]; then
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
        -subj "/CN=authgate-test-ca" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2> /dev/null
    fi
    if [[ ! -f apiserver.crt ]]; then
      openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
        -subj "/CN=kube-apiserver" 2> /dev/null
      printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
        > apiserver.ext
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -days 3650 \
        -set_serial "0x$(openssl rand -hex 12)" -extfile apiserver.ext -out apiserver.crt 2> /dev/null
      rm -f apiserver.csr
    fi
    if [[ ! -f sa.key ]]; then
      openssl genrsa -out sa.key 2048 2> /dev/null
      openssl rsa -in sa.key -pubout -out sa.pub 2> /dev/null
    fi
    if [[ ! -f admin.token ]]; then
      openssl rand -hex 32 > admin.token
    fi
    # token,user,uid,"group1,group2"
    printf '%s,admin,admin,"system:masters"\n' "$(cat admin.token)" > tokens.csv
    chmod 600 ./*.key admin.token tokens.csv
  )
}

write_kubeconfig() {
  local tmp="$KCFG.tmp"
  cat > "$tmp" << KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: authgate-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: admin
  user:
    token: $(admin_token)
contexts:
- name: authgate-test
  context:
    cluster: authgate-test
    user: admin
    namespace: default
current-context: authgate-test
KUBECONFIG
  chmod 600 "$tmp"
  mv "$tmp" "$KCFG"
}

kubectl_() { "$CP_BIN/kubectl" --kubeconfig "$KCFG" "$@"; }

# ---------------------------------------------------------------- start / stop / restart

cmd_start() {
  state_init "${1:-}" create || die "cannot use STATE_DIR '${1:-}'"
  command -v curl > /dev/null || die "curl is required"
  command -v openssl > /dev/null || die "openssl is required"
  local c p
  for c in "${COMPONENTS[@]}"; do
    if is_running "$c"; then die "$c is already running for $STATE; run '$0 stop $STATE' first"; fi
  done
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT"; do
    if port_busy "$p"; then die "127.0.0.1:$p is already in use (see CP_*_PORT env vars)"; fi
  done

  cmd_build
  mkdir -p "$LOGS" "$PIDS"
  # shellcheck disable=SC2174 # STATE exists; only etcd/ needs 0700
  mkdir -p -m 700 "$STATE/etcd"
  gen_pki
  write_kubeconfig
  cp "$HERE/kwok-stages.yaml" "$STATE/kwok.yaml"
  FAIL_STOPS_ALL=1

  save_args etcd "$CP_BIN/etcd" \
    --name=authgate \
    --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="authgate=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync=true \
    --log-level=warn
  launch etcd
  wait_for etcd "GET /health" check_etcd

  # --disable-admission-plugins=TaintNodesByCondition: there is no node-lifecycle
  #   controller to lift the node.kubernetes.io/not-ready taint, so keep the node taint-free.
  # --shutdown-send-retry-after=true: on SIGTERM wait only 2s (not 60s) for open
  #   watches, so stop/restart-apiserver are quick yet graceful.
  # --endpoint-reconciler-type=none: 127.0.0.1 is not a valid Endpoints address.
  save_args kube-apiserver "$CP_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" \
    --cert-dir="$PKI/apiserver" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --token-auth-file="$PKI/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --endpoint-reconciler-type=none \
    --disable-admission-plugins=TaintNodesByCondition \
    --shutdown-send-retry-after=true \
    --allow-privileged=true
  launch kube-apiserver
  wait_for kube-apiserver "GET /readyz" check_apiserver

  save_args kube-controller-manager "$CP_BIN/kube-controller-manager" \
    --kubeconfig="$KCFG" \
    --authentication-kubeconfig="$KCFG" \
    --authorization-kubeconfig="$KCFG" \
    --authentication-skip-lookup=true \
    --bind-address=127.0.0.1 \
    --secure-port="$KCM_PORT" \
    --cert-dir="$PKI/kube-controller-manager" \
    --leader-elect=false \
    --controllers="$KCM_CONTROLLERS" \
    --root-ca-file="$PKI/ca.crt" \
    --service-account-private-key-file="$PKI/sa.key" \
    --use-service-account-credentials=false
  launch kube-controller-manager

  save_args kube-scheduler "$CP_BIN/kube-scheduler" \
    --kubeconfig="$KCFG" \
    --authentication-kubeconfig="$KCFG" \
    --authorization-kubeconfig="$KCFG" \
    --authentication-skip-lookup=true \
    --bind-address=127.0.0.1 \
    --secure-port="$SCHEDULER_PORT" \
    --cert-dir="$PKI/kube-scheduler" \
    --leader-elect=false
  launch kube-scheduler

  save_args kwok "$CP_BIN/kwok" \
    --kubeconfig="$KCFG" \
    --config="$STATE/kwok.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 \
    --cidr=10.244.0.0/16 \
    --node-lease-duration-seconds=40 \
    --server-address="127.0.0.1:$KWOK_PORT"
  launch kwok

  wait_for kube-controller-manager "GET /healthz" check_https_healthz "$KCM_PORT"
  wait_for kube-scheduler "GET /healthz" check_https_healthz "$SCHEDULER_PORT"
  wait_for kwok "GET /healthz" check_kwok

  kubectl_ apply -f - > /dev/null << NODE || fail_component kube-apiserver "rejected the fake Node"
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: $NODE_NAME
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
spec: {}
NODE
  wait_for kwok "node/$NODE_NAME Ready" kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
  wait_for kube-controller-manager "serviceaccount default/default exists" \
    kubectl_ get serviceaccount default --namespace default
  FAIL_STOPS_ALL=0

  log "control plane is up (state: $STATE)"
  echo "$KCFG"
}

cmd_stop() {
  # A missing STATE_DIR means there is nothing to stop.
  state_init "${1:-}" || { log "nothing to stop: ${1:-} does not exist"; return 0; }
  stop_all
  log "all components stopped ($STATE)"
}

cmd_restart_apiserver() {
  state_init "${1:-}" || die "STATE_DIR '${1:-}' does not exist"
  [[ -f "$ARGS/kube-apiserver" ]] || die "no kube-apiserver was started in $STATE"
  stop_component kube-apiserver
  sleep "${CP_RESTART_PAUSE:-2}"
  launch kube-apiserver
  wait_for kube-apiserver "GET /readyz" check_apiserver
  log "kube-apiserver restarted"
}

cmd_status() {
  state_init "${1:-}" || die "STATE_DIR '${1:-}' does not exist"
  local c rc=0
  for c in "${COMPONENTS[@]}"; do
    if is_running "$c"; then echo "$c running (pid $(pid_of "$c"))"; else echo "$c stopped"; rc=1; fi
  done
  return $rc
}

usage() {
  cat >&2 << USAGE
usage: $0 build
       $0 env
       $0 start STATE_DIR
       $0 stop STATE_DIR
       $0 restart-apiserver STATE_DIR
       $0 status STATE_DIR
USAGE
  exit 2
}

main() {
  local sub="${1:-}"
  shift || true
  case "$sub" in
    build) cmd_build ;;
    env) cmd_env ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart-apiserver) cmd_restart_apiserver "$@" ;;
    status) cmd_status "$@" ;;
    *) usage ;;
  esac
}

main "$@"
