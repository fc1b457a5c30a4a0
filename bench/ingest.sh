#!/usr/bin/env bash
# Benchmark 5, coordinator ingest (docs/BENCHMARKS.md section 5): records/s the coordinator
# takes from agents over gRPC on loopback, next to the raw gRPC ceiling for the same bytes, and
# the time and peak memory of the statistics for 10 million records.
#   bench/ingest.sh [--smoke] [BIN_DIR] [-- extra ingest_bench flags]
# Without BIN_DIR it configures and builds $BUILD_DIR (default: build, Release) as needed and
# uses $BUILD_DIR/bin. Full size takes about a minute; --smoke a second.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=()
bin=""
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) smoke=(--smoke); shift ;;
    --) shift; extra=("$@"); break ;;
    *) bin="$1"; shift ;;
  esac
done
if [[ -z "$bin" ]]; then
  build=${BUILD_DIR:-build}
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$build" --target ingest_bench -- -j"${JOBS:-1}" >/dev/null
  bin="$build/bin"
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
# Stats phase first (its peak RSS is the process's), then 3 rounds of raw ceiling vs coordinator.
exec "$bin/ingest_bench" "${smoke[@]}" "${extra[@]}"
