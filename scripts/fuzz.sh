#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers (AFL++ via cargo-afl, stable Rust).
#   scripts/fuzz.sh [run|smoke] [target...]
# run:   each target for FUZZ_SECONDS (default 600), findings kept under
#        $AUTHGATE_CACHE/fuzz-out/<target>.
# smoke: each target for FUZZ_SECONDS (default 15), for CI.
# Either mode fails when a target saved a crash (hangs, over 2 s an input on
# a shared machine, are reported but do not fail). cargo-afl (which
# builds its own AFL++) is installed into the tool cache, keyed by version;
# when it cannot be had, CI=true fails and a developer's run skips.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-run}"
shift || true
CACHE="${AUTHGATE_CACHE:-$HOME/.cache/authgate}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
AFL_VERSION=0.18.2
AFL_ROOT="$CACHE/tools/cargo-afl-$AFL_VERSION"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(session_decode cookies redirect email headers config)
case "$MODE" in
  run) SECONDS_EACH="${FUZZ_SECONDS:-600}" ;;
  smoke) SECONDS_EACH="${FUZZ_SECONDS:-15}" ;;
  *) echo "usage: $0 [run|smoke] [target...]" >&2; exit 2 ;;
esac

missing() {
  if [ "${CI:-}" = true ]; then
    echo "[fuzz] FAIL: $1" >&2
    exit 1
  fi
  echo "[fuzz] skipped: $1" >&2
  exit 0
}

if [ ! -x "$AFL_ROOT/bin/cargo-afl" ]; then
  echo "[fuzz] installing cargo-afl $AFL_VERSION into $AFL_ROOT" >&2
  CARGO_INSTALL_ROOT="$AFL_ROOT" CARGO_TARGET_DIR="$CACHE/target-cargo-afl" \
    cargo install --quiet --locked cargo-afl --version "$AFL_VERSION" >&2 || missing "cargo-afl $AFL_VERSION could not be installed"
fi
export PATH="$AFL_ROOT/bin:$PATH"
# `cargo install` builds AFL++ and its LLVM runtime for this rustc; a rustc
# upgrade needs it built again.
if ! cargo afl config --build >/dev/null 2>&1 && ! cargo afl fuzz -h >/dev/null 2>&1; then
  missing "cargo afl config --build failed"
fi

echo "[fuzz] building ${#TARGETS[@]} targets" >&2
(cd "$ROOT/fuzz" && cargo afl build --release --quiet --locked)

# No core-dump handler or CPU-governor checks on shared machines; the two
# cores are shared, so no pinning.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1
export AFL_SKIP_CRASHES=0 AFL_FAST_CAL=1
if [ "$MODE" = smoke ]; then
  OUT_ROOT="$(mktemp -d /tmp/authgate-fuzz.XXXXXX)"
  trap 'rm -rf "$OUT_ROOT"' EXIT
else
  OUT_ROOT="$CACHE/fuzz-out"
fi

stat_of() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$2"; }
failed=0
for t in "${TARGETS[@]}"; do
  out="$OUT_ROOT/$t"
  rm -rf "$out"
  mkdir -p "$out"
  echo "[fuzz] $t for ${SECONDS_EACH}s" >&2
  cargo afl fuzz -V "$SECONDS_EACH" -t 2000 -i "$ROOT/fuzz/corpus/$t" -o "$out" \
    "$CARGO_TARGET_DIR/release/$t" >"$out/afl.log" 2>&1 || { tail -20 "$out/afl.log" >&2; failed=1; continue; }
  stats="$out/default/fuzzer_stats"
  crashes=$(find "$out/default/crashes" -type f ! -name README.txt | wc -l)
  hangs=$(find "$out/default/hangs" -type f | wc -l)
  echo "[fuzz] $t: execs $(stat_of execs_done "$stats") ($(stat_of execs_per_sec "$stats")/s)," \
    "edges $(stat_of edges_found "$stats")/$(stat_of total_edges "$stats"), corpus $(stat_of corpus_count "$stats")," \
    "crashes $crashes, hangs $hangs" >&2
  if [ "$crashes" -gt 0 ]; then
    failed=1
    for f in "$out"/default/crashes/id:*; do
      # The input itself, as the smoke's folder goes away with the run.
      echo "[fuzz]   crash input (base64): $(base64 -w0 "$f")" >&2
      echo "[fuzz]   reproduce: base64 -d <<<INPUT | $CARGO_TARGET_DIR/release/$t" >&2
    done
  fi
done
exit "$failed"
