#!/usr/bin/env bash
# `make demo`: a local control plane, the test OpenID Provider, the
# controller, and a gateway for a demo AuthPolicy. It signs a user in once
# headlessly as a smoke check, then prints a URL and credentials for a person.
# DEMO_EXIT=1 stops after the smoke check (used to test the demo itself).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/authgate/target}"
STATE="${AUTHGATE_DEMO_STATE:-/tmp/authgate-demo}"
OP_PORT="${DEMO_OP_PORT:-9000}"
GW_PORT="${DEMO_GATEWAY_PORT:-4180}"
GW_OPS_PORT="${DEMO_GATEWAY_OPS_PORT:-4181}"
UP_PORT="${DEMO_UPSTREAM_PORT:-4181}"
# Its own control-plane ports, so a demo and `make test` can run side by side.
export CP_APISERVER_PORT="${CP_APISERVER_PORT:-26443}" CP_ETCD_PORT="${CP_ETCD_PORT:-22379}" CP_KCM_PORT="${CP_KCM_PORT:-26444}" CP_SCHEDULER_PORT="${CP_SCHEDULER_PORT:-26445}" CP_KWOK_PORT="${CP_KWOK_PORT:-26446}"

bash scripts/setup.sh
cargo build --quiet
BIN="$CARGO_TARGET_DIR/debug/authgate"
eval "$(bash tests/controlplane/cp.sh env)"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash tests/controlplane/cp.sh stop "$STATE" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
bash tests/controlplane/cp.sh stop "$STATE" >/dev/null 2>&1 || true
rm -rf "$STATE"
mkdir -p "$STATE"
KUBECONFIG="$(bash tests/controlplane/cp.sh start "$STATE")"
export KUBECONFIG
k() { "$CP_BIN/kubectl" "$@"; }

# The OpenID Provider: real oidc-provider, two users.
cat > "$STATE/op.json" <<JSON
{
  "issuer": "http://127.0.0.1:$OP_PORT",
  "port": $OP_PORT,
  "clients": [{"client_id": "authgate-demo", "client_secret": "demo-secret",
               "redirect_uris": ["http://127.0.0.1:$GW_PORT/oauth2/callback"]}],
  "users": {
    "alice": {"email": "alice@example.com", "email_verified": true, "groups": ["sre"], "name": "Alice"},
    "bob": {"email": "bob@elsewhere.org", "email_verified": true, "groups": [], "name": "Bob"}
  }
}
JSON
node tests/e2e/op.mjs --config "$STATE/op.json" > "$STATE/op.log" 2>"$STATE/op.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "OP READY" "$STATE/op.log" 2>/dev/null && break; sleep 0.1; done
grep -q "OP READY" "$STATE/op.log" || { cat "$STATE/op.err"; exit 1; }

# A tiny upstream that shows what it receives.
python3 - "$UP_PORT" > "$STATE/upstream.log" 2>&1 <<'PY' &
import http.server, sys, html
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v if k.lower() != 'authorization' else v[:20] + '…')}</td></tr>" for k, v in self.headers.items())
        body = f"<h1>Hello from the upstream</h1><p>You are {html.escape(self.headers.get('X-Auth-Request-Email', '?'))}.</p><table>{rows}</table>".encode()
        self.send_response(200); self.send_header("Content-Type", "text/html"); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)

k apply --server-side -f crds/ >/dev/null
k wait --for=condition=Established crd/identityproviders.authgate.dev crd/authpolicies.authgate.dev >/dev/null
k create namespace demo >/dev/null
k apply -n demo -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata: {name: demo-oidc}
stringData: {client-secret: demo-secret}
---
apiVersion: authgate.dev/v1alpha1
kind: IdentityProvider
metadata: {name: demo-oidc}
spec:
  type: oidc
  clientId: authgate-demo
  clientSecretRef: {name: demo-oidc, key: client-secret}
  issuerUrl: http://127.0.0.1:$OP_PORT
  scopes: [openid, email, profile, groups]
---
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: demo}
spec:
  upstream: {url: "http://127.0.0.1:$UP_PORT"}
  externalUrl: http://127.0.0.1:$GW_PORT
  providers: [demo-oidc]
  access: {allowedDomains: [example.com]}
YAML

"$BIN" --log-format text controller --watch-namespace demo --metrics-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 > "$STATE/controller.log" 2>&1 &
pids+=($!)
k wait -n demo --for=condition=Ready idp/demo-oidc ap/demo --timeout=120s >/dev/null
k get -n demo authgate

# No container runs on the simulated node: run the gateway here with exactly
# the config the controller wrote into the Secret.
k get secret -n demo demo-auth-credentials -o jsonpath='{.data.gateway\.yaml}' | base64 -d > "$STATE/gateway.yaml"
chmod 600 "$STATE/gateway.yaml"
AUTHGATE_LISTEN="127.0.0.1:$GW_PORT" AUTHGATE_OPS_LISTEN="127.0.0.1:$GW_OPS_PORT" "$BIN" --log-format text gateway --config "$STATE/gateway.yaml" > "$STATE/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$GW_OPS_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

echo "[demo] smoke check: signing alice in headlessly" >&2
out="$(node scripts/demo-login.mjs "http://127.0.0.1:$GW_PORT/" alice)"
grep -q "You are alice@example.com" <<<"$out" || { echo "$out"; echo "[demo] smoke check FAILED" >&2; exit 1; }
echo "[demo] smoke check passed: alice reached the upstream" >&2

cat <<MSG

  authgate demo is running.

    Open:      http://127.0.0.1:$GW_PORT/
    Sign in:   alice (any password)  -> allowed (example.com)
               bob   (any password)  -> 403: domain elsewhere.org is not allowed
    Sign out:  http://127.0.0.1:$GW_PORT/oauth2/sign_out

    kubectl:   KUBECONFIG=$KUBECONFIG $CP_BIN/kubectl get -n demo authgate
    Logs:      $STATE/*.log

  Press Ctrl-C to stop.
MSG
[[ "${DEMO_EXIT:-0}" == 1 ]] && exit 0
wait
