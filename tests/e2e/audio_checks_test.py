"""Audio checks (issue 14), end to end: a synthetic server that puts 500 ms of silence before
every answer's sound (`--leading-silence-ms`) must show TTFA-audible = TTFA + 500 ms and an
unchanged TTFA, in every answer shape the agent reads (a streamed WAV body, OpenAI SSE events,
torch-inference's JSON base64 answer, torch-inference's WebSocket frames)."""
import os
import statistics

import harness
from harness import E2eTest, read_csv

SILENCE_MS = 500

# (name, ttsbench flags): one per answer shape.
SHAPES = [
    ("wav", ["--api", "openai", "--format", "wav", "--streaming"]),
    ("sse", ["--api", "openai", "--streaming", "--stream-format", "sse"]),
    ("json", ["--api", "torch-inference"]),
    ("ws", ["--api", "torch-inference", "--streaming", "--stream-format", "ws"]),
]


class AudioChecksTest(E2eTest):

    def run_shape(self, url, name, flags, *extra):
        r = self.ttsbench("server", "--url", url, *flags, "--agents", "1", "--concurrency", "1",
                          "--iterations", "6", "--warmup", "1", "--audio-checks", *extra,
                          "--output-dir", self.out, "--session-name", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r, self.session_json(name)["levels"][0]

    def test_leading_silence_delays_ttfa_audible_not_ttfa_in_every_shape(self):
        silent = self.synth("--leading-silence-ms", str(SILENCE_MS))
        plain = self.synth()
        for shape, flags in SHAPES:
            with self.subTest(shape=shape):
                r, level = self.run_shape(silent.url, f"{shape}-silent", flags)
                _, base = self.run_shape(plain.url, f"{shape}-plain", flags)
                self.assertEqual(level["audio_analysed"], 6)
                self.assertEqual(level["audio_not_decoded"], 0)
                gap = level["ttfa_audible_ms"]["p50"] - level["ttfa_ms"]["p50"]
                self.assertGreater(gap, SILENCE_MS - 10, level)
                self.assertLess(gap, SILENCE_MS + 60, level)
                self.assertAlmostEqual(level["leading_silence_ms"]["p50"], SILENCE_MS, delta=2)
                # TTFA counts the first audio byte, silence or not.
                self.assertLess(level["ttfa_ms"]["p50"], base["ttfa_ms"]["p50"] + 150)
                # Without the silence the first sound is the first audio.
                self.assertLess(base["ttfa_audible_ms"]["p50"] - base["ttfa_ms"]["p50"], 30)
                self.assertLess(base["leading_silence_ms"]["p50"], 2)
                # Warned (default 200 ms), with the table's Audible column.
                self.assertIn("TTFA-audible p50", r.stdout + r.stderr)
                self.assertIn("Audible p50/p95", r.stdout)
                warnings = self.session_json(f"{shape}-silent").get("warnings", [])
                self.assertTrue(any("TTFA-audible p50" in w for w in warnings), warnings)
                self.assertFalse(any("TTFA-audible" in w for w in
                                     self.session_json(f"{shape}-plain").get("warnings", [])))
                rows = self.requests(f"{shape}-silent")
                measured = [q for q in rows if q["warmup"] == "0"]
                self.assertEqual(len(measured), 6)
                for q in measured:
                    self.assertEqual(q["audio_decoded"], "1")
                    self.assertAlmostEqual(float(q["leading_silence_ms"]), SILENCE_MS, delta=2)
                    ttfa_ms = (float(q["first_audio_s"]) - float(q["start_s"])) * 1e3
                    self.assertGreater(float(q["ttfa_audible_ms"]) - ttfa_ms, SILENCE_MS - 10)
                # Warm-up requests are not analysed.
                for q in rows:
                    if q["warmup"] == "1":
                        self.assertEqual(q["audio_decoded"], "")
                _, summary = read_csv(os.path.join(self.session_dir(f"{shape}-silent"),
                                                   "summary.csv"))
                self.assertAlmostEqual(float(summary[0]["TTFA_Audible_p50_ms"]),
                                       level["ttfa_audible_ms"]["p50"], delta=0.01)

    def test_checks_off_leave_no_analysis_and_a_sample_limits_it(self):
        s = self.synth("--leading-silence-ms", "100")
        r = self.ttsbench("server", "--url", s.url, "--agents", "1", "--concurrency", "2",
                          "--iterations", "8", "--warmup", "0", "--output-dir", self.out,
                          "--session-name", "off")
        self.assertEqual(r.returncode, 0, r.stderr)
        level = self.session_json("off")["levels"][0]
        # session.json prints every field: zero counts and an empty distribution.
        self.assertEqual(level["audio_analysed"], 0)
        self.assertEqual(level.get("ttfa_audible_ms", {}).get("count", 0), 0)
        self.assertTrue(all(q["audio_decoded"] == "" for q in self.requests("off")))
        # Text indexes are filled whether or not the checks run.
        self.assertTrue(all(q["text_index"].isdigit() for q in self.requests("off")))
        _, level = self.run_shape(s.url, "sampled", ["--api", "openai"], "--audio-sample", "3")
        self.assertEqual(level["audio_analysed"], 3)
        self.assertAlmostEqual(level["leading_silence_ms"]["p50"], 100, delta=2)

    def test_plan_audio_checks_keys_are_checked_with_file_and_line(self):
        plan = os.path.join(self.out, "plan.yaml")
        with open(plan, "w", encoding="utf-8") as f:
            f.write("target:\n  url: http://127.0.0.1:9\nload:\n  concurrency: [1]\n"
                    "audio_checks:\n  enabled: true\n  audible_threshold_dbfs: 3\n")
        r = self.ttsbench("run", plan, "--print-plan")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("plan.yaml:7", r.stderr)
        self.assertIn("audio_checks.audible_threshold_dbfs", r.stderr)
        with open(plan, "w", encoding="utf-8") as f:
            f.write("target:\n  url: http://127.0.0.1:9\nload:\n  concurrency: [1]\n"
                    "audio_checks:\n  stuter_ms: 200\n")
        r = self.ttsbench("run", plan, "--print-plan")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("stutter_ms", r.stderr)  # did-you-mean
        with open(plan, "w", encoding="utf-8") as f:
            f.write("target:\n  url: http://127.0.0.1:9\nload:\n  concurrency: [1]\n"
                    "audio_checks:\n  stutter_ms: 200\n")
        r = self.ttsbench("run", plan, "--print-plan")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("audio_checks.enabled", r.stderr)
        with open(plan, "w", encoding="utf-8") as f:
            f.write("target:\n  url: http://127.0.0.1:9\nload:\n  concurrency: [1]\n"
                    "audio_checks:\n  enabled: true\n  sample_per_level: 5\n")
        r = self.ttsbench("run", plan, "--print-plan")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Defaults filled in, so the plan as run says what was measured.
        self.assertIn("audible_threshold_dbfs: -50", r.stdout)
        self.assertIn("audible_window_ms: 5", r.stdout)


    def test_nothing_decoded_is_not_checked_and_draws_no_plot(self):
        # The agents' decoder lacks AAC: nothing is analysed, so there is no verdict, and no
        # empty audio_quality.png (gnuplot once failed on its empty data).
        synth = self.synth()
        r = self.ttsbench("server", "--url", synth.url, "--format", "aac", "--agents", "1",
                          "--concurrency", "1", "2", "--iterations", "6", "--warmup", "0",
                          "--audio-checks", "--output-dir", self.out, "--session-name", "aac")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Audio not checked: no answer could be analysed", r.stdout)
        self.assertIn("not checked", r.stdout)
        self.assertNotIn("No audio cliff", r.stdout)
        self.assertNotIn("gnuplot failed", r.stderr)
        out = r.stdout + r.stderr
        self.assertIn("concurrency 2: 6 of 6 analysed answers could not be decoded here (aac)",
                      out)
        self.assertNotIn("notice", out)
        folder = self.session_dir("aac")
        self.assertFalse(os.path.exists(os.path.join(folder, "audio_quality.png")))
        header, rows = harness.read_csv_rows(os.path.join(folder, "audio_quality.csv"))
        for name in ("integrity_ok", "consistency_ok", "cliff"):
            self.assertEqual([row[header.index(name)] for row in rows], ["", ""], name)
        with open(os.path.join(folder, "report.html"), encoding="utf-8") as f:
            html = f.read()
        self.assertIn("not checked", html)
        self.assertNotIn("no cliff", html)

    def test_nothing_audible_is_said_naming_the_threshold(self):
        synth = self.synth()
        r, level = self.run_shape(synth.url, "inaudible", ["--format", "wav"],
                                  "--audible-threshold-dbfs", "-1")
        self.assertEqual(level["audio_analysed"], 6)
        self.assertIn("no analysed answer had an audible sample (above -1 dBFS)",
                      r.stdout + r.stderr)


if __name__ == "__main__":
    harness.main()
