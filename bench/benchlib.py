"""Shared pieces of the benchmarks under bench/: processes on loopback, a ttsbench run with one
real agent process dialling in over gRPC (so every request record is streamed to the
coordinator), the agent's peak memory and CPU, CSV reading, percentiles, and the result table.

Stdlib only: the benchmarks run on a fresh Debian 12 machine after deploy/install-deps.sh.
"""
import csv
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def raise_fd_limit(n=200000):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def percentile(values, p):
    """numpy's default (linear) percentile, p in [0, 100]."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Proc:
    """A child process whose peak RSS (VmHWM) and CPU time are sampled until it exits."""

    def __init__(self, args, **kw):
        self.args = args
        self.p = subprocess.Popen(args, **kw)
        self.peak_rss_kb = 0
        self.cpu_s = 0.0
        self._stop = False
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()

    def _sample(self):
        tick = os.sysconf("SC_CLK_TCK")
        while not self._stop and self.p.poll() is None:
            try:
                with open(f"/proc/{self.p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
                with open(f"/proc/{self.p.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                    self.cpu_s = (int(fields[11]) + int(fields[12])) / tick
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.05)

    def wait(self, timeout=None):
        rc = self.p.wait(timeout=timeout)
        self._stop = True
        self._t.join(timeout=1)
        return rc

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._stop = True


class Bench:
    """Holds the binaries, a scratch folder and every started process (stopped at the end)."""

    def __init__(self, bin_dir):
        self.bin = os.path.abspath(bin_dir)
        for exe in ("ttsbench", "ttsbench-agent", "ttsbench-synth"):
            if not os.access(os.path.join(self.bin, exe), os.X_OK):
                sys.exit(f"{exe} not found in {self.bin}: build first "
                         "(cmake --build build --target ttsbench ttsbench-agent ttsbench-synth)")
        self.tmp = tempfile.mkdtemp(prefix="ttsbench-bench-")
        self.procs = []
        raise_fd_limit()

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def start(self, args, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = Proc(args, **kw)
        self.procs.append(p)
        return p

    def synth(self, *args):
        port = free_port()
        p = self.start([os.path.join(self.bin, "ttsbench-synth"), "--listen",
                        f"127.0.0.1:{port}", *args], stdout=subprocess.PIPE, text=True)
        line = p.p.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"ttsbench-synth did not start: {line!r}")
        return f"http://127.0.0.1:{port}", p

    def ttsbench(self, mode_args, agent_threads=1, agent_args=(), timeout=600, cpus=None,
                 agent_wrap=()):
        """Runs `ttsbench <mode_args>` with one remote agent process (--threads agent_threads)
        dialling in over gRPC on loopback. `cpus` ("1"): pin the coordinator and the agent to
        those CPUs (taskset). `agent_wrap`: a command the agent runs under (perf record ...).
        Returns (session_dir, stdout, agent Proc)."""
        port = free_port()
        out = self.path("results")
        name = f"s{len(self.procs)}"
        pin = ["taskset", "-c", cpus] if cpus else []
        coord = subprocess.Popen(
            [*pin, os.path.join(self.bin, "ttsbench"), *mode_args, "--expect-agents", "1",
             "--listen", f"127.0.0.1:{port}", "--output-dir", out, "--session-name", name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        agent = self.start([*pin, *agent_wrap, os.path.join(self.bin, "ttsbench-agent"),
                            "--coordinator", f"127.0.0.1:{port}", "--id", "bench-agent",
                            "--once", "--threads", str(agent_threads), *agent_args])
        try:
            stdout, stderr = coord.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            coord.kill()
            raise
        agent.wait(timeout=30)
        if coord.returncode not in (0, 3):
            raise RuntimeError(f"ttsbench exited {coord.returncode}: {stderr.strip()}")
        return os.path.join(out, name), stdout, agent


def wrk_speech_script(path, text, stream=False):
    """A wrk Lua script that POSTs an OpenAI speech request for `text` (WAV) and returns its
    path."""
    body = {"model": "tts-1", "input": text, "voice": "default", "response_format": "wav"}
    if stream:
        body["stream"] = True
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(json.dumps(body))}\n")
    return path


def session_json(session_dir):
    with open(os.path.join(session_dir, "session.json")) as f:
        return json.load(f)


def table(rows, headers):
    """A plain fixed-width table (what the benchmarks print and docs/BENCHMARKS.md records)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def verdict(ok):
    return "MET" if ok else "NOT MET"
