#!/usr/bin/env bash
# bench/run.sh: the `aep stream` benchmark (./dev bench runs this after a Release build).
# Installs Newman into bench/node_modules (npm, not committed) unless it is there, then runs
# bench/stream.lua with the aep binary, which writes bench/RESULTS.md.
#   bash bench/run.sh [bench/stream.lua flags...]   e.g. --n 100000 --memory-n 10000,1000000
# Environment: AEP (the aep binary, default build/aep), BENCH_SKIP_NPM=1 (no npm install).
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
exec "$AEP" bench/stream.lua "$@"
