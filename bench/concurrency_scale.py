#!/usr/bin/env python3
"""Benchmark 3: one agent holding 10,000 concurrent streamed requests.

ttsbench-synth streams ~2 s of 24 kHz audio per request in 100 ms chunks over 2 s, with more
slots than users. ttsbench runs 10,000 virtual users, one request each, all at once, through one
agent process (2 threads) that streams every record to the coordinator. Reported: requests
completed, the most requests in flight at one moment (from requests.csv), the agent's peak
resident memory (VmHWM) and that per connection. Side by side in the same run, wrk -t2 -c10000
against the same streamed endpoint: its peak memory for the same number of connections (wrk
keeps no per-request record and no audio meter).
Target: every request completes; agent peak RSS <= 400 MB.

Usage: bench/concurrency_scale.py [--bin build/bin] [--users 10000] [--smoke]
"""
import argparse
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TEXT = "Streaming speech for ten thousand users."  # 40 characters: 2 s of audio at 0.05 s/char


def max_in_flight(rows):
    events = []
    for r in rows:
        events.append((float(r["start_s"]), 1))
        events.append((float(r["end_s"]), -1))
    events.sort()
    now = best = 0
    for _, d in events:
        now += d
        best = max(best, now)
    return best


def wrk_memory(b, url, users, seconds):
    if shutil.which("wrk") is None:
        return None
    lua = benchlib.wrk_speech_script(b.path("stream.lua"), TEXT, stream=True)
    p = benchlib.Proc(["wrk", "-t2", f"-c{users}", f"-d{seconds}s", "--timeout", "30s", "-s", lua,
                       url + "/v1/audio/speech"], stdout=subprocess.PIPE, text=True)
    out, _ = p.p.communicate(timeout=seconds + 60)
    p.wait()
    return p.peak_rss_kb / 1024, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--smoke", action="store_true", help="200 users; no target asserted")
    args = ap.parse_args()
    if args.smoke:
        args.users = 200
    with benchlib.Bench(args.bin) as b:
        url, synth = b.synth("--slots", str(args.users * 2), "--base-ms", "0", "--per-char-ms",
                             "50", "--audio-per-char", "0.05", "--first-chunk-ms", "100",
                             "--chunk-ms", "100", "--jitter", "0", "--threads", "1")
        texts = b.path("texts.txt")
        with open(texts, "w") as f:
            f.write(TEXT + "\n")
        session, _, agent = b.ttsbench(
            ["server", "--url", url, "--streaming", "--concurrency", str(args.users),
             "--iterations", str(args.users), "--warmup", "0", "--texts", texts, "--timeout",
             "120", "--level-time-limit", "300s"], agent_threads=2, timeout=900)
        row = benchlib.read_csv(os.path.join(session, "summary.csv"))[0]
        rows = [r for r in benchlib.read_csv(os.path.join(session, "requests.csv"))
                if r["warmup"] == "0"]
        ok_rows = [r for r in rows if r["success"] == "1"]
        peak = max_in_flight(rows)
        audio = sum(float(r["audio_s"]) for r in ok_rows) / max(1, len(ok_rows))
        rss_mb = agent.peak_rss_kb / 1024
        wrk = wrk_memory(b, url, args.users, 5)
        table = [["ttsbench agent --threads 2", f"{len(ok_rows):,} of {len(rows):,}",
                  f"{peak:,}", f"{rss_mb:.0f}", f"{agent.peak_rss_kb / args.users:.1f}",
                  f"{audio:.2f} s audio each, latency p50 "
                  f"{float(row['Latency_p50_ms']) / 1000:.2f} s, agent CPU {agent.cpu_s:.1f} s"]]
        if wrk is not None:
            table.append([f"wrk -t2 -c{args.users} (5 s)", "-", f"{args.users:,} connections",
                          f"{wrk[0]:.0f}", f"{wrk[0] * 1024 / args.users:.1f}",
                          "no records, no audio parsing"])
        print(f"ttsbench-synth: {args.users:,} users, each streaming {audio:.2f} s of audio in "
              f"100 ms chunks over ~2 s\n")
        print(benchlib.table(table, ["client", "completed", "max in flight", "peak RSS MB",
                                     "KB per connection", "notes"]))
        ok = len(ok_rows) == args.users and rss_mb <= 400
        print(f"\ntarget every request completes, agent RSS <= 400 MB: {benchlib.verdict(ok)}")
        return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
