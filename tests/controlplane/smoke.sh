#!/usr/bin/env bash
# smoke.sh — end-to-end check of cp.sh: start, fake node Ready, Deployment Available,
# garbage collection, custom pod status left alone by kwok, apiserver restart, stop.
#   tests/controlplane/smoke.sh [STATE_DIR]    (default: a fresh temp dir)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CP="$HERE/cp.sh"
STATE="${1:-$(mktemp -d -t authgate-cp.XXXXXX)}"
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
left=0
for f in "$STATE"/args/*; do
  bin="$(tr '\0' '\n' < "$f" | head -n 1)"
  if ps -eo args= | grep -qF -- "$bin "; then left=1; fi
done
if ((left)); then bad "processes remain after stop"; else ok "no processes remain after stop"; fi

echo "$passed passed, $failed failed"
((failed == 0))
