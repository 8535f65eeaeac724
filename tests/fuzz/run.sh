#!/bin/sh
# Builds the libFuzzer targets in a clang build dir (created if missing) and
# runs every fuzz_* executable for a fixed time each.
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET (default 30)] [extra libFuzzer flags...]
# Environment: FUZZ_BUILD_DIR (default <repo>/build-fuzz), FUZZ_ONLY (run only
# the targets whose name contains this string).
set -eu

secs=${1:-30}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
  # Every library is built with coverage instrumentation (fuzzer-no-link) and
  # the sanitizers, so the fuzzer sees into the code under test.
  CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_lundef=false \
    -Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link
fi

# Build only the fuzz targets: a module that does not build with clang yet
# should not stop the others from being fuzzed.
targets=$(meson introspect "$build" --targets | python3 -c '
import json, os, sys
build = sys.argv[1]
for t in json.load(sys.stdin):
    if t["type"] == "executable" and t["name"].startswith("fuzz_"):
        print(os.path.relpath(t["filename"][0], build))
' "$build")
if [ -z "$targets" ]; then
  echo "run.sh: no fuzz_* targets in $build" >&2
  exit 1
fi
# shellcheck disable=SC2086 # one target per word
ninja -C "$build" $targets

status=0
for rel in $targets; do
  exe=$build/$rel
  name=$(basename "$exe")
  case "$name" in *"${FUZZ_ONLY:-}"*) ;; *) continue ;; esac
  corpus=$build/fuzz-corpus/$name
  artifacts=$build/fuzz-artifacts
  mkdir -p "$corpus" "$artifacts"
  if [ -x "$root/tests/fuzz/seeds/$name.sh" ]; then
    "$root/tests/fuzz/seeds/$name.sh" "$corpus"
  fi
  dict=
  if [ -f "$root/tests/fuzz/$name.dict" ]; then
    dict=-dict=$root/tests/fuzz/$name.dict
  fi
  echo "== $name: ${secs}s, corpus $corpus"
  log=$build/fuzz-$name.log
  if "$exe" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
       ${dict:+"$dict"} "$@" "$corpus" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    echo "   ok: $runs runs, $rate exec/s, $cov"
  else
    status=1
    echo "   FAILED: see $log; crash inputs in $artifacts/" >&2
    tail -n 40 "$log" >&2
  fi
done
exit $status
