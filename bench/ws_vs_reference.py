#!/usr/bin/env python3
"""Issue 12 target 3: WebSocket audio messages/s per agent thread against the SSE figure.

One ttsbench-synth (pinned to CPU 0, one thread, no synthesis delay) answers one second of
24 kHz 16-bit PCM per request in 20 messages of 50 ms: over torch-inference's /audio/ws as 20
binary frames between a tts_meta and a tts_done message, and over OpenAI SSE as 20
speech.audio.delta events (base64) and speech.audio.done. In the same run, on CPU 1 with
--connections keep-alive sessions each:
  - ttsbench, one agent thread, torch-inference --stream-format ws;
  - the reference client bench/ws_ref_client.cc (one thread, Beast, no audio logic: it counts
    messages until "tts_done");
  - ttsbench, one agent thread, OpenAI --stream-format sse (the SSE figure).
Reported: audio messages/s (20 per answer), the agent's CPU per audio message and what that
makes per agent thread (1 s / CPU per message: the server, on one core, usually sets the pace
before one agent thread does), and the ratios.
Target: ttsbench WebSocket audio messages/s per agent thread >= the SSE figure.

Usage: bench/ws_vs_reference.py [--bin build/bin] [--duration 10] [--connections 64] [--smoke]
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import streamlib  # noqa: E402

SERVER_CPU, LOAD_CPU = "0", "1"
TEXT = "One second of speech for the benchmark.x"  # 40 characters
MESSAGES = 20  # 1 s of audio in 50 ms messages


def run_ttsbench(b, url, api_args, connections, duration):
    session, _, agent = b.ttsbench(
        ["server", "--url", url, *api_args, "--concurrency", str(connections), "--duration",
         f"{duration}s", "--warmup-duration", "1s", "--timeout", "10", "--texts",
         b.path("texts.txt")], agent_threads=1, cpus=LOAD_CPU)
    row = benchlib.read_csv(os.path.join(session, "summary.csv"))[0]
    ok = int(row["Successful"])
    rps = float(row["RPS"])
    # CPU per message holds up on a busy machine better than messages/s (warm-up included).
    cpu_us = agent.cpu_s * 1e6 / max(1, ok * MESSAGES)
    return rps * MESSAGES, cpu_us, float(row["Success_Rate_%"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--smoke", action="store_true", help="2-second runs; no target asserted")
    args = ap.parse_args()
    if args.smoke:
        args.duration = 2
    ref = os.path.join(os.path.abspath(args.bin), "ws_ref_client")
    if not os.access(ref, os.X_OK):
        sys.exit(f"{ref} not found: cmake --build build --target ws_ref_client")
    with benchlib.Bench(args.bin) as b:
        with open(b.path("texts.txt"), "w") as f:
            f.write(TEXT + "\n")
        port = benchlib.free_port()
        synth = b.start(["taskset", "-c", SERVER_CPU, os.path.join(b.bin, "ttsbench-synth"),
                         "--listen", f"127.0.0.1:{port}", "--slots", "100000", "--base-ms", "0",
                         "--per-char-ms", "0", "--first-chunk-ms", "0", "--chunk-ms", "50",
                         "--audio-per-char", str(1.0 / len(TEXT)), "--sample-rate", "24000",
                         "--jitter", "0", "--threads", "1", "--ws-encoding", "pcm_s16le"],
                        stdout=subprocess.PIPE, text=True)
        if "listening" not in synth.p.stdout.readline():
            sys.exit("ttsbench-synth did not start")
        url = f"http://127.0.0.1:{port}"
        load = streamlib.load_average()
        ws_rate, ws_cpu, ws_ok = run_ttsbench(
            b, url, ["--api", "torch-inference", "--stream-format", "ws"], args.connections,
            args.duration)
        out = subprocess.run(["taskset", "-c", LOAD_CPU, ref, "127.0.0.1", str(port),
                              str(args.connections), str(args.duration), TEXT],
                             capture_output=True, text=True, timeout=args.duration + 60).stdout
        f = out.split()
        ref_rate = int(f[5]) / float(f[7]) if len(f) >= 8 else float("nan")
        sse_rate, sse_cpu, sse_ok = run_ttsbench(
            b, url, ["--api", "openai", "--format", "pcm", "--sample-rate", "24000",
                     "--stream-format", "sse"], args.connections, args.duration)
        print(f"ttsbench-synth (CPU {SERVER_CPU}, 1 thread): 1 s of 24 kHz PCM per answer in "
              f"{MESSAGES} messages; {args.connections} sessions, {args.duration} s each, load "
              f"on CPU {LOAD_CPU}; load average {load}\n")
        rows = [
            ["ttsbench WebSocket (torch-inference /audio/ws), 1 thread", f"{ws_rate:,.0f}",
             f"{ws_rate / ref_rate:.2f}", f"{ws_cpu:.1f}", f"{1e6 / ws_cpu:,.0f}",
             f"success {ws_ok:.1f}%"],
            ["reference client (bench/ws_ref_client.cc), 1 thread", f"{ref_rate:,.0f}", "1.00",
             "-", "-", "no parsing, no audio"],
            ["ttsbench SSE (OpenAI speech.audio.delta), 1 thread", f"{sse_rate:,.0f}",
             f"{sse_rate / ref_rate:.2f}", f"{sse_cpu:.1f}", f"{1e6 / sse_cpu:,.0f}",
             f"success {sse_ok:.1f}%"],
        ]
        print(benchlib.table(rows, ["client", "audio messages/s", "x reference",
                                    "agent CPU us/message", "messages/s per agent thread",
                                    "notes"]))
        per_thread = sse_cpu / ws_cpu
        ok = per_thread >= 1
        print(f"\nWebSocket / SSE audio messages per agent thread (CPU): {per_thread:.2f}; "
              f"messages/s in this run: {ws_rate / sse_rate:.2f}; target >= 1: "
              f"{benchlib.verdict(ok)}")
        return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
