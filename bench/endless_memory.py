#!/usr/bin/env python3
"""Issue 12 target 6: bounded memory per request against servers whose answer never ends.

ttsbench-synth --misbehave sends, after a normal 200, one SSE data line that never ends
(endless-sse-line, OpenAI stream_format sse), one JSON answer that never ends (endless-json,
torch-inference /tts/synthesize) or one WebSocket text message that never ends
(endless-ws-text, torch-inference /audio/ws), as fast as the client reads. One agent runs
--users requests in flight (2 requests per user) against each, with the default cap per event
(1 MiB) and with --max-event-bytes (--cap, 256 KiB). Reported per case: the agent's
peak RSS (VmHWM), how every request ended (error kinds from requests.csv), and whether the agent
lived. A guard kills the agent above --guard-mb so an unbounded path cannot take the machine
down; that case then reads "killed by the guard".
Targets: agent RSS <= 400 MB; every request ends as a classified error; nothing crashes or hangs.

Usage: bench/endless_memory.py [--bin build/bin] [--users 1000] [--cap 262144] [--guard-mb 1500]
                               [--case endless-sse-line|endless-json|endless-ws-text] [--smoke]
"""
import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import streamlib  # noqa: E402

CASES = [
    ("endless-sse-line", ["--api", "openai", "--format", "pcm", "--stream-format", "sse"]),
    ("endless-json", ["--api", "torch-inference"]),
    ("endless-ws-text", ["--api", "torch-inference", "--stream-format", "ws"]),
]


def run_case(b, mode, api_args, users, guard_mb, cap):
    url, _ = b.synth("--misbehave", mode, "--slots", str(users * 2), "--threads", "1")
    texts = b.path("texts.txt")
    with open(texts, "w") as f:
        f.write("An answer that never ends.\n")
    guard = {}

    def watch(agent):
        guard["g"] = streamlib.MemoryGuard(agent.p.pid, guard_mb)

    try:
        cap_args = ["--max-event-bytes", str(cap)] if cap else []
        session, _, agent = run_ttsbench(b, url, [*api_args, *cap_args], users, texts, watch)
    except Exception as e:  # noqa: BLE001 - a crashed or killed agent is a result here
        g = guard.get("g")
        return {"mode": mode, "cap": cap, "rss": None, "kinds": {}, "rows": 0,
                "note": "killed by the guard" if g and g.tripped else f"failed: {e}"[:80]}
    guard["g"].stop()
    rows = [r for r in benchlib.read_csv(os.path.join(session, "requests.csv"))
            if r["warmup"] == "0"]
    kinds = collections.Counter(r["error"] or "ok" for r in rows)
    return {"mode": mode, "cap": cap, "rss": agent.peak_rss_kb / 1024, "kinds": dict(kinds), "rows": len(rows),
            "note": "killed by the guard" if guard["g"].tripped else ""}


def run_ttsbench(b, url, api_args, users, texts, on_agent):
    """benchlib.Bench.ttsbench, with a hook on the agent process as soon as it starts."""
    start = b.start

    def start_and_watch(args, **kw):
        p = start(args, **kw)
        if os.path.basename(args[0]) == "ttsbench-agent":
            on_agent(p)
        return p

    b.start = start_and_watch
    try:
        return b.ttsbench(["server", "--url", url, *api_args, "--concurrency", str(users),
                           "--iterations", str(users * 2), "--warmup", "0", "--texts", texts,
                           "--timeout", "60", "--level-time-limit", "300s"],
                          agent_threads=2, timeout=600)
    finally:
        b.start = start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--guard-mb", type=int, default=1500)
    ap.add_argument("--case", choices=[c[0] for c in CASES], action="append")
    ap.add_argument("--cap", type=int, default=256 << 10,
                    help="the second run's --max-event-bytes (0: only the default)")
    ap.add_argument("--smoke", action="store_true", help="50 in flight; no target asserted")
    args = ap.parse_args()
    if args.smoke:
        # The JSON case is still unbounded (16 MiB per request): the guard ends it early.
        args.users, args.guard_mb = 50, 600
    results = []
    with benchlib.Bench(args.bin) as b:
        print(f"{args.users:,} requests in flight on one agent (--threads 2), 2 per user; load "
              f"average {streamlib.load_average()}\n")
        for mode, api_args in CASES:
            if args.case and mode not in args.case:
                continue
            for cap in [0, args.cap] if args.cap else [0]:
                results.append(run_case(b, mode, api_args, args.users, args.guard_mb, cap))
    table = []
    ok = True
    for r in results:
        # Refused as it arrives: a timeout means the request hung until its deadline.
        classified = (r["rows"] == args.users * 2 and
                      set(r["kinds"]) <= {"invalid_audio", "protocol"})
        good = r["rss"] is not None and r["rss"] <= 400 and classified
        if r["cap"] or not args.cap:
            ok = ok and good
        kinds = ", ".join(f"{k}:{n}" for k, n in sorted(r["kinds"].items())) or "-"
        table.append([r["mode"], f"{r['cap'] >> 10} KiB" if r["cap"] else "default (1 MiB)",
                      "-" if r["rss"] is None else f"{r['rss']:.0f}",
                      f"{r['rows']:,} of {args.users * 2:,}", kinds, "yes" if good else "no",
                      r["note"] or "-"])
    print(benchlib.table(table, ["server", "cap per event", "agent peak RSS MB", "requests ended", "how",
                                 "within target", "note"]))
    print("\ntarget (with the configured cap) agent RSS <= 400 MB, every request a classified "
          "error, no crash: "
          f"{benchlib.verdict(ok)}")
    return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
