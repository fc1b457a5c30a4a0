#!/usr/bin/env python3
"""Benchmark 1: requests/s of one ttsbench agent thread against wrk (and Locust) on the same target.

nginx (one worker) serves a 1-second 24 kHz 16-bit mono WAV (48,044 bytes) on loopback. Each
tool gets 64 keep-alive connections and one load-generating thread, for the same duration, in
the same run:
  - wrk -t1 -c64, before and after ttsbench (the better run is the reference);
  - ttsbench: one agent process with --threads 1 dialling into the coordinator over gRPC,
    measuring every request's audio (the WAV is parsed: 1.000 s each) and streaming every
    request record to the coordinator, which writes requests.csv;
  - Locust (FastHttpUser, one process, 64 users), when python3-locust is installed.
nginx is pinned to CPU 0 and each tool (for ttsbench: the agent and the coordinator) to CPU 1,
so the tools never share a core with the server or each other's leftovers.
With --tls, nginx serves the same file over HTTPS (a self-signed P-256 certificate made for the
run; ttsbench verifies it with --ca-file, wrk does not verify), and Locust is not run.
Target: ttsbench >= 0.9 x wrk's requests/s.

Usage: bench/throughput_vs_wrk.py [--bin build/bin] [--duration 10] [--smoke] [--tls]
       [--perf FILE]  (records `perf record -g` of the agent into FILE)
"""
import argparse
import math
import os
import re
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

CONNECTIONS = 64
# nginx alone on one core, each load tool and everything it runs on the other: ttsbench's
# coordinator (which receives and stores every record) shares the core with its agent.
SERVER_CPU, LOAD_CPU = "0", "1"


def write_wav(path, seconds=1.0, rate=24000):
    n = int(seconds * rate)
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                   for i in range(n))
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16))
        f.write(b"data" + struct.pack("<I", len(pcm)) + pcm)
    return 44 + len(pcm)


def make_cert(b):
    """A self-signed certificate for 127.0.0.1; returns (cert, key) paths."""
    cert, key = b.path("cert.pem"), b.path("key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key,
                    "-out", cert], check=True, capture_output=True)
    return cert, key


def start_nginx(b, root, types="audio/wav wav;", server_extra="", tls=None):
    """nginx, one worker pinned to SERVER_CPU, serving `root`; `types`: nginx types lines;
    `server_extra`: more lines of the server block (locations); `tls`: (cert, key) for HTTPS."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        sys.exit("nginx not found: apt-get install -y nginx-light")
    port = benchlib.free_port()
    if tls:
        server_extra += (f"\n    ssl_certificate {tls[0]};\n    ssl_certificate_key {tls[1]};"
                         "\n    ssl_session_cache shared:SSL:1m;")
    conf = b.path("nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
pid {b.path('nginx.pid')};
error_log {b.path('nginx-error.log')} warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  client_body_temp_path {b.tmp};
  proxy_temp_path {b.tmp};
  fastcgi_temp_path {b.tmp};
  uwsgi_temp_path {b.tmp};
  scgi_temp_path {b.tmp};
  types {{ {types} }}
  server {{
    listen 127.0.0.1:{port}{' ssl' if tls else ''};
    root {root};
    open_file_cache max=16;
    {server_extra}
  }}
}}
""")
    b.start(["taskset", "-c", SERVER_CPU, nginx, "-c", conf, "-p", b.tmp])
    benchlib.wait_port(port)
    return f"{'https' if tls else 'http'}://127.0.0.1:{port}"


def run_wrk(url, duration):
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{CONNECTIONS}",
                          f"-d{duration}s", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, int(errors.group(1)) if errors else 0


def run_ttsbench(b, url, duration, ca_file=None, perf_out=None):
    tpl = b.path("get-wav.yaml")
    with open(tpl, "w") as f:
        f.write("method: GET\npath: /audio.wav\naudio: body\n")
    session, _, agent = b.ttsbench(
        ["server", "--url", url, "--api", "template", "--request-template", tpl,
         "--concurrency", str(CONNECTIONS), "--duration", f"{duration}s", "--warmup-duration",
         "1s", "--timeout", "10", *(["--ca-file", ca_file] if ca_file else [])],
        agent_threads=1, cpus=LOAD_CPU,
        agent_wrap=["perf", "record", "-g", "-q", "-o", perf_out] if perf_out else [])
    row = benchlib.read_csv(os.path.join(session, "summary.csv"))[0]
    with open(os.path.join(session, "requests.csv")) as f:
        recorded = sum(1 for _ in f) - 1
    return {
        "rps": float(row["RPS"]),
        "success": float(row["Success_Rate_%"]),
        "audio_s_each": float(row["Audio_s"]) / max(1, int(row["Successful"])),
        "recorded": recorded,
        "agent_cpu_s": agent.cpu_s,
        "agent_rss_mb": agent.peak_rss_kb / 1024,
    }


