#!/usr/bin/env bash
# bench/run.sh: the benchmarks (./dev bench runs this after a Release build).
# Step 1, `aep stream`: installs Newman into bench/node_modules (npm, not committed) unless it is
# there, then runs bench/stream.lua with the aep binary, which writes bench/RESULTS.md.
# Step 2, the emulator's ingest rate: bench/emulator_ingest.lua replaces the "Emulator ingest"
# section of bench/RESULTS.md (after step 1, which rewrites the file).
# Step 3, the Data Prep engine: bench/dataprep.lua replaces the "Data Prep" section.
# Step 5, start-up beside lua5.4 (hyperfine): bench/startup.lua replaces the "Start-up" section.
#   bash bench/run.sh [bench/stream.lua flags...]   e.g. --n 100000 --memory-n 10000,1000000
# Environment: AEP (the aep binary, default build/aep), BENCH_SKIP_NPM=1 (no npm install),
# EMULATOR_BENCH_FLAGS (step 2's flags, default "--n 100000 --runs 5"), BENCH_SKIP_EMULATOR=1,
# DATAPREP_BENCH_FLAGS (step 3's flags, default "--n 200000 --runs 3"), BENCH_SKIP_DATAPREP=1,
# STARTUP_BENCH_FLAGS (step 5's flags, default "--runs 300 --warmup 20"), BENCH_SKIP_STARTUP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
AEP=${AEP:-build/aep}
[ -x "$AEP" ] || { echo "bench: $AEP not found: run ./dev build (or ./dev bench)" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "bench: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
if [ "${BENCH_SKIP_NPM:-0}" != 1 ] && [ ! -x bench/node_modules/.bin/newman ]; then
  if command -v npm >/dev/null; then
    echo "bench: installing newman into bench/node_modules" >&2
    (cd bench && npm install --no-audit --no-fund --loglevel=error) || echo "bench: npm install failed: the Newman baseline will be skipped" >&2
  else
    echo "bench: npm not found: the Newman baseline will be skipped" >&2
  fi
fi
mkdir -p bench/out
export AEP
# aep's own Lua modules come from the binary; a checkout's lua/ wins only if AEP_LUA_PATH says so
"$AEP" bench/stream.lua "$@"

# --- step 2: emulator ingest (issue 3 "Speed"; bench/emulator_ingest.lua) ---------------------------
if [ "${BENCH_SKIP_EMULATOR:-0}" != 1 ]; then
  # shellcheck disable=SC2086 # the flags are words
  "$AEP" bench/emulator_ingest.lua ${EMULATOR_BENCH_FLAGS:---n 100000 --runs 5} --results bench/RESULTS.md
fi

# --- step 3: the Data Prep engine (bench/dataprep.lua) ------------------------------------------------
if [ "${BENCH_SKIP_DATAPREP:-0}" != 1 ]; then
  # shellcheck disable=SC2086 # the flags are words
  "$AEP" bench/dataprep.lua ${DATAPREP_BENCH_FLAGS:---n 200000 --runs 3} --results bench/RESULTS.md
fi

# --- step 4: aep stream with and without the follow-through (bench/follow.lua) ------------------------
if [ "${BENCH_SKIP_FOLLOW:-0}" != 1 ]; then
  # shellcheck disable=SC2086 # the flags are words
  "$AEP" bench/follow.lua ${FOLLOW_BENCH_FLAGS:---n 50000 --runs 3} --results bench/RESULTS.md
fi

# --- step 5: start-up beside lua5.4 -e '' (bench/startup.lua, hyperfine) -------------------------------
if [ "${BENCH_SKIP_STARTUP:-0}" != 1 ]; then
  # shellcheck disable=SC2086 # the flags are words
  "$AEP" bench/startup.lua ${STARTUP_BENCH_FLAGS:---runs 300 --warmup 20} --results bench/RESULTS.md
fi
