"""Shared pieces of the streaming benchmarks (bench/streams_10k.py, bench/endless_memory.py,
bench/ws_vs_reference.py), on top of bench/benchlib.py: which text the agent picks for a request
(to match its records with the synthetic server's first-event log), a memory guard that stops an
agent before it can hurt a shared machine, and the machine's load for the record.

Stdlib only.
"""
import os
import signal
import threading
import time

MASK = (1 << 64) - 1


def _mix(x):
    """common/texts.cc Mix (splitmix64)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def pick_text(seed, stream, n, count):
    """common::PickText: the index of the text request n of `stream` uses."""
    return (_mix((_mix(seed ^ _mix(stream)) + n) & MASK)) % count


def measured_text_index(plan_seed, level, agent_index, request_id, count):
    """The text of a measured request of a level without warm-up: the orchestrator seeds level
    `level` with plan_seed + level, and agent a's measured requests use stream 2a."""
    return pick_text((plan_seed + level) & MASK, 2 * agent_index, request_id, count)


def unique_texts(count, chars=40):
    """`count` distinct texts of exactly `chars` characters each (same audio length)."""
    out = []
    for i in range(count):
        t = f"Stream {i:07d} speaks for the benchmark."
        t = (t + "x" * chars)[:chars]  # no trailing space: texts files are stripped
        out.append(t)
    assert len(set(out)) == count
    return out


def read_first_event_log(path):
    """ttsbench-synth --log-first-event lines: {text: [(received_ns, sent_ns), ...]} in order."""
    by_text = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) != 3:
                continue
            by_text.setdefault(parts[2], []).append((int(parts[0]), int(parts[1])))
    for v in by_text.values():
        v.sort()
    return by_text


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemoryGuard:
    """Kills process `pid` (SIGKILL) if its resident memory passes limit_mb: a benchmark of
    unbounded memory must not take a shared machine down with it. `tripped` says whether it
    fired."""

    def __init__(self, pid, limit_mb):
        self.pid = pid
        self.limit_kb = limit_mb * 1024
        self.tripped = False
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            if rss_kb(self.pid) > self.limit_kb:
                self.tripped = True
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except OSError:
                    pass
                return
            time.sleep(0.02)

    def stop(self):
        self._stop = True
        self._t.join(timeout=1)


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def cpu_s(pid):
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
