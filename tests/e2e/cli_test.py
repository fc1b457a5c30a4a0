#!/usr/bin/env python3
"""End-to-end tests of the ttsbench CLI: real coordinator, real agent processes over gRPC, real
synthetic TTS server, on loopback. Metrics are recomputed independently from requests.csv.

Run: cli_test.py BIN_DIR [unittest args], e.g. cli_test.py build/bin CliTest.test_demo
"""
import http.server
import json
import os
import re
import socket
import ssl
import sys
import threading
import time

import harness
from harness import read_csv

SUMMARY_COLUMNS = [
    "Concurrency", "ASPS", "RTF_Mean", "RTF_Median", "RTF_p95", "RPS", "CPS", "TTFA_p50_ms",
    "TTFA_p95_ms", "TTFA_p99_ms", "Latency_p50_ms", "Latency_p95_ms", "Latency_p99_ms",
    "Success_Rate_%", "Errors"]
REQUEST_COLUMNS = [
    "level", "agent", "request_id", "warmup", "intended_s", "start_s", "first_byte_s",
    "first_audio_s", "end_s", "chars", "bytes", "audio_s", "sample_rate", "chunks", "max_gap_ms",
    "underrun_ms", "http_status", "success", "error"]
# Appended after connect_ms, worst_stall_ms and series: why a failed request failed; then the
# text's index and the audio checks' columns (empty when the checks are off); then paced text's
# and barge-in's (empty when the text was sent at once).
APPENDED_REQUEST_COLUMNS = ["connect_ms", "worst_stall_ms", "series", "error_detail", "text_index",
                            "audio_decoded", "ttfa_audible_ms", "leading_silence_ms",
                            "first_text_s", "end_of_input_s", "last_audio_s",
                            "first_token_to_speech_ms", "last_token_to_last_audio_ms",
                            "pacing_late_max_ms", "text_pieces", "interrupt_s",
                            "time_to_silence_ms", "bytes_after_interrupt", "conversation_id",
                            "turn", "conversation_setup_ms", "reconnect"]
SECRET = "tk-e2e-5f0c2a91d7"


def percentile(values, q):
    """numpy.percentile's default linear method, written out independently."""
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = int(h)
    if lo + 1 >= len(xs):
        return xs[-1]
    return xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])


def fixed_answer(status, body):
    """An HTTP handler answering every request with one status and JSON body: a TTS server the
    synthetic one cannot imitate (e.g. one that refuses an unknown voice)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = answer

    return Handler


class TlsOnlyServer:
    """A loopback port that speaks TLS only (as most TLS servers do, unlike ttsbench-synth, which
    also answers plain HTTP on its TLS port): a plain HTTP request fails the handshake and the
    server drops the connection without answering."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.closed = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                self.ctx.wrap_socket(conn, server_side=True)  # fails on plain HTTP bytes
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self):
        self.closed = True
        self.sock.close()


