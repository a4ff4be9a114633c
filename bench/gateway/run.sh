#!/usr/bin/env bash
# Gateway benchmark (issue 4): session-authenticated GETs on loopback through
#   direct    wrk -> upstream (nginx `return 200`, ~100-byte body)
#   nginx     wrk -> nginx proxy_pass, no auth, keep-alive upstream pool
#   authgate  wrk -> authgate gateway (encrypted cookie session, Bearer +
#             X-Auth-Request-* forwarded)
#   apache    wrk -> Apache httpd + mod_auth_openidc (server-cache session in
#             shm, claims as headers, Bearer forwarded)
# The session cookies come from real logins against the test OP
# (tests/e2e/op.mjs). Each path is run ROUNDS times, interleaved (the order
# rotates every round), and report.py prints the medians and ratios.
#
# Usage: bash bench/gateway/run.sh
# Environment (defaults in brackets):
#   ROUNDS [5]  THREADS [1]  CONNECTIONS [32]  DURATION [10s]  WARMUP [3s]
#   BENCH_PATHS ["direct nginx authgate apache"]; also available:
#     authgate-open: a second gateway with `authentication: Disabled`, to
#     tell the cost of the session check from the cost of proxying
#     authgate-token: the authgate gateway's `/tok/` route, which injects a
#     `client_credentials` token from the OP instead of the user's (the
#     token is fetched once, then renewed in the background)
#     authgate-redis: a second gateway, the same config but `store: Redis`
#     (a redis-server this script starts): the cookie holds a ticket, and
#     every request does one GET on Redis; its CPU counts the gateway's
#     and redis-server's
#     authgate-bearer: the authgate gateway again, but each request carries
#     `Authorization: Bearer <JWT>` (RS256, signed here by a key whose JWKS
#     is in gateway.yaml's `machine.bearer`) and no cookie: the bearer path
#   BENCH_DIR [/tmp/authgate-bench]   state, configs, logs, raw wrk output
#   BENCH_PORT_BASE [18180]           uses BASE+1 .. BASE+12 on 127.0.0.1
#   MAX_BUSY [0.3] LOAD_TRIES [20] LOAD_WAIT [30]  before each run, wait (up
#     to TRIES x WAIT s) until other processes keep at most MAX_BUSY cores
#     busy (sampled over 5 s while our servers idle)
#   MAX_OTHER [0.3] RUN_TRIES [4]  a run during which other processes took
#     more than MAX_OTHER cores is done again (up to RUN_TRIES times; the
#     last one is kept and its noise reported)
#   MAX_LOAD [1.5]  only reported: 1-min load before the runs start
#   AUTHGATE_BIN  use this binary instead of `cargo build --release`
#   PROXY_WORKERS [auto]  nginx proxy worker_processes
#   UPSTREAM_WORKERS [1]  upstream nginx worker_processes
#   BENCH_KEEP=1  leave everything running at the end (for profiling);
#                 prints the cookie files and PIDs.
# Everything listens on 127.0.0.1 only and stops by itself; wrk runs are
# bounded by DURATION.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/authgate/target}"

ROUNDS="${ROUNDS:-5}"
THREADS="${THREADS:-1}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
BENCH_PATHS="${BENCH_PATHS:-direct nginx authgate apache}"
DIR="${BENCH_DIR:-/tmp/authgate-bench}"
BASE="${BENCH_PORT_BASE:-18180}"
MAX_LOAD="${MAX_LOAD:-1.5}"
MAX_BUSY="${MAX_BUSY:-0.3}"
LOAD_TRIES="${LOAD_TRIES:-20}"
LOAD_WAIT="${LOAD_WAIT:-30}"
MAX_OTHER="${MAX_OTHER:-0.3}"
RUN_TRIES="${RUN_TRIES:-4}"
PROXY_WORKERS="${PROXY_WORKERS:-auto}"
UPSTREAM_WORKERS="${UPSTREAM_WORKERS:-1}"

