#!/usr/bin/env python3
"""End-to-end tests of api riva: `ttsbench server --api riva` and `ttsbench discover` against
ttsbench-synth's Riva service (--riva-listen), over real gRPC on loopback, plaintext and TLS,
with and without required metadata. Audio durations are recomputed from the synth's model.

Run: riva_test.py BIN_DIR [unittest args], e.g. riva_test.py build/bin RivaTest.test_streaming
"""
import json
import os
import re
import sys

import harness

KEY = "nvapi-e2e-3b9d1c77aa"
FUNCTION_ID = "0149dedb-2be8-4195-b9a0-e57e0e14f972"
AUDIO_PER_CHAR = 0.06  # ttsbench-synth's default --audio-per-char


def riva_url(synth):
    m = re.search(r"riva (grpcs?://\S+)", synth.banner)
    assert m, synth.banner
    return m.group(1)


def expected_audio_s(chars, rate):
    # The synth makes round(chars * audio_per_char * rate) samples (LatencyModel::AudioSamples).
    return round(chars * AUDIO_PER_CHAR * rate) / rate


class RivaTest(harness.E2eTest):
    def run_server(self, url, name, *flags, env=None):
        return self.ttsbench("server", "--api", "riva", "--url", url, "--agents", "1",
                             "--concurrency", "1", "2", "--iterations", "6", "--warmup", "1",
                             "--output-dir", self.out, "--session-name", name, *flags, env=env)

    def assert_exact_audio(self, name, rate):
        rows = self.requests(name)
        self.assertTrue(rows)
        for row in rows:
            self.assertEqual(row["success"], "1", row)
            self.assertEqual(int(row["sample_rate"]), rate)
            self.assertAlmostEqual(float(row["audio_s"]),
                                   expected_audio_s(int(row["chars"]), rate), places=5)
            self.assertEqual(int(row["bytes"]), 2 * round(float(row["audio_s"]) * rate))
        return rows

    def test_streaming_exact_audio_and_ttfa_before_the_end(self):
        s = self.synth("--riva-listen", "127.0.0.1:0", "--chunk-ms", "100", "--per-char-ms", "2")
        r = self.run_server(riva_url(s), "stream", "--streaming", "--sample-rate", "22050")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.assert_exact_audio("stream", 22050)
        for row in rows:
            self.assertGreater(int(row["chunks"]), 1)
            self.assertLess(float(row["first_audio_s"]), float(row["end_s"]))
        session = self.session_json("stream")
        self.assertTrue(session["plan"]["target"]["streaming"])
        self.assertEqual(session["plan"]["target"]["api"], "riva")

    def test_unary_exact_audio_ttfa_equals_latency(self):
        s = self.synth("--riva-listen", "127.0.0.1:0")
        r = self.run_server(riva_url(s), "unary")
        self.assertEqual(r.returncode, 0, r.stderr)
        for row in self.assert_exact_audio("unary", 44100):  # Riva's default rate
            self.assertEqual(row["first_audio_s"], row["end_s"])
            self.assertEqual(row["chunks"], "1")

    def test_tls_and_required_metadata(self):
        ca = os.path.join(self.out, "ca.pem")
        env = dict(os.environ, RIVA_KEY=KEY, RIVA_FUNCTION=FUNCTION_ID)
        s = self.synth("--riva-listen", "127.0.0.1:0", "--tls-self-signed", "--tls-cert-out", ca,
                       "--api-key-env", "RIVA_KEY", "--riva-function-id-env", "RIVA_FUNCTION",
                       env=env)
        url = riva_url(s)
        self.assertTrue(url.startswith("grpcs://"), url)
        auth = ["--auth-token-env", "RIVA_KEY", "--function-id-env", "RIVA_FUNCTION"]
        r = self.run_server(url, "tls", "--streaming", "--ca-file", ca, *auth, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_exact_audio("tls", 44100)
        # Secrets reach no output; the plan names where they are.
        self.assertNotIn(KEY, r.stdout + r.stderr)
        for name in os.listdir(self.session_dir("tls")):
            with open(os.path.join(self.session_dir("tls"), name), "rb") as f:
                data = f.read()
            self.assertNotIn(KEY.encode(), data, name)
            self.assertNotIn(FUNCTION_ID.encode(), data, name)
        self.assertEqual(self.session_json("tls")["plan"]["target"]["function_id_env"],
                         "RIVA_FUNCTION")

        # A wrong key: every request a classified grpc_status error, records kept, exit 3.
        wrong = dict(env, RIVA_KEY="nvapi-wrong")
        r = self.run_server(url, "wrong", "--streaming", "--ca-file", ca, *auth, env=wrong)
        self.assertEqual(r.returncode, 3, r.stderr)
        # The console's error table (stdout) names the kind, the status and the hint.
        self.assertIn("grpc_status", r.stdout)
        self.assertIn("UNAUTHENTICATED (16)", r.stdout)
        self.assertIn("refused the API key", r.stdout)
        rows = self.requests("wrong")
        self.assertGreaterEqual(len(rows), 12)  # two levels of 6
        for row in rows:
            self.assertEqual(row["error"], "grpc_status")
            self.assertIn("UNAUTHENTICATED", row["error_detail"])

        # No CA: a TLS error naming the certificate problem.
        r = self.run_server(url, "noca", "--streaming", *auth, env=env)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual({row["error"] for row in self.requests("noca")}, {"tls"})

    def test_discover_probes_grpc(self):
        s = self.synth("--riva-listen", "127.0.0.1:0")
        url = riva_url(s)
        r = self.ttsbench("discover", "--url", url, "--json", "--output-dir", self.out)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["best_dialect"], "riva")
        self.assertIn("ttsbench-synth.default", doc["voices"])
        working = {p["variant"] for p in doc["probes"] if p["kind"] == "speech" and p["working"]}
        self.assertEqual(working, {"stream", "unary"})
        self.assertIn(f"--url {url} --api riva --streaming", doc["suggested_command"])
        # The suggested command runs as it is.
        words = doc["suggested_command"].split()[1:]
        r = self.ttsbench(*words, "--agents", "1", "--concurrency", "1", "--iterations", "2",
                          "--output-dir", self.out, "--session-name", "suggested")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_riva_input_is_one_line(self):
        r = self.ttsbench("server", "--api", "riva", "--url", "http://127.0.0.1:1",
                          "--output-dir", self.out)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("grpc://", r.stderr)
        r = self.ttsbench("server", "--url", "grpc://127.0.0.1:1", "--output-dir", self.out)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("api: riva", r.stderr)
        r = self.ttsbench("server", "--api", "riva", "--url", "grpc://127.0.0.1:1", "--format",
                          "wav", "--output-dir", self.out)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("format", r.stderr)
        self.assertIn("pcm, opus, ogg", r.stderr)


if __name__ == "__main__":
    harness.main()