def run_locust(b, url, duration):
    locust = shutil.which("locust")
    if locust is None:
        return None
    lf = b.path("locustfile.py")
    with open(lf, "w") as f:
        f.write("from locust import constant\nfrom locust.contrib.fasthttp import FastHttpUser\n"
                "from locust import task\n\n"
                "class Wav(FastHttpUser):\n    wait_time = constant(0)\n\n"
                "    @task\n    def wav(self):\n        self.client.get('/audio.wav')\n")
    prefix = b.path("locust")
    subprocess.run(["taskset", "-c", LOAD_CPU, locust, "-f", lf, "--headless", "-u", str(CONNECTIONS), "-r",
                    str(CONNECTIONS), "-t", f"{duration}s", "--host", url, "--csv", prefix,
                    "--only-summary"], capture_output=True, text=True, timeout=duration + 60)
    for row in benchlib.read_csv(prefix + "_stats.csv"):
        if row["Name"] == "Aggregated":
            return float(row["Requests/s"])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="2-second runs; no target asserted")
    ap.add_argument("--tls", action="store_true", help="over HTTPS (Locust not run)")
    ap.add_argument("--perf", metavar="FILE", help="record the agent with perf record -g")
    args = ap.parse_args()
    if args.smoke:
        args.duration = 2
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    with benchlib.Bench(args.bin) as b:
        root = b.path("www")
        os.makedirs(root)
        size = write_wav(os.path.join(root, "audio.wav"))
        tls = make_cert(b) if args.tls else None
        url = start_nginx(b, root, tls=tls)
        # wrk before and after ttsbench; the better of the two is the reference (the
        # conservative choice when the machine's pace drifts between runs).
        wrk_first, wrk_errors = run_wrk(url + "/audio.wav", args.duration)
        tb = run_ttsbench(b, url, args.duration, ca_file=tls[0] if tls else None,
                          perf_out=os.path.abspath(args.perf) if args.perf else None)
        wrk_second, more_errors = run_wrk(url + "/audio.wav", args.duration)
        wrk_rps, wrk_errors = max(wrk_first, wrk_second), wrk_errors + more_errors
        locust_rps = None if tls else run_locust(b, url, args.duration)
        ratio = tb["rps"] / wrk_rps
        rows = [["wrk -t1 -c64", f"{wrk_rps:,.0f}", "1.00",
                 f"better of {wrk_first:,.0f} (before) and {wrk_second:,.0f} (after); "
                 f"non-2xx {wrk_errors}"],
                ["ttsbench agent --threads 1", f"{tb['rps']:,.0f}", f"{ratio:.2f}",
                 f"success {tb['success']:.1f}%, {tb['audio_s_each']:.3f} s audio each, "
                 f"{tb['recorded']:,} records streamed, agent CPU {tb['agent_cpu_s']:.1f} s, "
                 f"RSS {tb['agent_rss_mb']:.0f} MB"]]
        if locust_rps is not None:
            rows.append(["locust FastHttpUser -u64", f"{locust_rps:,.0f}",
                         f"{locust_rps / wrk_rps:.2f}", "one process"])
        elif not tls:
            rows.append(["locust", "-", "-", "not installed (apt-get install -y python3-locust)"])
        print(f"nginx 1 worker, {size:,}-byte WAV, {'HTTPS' if tls else 'HTTP'}, "
              f"{CONNECTIONS} keep-alive connections, "
              f"{args.duration} s each, one load thread per tool\n")
        print(benchlib.table(rows, ["tool", "req/s", "x wrk", "notes"]))
        ok = ratio >= 0.9 and tb["success"] == 100.0 and abs(tb["audio_s_each"] - 1.0) < 1e-6
        print(f"\ntarget ttsbench >= 0.9 x wrk: {benchlib.verdict(ok)} ({ratio:.2f})")
        return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
