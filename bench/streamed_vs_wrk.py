#!/usr/bin/env python3
"""Streamed answers against wrk: OpenAI speech SSE and a torch-inference base64-JSON answer.

nginx (one worker, pinned to CPU 0) serves two recorded answers, each one second of 24 kHz
16-bit mono audio:
  - OpenAI `stream_format: sse`: 20 `speech.audio.delta` events with 2,400 bytes of PCM
    (3,200 of base64) each, then `speech.audio.done`;
  - torch-inference `/tts/synthesize`: one JSON answer with a 48,044-byte WAV as base64
    (64 KB) in `audio_base64`.
The agent speaks the real dialects (`--api openai --format pcm --sample-rate 24000 --streaming
--stream-format sse`, and `--api torch-inference`): it POSTs to /v1/audio/speech and
/tts/synthesize, which nginx answers with the recorded bytes (a static file answers a POST
through `return 405` and `error_page 405 =200`). wrk GETs the same bytes. One load thread per
tool (ttsbench: one agent thread, agent and coordinator pinned to CPU 1), 64 keep-alive
connections each; wrk runs before and after ttsbench and the better run is the reference.
ttsbench also parses every event, decodes the base64, measures the audio (1.000 s each,
checked) and streams every record to the coordinator. Target: ttsbench >= 0.8 x wrk's requests/s.
  python3 bench/streamed_vs_wrk.py [--bin build/bin] [--duration 10] [--smoke]
      [--perf DIR]  (records `perf record -g` of the agent into DIR/{sse,json}.data)
"""
import argparse
import base64
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import throughput_vs_wrk as tvw  # noqa: E402

EVENTS = 20
RATE = 24000
PCM_PER_EVENT = RATE * 2 // EVENTS  # 2,400 bytes: 50 ms of audio, 3,200 bytes of base64
TARGET = 0.8


def write_answers(root):
    pcm = bytes((i * 7) & 0xFF for i in range(PCM_PER_EVENT))
    delta = ('event: speech.audio.delta\ndata: {"type":"speech.audio.delta","audio":"%s"}\n\n'
             % base64.b64encode(pcm).decode())
    sse = delta * EVENTS + ('event: speech.audio.done\ndata: {"type":"speech.audio.done",'
                            '"usage":{"input_tokens":14,"output_tokens":101}}\n\n')
    with open(os.path.join(root, "speech.sse"), "w") as f:
        f.write(sse)
    wav_path = os.path.join(root, "one-second.wav")
    tvw.write_wav(wav_path, seconds=1.0, rate=RATE)
    with open(wav_path, "rb") as f:
        wav = f.read()
    body = ('{"success":true,"audio_base64":"%s","sample_rate":%d,"duration":1.0}'
            % (base64.b64encode(wav).decode(), RATE))
    with open(os.path.join(root, "speech.json"), "w") as f:
        f.write(body)
    return len(sse), len(body)


# The dialects' endpoints answered with the recorded bytes (GET for the same bytes: wrk).
NGINX_LOCATIONS = """
    location = /v1/audio/speech { error_page 405 =200 /speech.sse; return 405; }
    location = /tts/synthesize { error_page 405 =200 /speech.json; return 405; }"""

CASES = (
    # name, wrk path, case key, ttsbench flags
    ("OpenAI SSE, 21 events", "/speech.sse", "sse",
     ["--api", "openai", "--format", "pcm", "--sample-rate", str(RATE), "--streaming",
      "--stream-format", "sse"]),
    ("torch-inference JSON, 64 KB base64 WAV", "/speech.json", "json",
     ["--api", "torch-inference"]),
)


def run_ttsbench(b, url, flags, duration, perf_out=None):
    wrap = ["perf", "record", "-g", "-q", "-o", perf_out] if perf_out else []
    session, _, agent = b.ttsbench(
        ["server", "--url", url, *flags, "--concurrency", str(tvw.CONNECTIONS), "--duration",
         f"{duration}s", "--warmup-duration", "1s", "--timeout", "10"],
        agent_threads=1, cpus=tvw.LOAD_CPU, agent_wrap=wrap)
    row = benchlib.read_csv(os.path.join(session, "summary.csv"))[0]
    ok_n = max(1, int(row["Successful"]))
    # CPU per request holds up on a busy machine better than req/s does (warm-up CPU included).
    return {"rps": float(row["RPS"]), "success": float(row["Success_Rate_%"]),
            "audio_each": float(row["Audio_s"]) / ok_n, "cpu_us": agent.cpu_s * 1e6 / ok_n}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="2-second runs; no target asserted")
    ap.add_argument("--perf", metavar="DIR", help="record the agent with perf record -g")
    ap.add_argument("--only", choices=("sse", "json"), help="run one case")
    args = ap.parse_args()
    if args.smoke:
        args.duration = 2
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    if args.perf:
        os.makedirs(args.perf, exist_ok=True)
    with benchlib.Bench(args.bin) as b:
        root = b.path("www")
        os.makedirs(root)
        sizes = dict(zip(("sse", "json"), write_answers(root)))
        url = tvw.start_nginx(b, root, types="text/event-stream sse; application/json json;",
                              server_extra=NGINX_LOCATIONS)
        rows, met = [], True
        for name, path, key, flags in CASES:
            if args.only and key != args.only:
                continue
            wrk1, err1 = tvw.run_wrk(url + path, args.duration)
            perf_out = None
            if args.perf:
                perf_out = os.path.join(os.path.abspath(args.perf), f"{key}.data")
            tb = run_ttsbench(b, url, flags, args.duration, perf_out)
            # The smoke form (CI) spares the second wrk run.
            wrk2, err2 = (0.0, 0) if args.smoke else tvw.run_wrk(url + path, args.duration)
            wrk_rps = max(wrk1, wrk2)
            ratio = tb["rps"] / wrk_rps
            ok = (ratio >= TARGET and tb["success"] == 100.0 and err1 + err2 == 0
                  and abs(tb["audio_each"] - 1.0) < 1e-6)
            met = met and ok
            rows.append([name, f"{sizes[key]:,}", f"{wrk1:,.0f} / {wrk2:,.0f}",
                         f"{tb['rps']:,.0f}", f"{ratio:.2f}", f"{tb['cpu_us']:,.0f}",
                         f"success {tb['success']:.1f}%, {tb['audio_each']:.3f} s audio each"])
        print(f"nginx 1 worker, {tvw.CONNECTIONS} keep-alive connections, {args.duration} s each, "
              "one load thread per tool\n")
        print(benchlib.table(rows, ["answer", "bytes", "wrk req/s (before / after)",
                                    "ttsbench req/s", "x wrk (better)", "agent CPU us/req",
                                    "notes"]))
        print(f"\ntarget ttsbench >= {TARGET} x wrk with 100% success and 1.000 s of audio each: "
              f"{benchlib.verdict(met)}")
    return 0 if met or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
