"""What the end-to-end tests share: where the binaries are, free loopback ports, a ttsbench-synth
process, running ttsbench, reading a session's files, and a TestCase with a temporary output
folder that stops every synth it started.

Each test script is run as `SCRIPT BIN_DIR [unittest args]` (tests/e2e/CMakeLists.txt) and ends
with `harness.main()`; Python puts the script's folder on sys.path, so `import harness` works
from any working directory.
"""
import csv
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

BIN = None  # the folder of the built binaries, set by main()


def main():
    """Takes BIN_DIR off the command line, then runs the calling script's tests."""
    global BIN
    BIN = os.path.abspath(sys.argv.pop(1))
    unittest.main(module="__main__")


def binary(name):
    return os.path.join(BIN, name)


def free_port():
    """A port nothing listens on now (the kernel's choice on loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(name, *args, timeout, env=None, keep_newlines=False):
    """Runs binary `name` to its end and returns the CompletedProcess, output as text.
    keep_newlines: bytes decoded as UTF-8 (undecodable ones replaced), line ends untranslated."""
    if not keep_newlines:
        return subprocess.run([binary(name), *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
    r = subprocess.run([binary(name), *args], capture_output=True, timeout=timeout, env=env)
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def start(name, *args, **popen_args):
    """Starts binary `name` with its output piped as text; the caller waits for it."""
    return subprocess.Popen([binary(name), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen_args)


class Synth:
    """A ttsbench-synth process on a free port of `host`, started by the constructor, which
    returns once the server says it is listening."""

    def __init__(self, *flags, host="127.0.0.1", env=None):
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.proc = start("ttsbench-synth", "--listen", f"{host}:{self.port}", *flags, env=env)
        line = self.proc.stdout.readline()
        self.banner = line  # "... listening on http://HOST:PORT [and riva grpc://HOST:PORT]"
        if "listening" not in line:
            self.close()
            raise AssertionError(f"ttsbench-synth did not start: {line!r}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_csv(path):
    """(column names, rows as dicts)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def read_csv_rows(path):
    """(header, rows as lists), read strictly: a malformed quote is an error, not a guess."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, strict=True))
    return rows[0], rows[1:]


class E2eTest(unittest.TestCase):
    """A test with its own output folder (self.out) and the synths it starts, all gone after."""

    TTSBENCH_TIMEOUT = 150  # seconds, for one ttsbench command

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.out = self.tmp.name

    def synth(self, *flags, **kw):
        """A synth stopped when the test ends."""
        s = Synth(*flags, **kw)
        self.addCleanup(s.close)
        return s

    def ttsbench(self, *args, timeout=None, env=None, keep_newlines=False):
        return run("ttsbench", *args, timeout=timeout or self.TTSBENCH_TIMEOUT, env=env,
                   keep_newlines=keep_newlines)

    def session_dir(self, name):
        return os.path.join(self.out, name)

    def session_json(self, name):
        return read_json(os.path.join(self.out, name, "session.json"))

    def requests(self, name):
        """requests.csv of session `name`, rows as dicts."""
        return read_csv(os.path.join(self.out, name, "requests.csv"))[1]

    def summary(self, name):
        """summary.csv of session `name`, rows as dicts."""
        return read_csv(os.path.join(self.out, name, "summary.csv"))[1]


class HttpServer:
    """A threaded loopback HTTP server answering with `handler` (an http.server request handler
    class): a web server the synthetic one cannot imitate. Quiet: no request log."""

    def __init__(self, handler):
        quiet = type(handler.__name__, (handler,), {"log_message": lambda self, *args: None})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