UPSTREAM_PORT=$((BASE + 1))
NGINX_PORT=$((BASE + 2))
GATEWAY_PORT=$((BASE + 3))
APACHE_PORT=$((BASE + 4))
OP_PORT=$((BASE + 5))
UPSTREAM_STATUS_PORT=$((BASE + 6))
OPEN_PORT=$((BASE + 7))
GATEWAY_OPS_PORT=$((BASE + 8))
OPEN_OPS_PORT=$((BASE + 9))
REDIS_PORT=$((BASE + 10))
REDIS_GATEWAY_PORT=$((BASE + 11))
REDIS_GATEWAY_OPS_PORT=$((BASE + 12))
OP_ISSUER="http://127.0.0.1:$OP_PORT"

log() { echo "[bench] $*" >&2; }
die() { echo "[bench] FAILED: $*" >&2; exit 1; }

# --- What it needs, from Debian -------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx)
command -v apache2 >/dev/null || need+=(apache2)
[[ -e /usr/lib/apache2/modules/mod_auth_openidc.so ]] || need+=(libapache2-mod-auth-openidc)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v pgrep >/dev/null || need+=(procps)
if [[ " $BENCH_PATHS " == *" authgate-redis "* ]]; then command -v redis-server >/dev/null || need+=(redis-server); fi
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v node >/dev/null || die "node is required for the test OP (bash scripts/setup.sh installs it)"
if [[ ! -d "$ROOT/tests/e2e/node_modules/oidc-provider" ]]; then
  log "npm ci in tests/e2e"
  (cd "$ROOT/tests/e2e" && npm ci --silent --no-audit --no-fund)
fi

if [[ -n "${AUTHGATE_BIN:-}" ]]; then
  BIN="$AUTHGATE_BIN"
else
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release --quiet)
  BIN="$CARGO_TARGET_DIR/release/authgate"
fi
[[ -x "$BIN" ]] || die "no authgate binary at $BIN"

for port in "$UPSTREAM_PORT" "$NGINX_PORT" "$GATEWAY_PORT" "$APACHE_PORT" "$OP_PORT" "$UPSTREAM_STATUS_PORT" "$OPEN_PORT" "$GATEWAY_OPS_PORT" "$OPEN_OPS_PORT" "$REDIS_PORT" "$REDIS_GATEWAY_PORT" "$REDIS_GATEWAY_OPS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "127.0.0.1:$port is in use (set BENCH_PORT_BASE)"
  fi
done