class CliTest(harness.E2eTest):
    TTSBENCH_TIMEOUT = 120

    def assert_summary_matches_requests(self, session):
        cols, summary = read_csv(os.path.join(session, "summary.csv"))
        self.assertEqual(cols[:len(SUMMARY_COLUMNS)], SUMMARY_COLUMNS)
        rcols, requests = read_csv(os.path.join(session, "requests.csv"))
        self.assertEqual(rcols[:len(REQUEST_COLUMNS)], REQUEST_COLUMNS)
        self.assertTrue(summary)
        for row in summary:
            level = [r for r in requests if r["level"] == row["Concurrency"] and r["warmup"] == "0"]
            self.assertTrue(level, f"no requests for level {row['Concurrency']}")
            ok = [r for r in level if r["success"] == "1"]
            t_wall = (max(float(r["end_s"]) for r in level) -
                      min(float(r["start_s"]) for r in level))
            audio = sum(float(r["audio_s"]) for r in ok)
            chars = sum(int(r["chars"]) for r in ok)
            lat = [float(r["end_s"]) - float(r["start_s"]) for r in ok]
            ttfa = [(float(r["first_audio_s"]) - float(r["start_s"])) * 1000 for r in ok]
            rtf = [l / float(r["audio_s"]) for l, r in zip(lat, ok)]
            expect = {
                "ASPS": audio / t_wall,
                "RPS": len(ok) / t_wall,
                "CPS": chars / t_wall,
                "RTF_Mean": sum(rtf) / len(rtf),
                "RTF_Median": percentile(rtf, 0.5),
                "RTF_p95": percentile(rtf, 0.95),
                "TTFA_p50_ms": percentile(ttfa, 0.5),
                "TTFA_p95_ms": percentile(ttfa, 0.95),
                "TTFA_p99_ms": percentile(ttfa, 0.99),
                "Latency_p50_ms": percentile(lat, 0.5) * 1000,
                "Latency_p95_ms": percentile(lat, 0.95) * 1000,
                "Latency_p99_ms": percentile(lat, 0.99) * 1000,
                "Success_Rate_%": 100.0 * len(ok) / len(level),
            }
            for key, want in expect.items():
                got = float(row[key])
                self.assertAlmostEqual(got, want, delta=abs(want) * 0.005 + 1e-9,
                                       msg=f"{key} at concurrency {row['Concurrency']}")
        return summary, requests

    def test_demo_writes_session_with_documented_columns(self):
        r = self.ttsbench("demo", "--output-dir", self.out, "--session-name", "d",
                          "--concurrency", "1", "2", "4", "--iterations", "16", "--warmup", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Demo Benchmark Results Summary", r.stdout)
        self.assertIn("Conc ASPS     RTF      RPS      CPS      TTFA p95   Success", r.stdout)
        self.assertIn("Best Performance:", r.stdout)
        session = self.session_dir("d")
        summary, requests = self.assert_summary_matches_requests(session)
        self.assertEqual([row["Concurrency"] for row in summary], ["1", "2", "4"])
        measured = [q for q in requests if q["warmup"] == "0"]
        self.assertEqual(len(measured), 3 * 16)
        self.assertEqual(len([q for q in requests if q["warmup"] == "1"]), 3 * 2)
        # Streamed: first audio arrives before the body ends, measurably so in the median
        # (the synthetic server sends its first chunk 25 ms in, the last at ~43 ms).
        ttfas, latencies = [], []
        for q in measured:
            ttfas.append(float(q["first_audio_s"]) - float(q["start_s"]))
            latencies.append(float(q["end_s"]) - float(q["start_s"]))
            self.assertLessEqual(ttfas[-1], latencies[-1], q)
            self.assertGreater(int(q["chunks"]), 1)
        self.assertLess(percentile(ttfas, 0.5), percentile(latencies, 0.5) * 0.8)
        js = harness.read_json(os.path.join(session, "session.json"))
        self.assertEqual(js["status"], "completed")
        self.assertEqual(len(js["agents"]), 2)
        for a in js["agents"]:
            self.assertIn("clock_offset_ms", a)
            self.assertGreater(a["clock_samples"], 7)
            self.assertLess(a["clock_uncertainty_ms"], 50)
        self.assertEqual(len(js["levels"]), 3)
        self.assertIn("linear", js["percentile_method"])

    def test_server_two_agents_merged_asps_is_the_sum(self):
        s = self.synth("--slots", "4")
        r = self.ttsbench("server", "--url", s.url, "--agents", "2", "--concurrency", "4", "8",
                          "--iterations", "40", "--warmup", "4", "--output-dir", self.out,
                          "--session-name", "two")
        self.assertEqual(r.returncode, 0, r.stderr)
        summary, requests = self.assert_summary_matches_requests(self.session_dir("two"))
        agents = {q["agent"] for q in requests if q["warmup"] == "0"}
        self.assertEqual(agents, {"local-1", "local-2"})
        # Keep-alive: measured requests reuse the warmed connections.
        self.assertTrue(all(int(row["New_Connections"]) == 0 for row in summary), summary)

    def test_torch_inference_non_streamed_ttfa_equals_latency(self):
        s = self.synth()
        r = self.ttsbench("server", "--url", s.url, "--api", "torch-inference", "--agents", "1",
                          "--concurrency", "2", "--iterations", "6", "--warmup", "0",
                          "--output-dir", self.out, "--session-name", "ti")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, requests = self.assert_summary_matches_requests(self.session_dir("ti"))
        for q in requests:
            self.assertEqual(q["first_audio_s"], q["end_s"])

    def test_server_errors_and_truncation_are_counted_not_fatal(self):
        s = self.synth("--error-rate", "0.5", "--truncate-rate", "0.3", "--seed", "3")
        # Below the default 50 % success floor, which --slo success_rate=0% turns off.
        r = self.ttsbench("server", "--url", s.url, "--agents", "1", "--concurrency", "2",
                          "--iterations", "30", "--warmup", "0", "--streaming",
                          "--slo", "success_rate=0%",
                          "--output-dir", self.out, "--session-name", "bad")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, summary = read_csv(os.path.join(self.session_dir("bad"), "summary.csv"))
        errors = summary[0]["Errors"]
        self.assertIn("http_5xx", errors)
        self.assertIn("read", errors)
        self.assertLess(float(summary[0]["Success_Rate_%"]), 100)
        self.assertEqual(int(summary[0]["Attempted"]), 30)

    def test_token_never_reaches_outputs(self):
        s = self.synth()
        env = dict(os.environ, TTS_TOKEN=SECRET)
        r = self.ttsbench("server", "--url", s.url, "--agents", "1", "--concurrency", "1",
                          "--iterations", "2", "--warmup", "0", "--auth-token-env", "TTS_TOKEN",
                          "--output-dir", self.out, "--session-name", "sec", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(SECRET, r.stdout + r.stderr)
        for name in os.listdir(self.session_dir("sec")):
            with open(os.path.join(self.session_dir("sec"), name), "rb") as f:
                self.assertNotIn(SECRET.encode(), f.read(), name)
        self.assertEqual(self.session_json("sec")["plan"]["target"]["auth_token_env"], "TTS_TOKEN")

    def assert_one_line_error(self, r, code, *needles):
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        for n in needles:
            self.assertIn(n, lines[0])

    def test_bad_input_gives_one_line_and_exit_code(self):
        port = harness.free_port()  # nothing listens there
        base = ["--output-dir", self.out, "--agents", "1"]
        r = self.ttsbench("server", "--url", f"http://127.0.0.1:{port}", *base, timeout=30)
        self.assert_one_line_error(r, 2, "cannot reach", str(port))
        r = self.ttsbench("server", "--url", "http://", *base)
        self.assert_one_line_error(r, 1, "invalid URL")
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--api", "grpc", *base)
        self.assert_one_line_error(r, 1, "--api")
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--concurrency", "1", "x",
                          *base)
        self.assert_one_line_error(r, 1, "--concurrency")
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--concurrency", "0", *base)
        self.assert_one_line_error(r, 1, "--concurrency")
        blocker = os.path.join(self.out, "file")
        open(blocker, "w").close()
        s = self.synth()
        r = self.ttsbench("server", "--url", s.url, "--output-dir", os.path.join(blocker, "x"))
        self.assert_one_line_error(r, 1, "output directory")
        r = self.ttsbench("server", "--url", s.url, "--auth-token-env", "NO_SUCH_VAR_XYZ", *base)
        self.assert_one_line_error(r, 1, "NO_SUCH_VAR_XYZ")
        r = self.ttsbench("server", "--url", s.url, "--texts", "/nonexistent/texts.txt", *base)
        self.assert_one_line_error(r, 1, "/nonexistent/texts.txt")

    def test_cli_guides_mistakes(self):
        r = self.ttsbench()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("a mode is required", r.stderr)
        for mode in ("demo", "server", "voices", "comprehensive", "capacity", "discover", "run",
                     "sessions", "compare"):
            self.assertIn(f"\n  {mode} ", r.stderr)
        r = self.ttsbench("--version")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ttsbench 0.1.0"), r.stderr)
        r = self.ttsbench("sever", "--url", "http://127.0.0.1:1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown mode 'sever' (did you mean 'server'?)", r.stderr.splitlines()[0])
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--concurency", "1", "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("server: unknown flag '--concurency' (did you mean '--concurrency'?)",
                      r.stderr.splitlines()[0])
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--no-streaming", "one", "two",
                          "three")
        self.assert_one_line_error(r, 1, "unexpected argument(s): one two three")
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--duration", "0")
        self.assert_one_line_error(r, 1, "--duration 0: must be more than 0")
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--timeout", "soon")
        self.assert_one_line_error(r, 1, "--timeout: 'soon' is not a duration")
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--stall-threshold", "100")
        self.assert_one_line_error(r, 1, "write 100ms")
        r = self.ttsbench("server", "--help")
        self.assertEqual(r.returncode, 0)
        groups = ["Target:", "Load:", "Streaming:", "Auth and TLS:", "Output and SLOs:", "Fleet:"]
        for g in groups:
            self.assertIn(g, r.stdout)
        # Every duration flag takes the same forms.
        r = self.ttsbench("server", "--url", "http://127.0.0.1:1", "--timeout", "250ms",
                          "--agent-timeout", "1m", "--stall-threshold", "0.2", "--duration", "90",
                          "--print-plan")
        self.assertEqual(r.returncode, 0, r.stderr)
        for line in ("timeout_s: 0.25", "connect_timeout_s: 60", "stall_threshold_ms: 200",
                     "duration_s: 90"):
            self.assertIn(line, r.stdout)
        # A URL without a scheme gets http://, with a note, and runs.
        s = self.synth()
        bare = s.url[len("http://"):]
        r = self.ttsbench("server", "--url", bare, "--agents", "1", "--concurrency", "1",
                          "--iterations", "2", "--warmup", "0", "--output-dir", self.out,
                          "--session-name", "bare")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"note: '{bare}' has no scheme; using http://{bare}", r.stderr)

    def test_discover_commands_reproduce_true_durations_at_22050_hz(self):
        # Raw PCM names no rate on SSE: discover must take it from the server, and every command
        # it suggests must measure the server's true durations (0.06 s of audio per character).
        s = self.synth("--sample-rate", "22050")
        r = self.ttsbench("discover", "--url", s.url, "--output-dir", self.out, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("note:", r.stdout)
        found = harness.read_json(os.path.join(self.out, "discovery.json"))
        commands = [p["server_flags"] for p in found["probes"]
                    if p["working"] and p["kind"] == "speech" and p["server_flags"]]
        self.assertTrue(any("--stream-format sse --sample-rate 22050" in c for c in commands),
                        commands)
        for i, flags in enumerate(commands):
            with self.subTest(flags=flags):
                name = f"d{i}"
                r = self.ttsbench("server", "--url", s.url, *flags.split(), "--agents", "1",
                                  "--concurrency", "1", "--iterations", "3", "--warmup", "0",
                                  "--output-dir", self.out, "--session-name", name)
                self.assertEqual(r.returncode, 0, r.stderr)
                _, rows = read_csv(os.path.join(self.session_dir(name), "requests.csv"))
                for row in rows:
                    self.assertEqual(row["success"], "1", row)
                    frame = 1152 / 22050 if "mp3" in flags else 1e-3
                    self.assertAlmostEqual(float(row["audio_s"]), int(row["chars"]) * 0.06,
                                           delta=frame)

    def test_no_agent_within_timeout_exits_2(self):
        s = self.synth()
        start = time.monotonic()
        r = self.ttsbench("server", "--url", s.url, "--expect-agents", "1", "--agent-timeout", "1",
                          "--listen", f"127.0.0.1:{harness.free_port()}", "--output-dir", self.out,
                          "--session-name", "noagent", timeout=30)
        self.assertLess(time.monotonic() - start, 15)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("0 of 1 agents connected", r.stderr)
        # The (empty) session is still written, marked failed.
        self.assertEqual(self.session_json("noagent")["status"], "failed")

    def test_remote_agent_dials_in(self):
        s = self.synth()
        port = harness.free_port()
        coord = harness.start("ttsbench", "server", "--url", s.url, "--expect-agents", "1",
                              "--listen", f"127.0.0.1:{port}", "--concurrency", "2",
                              "--iterations", "6", "--warmup", "0", "--output-dir", self.out,
                              "--session-name", "remote")
        agent = harness.start("ttsbench-agent", "--coordinator", f"127.0.0.1:{port}",
                              "--id", "far-1", "--once")
        try:
            out, err = coord.communicate(timeout=60)
            self.assertEqual(coord.returncode, 0, err)
            self.assertEqual(agent.wait(timeout=20), 0, agent.stderr.read())
        finally:
            for p in (coord, agent):
                if p.poll() is None:
                    p.kill()
        _, requests = self.assert_summary_matches_requests(self.session_dir("remote"))
        self.assertEqual({q["agent"] for q in requests}, {"far-1"})

    # Runs where requests fail (issue 11): the run fails the default success-rate floor, and the
    # console explains the failures by kind, with the first detail and a hint where the fix is
    # known.
    def fake(self, status, body):
        f = harness.HttpServer(fixed_answer(status, body))
        self.addCleanup(f.close)
        return f

    def run_server(self, url, name, *extra):
        return self.ttsbench("server", "--url", url, "--agents", "1", "--concurrency", "2",
                             "--iterations", "8", "--warmup", "0", "--timeout", "5s",
                             "--output-dir", self.out, "--session-name", name, *extra)

    def breakdown(self, stdout, kind):
        """(count, detail, hint) of `kind`'s line in the console's error breakdown."""
        self.assertIn("Errors by kind", stdout)
        lines = stdout.splitlines()
        for i, line in enumerate(lines):
            m = re.match(rf"^  {kind}\s+(\d+)\s+[\d.]+%\s+(.*)$", line)
            if m:
                hint = ""
                if i + 1 < len(lines) and lines[i + 1].startswith("    hint: "):
                    hint = lines[i + 1][len("    hint: "):]
                return int(m.group(1)), m.group(2), hint
        self.fail(f"no breakdown line for {kind}:\n{stdout}")

    def assert_failed_run(self, r, name, kind, detail, hint):
        """Every request failed with `kind`: exit 3 with a one-line reason, the floor FAILed in
        session.json, the breakdown line (count, detail, hint) and error_detail in requests.csv."""
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        reason = [l for l in r.stderr.splitlines() if "SLO failed" in l]
        self.assertEqual(len(reason), 1, r.stderr)
        self.assertIn("success_rate=50% (default)", reason[0])
        self.assertIn("success_rate=0% turns it off", reason[0])
        count, got_detail, got_hint = self.breakdown(r.stdout, kind)
        self.assertEqual(count, 8, r.stdout)
        self.assertIn(detail, got_detail)
        for h in hint:
            self.assertIn(h, got_hint)
        session = self.session_dir(name)
        js = harness.read_json(os.path.join(session, "session.json"))
        self.assertFalse(js.get("slo_passed", False))
        level = js["levels"][0]
        self.assertEqual([(s["slo"], s.get("pass", False)) for s in level["slo"]],
                         [("success_rate=50% (default)", False)])
        summary = level["error_summary"]
        self.assertEqual(summary[0]["kind"], kind)
        self.assertEqual(summary[0]["count"], 8)
        self.assertIn(detail, summary[0]["first_detail"])
        cols, requests = read_csv(os.path.join(session, "requests.csv"))
        self.assertEqual(cols[:len(REQUEST_COLUMNS)], REQUEST_COLUMNS)
        self.assertEqual(cols[len(REQUEST_COLUMNS):], APPENDED_REQUEST_COLUMNS)
        for q in requests:
            self.assertEqual(q["error"], kind, q)
            self.assertIn(detail, q["error_detail"], q)
        print(f"\n--- {name}: exit {r.returncode}\n{r.stdout}{r.stderr}", file=sys.stderr)

    def test_tls_mismatch_fails_with_detail_and_hint(self):
        s = self.synth("--tls-self-signed")
        # https:// to a self-signed server, no --ca-file: the certificate is refused.
        r = self.run_server(s.url.replace("http://", "https://"), "untrusted")
        self.assert_failed_run(r, "untrusted", "tls",
                               "certificate verify failed: self-signed certificate",
                               ["--ca-file FILE", "--insecure"])
        # http:// to a port that speaks only TLS: dropped without an answer.
        tls_only = TlsOnlyServer()
        self.addCleanup(tls_only.close)
        r = self.run_server(tls_only.url, "plain")
        self.assert_failed_run(r, "plain", "read", "closed the connection without answering",
                               ["https://", tls_only.url.replace("http://", "https://")])

    def test_full_endpoint_url_404_fails_with_discover_hint(self):
        s = self.synth()
        r = self.run_server(s.url + "/v1/audio/speech", "endpoint")
        self.assert_failed_run(r, "endpoint", "http_4xx", "404 Not Found: {",
                               ["looks like a full endpoint URL",
                                f"ttsbench discover --url {s.url}"])
        _, detail, _ = self.breakdown(r.stdout, "http_4xx")
        self.assertIn("no route for POST /v1/audio/speech/v1/audio/speech", detail)

    def test_server_error_naming_the_voice_fails_with_voice_hint(self):
        # A server that refuses an unknown voice with a 500 (the synthetic server accepts any).
        f = self.fake(500, '{"detail": "Voice \'nobody\' not found"}')
        r = self.run_server(f.url, "voice", "--voice", "nobody")
        self.assert_failed_run(r, "voice", "http_5xx",
                               "500 Internal Server Error: {\"detail\": \"Voice 'nobody' not found\"}",
                               ["--voice (now 'nobody')", "ttsbench discover --url", "voices"])
        # Every request answered 500 for another reason: the detail, and no voice hint.
        s = self.synth("--error-rate", "1")
        r = self.run_server(s.url, "allfail")
        self.assert_failed_run(r, "allfail", "http_5xx", "500 Internal Server Error: {", [])
        _, detail, hint = self.breakdown(r.stdout, "http_5xx")
        self.assertIn("injected failure", detail)
        self.assertEqual(hint, "")

    def test_partial_failure_shows_breakdown_and_passes_floor(self):
        s = self.synth("--error-rate", "0.2", "--seed", "5")
        r = self.ttsbench("server", "--url", s.url, "--agents", "1", "--concurrency", "2",
                          "--iterations", "40", "--warmup", "0", "--output-dir", self.out,
                          "--session-name", "some")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("SLO failed", r.stderr)
        _, requests = self.assert_summary_matches_requests(self.session_dir("some"))
        failed = [q for q in requests if q["success"] == "0"]
        self.assertTrue(0 < len(failed) < 20, len(failed))
        count, detail, hint = self.breakdown(r.stdout, "http_5xx")
        self.assertEqual(count, len(failed))
        self.assertIn("500 Internal Server Error", detail)
        self.assertIn("injected failure", detail)
        self.assertIn("PASS success_rate=50% (default)", r.stdout)
        for q in failed:
            self.assertIn("500 Internal Server Error", q["error_detail"])
        for q in requests:
            if q["success"] == "1":
                self.assertEqual(q["error_detail"], "")

    def test_own_success_rate_slo_replaces_the_floor(self):
        s = self.synth("--error-rate", "0.2", "--seed", "5")
        r = self.ttsbench("server", "--url", s.url, "--agents", "1", "--concurrency", "2",
                          "--iterations", "40", "--warmup", "0", "--slo", "success_rate=99%",
                          "--output-dir", self.out, "--session-name", "strict")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertNotIn("(default)", r.stdout)
        self.assertIn("SLO failed: success_rate=99% at concurrency 2", r.stderr)
        s = self.synth("--error-rate", "1")
        r = self.run_server(s.url, "off", "--slo", "success_rate=0%")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("No successful requests.", r.stdout)
        self.assertEqual(self.breakdown(r.stdout, "http_5xx")[0], 8)


# ---------------------------------------------------------------------------- dialects (issue 3)

# Every dialect against the synthetic server: (api, extra target keys, streamed answers expected).
DIALECTS = [
    ("openai", {"format": "pcm", "streaming": True}, True),
    ("openai", {"format": "mp3", "stream_format": "sse"}, True),
    ("torch-inference", {}, False),
    ("torch-inference", {"streaming": True}, True),
    ("coqui", {}, False),
    ("opentts", {}, False),
    ("piper", {}, False),
    ("elevenlabs", {"format": "mp3", "voice": "21m00Tcm4TlvDq8ikWAM", "streaming": True}, True),
    # No format: the dialect's own default (mp3_44100_128), not the OpenAI one (wav).
    ("elevenlabs", {"voice": "21m00Tcm4TlvDq8ikWAM", "streaming": True}, True),
    ("torch-inference", {"format": "pcm", "stream_format": "ws"}, True),
    ("torch-inference", {"path": "/synthesize"}, False),
    ("elevenlabs", {"format": "pcm_16000", "voice": "v1", "stream_format": "ws"}, True),
    ("template", {"request_template": {
        "path": "/v1/audio/speech", "audio": "body",
        "body": '{"model": "tts-1", "input": "{text}", "voice": "{voice}", '
                '"response_format": "wav"}'}}, False),
    ("template", {"request_template": {
        "path": "/tts/synthesize", "audio": "json", "audio_field": "audio_base64",
        "body": '{"text": "{text}", "voice": "{voice}"}'}}, False),
]


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, (int, float)) else json.dumps(v)


