#!/usr/bin/env python3
"""Benchmark 4: open-loop Poisson arrivals at 2,000 requests/s for 20 s.

ttsbench (one agent process, 2 threads, records streamed to the coordinator) sends Poisson
arrivals to ttsbench-synth (2 ms answers, more slots than requests). From requests.csv:
achieved rate, scheduling lag (actual send - intended send) percentiles, and a
Kolmogorov-Smirnov test of the inter-arrival times, intended and actually sent, against the
exponential distribution of the target rate.
Side by side in the same run, the way vLLM's benchmark_serving.py makes Poisson arrivals:
Python asyncio, `await asyncio.sleep(random.expovariate(rate))` between request tasks, each
request on a pooled keep-alive connection; the same figures for it.
Targets (ttsbench): rate within 1% of 2,000/s, lag p99 <= 1 ms, and the arrival process
(intended send times) passes KS (p > 0.01); actual send times are tested and shown as well.

Usage: bench/open_loop_accuracy.py [--bin build/bin] [--rate 2000] [--duration 20] [--smoke]
"""
import argparse
import asyncio
import json
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TEXT = "Open loop."


def ks_exponential(gaps, rate):
    """One-sample KS statistic D and its asymptotic p-value against Exp(rate)."""
    xs = sorted(gaps)
    n = len(xs)
    d = 0.0
    for i, x in enumerate(xs):
        cdf = 1.0 - math.exp(-rate * x)
        d = max(d, (i + 1) / n - cdf, cdf - i / n)
    # Kolmogorov distribution, with Stephens' small-sample correction.
    t = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * t * t) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


def figures(intended, sent, rate, duration):
    intended, sent = sorted(intended), sorted(sent)
    lag_ms = [(s - i) * 1000 for i, s in zip(sorted(intended), sorted(sent))]
    d_int, p_int = ks_exponential([b - a for a, b in zip(intended, intended[1:])], rate)
    d_act, p_act = ks_exponential([b - a for a, b in zip(sent, sent[1:])], rate)
    return {
        "n": len(sent),
        "rate": len(sent) / duration,
        "lag50": benchlib.percentile(lag_ms, 50),
        "lag99": benchlib.percentile(lag_ms, 99),
        "lagmax": max(lag_ms),
        "ks_int": (d_int, p_int),
        "ks_act": (d_act, p_act),
    }


async def vllm_style(host, port, rate, duration, seed=0):
    """vLLM's get_request loop: sleep an exponential gap, start a request task, repeat."""
    rng = random.Random(seed)
    body = json.dumps({"model": "tts-1", "input": TEXT, "voice": "default",
                       "response_format": "wav"}).encode()
    req = (b"POST /v1/audio/speech HTTP/1.1\r\nHost: synth\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    pool = []
    intended, sent = [], []

    async def one():
        conn = pool.pop() if pool else await asyncio.open_connection(host, port)
        r, w = conn
        sent.append(time.perf_counter())
        w.write(req)
        head = await r.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await r.readexactly(length)
        pool.append(conn)

    tasks = []
    t0 = time.perf_counter()
    due = t0
    while due - t0 < duration:
        intended.append(due)
        tasks.append(asyncio.create_task(one()))
        due += rng.expovariate(rate)
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
    await asyncio.gather(*tasks, return_exceptions=True)
    for r, w in pool:
        w.close()
    return intended[:len(sent)], sent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--smoke", action="store_true", help="200/s for 2 s; no target asserted")
    args = ap.parse_args()
    if args.smoke:
        args.rate, args.duration = 200, 2
    with benchlib.Bench(args.bin) as b:
        url, _ = b.synth("--slots", "100000", "--base-ms", "2", "--per-char-ms", "0",
                         "--audio-per-char", "0.002", "--first-chunk-ms", "1", "--jitter", "0",
                         "--threads", "1")
        texts = b.path("texts.txt")
        with open(texts, "w") as f:
            f.write(TEXT + "\n")
        session, _, agent = b.ttsbench(
            ["server", "--url", url, "--rate", str(args.rate), "--arrival", "poisson",
             "--duration", f"{args.duration}s", "--warmup-duration", "1s", "--texts", texts,
             "--timeout", "10"], agent_threads=2, timeout=int(args.duration) + 300)
        rows = [r for r in benchlib.read_csv(os.path.join(session, "requests.csv"))
                if r["warmup"] == "0"]
        summary = benchlib.read_csv(os.path.join(session, "summary.csv"))[0]
        ours = figures([float(r["intended_s"]) for r in rows], [float(r["start_s"]) for r in rows],
                       args.rate, args.duration)
        success = sum(r["success"] == "1" for r in rows) / max(1, len(rows)) * 100
        port = int(url.rsplit(":", 1)[1])
        ref_int, ref_sent = asyncio.run(vllm_style("127.0.0.1", port, args.rate, args.duration))
        ref = figures(ref_int, ref_sent, args.rate, args.duration)

        def row(name, f, notes):
            return [name, f"{f['n']:,}", f"{f['rate']:,.1f}",
                    f"{(f['rate'] / args.rate - 1) * 100:+.2f}%", f"{f['lag50']:.3f}",
                    f"{f['lag99']:.3f}", f"{f['lagmax']:.1f}",
                    f"D={f['ks_int'][0]:.4f} p={f['ks_int'][1]:.2f}",
                    f"D={f['ks_act'][0]:.4f} p={f['ks_act'][1]:.2f}", notes]

        print(f"Poisson arrivals at {args.rate:,.0f}/s for {args.duration:g} s against "
              f"ttsbench-synth (2 ms answers)\n")
        print(benchlib.table(
            [row("ttsbench agent --threads 2", ours,
                 f"success {success:.1f}%, summary Achieved_Rate {float(summary['Achieved_Rate']):,.1f}, "
                 f"dropped {summary['Dropped']}, late {summary['Late']}, agent CPU {agent.cpu_s:.1f} s"),
             row("vLLM-style asyncio (reference)", ref, "one Python process")],
            ["generator", "sent", "rate/s", "vs target", "lag p50 ms", "lag p99 ms", "lag max ms",
             "KS intended", "KS sent", "notes"]))
        # The KS target is on the arrival process (intended send times). Actual send times carry
        # the scheduling lag, whose tens of microseconds of wake-up jitter a KS test over 40,000
        # gaps (critical D ~0.008) resolves; that column shows how far each generator's
        # realisation strays, and lag p99 bounds it.
        ok = (abs(ours["rate"] / args.rate - 1) <= 0.01 and ours["lag99"] <= 1.0
              and ours["ks_int"][1] > 0.01)
        print(f"\ntargets rate within 1%, lag p99 <= 1 ms, KS (intended) p > 0.01: "
              f"{benchlib.verdict(ok)}")
        return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