# --- Processes -------------------------------------------------------------
rm -rf "$DIR"
mkdir -p "$DIR/raw" "$DIR/apache-run" "$DIR"/nginx-{upstream,proxy}-tmp
chown www-data:www-data "$DIR/apache-run" 2>/dev/null || true
declare -A PID=()
cleanup() {
  [[ "${BENCH_KEEP:-0}" == 1 ]] && return
  for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
  for name in "${!PID[@]}"; do
    for _ in $(seq 50); do kill -0 "${PID[$name]}" 2>/dev/null || break; sleep 0.1; done
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

render() { # template -> stdout, @NAME@ replaced by $NAME
  local text
  text="$(cat "$1")"
  for var in DIR UPSTREAM_PORT UPSTREAM_STATUS_PORT NGINX_PORT APACHE_PORT OP_ISSUER CRYPTO_PASSPHRASE PROXY_WORKERS UPSTREAM_WORKERS; do
    text="${text//@$var@/${!var:-}}"
  done
  printf '%s\n' "$text"
}

wait_port() { # name port pid
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.05
  done
  die "$1 did not listen on 127.0.0.1:$2 (logs in $DIR)"
}

CRYPTO_PASSPHRASE="$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
render "$HERE/nginx-upstream.conf" > "$DIR/nginx-upstream.conf"
render "$HERE/nginx-proxy.conf" > "$DIR/nginx-proxy.conf"
render "$HERE/apache.conf" > "$DIR/apache.conf"

nginx -p "$DIR" -c "$DIR/nginx-upstream.conf" -g 'daemon off;' 2>>"$DIR/nginx-upstream.error.log" &
PID[upstream]=$!
wait_port upstream "$UPSTREAM_PORT" "${PID[upstream]}"
nginx -p "$DIR" -c "$DIR/nginx-proxy.conf" -g 'daemon off;' 2>>"$DIR/nginx-proxy.error.log" &
PID[nginx]=$!
wait_port nginx "$NGINX_PORT" "${PID[nginx]}"

cat > "$DIR/op.json" <<JSON
{
  "issuer": "$OP_ISSUER",
  "port": $OP_PORT,
  "accessTokenTtl": 86400,
  "idTokenTtl": 86400,
  "clients": [
    {"client_id": "bench-authgate", "client_secret": "bench-authgate-secret",
     "redirect_uris": ["http://127.0.0.1:$GATEWAY_PORT/oauth2/callback", "http://127.0.0.1:$REDIS_GATEWAY_PORT/oauth2/callback"]},
    {"client_id": "bench-apache", "client_secret": "bench-apache-secret",
     "redirect_uris": ["http://127.0.0.1:$APACHE_PORT/redirect_uri"]},
    {"client_id": "bench-machine", "client_secret": "bench-machine-secret",
     "grant_types": ["client_credentials"]}
  ],
  "users": {
    "alice": {"email": "alice@example.com", "email_verified": true, "groups": ["sre", "dev"], "name": "Alice"}
  }
}
JSON
node "$ROOT/tests/e2e/op.mjs" --config "$DIR/op.json" > "$DIR/op.log" 2> "$DIR/op.err" &
PID[op]=$!
for _ in $(seq 200); do grep -q "^OP READY" "$DIR/op.log" 2>/dev/null && break; sleep 0.05; done
grep -q "^OP READY $OP_ISSUER\$" "$DIR/op.log" || { cat "$DIR/op.err" >&2; die "the OP did not start"; }

# The gateway, configured as the controller would (src/gateway/config.rs).
cat > "$DIR/gateway.yaml" <<YAML
listen: 127.0.0.1:$GATEWAY_PORT
opsListen: 127.0.0.1:$GATEWAY_OPS_PORT
externalUrl: http://127.0.0.1:$GATEWAY_PORT
upstream: http://127.0.0.1:$UPSTREAM_PORT
providers:
  - name: bench-oidc
    type: oidc
    clientId: bench-authgate
    clientSecret: bench-authgate-secret
    issuerUrl: $OP_ISSUER
    authorizeUrl: $OP_ISSUER/auth
    tokenUrl: $OP_ISSUER/token
    userinfoUrl: $OP_ISSUER/me
    jwksUrl: $OP_ISSUER/jwks
    scopes: [openid, email, profile, groups]
access:
  allowedDomains: [example.com]
session:
  cookieName: _authgate
  ttlSeconds: 86400
  keys: ["$(head -c 64 /dev/urandom | base64 -w0)"]
forward:
  accessToken: true
  identityHeaders: true
routes:
  - pathPrefix: /tok/
    stripPrefix: true
    upstream: http://127.0.0.1:$UPSTREAM_PORT
    tokenAuth:
      tokenUrl: $OP_ISSUER/token
      clientId: bench-machine
      clientSecret: bench-machine-secret
YAML
# A trusted bearer issuer whose key is made here: the JWKS goes into the
# config, the signed JWT into $DIR/bearer.jwt (valid for a day).
python3 - "$DIR" <<'PY'
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
d = sys.argv[1]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
num = lambda n: b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))
pub = key.public_key().public_numbers()
jwks = {"keys": [{"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256", "n": num(pub.n), "e": num(pub.e)}]}
open(f"{d}/bench.jwks", "w").write(json.dumps(jwks))
now = int(time.time())
header = {"alg": "RS256", "typ": "at+jwt", "kid": "bench"}
claims = {"iss": "https://bench-issuer.example", "sub": "bench-service", "aud": "https://bench.example",
          "iat": now, "nbf": now - 5, "exp": now + 86400, "email": "alice@example.com", "email_verified": True,
          "groups": ["sre", "dev"]}
signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
open(f"{d}/bearer.jwt", "w").write(signing + "." + b64(sig))
PY
cat >> "$DIR/gateway.yaml" <<YAML
machine:
  bearer:
    - name: bench-issuer
      issuer: https://bench-issuer.example
      audiences: [https://bench.example]
      algorithms: [RS256]
      jwks: '$(cat "$DIR/bench.jwks")'
      claims: {username: sub, email: email, groups: groups}
YAML
chmod 600 "$DIR/gateway.yaml"
# Default log level (info), as deployed: the gateway logs no per-request line.
env -u RUST_LOG "$BIN" --log-format json gateway --config "$DIR/gateway.yaml" > "$DIR/gateway.log" 2>&1 &
PID[authgate]=$!
wait_port authgate "$GATEWAY_PORT" "${PID[authgate]}"

if [[ " $BENCH_PATHS " == *" authgate-open "* ]]; then
  cat > "$DIR/gateway-open.yaml" <<YAML
listen: 127.0.0.1:$OPEN_PORT
opsListen: 127.0.0.1:$OPEN_OPS_PORT
externalUrl: http://127.0.0.1:$OPEN_PORT
upstream: http://127.0.0.1:$UPSTREAM_PORT
authentication: Disabled
providers: []
session: {cookieName: _authgate, ttlSeconds: 86400, keys: []}
YAML
  env -u RUST_LOG "$BIN" --log-format json gateway --config "$DIR/gateway-open.yaml" > "$DIR/gateway-open.log" 2>&1 &
  PID[authgate-open]=$!
  wait_port authgate-open "$OPEN_PORT" "${PID[authgate-open]}"
fi

if [[ " $BENCH_PATHS " == *" authgate-redis "* ]]; then
  REDIS_PASSWORD="$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
  printf 'port %s\nbind 127.0.0.1\nrequirepass %s\nsave ""\nappendonly no\ndir %s\n' \
    "$REDIS_PORT" "$REDIS_PASSWORD" "$DIR" > "$DIR/redis.conf"
  chmod 600 "$DIR/redis.conf"
  redis-server "$DIR/redis.conf" > "$DIR/redis.log" 2>&1 &
  PID[redis]=$!
  wait_port redis "$REDIS_PORT" "${PID[redis]}"
  # The same gateway, but sessions in Redis.
  sed -e "s/127.0.0.1:$GATEWAY_PORT/127.0.0.1:$REDIS_GATEWAY_PORT/g" \
    -e "s/127.0.0.1:$GATEWAY_OPS_PORT/127.0.0.1:$REDIS_GATEWAY_OPS_PORT/" \
    -e "s|^  cookieName: _authgate\$|  cookieName: _authgate\n  store: {type: redis, addresses: ['127.0.0.1:$REDIS_PORT'], password: '$REDIS_PASSWORD'}|" \
    "$DIR/gateway.yaml" > "$DIR/gateway-redis.yaml"
  chmod 600 "$DIR/gateway-redis.yaml"
  grep -q "store: {type: redis" "$DIR/gateway-redis.yaml" || die "gateway-redis.yaml has no Redis store"
  env -u RUST_LOG "$BIN" --log-format json gateway --config "$DIR/gateway-redis.yaml" > "$DIR/gateway-redis.log" 2>&1 &
  PID[authgate-redis]=$!
  wait_port authgate-redis "$REDIS_GATEWAY_PORT" "${PID[authgate-redis]}"
fi

apache2 -f "$DIR/apache.conf" -DFOREGROUND 2>>"$DIR/apache.error.log" &
PID[apache]=$!
wait_port apache "$APACHE_PORT" "${PID[apache]}"

# --- Sessions, by real logins ---------------------------------------------
node "$HERE/login.mjs" "http://127.0.0.1:$GATEWAY_PORT/" alice > "$DIR/cookie.authgate" || die "login through authgate"
node "$HERE/login.mjs" "http://127.0.0.1:$APACHE_PORT/" alice > "$DIR/cookie.apache" || die "login through apache"
if [[ -n "${PID[authgate-redis]:-}" ]]; then
  node "$HERE/login.mjs" "http://127.0.0.1:$REDIS_GATEWAY_PORT/" alice > "$DIR/cookie.authgate-redis" || die "login through authgate-redis"
fi
chmod 600 "$DIR"/cookie.*
declare -A URL=(
  [direct]="http://127.0.0.1:$UPSTREAM_PORT/"
  [nginx]="http://127.0.0.1:$NGINX_PORT/"
  [authgate]="http://127.0.0.1:$GATEWAY_PORT/"
  [apache]="http://127.0.0.1:$APACHE_PORT/"
  [authgate-open]="http://127.0.0.1:$OPEN_PORT/"
  [authgate-token]="http://127.0.0.1:$GATEWAY_PORT/tok/"
  [authgate-redis]="http://127.0.0.1:$REDIS_GATEWAY_PORT/"
  [authgate-bearer]="http://127.0.0.1:$GATEWAY_PORT/"
)
# direct and nginx get authgate's cookie too, so every path parses a
# request of about the same size. The bearer path sends its JWT instead.
cookie() { echo "Cookie: $(cat "$DIR/cookie.$1" 2>/dev/null)"; }
declare -A HEADER=(
  [direct]="$(cookie authgate)"
  [nginx]="$(cookie authgate)"
  [authgate]="$(cookie authgate)"
  [apache]="$(cookie apache)"
  [authgate-open]="$(cookie authgate)"
  [authgate-token]="$(cookie authgate)"
  [authgate-redis]="$(cookie authgate-redis)"
  [authgate-bearer]="Authorization: Bearer $(cat "$DIR/bearer.jwt")"
)
# Root PIDs whose CPU time (with all their descendants) is "the proxy's".
declare -A CPU_PID=([direct]="${PID[upstream]}" [nginx]="${PID[nginx]}" [authgate]="${PID[authgate]}" [apache]="${PID[apache]}" [authgate-open]="${PID[authgate-open]:-}" [authgate-token]="${PID[authgate]}" [authgate-redis]="${PID[authgate-redis]:-} ${PID[redis]:-}" [authgate-bearer]="${PID[authgate]}")
log "authgate cookie: $(wc -c < "$DIR/cookie.authgate") bytes, apache cookie: $(wc -c < "$DIR/cookie.apache") bytes"

# --- Checks: authenticated requests really reach the upstream -------------
body_expected="$(curl -fsS "${URL[direct]}")"
for p in $BENCH_PATHS; do
  [[ -n "${URL[$p]:-}" ]] || die "unknown path $p"
  got="$(curl -sS -o "$DIR/check.$p.body" -w '%{http_code}' -H "${HEADER[$p]}" "${URL[$p]}")"
  [[ "$got" == 200 ]] || die "$p answered HTTP $got with its session cookie, expected 200"
  [[ "$(cat "$DIR/check.$p.body")" == "$body_expected" ]] || die "$p did not return the upstream's body"
done
for p in authgate authgate-redis authgate-bearer apache; do
  echo " $BENCH_PATHS " | grep -q " $p " || continue
  seen="$(curl -fsS -H "${HEADER[$p]}" "${URL[$p]}bench-check")"
  [[ "$seen" == *"authorization=Bearer ey"* ]] || die "$p did not forward the access token as Bearer: $seen"
  [[ "$seen" == *"alice@example.com"* ]] || die "$p did not forward the user's email: $seen"
  # Without the session: refused (authgate: 401 for non-browser clients,
  # Apache: 302 to the OP).
  got="$(curl -sS -o /dev/null -w '%{http_code}' "${URL[$p]}")"
  [[ "$got" == 401 || "$got" == 302 ]] || die "$p answered HTTP $got without a session"
done
if echo " $BENCH_PATHS " | grep -q " authgate-token "; then
  seen="$(curl -fsS -H "${HEADER[authgate-token]}" "${URL[authgate-token]}bench-check")"
  [[ "$seen" == *"authorization=Bearer "* ]] || die "authgate-token did not inject a bearer: $seen"
  [[ "$seen" != *"$(grep -o 'Bearer ey[^ ]*' <<< "$(curl -fsS -H "${HEADER[authgate]}" "${URL[authgate]}bench-check")" | head -1)"* ]] \
    || die "authgate-token forwarded the user's own token"
fi
log "checks passed: every path answers 200 with the upstream's body; authgate and apache forward Bearer + identity and refuse requests without a session"

if [[ "${BENCH_KEEP:-0}" == 1 && "${BENCH_SKIP_RUN:-0}" == 1 ]]; then
  declare -p PID URL > "$DIR/env.sh"
  log "running; PIDs: $(declare -p PID); cookies in $DIR/cookie.*"
  exit 0
fi

# --- Measurement helpers ---------------------------------------------------
CLK_TCK="$(getconf CLK_TCK)"
tree_cpu() { # utime+stime of $1 and all its descendants + reaped children (ticks)
  local total=0 stack=("$1") pid stat fields i=0
  while ((${#stack[@]})); do
    pid="${stack[-1]}"; unset 'stack[-1]'
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
    read -r -a fields <<< "${stat##*) }"
    # fields[0] is field 3 (state): utime=14 stime=15 cutime=16 cstime=17.
    total=$((total + fields[11] + fields[12]))
    ((i == 0)) && total=$((total + fields[13] + fields[14]))
    i=1
    for child in $(pgrep -P "$pid"); do stack+=("$child"); done
  done
  echo "$total"
}
sys_busy() { # busy ticks of all CPUs
  local _ user nice system idle iowait irq softirq steal
  read -r _ user nice system idle iowait irq softirq steal _ < /proc/stat
  echo $((user + nice + system + irq + softirq + steal))
}
upstream_counts() { # "connections-accepted requests" served by the upstream so far
  curl -fsS "http://127.0.0.1:$UPSTREAM_STATUS_PORT/status" | awk 'NR == 3 { print $1, $3 }'
}
cpu_of() { # tree_cpu summed over the space-separated root PIDs in $1
  local total=0 pid
  for pid in $1; do total=$((total + $(tree_cpu "$pid"))); done
  echo "$total"
}
load1() { cut -d' ' -f1 /proc/loadavg; }
children_cpu() { # sets CHILDREN_CPU: user+sys ticks of this shell's reaped children (wrk)
  times > "$DIR/times.txt" # in this shell: a subshell would count only its own children
  read -r CHILDREN_CPU < <(awk -v hz="$CLK_TCK" 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
    printf "%d\n", t * hz + 0.5 }' "$DIR/times.txt")
}

busy_others() { # cores busy over a 5 s sample, taken while our servers idle
  local s0 s1
  s0="$(sys_busy)"; sleep 5; s1="$(sys_busy)"
  awk -v d=$((s1 - s0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz / 5 }'
}

# The load average lags (and counts our own previous runs), so "quiet" is
# judged by how busy the CPUs are right now, while our servers idle.
wait_quiet() {
  local try busy
  for try in $(seq "$LOAD_TRIES"); do
    busy="$(busy_others)"
    if awk -v b="$busy" -v m="$MAX_BUSY" 'BEGIN { exit !(b <= m) }'; then return 0; fi
    log "other processes keep $busy cores busy (> $MAX_BUSY; load $(load1)), waiting ${LOAD_WAIT}s ($try/$LOAD_TRIES)"
    sleep "$LOAD_WAIT"
  done
  log "WARNING: still $busy cores busy; measuring anyway (recorded per run)"
}

wrk_cmd() { # path duration
  echo wrk "-t$THREADS" "-c$CONNECTIONS" "-d$2" --latency -H "Cookie: <session>" "${URL[$1]}"
}
run_wrk() { # path duration outfile
  wrk "-t$THREADS" "-c$CONNECTIONS" "-d$2" --latency -H "${HEADER[$1]}" "${URL[$1]}" > "$3"
}

# --- Run ------------------------------------------------------------------
read -r -a paths <<< "$BENCH_PATHS"
wait_quiet
LOAD_AT_START="$(load1)"
log "warm-up: $WARMUP per path"
for p in "${paths[@]}"; do run_wrk "$p" "$WARMUP" "$DIR/raw/warmup.$p.txt"; done

results="$DIR/results.tsv"
printf 'round\tpath\tload1\tcpu_ticks\tupstream_cpu_ticks\twrk_cpu_ticks\tsys_busy_ticks\twall_s\tupstream_requests\tupstream_connections\tattempts\traw\n' > "$results"
n=${#paths[@]}
for round in $(seq "$ROUNDS"); do
  for k in $(seq 0 $((n - 1))); do
    p="${paths[$(((k + round - 1) % n))]}"
    for attempt in $(seq "$RUN_TRIES"); do
      wait_quiet
      out="$DIR/raw/round$round.$p.try$attempt.txt"
      l="$(load1)"
      read -r ac0 up0 <<< "$(upstream_counts)"; c0="$(cpu_of "${CPU_PID[$p]}")"; u0="$(tree_cpu "${PID[upstream]}")"; s0="$(sys_busy)"; t0="$(date +%s.%N)"
      children_cpu; w0="$CHILDREN_CPU"
      run_wrk "$p" "$DURATION" "$out"
      children_cpu; w1="$CHILDREN_CPU"
      t1="$(date +%s.%N)"; s1="$(sys_busy)"; u1="$(tree_cpu "${PID[upstream]}")"; c1="$(cpu_of "${CPU_PID[$p]}")"; read -r ac1 up1 <<< "$(upstream_counts)"
      wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
      # CPU taken by anything but wrk, the proxy and the upstream.
      ours=$((c1 - c0 + w1 - w0)); [[ "$p" == direct ]] || ours=$((ours + u1 - u0))
      other="$(awk -v b=$((s1 - s0)) -v o="$ours" -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { x = (b - o) / hz / w; printf "%.2f", x < 0 ? 0 : x }')"
      rps="$(grep -E '^Requests/sec' "$out" | awk '{ print $2 }')"
      if awk -v x="$other" -v m="$MAX_OTHER" 'BEGIN { exit !(x > m) }' && ((attempt < RUN_TRIES)); then
        log "round $round/$ROUNDS $p: $rps req/s, but other processes took $other cores (> $MAX_OTHER): again"
        continue
      fi
      break
    done
    # Minus the status request that took the second sample.
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$p" "$l" $((c1 - c0)) $((u1 - u0)) $((w1 - w0)) $((s1 - s0)) \
      "$wall" $((up1 - up0 - 1)) $((ac1 - ac0 - 1)) "$attempt" "$out" >> "$results"
    log "round $round/$ROUNDS $p: $rps req/s (load $l, other processes $other cores)"
  done
done

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(uname -sr); wrk, proxy and upstream share these cores, nothing pinned"
  echo "versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(apache2 -v | head -1 | sed 's/.*: //'), mod_auth_openidc $(dpkg-query -W -f '${Version}' libapache2-mod-auth-openidc), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), $("$BIN" --version 2>/dev/null || echo authgate)"
  echo "1-min load before the first run: $LOAD_AT_START"
  echo "authgate: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/'), release build"
  echo "command: BENCH_PATHS=\"$BENCH_PATHS\" ROUNDS=$ROUNDS THREADS=$THREADS CONNECTIONS=$CONNECTIONS DURATION=$DURATION bash bench/gateway/run.sh"
  echo "per run: $(wrk_cmd authgate "$DURATION")"
} > "$DIR/meta.txt"
python3 "$HERE/report.py" "$results" "$CLK_TCK" "$DIR/meta.txt" | tee "$DIR/report.txt"
log "raw output in $DIR"
