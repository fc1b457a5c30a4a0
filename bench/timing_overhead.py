#!/usr/bin/env python3
"""Benchmark 2: what ttsbench adds to the latency and TTFA it measures.

ttsbench-synth answers every request in a fixed 50 ms (no jitter, more slots than users) and,
when streaming, sends its first chunk at a fixed 20 ms. At concurrency 100:
  - ttsbench (one agent process with 2 threads, records streamed to the coordinator, users
    spread over the first 50 ms): non-streamed latency p50 and p99; streamed TTFA p50 and p99;
  - wrk -t2 -c100 --latency posting the same request, side by side in the same run: its
    latency percentiles show what the server and the loopback add for any client (wrk opens
    all connections at once, so its requests arrive in bursts the server serves in turn).
The synthetic server runs 2 threads. A single-threaded server or agent serves a burst of
arrivals one after the other, which shows as milliseconds of queueing at concurrency 100.
Targets: latency p50 <= 50.5 ms and p99 <= 52 ms; TTFA p50 <= 20.5 ms.

Usage: bench/timing_overhead.py [--bin build/bin] [--duration 10] [--smoke]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

FIXED_MS = 50.0
FIRST_CHUNK_MS = 20.0
USERS = 100
TEXT = "The quick brown fox jumps over the lazy dog."


def wrk_latency(url, duration, script_dir):
    lua = benchlib.wrk_speech_script(os.path.join(script_dir, "post.lua"), TEXT)
    out = subprocess.run(["wrk", "-t2", f"-c{USERS}", f"-d{duration}s", "--latency", "-s", lua,
                          url + "/v1/audio/speech"], capture_output=True, text=True,
                         check=True).stdout

    def pct(p):
        m = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
        return float(m.group(1)) * scale

    return pct(50), pct(99), float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))


def ttsbench_run(b, url, duration, streaming):
    texts = b.path("texts.txt")
    with open(texts, "w") as f:
        f.write(TEXT + "\n")
    session, _, agent = b.ttsbench(
        ["server", "--url", url, "--concurrency", str(USERS), "--duration", f"{duration}s",
         "--warmup-duration", "1s", "--ramp-up", f"{FIXED_MS / 1000}s", "--texts", texts,
         "--streaming" if streaming else "--no-streaming"], agent_threads=2)
    row = benchlib.read_csv(os.path.join(session, "summary.csv"))[0]
    return row, agent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="2-second runs; no target asserted")
    args = ap.parse_args()
    if args.smoke:
        args.duration = 2
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    with benchlib.Bench(args.bin) as b:
        url, _ = b.synth("--slots", "100000", "--base-ms", str(FIXED_MS), "--per-char-ms", "0",
                         "--first-chunk-ms", str(FIRST_CHUNK_MS), "--jitter", "0",
                         "--audio-per-char", "0.005", "--chunk-ms", "50",
                         "--threads", "2")
        w50, w99, wrps = wrk_latency(url, args.duration, b.tmp)
        plain, agent = ttsbench_run(b, url, args.duration, streaming=False)
        streamed, _ = ttsbench_run(b, url, args.duration, streaming=True)
        l50, l99 = float(plain["Latency_p50_ms"]), float(plain["Latency_p99_ms"])
        t50, t99 = float(streamed["TTFA_p50_ms"]), float(streamed["TTFA_p99_ms"])
        rows = [
            ["wrk -t2 -c100 (reference)", "latency", f"{w50:.2f}", f"{w99:.2f}",
             f"{w50 - FIXED_MS:+.2f} / {w99 - FIXED_MS:+.2f}", f"{wrps:,.0f} req/s"],
            ["ttsbench, not streamed", "latency", f"{l50:.2f}", f"{l99:.2f}",
             f"{l50 - FIXED_MS:+.2f} / {l99 - FIXED_MS:+.2f}",
             f"{float(plain['RPS']):,.0f} req/s, success {plain['Success_Rate_%']}%, "
             f"agent CPU {agent.cpu_s:.1f} s"],
            ["ttsbench, streamed", "TTFA", f"{t50:.2f}", f"{t99:.2f}",
             f"{t50 - FIRST_CHUNK_MS:+.2f} / {t99 - FIRST_CHUNK_MS:+.2f}",
             f"latency p50 {float(streamed['Latency_p50_ms']):.2f} ms, "
             f"success {streamed['Success_Rate_%']}%"],
        ]
        print(f"ttsbench-synth: fixed {FIXED_MS:.0f} ms per answer, first chunk at "
              f"{FIRST_CHUNK_MS:.0f} ms; {USERS} users, {args.duration} s per run\n")
        print(benchlib.table(rows, ["client", "measures", "p50 ms", "p99 ms",
                                    "over fixed p50 / p99", "notes"]))
        ok = (l50 <= FIXED_MS + 0.5 and l99 <= FIXED_MS + 2 and t50 <= FIRST_CHUNK_MS + 0.5
              and plain["Success_Rate_%"] == "100" and streamed["Success_Rate_%"] == "100")
        print(f"\ntargets latency p50 <= +0.5 ms, p99 <= +2 ms, TTFA p50 <= +0.5 ms: "
              f"{benchlib.verdict(ok)}")
        return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
