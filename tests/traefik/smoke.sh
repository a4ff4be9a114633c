#!/usr/bin/env bash
# smoke.sh — self-check of the cached Traefik binary: `traefik version`, and a
# file-provider router whose forwardAuth middleware calls a loopback auth server
# in front of a loopback upstream (tests/traefik/smoke_servers.py).
#   tests/traefik/smoke.sh            (binary: $AUTHGATE_TRAEFIK, else the cache path)
# Prints "N passed, N failed"; exits 1 on any failure and keeps its temp dir.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="$(awk '$1 == "require" { $1 = ""; $0 = $0 } $1 == "github.com/traefik/traefik/v3" && $2 ~ /^v/ {print $2; exit}' "$HERE/go.mod")"
TRAEFIK="${AUTHGATE_TRAEFIK:-${AUTHGATE_CACHE:-$HOME/.cache/authgate}/tools/traefik-$VERSION/traefik}"
[[ -x "$TRAEFIK" ]] || { echo "no Traefik binary at $TRAEFIK (run scripts/setup.sh)" >&2; exit 1; }

DIR="$(mktemp -d -t authgate-traefik.XXXXXX)"
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WEB="$(free_port)"; AUTH="$(free_port)"; UP="$(free_port)"
while [[ "$AUTH" == "$WEB" ]]; do AUTH="$(free_port)"; done
while [[ "$UP" == "$WEB" || "$UP" == "$AUTH" ]]; do UP="$(free_port)"; done

# (Output captured first: `traefik version | grep -q` could die of SIGPIPE under pipefail.)
version_out="$("$TRAEFIK" version)"
if grep -q "^Version: *$VERSION\$" <<< "$version_out"; then ok "traefik version is $VERSION"; else bad "traefik version: $version_out"; fi

export SMOKE_AUTH_LOG="$DIR/auth.jsonl"
: > "$SMOKE_AUTH_LOG"
python3 "$HERE/smoke_servers.py" "$AUTH" "$UP" > "$DIR/servers.log" 2>&1 &
pids+=($!)

cat > "$DIR/dyn.yaml" << EOF
http:
  routers:
    app:
      entryPoints: [web]
      rule: "PathPrefix(\`/\`)"
      middlewares: [authgate]
      service: app
  middlewares:
    authgate:
      forwardAuth:
        address: "http://127.0.0.1:$AUTH/oauth2/verify"
        trustForwardHeader: true
        authResponseHeaders:
          - X-Auth-Request-User
          - X-Auth-Request-Email
  services:
    app:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$UP"
EOF

"$TRAEFIK" \
  --entryPoints.web.address="127.0.0.1:$WEB" \
  --providers.file.filename="$DIR/dyn.yaml" \
  --ping=true --ping.entryPoint=web \
  --global.checkNewVersion=false --global.sendAnonymousUsage=false \
  --log.level=DEBUG --log.noColor=true > "$DIR/traefik.log" 2>&1 &
tpid=$!
pids+=("$tpid")

# Ready: /ping answers (process up), then the router answers with something other
# than Traefik's own 404 (the file provider's configuration is loaded).
base="http://127.0.0.1:$WEB"
ready=0
for _ in $(seq 1 100); do
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/ping")" == 200 ]] &&
     [[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Cookie: session=ok' "$base/ready")" == 200 ]]; then
    ready=1; break
  fi
  sleep 0.1
done
if ((ready)); then ok "ping and router ready"; else bad "not ready; log: $(tail -5 "$DIR/traefik.log")"; fi

# Only the configured entrypoint listens (no default :8080 "traefik" entrypoint).
listening="$(ss -ltnpH | grep "pid=$tpid," | awk '{print $4}' | sort -u | tr '\n' ' ')"
if [[ "$listening" == "127.0.0.1:$WEB " ]]; then ok "listens only on 127.0.0.1:$WEB"; else bad "listens on: $listening"; fi

# Authenticated: upstream sees the identity headers from the auth response.
: > "$SMOKE_AUTH_LOG"
body="$(curl -s -H 'Cookie: session=ok' -H 'X-Auth-Request-User: mallory' "$base/some/path?q=1")"
user="$(jq -r '.headers["X-Auth-Request-User"] // empty' <<< "$body")"
email="$(jq -r '.headers["X-Auth-Request-Email"] // empty' <<< "$body")"
path="$(jq -r '.path' <<< "$body")"
if [[ "$user" == alice && "$email" == alice@example.com ]]; then ok "upstream got X-Auth-Request-User/-Email from the auth response"; else bad "upstream identity headers: user=$user email=$email"; fi
if [[ "$path" == "/some/path?q=1" ]]; then ok "upstream got the original path and query"; else bad "upstream path $path"; fi

# What the auth server saw: the original request's cookie, method, host and URI.
seen="$(tail -1 "$SMOKE_AUTH_LOG")"
h() { jq -r --arg k "$1" '.headers[$k] // empty' <<< "$seen"; }
if [[ "$(jq -r .path <<< "$seen")" == /oauth2/verify && "$(h Cookie)" == session=ok &&
      "$(h X-Forwarded-Method)" == GET && "$(h X-Forwarded-Uri)" == "/some/path?q=1" &&
      "$(h X-Forwarded-Host)" == "127.0.0.1:$WEB" && "$(h X-Forwarded-Proto)" == http ]]; then
  ok "auth server got /oauth2/verify with Cookie and X-Forwarded-{Method,Uri,Host,Proto}"
else
  bad "auth request: $seen"
fi

# The entrypoint trusts no client X-Forwarded-* (no forwardedHeaders.trustedIPs),
# so a client's own X-Forwarded-Host/-Uri never reach the auth server.
: > "$SMOKE_AUTH_LOG"
curl -s -o /dev/null -H 'Cookie: session=ok' -H 'X-Forwarded-Host: evil.example' -H 'X-Forwarded-Uri: /evil' -H 'X-Forwarded-Proto: https' "$base/real"
seen="$(tail -1 "$SMOKE_AUTH_LOG")"
if [[ "$(h X-Forwarded-Host)" == "127.0.0.1:$WEB" && "$(h X-Forwarded-Uri)" == /real && "$(h X-Forwarded-Proto)" == http ]]; then
  ok "client-sent X-Forwarded-Host/-Uri/-Proto replaced before the auth request"
else
  bad "auth request with client X-Forwarded-*: $seen"
fi

# Auth says 200 without identity: a client's own X-Auth-Request-User is dropped.
body="$(curl -s -H 'Cookie: session=nouser' -H 'X-Auth-Request-User: mallory' -H 'X-Auth-Request-Email: m@evil' "$base/x")"
if [[ -z "$(jq -r '.headers["X-Auth-Request-User"] // .headers["X-Auth-Request-Email"] // empty' <<< "$body")" ]]; then
  ok "client-sent X-Auth-Request-* never reaches upstream"
else
  bad "spoofed identity reached upstream: $body"
fi

# Unauthenticated: the auth server's 302 (status, Location, body) goes to the client.
code_loc="$(curl -s -o "$DIR/302.body" -w '%{http_code} %{redirect_url}' "$base/some/path?q=1")"
if [[ "$code_loc" == "302 http://login.invalid/oauth2/start?rd=http://127.0.0.1:$WEB/some/path?q=1" ]] &&
   grep -q login.invalid "$DIR/302.body"; then
  ok "302 from the auth server relayed with its Location and body"
else
  bad "unauthenticated: $code_loc"
fi

echo "$passed passed, $failed failed"
if ((failed == 0)); then rm -rf "$DIR"; else echo "logs kept in $DIR"; fi
((failed == 0))
