#!/usr/bin/env bash
# Runs every benchmark of docs/BENCHMARKS.md at full size, one after the other, and prints their
# side-by-side tables. Build first (cmake --build build); needs wrk, nginx and Locust
# (deploy/install-deps.sh). Takes about 5 minutes on 2 cores; run it on a quiet machine, since a
# compiler on the other core shows up as milliseconds of scheduling delay.
#   bench/run_all.sh [build/bin]
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin}
status=0
for b in throughput_vs_wrk streamed_vs_wrk timing_overhead concurrency_scale open_loop_accuracy; do
  echo "== bench/$b.py"
  python3 "bench/$b.py" --bin "$bin" || status=1
  echo
done
echo "== bench/throughput_vs_wrk.py --tls"
python3 bench/throughput_vs_wrk.py --bin "$bin" --tls || status=1
echo
if [[ -x bench/ingest.sh ]]; then
  echo "== bench/ingest.sh"
  bash bench/ingest.sh "$bin" || status=1
  echo
fi
echo "== audio parse throughput (bench/audio_parse_bench.cc)"
"$bin/audio_parse_bench" --benchmark_min_time=0.2 || status=1
echo "== heap allocations per request on the HTTP hot path (bench/hot_path_allocs.cc)"
"$bin/hot_path_allocs" || status=1
echo "== streamed-answer decoding (bench/sse_decode_bench.cc)"
"$bin/sse_decode_bench" --benchmark_min_time=0.5 || status=1
exit $status
