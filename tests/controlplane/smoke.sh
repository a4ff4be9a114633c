#!/usr/bin/env bash
# smoke.sh — end-to-end check of cp.sh: start, fake node Ready, Deployment Available,
# garbage collection, custom pod status left alone by kwok, apiserver restart, stop.
#   tests/controlplane/smoke.sh [STATE_DIR]    (default: a fresh temp dir)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CP="$HERE/cp.sh"
STATE="${1:-}"
own_state=0
if [[ -z "$STATE" ]]; then STATE="$(mktemp -d -t authgate-cp.XXXXXX)"; own_state=1; fi
eval "$("$CP" env)"
passed=0
failed=0

ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

cleanup() { "$CP" stop "$STATE" > /dev/null 2>&1 || true; }
trap cleanup EXIT

"$CP" build
KCFG="$("$CP" start "$STATE")"
k() { "$CP_BIN/kubectl" --kubeconfig "$KCFG" "$@"; }

if k wait --for=condition=Ready node/kwok-node-0 --timeout=30s > /dev/null; then ok "fake node Ready"; else bad "fake node not Ready"; fi

k create namespace smoke > /dev/null
k -n smoke create deployment x --image=example.invalid/x:1 --replicas=2 > /dev/null
if k -n smoke wait --for=condition=Available deployment/x --timeout=60s > /dev/null; then
  ok "deployment Available"
else
  bad "deployment not Available"
fi

k -n smoke delete deployment x --cascade=background --wait=true > /dev/null
gone=0
for _ in $(seq 1 60); do
  if [[ -z "$(k -n smoke get replicasets,pods -l app=x -o name)" ]]; then gone=1; break; fi
  sleep 1
done
if ((gone)); then ok "garbage collector removed ReplicaSet and pods"; else bad "ReplicaSet/pods left behind"; fi

k -n smoke apply -f - > /dev/null << 'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: custom
  annotations:
    kwok.x-k8s.io/status: custom
spec:
  containers:
  - name: c
    image: example.invalid/x:1
EOF
k -n smoke wait --for=jsonpath='{.spec.nodeName}'=kwok-node-0 pod/custom --timeout=30s > /dev/null
k -n smoke patch pod custom --subresource=status --type=merge -p \
  '{"status":{"phase":"Running","conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"False","reason":"Test"}]}}' > /dev/null
sleep 5
ready="$(k -n smoke get pod custom -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
if [[ "$ready" == False ]]; then ok "custom pod keeps Ready=False"; else bad "custom pod Ready=$ready"; fi
if k -n smoke delete pod custom --timeout=30s > /dev/null; then ok "custom pod deletion completes"; else bad "custom pod stuck deleting"; fi

"$CP" restart-apiserver "$STATE"
k -n smoke create deployment y --image=example.invalid/y:1 --replicas=1 > /dev/null
if k -n smoke wait --for=condition=Available deployment/y --timeout=60s > /dev/null; then
  ok "controllers work after apiserver restart"
else
  bad "deployment not Available after apiserver restart"
fi

"$CP" stop "$STATE"
# Every component's command line mentions a path inside STATE (data dir, kubeconfig, certs).
# shellcheck disable=SC2009 # fixed-string match on whole command lines
if ps -eo args= | grep -v grep | grep -qF -- "$STATE/"; then bad "processes remain after stop"; else ok "no processes remain after stop"; fi

echo "$passed passed, $failed failed"
if ((failed == 0 && own_state)); then rm -rf "$STATE"; else echo "state and logs kept in $STATE"; fi
((failed == 0))
