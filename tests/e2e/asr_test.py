#!/usr/bin/env python3
"""End-to-end tests of the optional ASR check (issue 14, `--asr-command`, plan `asr`):
espeak-ng speaks through the command target at two levels, pocketsphinx transcribes a sample of
each level, and the session carries WER/CER per level, the sample size and the recogniser's CPU
time. A recogniser that fails or hangs is a warning, never a failed run.

Run: asr_test.py BIN_DIR [unittest args]
"""
import math
import os
import shutil
import struct
import time
import unittest

import harness

ESPEAK = shutil.which("espeak-ng")
POCKETSPHINX = shutil.which("pocketsphinx_continuous")
# Plain words, no digits (pocketsphinx writes numbers as words).
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Please close the door when you leave the room.",
    "We will meet at the station in the morning.",
]
ESPEAK_CMD = "espeak-ng --stdout -v {voice}"


@unittest.skipIf(ESPEAK is None, "espeak-ng is not installed")
class AsrTest(harness.E2eTest):

    def texts_file(self, texts=TEXTS):
        path = os.path.join(self.out, "texts.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        return path

    def measured_rows(self, name):
        """requests.csv rows of measured requests (warm-up ones are there too)."""
        return sum(1 for r in self.requests(name) if r["warmup"] == "0")

    def run_with(self, name, asr_command, *extra, texts=TEXTS):
        return self.ttsbench("server", "--api", "command", "--command", ESPEAK_CMD, "--voice",
                             "en", "--concurrency", "1", "2", "--iterations", "4", "--texts",
                             self.texts_file(texts), "--agents", "1", "--output-dir", self.out,
                             "--session-name", name, "--asr-command", asr_command, *extra)

    @unittest.skipIf(POCKETSPHINX is None, "pocketsphinx is not installed")
    def test_pocketsphinx_scores_espeak_at_two_levels(self):
        # One text: every level speaks the same sentence, so the change is matched by text.
        r = self.run_with("asr", "pocketsphinx_continuous -infile {wav} -logfn /dev/null",
                          "--asr-sample", "2", "--asr-timeout", "120s", texts=TEXTS[1:2])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ASR check (pocketsphinx_continuous", r.stdout)
        self.assertEqual(r.stdout.count("WER vs lowest level +0.0 pts"), 2, r.stdout)
        s = self.session_json("asr")
        self.assertEqual(s["asr"]["sample_per_level"], 2)
        self.assertEqual(s["asr"]["samples"], 4)
        self.assertEqual(s["asr"]["recognised"], 4)
        self.assertGreater(s["asr"]["cpu_s"], 0)
        self.assertIn("lower case", s["asr"]["normalisation"])
        levels = s["levels"]
        self.assertEqual([l["concurrency"] for l in levels], [1, 2])
        for level in levels:
            a = level["asr"]
            self.assertEqual(a["samples"], 2, a)
            self.assertEqual(a["recognised"], 2, a)
            self.assertEqual(a["failed"], 0, a)
            for key in ("wer_mean", "wer_median", "cer_mean", "cer_median", "wer_delta"):
                self.assertTrue(math.isfinite(a[key]), (key, a))
            self.assertGreaterEqual(a["wer_mean"], 0)
            self.assertEqual(a["baseline_load"], 1)
            self.assertGreater(a["cpu_s"], 0)
            for res in a["results"]:
                self.assertEqual(res["reference"], TEXTS[1])
                self.assertEqual(res["error"], "")
                # The WAV pocketsphinx read: 16 kHz mono 16-bit, kept in the session.
                with open(os.path.join(self.session_dir("asr"), res["wav"]), "rb") as f:
                    head = f.read(44)
                self.assertEqual(struct.unpack_from("<HHI", head, 20), (1, 1, 16000))
                self.assertGreater(res["audio_s"], 1.0)
        # The lowest level is the baseline, its delta 0; espeak-ng is deterministic (the same
        # audio for the same text at any load), so the other level shows no change either.
        self.assertEqual(levels[0]["asr"]["wer_delta"], 0)
        self.assertEqual(levels[1]["asr"]["wer_delta"], 0)
        self.assertEqual(levels[1]["asr"]["cer_delta"], 0)
        self.assertEqual(levels[0]["asr"]["wer_mean"], levels[1]["asr"]["wer_mean"])
        self.assertFalse([w for w in s["warnings"] if w.startswith("asr: ")], s["warnings"])
        # pocketsphinx hears espeak-ng poorly but not nothing: some reference word comes back.
        words = set(TEXTS[1].lower().strip(".").split())
        heard = {w for l in levels for res in l["asr"]["results"]
                 for w in res["hypothesis"].split()}
        self.assertTrue(words & heard, heard)
        summary = self.summary("asr")
        self.assertEqual([int(x["ASR_Samples"]) for x in summary], [2, 2])
        self.assertEqual([float(x["WER_Delta"]) for x in summary], [0, 0])
        header, rows = harness.read_csv_rows(os.path.join(self.session_dir("asr"), "asr.csv"))
        self.assertEqual(len(rows), 4)
        self.assertIn("hypothesis", header)
        with open(os.path.join(self.session_dir("asr"), "report.html"), encoding="utf-8") as f:
            self.assertIn("<h2>ASR check</h2>", f.read())
        # Every request is still a record; the audio samples are not in requests.csv.
        self.assertEqual(self.measured_rows("asr"), 8)

    def test_failing_recogniser_is_a_warning_and_the_run_succeeds(self):
        r = self.run_with("fails", "/bin/sh -c 'echo no model here >&2; exit 3' {wav}",
                          "--asr-sample", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.session_json("fails")
        self.assertEqual(s["status"], "completed")
        self.assertEqual(s["asr"]["samples"], 4)
        self.assertEqual(s["asr"]["recognised"], 0)
        self.assertEqual(s["asr"]["failed"], 4)
        for level in s["levels"]:
            self.assertEqual(level["successful"], 4)
            for res in level["asr"]["results"]:
                self.assertEqual(res["error"], "exit 3: no model here")
        warnings = [w for w in s["warnings"] if w.startswith("asr: ")]
        self.assertEqual(len(warnings), 2, s["warnings"])
        self.assertIn("no transcript for 2 of 2 sample(s)", warnings[0])
        self.assertIn("exit 3: no model here", warnings[0])
        self.assertIn("warning: asr: concurrency 1", r.stdout)
        self.assertEqual(self.measured_rows("fails"), 8)

    def test_hanging_recogniser_is_killed_at_its_timeout(self):
        began = time.monotonic()
        r = self.run_with("hangs", "/bin/sh -c 'sleep 60' {wav}", "--asr-sample", "2",
                          "--asr-timeout", "1s")
        took = time.monotonic() - began
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.session_json("hangs")
        errors = [res["error"] for l in s["levels"] for res in l["asr"]["results"]]
        # Two timeouts in a row, then the rest are skipped: the hang costs two timeouts.
        self.assertEqual(errors[:2], ["timed out after 1 s (killed)"] * 2)
        self.assertTrue(all(e.startswith("skipped") for e in errors[2:]), errors)
        self.assertTrue(any("timed out after 1 s" in w for w in s["warnings"]), s["warnings"])
        self.assertLess(took, 60, "the recogniser's sleep 60 was waited for")
        self.assertEqual(self.measured_rows("hangs"), 8)

    def test_plan_asr_command_needs_allow_command(self):
        plan = os.path.join(self.out, "plan.yaml")
        with open(plan, "w", encoding="utf-8") as f:
            f.write("description: asr from a plan\n"
                    "target:\n  api: command\n  voice: en\n"
                    "  command:\n    argv: [espeak-ng, --stdout, -v, \"{voice}\"]\n"
                    f"texts:\n  file: {self.texts_file()}\n"
                    "load:\n  concurrency: [1]\n  iterations: 2\n"
                    f"output_dir: {self.out}\nsession_name: planned\n"
                    "asr:\n  command: /bin/echo {wav}\n  sample_per_level: 1\n")
        espeak = ["--allow-command", "espeak-ng --stdout -v {voice}"]
        refused = self.ttsbench("run", plan, *espeak)
        self.assertEqual(refused.returncode, 1, refused.stderr)
        self.assertIn("asr.command:", refused.stderr)
        self.assertIn("(allow it with --allow-command \"/bin/echo {wav}\")", refused.stderr)
        self.assertFalse(os.path.exists(self.session_dir("planned")))
        r = self.ttsbench("run", plan, *espeak, "--allow-command", "/bin/echo {wav}")
        self.assertEqual(r.returncode, 0, r.stderr)
        level = self.session_json("planned")["levels"][0]["asr"]
        self.assertEqual(level["recognised"], 1)
        # echo prints the WAV path: a transcript that matches nothing.
        self.assertGreater(level["wer_mean"], 0)
        # A command without {wav} is named with its file and line.
        bad = plan.replace(".yaml", "-bad.yaml")
        with open(plan, encoding="utf-8") as f:
            text = f.read().replace("/bin/echo {wav}", "/bin/echo")
        with open(bad, "w", encoding="utf-8") as f:
            f.write(text)
        r = self.ttsbench("run", bad)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("-bad.yaml:", r.stderr)
        self.assertIn("asr.command: has no {wav}", r.stderr)


if __name__ == "__main__":
    harness.main()