class DialectTest(harness.E2eTest):
    """ttsbench against each API dialect and transport of the synthetic server."""

    TTSBENCH_TIMEOUT = CliTest.TTSBENCH_TIMEOUT
    # Without inheriting from CliTest, which would re-run its cases.
    assert_summary_matches_requests = CliTest.assert_summary_matches_requests

    def write_plan(self, name, url, api, target, iterations=6):
        keys = dict({"voice": "default"}, **target)
        lines = [f"  url: {url}", f"  api: {api}"] + [
            f"  {k}: {yaml_value(v)}" for k, v in keys.items()]
        plan = os.path.join(self.out, name + ".yaml")
        with open(plan, "w") as f:
            f.write(f"session_name: {name}\noutput_dir: {self.out}\ntarget:\n" +
                    "\n".join(lines) + f"""
load:
  concurrency: [2]
  iterations: {iterations}
  warmup: 1
agents:
  spawn: 1
output:
  plots: false
""")
        return plan

    def assert_all_succeeded(self, name, streamed):
        _, requests = self.assert_summary_matches_requests(self.session_dir(name))
        measured = [q for q in requests if q["warmup"] == "0"]
        self.assertTrue(measured)
        for q in measured:
            self.assertEqual(q["success"], "1", q)
            self.assertGreater(float(q["audio_s"]), 0, q)
            start, first, end = (float(q[k]) for k in ("start_s", "first_audio_s", "end_s"))
            self.assertLessEqual(start, first, q)
            self.assertLessEqual(first, end, q)
            if streamed:
                self.assertGreater(int(q["chunks"]), 1, q)
        return measured

    def test_every_dialect_through_a_plan_file(self):
        s = self.synth()
        for i, (api, target, streamed) in enumerate(DIALECTS):
            with self.subTest(api=api, target=target):
                name = f"d{i}"
                r = self.ttsbench("run", self.write_plan(name, s.url, api, target))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assert_all_succeeded(name, streamed)

    def test_server_api_flag_per_dialect(self):
        s = self.synth()
        for i, (api, target, streamed) in enumerate(DIALECTS):
            with self.subTest(api=api, target=target):
                flags = ["--api", api, "--voice", target.get("voice", "default")]
                if "format" in target:
                    flags += ["--format", target["format"]]
                if target.get("stream_format"):
                    flags += ["--stream-format", target["stream_format"]]
                if target.get("path"):
                    flags += ["--path", target["path"]]
                if "request_template" in target:
                    tpl = os.path.join(self.out, f"template{i}.yaml")
                    with open(tpl, "w") as f:
                        f.write("".join(f"{k}: {yaml_value(v)}\n"
                                        for k, v in target["request_template"].items()))
                    flags += ["--request-template", tpl]
                if target.get("streaming"):
                    flags.append("--streaming")
                name = f"s{i}"
                r = self.ttsbench("server", "--url", s.url, *flags, "--agents", "1",
                                  "--concurrency", "2", "--iterations", "6", "--warmup", "1",
                                  "--output-dir", self.out, "--session-name", name)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assert_all_succeeded(name, streamed)

    def test_server_format_flag_every_format(self):
        # Every OpenAI response_format, whole and streamed, measured within one codec frame of
        # the synthetic server's audio (AAC: 1024 samples; MP3 1152; Opus 20 ms at 48 kHz).
        s = self.synth()
        frame = {"mp3": 1152 / 24000, "aac": 1024 / 24000, "opus": 0.02, "flac": 0.02}
        for fmt in ("wav", "pcm", "mp3", "opus", "aac", "flac", "ulaw"):
            for streaming in (False, True):
                with self.subTest(format=fmt, streaming=streaming):
                    name = f"f-{fmt}-{int(streaming)}"
                    r = self.ttsbench("server", "--url", s.url, "--api", "openai", "--format", fmt,
                                      "--streaming" if streaming else "--no-streaming",
                                      "--agents", "1", "--concurrency", "2", "--iterations", "4",
                                      "--warmup", "0",
                                      "--output-dir", self.out, "--session-name", name)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    for q in self.assert_all_succeeded(name, streaming):
                        want = int(q["chars"]) * 0.06  # the synthetic server's 60 ms a character
                        self.assertAlmostEqual(float(q["audio_s"]), want,
                                               delta=frame.get(fmt, 1e-6), msg=q)

    def test_tls_target_is_verified_against_ca_file_or_refused(self):
        cert = os.path.join(self.out, "synth-ca.pem")
        s = self.synth("--tls-self-signed", "--tls-cert-out", cert)
        url = s.url.replace("http://", "https://")
        # Verified against the certificate the server made.
        r = self.ttsbench("run", self.write_plan(
            "tls", url, "openai", {"format": "pcm", "stream_format": "sse", "ca_file": cert}))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_all_succeeded("tls", True)
        # Not in the system store: every request is a tls error, counted; the run fails the
        # default success-rate floor (exit 3).
        r = self.ttsbench("run", self.write_plan("untrusted", url, "openai", {"format": "wav"}))
        self.assertIn(r.returncode, (2, 3), r.stderr)
        if r.returncode == 3:
            _, summary = read_csv(os.path.join(self.session_dir("untrusted"), "summary.csv"))
            self.assertIn("tls", summary[0]["Errors"])
            self.assertEqual(float(summary[0]["Success_Rate_%"]), 0)
        # Explicitly insecure.
        r = self.ttsbench("run", self.write_plan(
            "insecure", url, "torch-inference", {"streaming": True, "insecure": True}))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_all_succeeded("insecure", True)

    def test_elevenlabs_key_header_authenticates_and_stays_secret(self):
        env = dict(os.environ, SYNTH_KEY=SECRET, TTS_TOKEN=SECRET)
        url = self.synth("--api-key-env", "SYNTH_KEY", env=env).url
        target = {"format": "pcm", "voice": "v1", "auth_token_env": "TTS_TOKEN",
                  "auth_header": "xi-api-key", "auth_scheme": "none"}
        r = self.ttsbench("run", self.write_plan("key", url, "elevenlabs", target), env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_all_succeeded("key", False)
        self.assertNotIn(SECRET, r.stdout + r.stderr)
        for name in os.listdir(self.session_dir("key")):
            with open(os.path.join(self.session_dir("key"), name), errors="replace") as f:
                self.assertNotIn(SECRET, f.read(), name)
        # Without the key the server refuses: http_4xx, counted.
        target.pop("auth_token_env"), target.pop("auth_header"), target.pop("auth_scheme")
        r = self.ttsbench("run", self.write_plan("nokey", url, "elevenlabs", target), env=env)
        _, summary = read_csv(os.path.join(self.session_dir("nokey"), "summary.csv"))
        self.assertIn("http_4xx", summary[0]["Errors"])


if __name__ == "__main__":
    harness.main()
