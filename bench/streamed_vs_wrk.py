#!/usr/bin/env python3
"""Streamed answers against wrk: OpenAI-style SSE and base64-JSON answers served by nginx.

nginx (one worker, pinned to CPU 0) serves two recorded answers: an SSE body of 20
`speech.audio.delta` events with 2,400 bytes of base64 PCM each and a `speech.audio.done`
(as OpenAI `stream_format: sse` sends), and a JSON body with 64 KiB of base64 audio in
`audio_base64` (as torch-inference sends). wrk fetches the bytes; ttsbench (one agent thread,
agent and coordinator pinned to CPU 1) also parses every event, decodes the base64 and counts
the audio. 64 keep-alive connections each.
  python3 bench/streamed_vs_wrk.py [--bin build/bin] [--duration 10] [--smoke]
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
PCM_PER_EVENT = 1800  # 2,400 bytes of base64
JSON_AUDIO = 48 << 10  # 64 KiB of base64


def write_answers(root):
    pcm = bytes((i * 7) & 0xFF for i in range(PCM_PER_EVENT))
    delta = ('event: speech.audio.delta\ndata: {"type":"speech.audio.delta","audio":"%s"}\n\n'
             % base64.b64encode(pcm).decode())
    sse = delta * EVENTS + ('event: speech.audio.done\ndata: {"type":"speech.audio.done",'
                            '"usage":{"input_tokens":14,"output_tokens":101}}\n\n')
    with open(os.path.join(root, "speech.sse"), "w") as f:
        f.write(sse)
    body = ('{"success":true,"audio_base64":"%s","sample_rate":24000}'
            % base64.b64encode(b"\x01" * JSON_AUDIO).decode())
    with open(os.path.join(root, "speech.json"), "w") as f:
        f.write(body)
    return len(sse), len(body)


def run_ttsbench(b, url, path, template_lines, duration):
    tpl = b.path(path.strip("/") + ".yaml")
    with open(tpl, "w") as f:
        f.write(f"method: GET\npath: {path}\n{template_lines}")
    session, _, agent = b.ttsbench(
        ["server", "--url", url, "--api", "template", "--request-template", tpl, "--format",
         "pcm", "--sample-rate", "24000", "--concurrency", str(tvw.CONNECTIONS), "--duration",
         f"{duration}s", "--warmup-duration", "1s", "--timeout", "10"],
        agent_threads=1, cpus=tvw.LOAD_CPU)
    row = benchlib.read_csv(os.path.join(session, "summary.csv"))[0]
    # CPU per request holds up on a busy machine better than req/s does (warm-up CPU included).
    cpu_us = agent.cpu_s * 1e6 / max(1, int(row["Successful"]))
    return float(row["RPS"]), float(row["Success_Rate_%"]), cpu_us


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="2-second runs")
    args = ap.parse_args()
    if args.smoke:
        args.duration = 2
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    with benchlib.Bench(args.bin) as b:
        root = b.path("www")
        os.makedirs(root)
        sse_size, json_size = write_answers(root)
        url = tvw.start_nginx(
            b, root, types="text/event-stream sse; application/json json;")
        rows = []
        for name, path, size, lines in (
                ("OpenAI SSE, 21 events", "/speech.sse", sse_size,
                 "audio: sse\ndone: type=speech.audio.done\n"),
                ("JSON, 64 KiB base64", "/speech.json", json_size,
                 "audio: json\naudio_field: audio_base64\n")):
            wrk_rps, _ = tvw.run_wrk(url + path, args.duration)
            rps, success, cpu_us = run_ttsbench(b, url, path, lines, args.duration)
            rows.append([name, f"{size:,}", f"{wrk_rps:,.0f}", f"{rps:,.0f}",
                         f"{rps / wrk_rps:.2f}", f"{cpu_us:,.0f}", f"success {success:.1f}%"])
        print(f"nginx 1 worker, {tvw.CONNECTIONS} keep-alive connections, {args.duration} s each\n")
        print(benchlib.table(rows, ["answer", "bytes", "wrk req/s", "ttsbench req/s", "x wrk",
                                    "agent CPU us/req", "notes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
