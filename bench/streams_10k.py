#!/usr/bin/env python3
"""Issue 12 target 4: 10,000 concurrent SSE streams on one agent, each paced at 10 events/s.

ttsbench-synth answers OpenAI SSE (8 kHz PCM, one speech.audio.delta per 100 ms of audio) in
real time: each stream lasts --audio seconds and its events leave on the server's schedule, so
10,000 held streams are 100,000 events/s. The users start spread over --ramp seconds (the level's
ramp-up), so all of them are in flight from then until the first ones end. The synthetic server
logs when it sent each request's first audio event (--log-first-event, CLOCK_MONOTONIC); the
agent's records (requests.csv, on the coordinator's timeline) are matched to those lines by the
text each request carried (every user has its own text; the text a request used is recomputed
from the plan's seed as the agent picks it).

Reported: streams completed; TTFA as the agent measured it minus the server's own first-event
send time for the same request (p50/p99/max, both on one steady clock: the timeline's origin is
recovered as the smallest request-to-server delay); the same as an epoch-free difference of the
two TTFAs (agent: start to first audio; server: request read to first event sent); the agent's
peak RSS (VmHWM) and CPU, the server's CPU, and the load average.
Targets: every stream completes; first-audio delay p99 <= 2 ms; agent RSS <= 400 MB.

Usage: bench/streams_10k.py [--bin build/bin] [--users 10000] [--audio 20] [--ramp 10]
                            [--agent-threads 2] [--synth-threads 2] [--smoke]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import streamlib  # noqa: E402

CHARS = 40
SEED = 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--audio", type=float, default=20.0, help="seconds of audio per stream")
    ap.add_argument("--ramp", type=float, default=10.0, help="ramp-up seconds")
    ap.add_argument("--agent-threads", type=int, default=2)
    ap.add_argument("--synth-threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="200 streams of 3 s; no target asserted")
    args = ap.parse_args()
    if args.smoke:
        args.users, args.audio, args.ramp = 200, 3.0, 1.0
    with benchlib.Bench(args.bin) as b:
        log = b.path("first_events.tsv")
        url, synth = b.synth(
            "--slots", str(args.users * 2), "--base-ms", "0", "--per-char-ms",
            str(args.audio * 1000 / CHARS), "--audio-per-char", str(args.audio / CHARS),
            "--first-chunk-ms", "100", "--chunk-ms", "100", "--jitter", "0", "--sample-rate",
            "8000", "--threads", str(args.synth_threads), "--log-first-event", log)
        texts = streamlib.unique_texts(args.users, CHARS)
        texts_file = b.path("texts.txt")
        with open(texts_file, "w") as f:
            f.write("\n".join(texts) + "\n")
        load_before = streamlib.load_average()
        session, _, agent = b.ttsbench(
            ["server", "--url", url, "--api", "openai", "--format", "pcm", "--sample-rate", "8000",
             "--stream-format", "sse", "--concurrency", str(args.users), "--iterations",
             str(args.users), "--warmup", "0", "--ramp-up", f"{args.ramp}s", "--texts", texts_file,
             "--seed", str(SEED), "--timeout", "120", "--level-time-limit", "900s"],
            agent_threads=args.agent_threads, timeout=1200)
        synth_cpu = synth.cpu_s
        rows = [r for r in benchlib.read_csv(os.path.join(session, "requests.csv"))
                if r["warmup"] == "0"]
        ok_rows = [r for r in rows if r["success"] == "1"]
        server = streamlib.read_first_event_log(log)

        # Match: the agent's requests of each text, in start order, to the server's lines of
        # that text, in arrival order.
        by_text = {}
        for r in ok_rows:
            i = streamlib.measured_text_index(SEED, 0, 0, int(r["request_id"]), len(texts))
            by_text.setdefault(texts[i], []).append(r)
        pairs = []
        for text, rs in by_text.items():
            rs.sort(key=lambda r: float(r["start_s"]))
            for r, (recv, sent) in zip(rs, server.get(text, [])):
                s = round(float(r["start_s"]) * 1e9)
                a = round(float(r["first_audio_s"]) * 1e9)
                pairs.append((s, a, recv, sent))
        if not pairs:
            print("no agent record matched a server log line")
            return 1
        # Timeline origin on the steady clock, up to the smallest request delay (tens of us).
        origin = min(recv - s for s, a, recv, sent in pairs)
        delay_ms = [(a + origin - sent) / 1e6 for s, a, recv, sent in pairs]
        send_ms = [(recv - s - origin) / 1e6 for s, a, recv, sent in pairs]
        ttfa_diff_ms = [((a - s) - (sent - recv)) / 1e6 for s, a, recv, sent in pairs]
        lat = [float(r["end_s"]) - float(r["start_s"]) for r in ok_rows]
        audio = sum(float(r["audio_s"]) for r in ok_rows) / max(1, len(ok_rows))
        rss_mb = agent.peak_rss_kb / 1024
        p = benchlib.percentile

        def trio(v):
            return f"{p(v, 50):.2f} / {p(v, 99):.2f} / {max(v):.2f}"

        print(f"{args.users:,} SSE streams ramped over {args.ramp:g} s, {audio:.2f} s of 8 kHz "
              f"audio each at 10 events/s ({args.users * 10:,} events/s held); agent "
              f"--threads {args.agent_threads}, synth --threads {args.synth_threads}; load "
              f"average {load_before} before\n")
        table = [
            ["streams completed", f"{len(ok_rows):,} of {args.users:,}"],
            ["matched to the server's log", f"{len(pairs):,}"],
            ["agent first audio - server first event sent, ms p50/p99/max", trio(delay_ms)],
            ["agent TTFA - server TTFA, ms p50/p99/max", trio(ttfa_diff_ms)],
            ["request start - server read, ms p50/p99/max (origin-relative)", trio(send_ms)],
            ["latency s p50/p99 (audio is {:.1f} s)".format(audio),
             f"{p(lat, 50):.2f} / {p(lat, 99):.2f}"],
            ["agent peak RSS MB (VmHWM)", f"{rss_mb:.0f}"],
            ["agent CPU s / synth CPU s", f"{agent.cpu_s:.1f} / {synth_cpu:.1f}"],
        ]
        print(benchlib.table(table, ["figure", "value"]))
        ok = (len(ok_rows) == args.users and p(delay_ms, 99) <= 2.0 and rss_mb <= 400)
        print("\ntarget every stream completes, first-audio delay p99 <= 2 ms, agent RSS <= 400 MB:"
              f" {benchlib.verdict(ok)}")
        return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
