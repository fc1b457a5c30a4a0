"""Audio integrity and consistency under load (issue 14) end to end: ttsbench with audio checks
against a ttsbench-synth that degrades its audio only above a number of requests in flight
(--truncate-above, --speedup-above) shows the cliff at the first level above it; the same synth
without the mode, deterministic, shows none."""
import os
import shutil
import unittest

import harness

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A short sentence, spoken the same way at every level.",
    "Numbers like 42 and 1,024 take longer to say than to write.",
]


class AudioQualityTest(harness.E2eTest):
    def run_sweep(self, name, *synth_flags):
        """Levels 1, 2, 4, 8 (closed loop), every answer analysed; the session's JSON and the
        ttsbench process."""
        # Eight slots: no queueing. Synthesis (100 ms) much longer than the client's turnaround,
        # so the server's in-flight count is the level's concurrency nearly all the time.
        synth = self.synth("--slots", "8", "--base-ms", "100", "--per-char-ms", "0.2",
                           *synth_flags)
        texts = os.path.join(self.out, "texts.txt")
        with open(texts, "w") as f:
            f.write("\n".join(TEXTS) + "\n")
        plan = os.path.join(self.out, f"{name}.yaml")
        with open(plan, "w") as f:
            f.write(f"""session_name: {name}
output_dir: {self.out}
target:
  url: {synth.url}
  format: wav
texts:
  file: {texts}
load:
  concurrency: [1, 2, 4, 8]
  iterations: 32
  warmup: 0
agents:
  spawn: 1
audio_checks:
  enabled: true
""")
        r = self.ttsbench("run", plan)
        self.assertEqual(r.returncode, 0, r.stderr)
        return self.session_json(name), r

    def assert_levels_consistent(self, session, count):
        for level in session["levels"][:count]:
            where = f"concurrency {level['concurrency']}"
            g, c = level["audio_integrity"], level["audio_consistency"]
            self.assertEqual(g["analysed"], 32, where)
            self.assertTrue(g["ok"], f"{where}: {g['problems']}")
            self.assertTrue(c["ok"], f"{where}: {c['problems']}")
            # The synth's audio of a text is the same at every level: exactly.
            self.assertGreater(c["compared"], 0, where)
            self.assertEqual(c["duration_ratio_min"], 1.0, where)
            self.assertEqual(c["duration_ratio_max"], 1.0, where)
            self.assertAlmostEqual(c["envelope_corr_min"], 1.0, places=9, msg=where)

    def test_truncation_above_4_in_flight_is_the_cliff_at_8(self):
        session, r = self.run_sweep("truncated", "--truncate-above", "4",
                                    "--truncate-fraction", "0.5")
        self.assertEqual([lv["concurrency"] for lv in session["levels"]], [1, 2, 4, 8])
        self.assert_levels_consistent(session, 3)
        top = session["levels"][3]
        c, g = top["audio_consistency"], top["audio_integrity"]
        self.assertFalse(c["ok"])
        # Closed loop at 8: all but the first arrivals of the level find more than 4 in flight.
        self.assertAlmostEqual(c["duration_ratio_median"], 0.5, delta=0.01)
        self.assertAlmostEqual(c["duration_ratio_min"], 0.5, delta=0.01)
        self.assertGreater(c["inconsistent_pct"], 50)
        self.assertFalse(g["ok"])
        self.assertGreater(g["outliers_lowest"], 16)
        cliffs = session["audio_quality"]["cliffs"]
        self.assertEqual(len(cliffs), 1, cliffs)
        self.assertEqual(cliffs[0]["concurrency"], 8)
        self.assertIn("Audio cliff at concurrency 8", r.stdout)

        folder = self.session_dir("truncated")
        header, rows = harness.read_csv_rows(os.path.join(folder, "audio_quality.csv"))
        cliff = header.index("cliff")
        self.assertEqual([row[cliff] for row in rows], ["false", "false", "false", "true"])
        self.assertEqual(float(rows[3][header.index("duration_ratio_median")]),
                         c["duration_ratio_median"])
        self.assertTrue(os.path.getsize(os.path.join(folder, "audio_quality.png")) > 0)
        with open(os.path.join(folder, "report.html"), encoding="utf-8") as f:
            html = f.read()
        self.assertIn("Audio integrity and consistency under load", html)
        self.assertIn('alt="audio_quality.png"', html)

    def test_speedup_above_2_in_flight_is_the_cliff_at_4(self):
        session, r = self.run_sweep("sped_up", "--speedup-above", "2", "--speedup", "1.5")
        self.assert_levels_consistent(session, 2)
        cliffs = session["audio_quality"]["cliffs"]
        self.assertEqual([cl["concurrency"] for cl in cliffs], [4], cliffs)
        # 1 / 1.5 of the reference's length.
        self.assertAlmostEqual(session["levels"][3]["audio_consistency"]["duration_ratio_median"],
                               1 / 1.5, delta=0.01)
        self.assertIn("Audio cliff at concurrency 4", r.stdout)

    def test_deterministic_synth_shows_no_cliff(self):
        session, r = self.run_sweep("steady")
        self.assert_levels_consistent(session, 4)
        self.assertEqual(session["audio_quality"]["cliffs"], [])
        self.assertIn("No audio cliff", r.stdout)
        header, rows = harness.read_csv_rows(
            os.path.join(self.session_dir("steady"), "audio_quality.csv"))
        self.assertEqual([row[header.index("cliff")] for row in rows], ["false"] * 4)


    @unittest.skipUnless(shutil.which("espeak-ng"), "espeak-ng not installed")
    def test_deterministic_engine_with_uneven_texts_has_no_cliff(self):
        # espeak-ng's short texts differ in ms per character (one with a pause is far from the
        # others), while each text's audio is the same at every load. Judged against the mix
        # of texts, a text drawn 6 times in 60 once made a "cliff" at the lowest level itself.
        r = self.ttsbench("server", "--api", "command", "--command",
                          "espeak-ng --stdout -v {voice} -- {text}", "--voice", "en",
                          "--text-length", "short", "--concurrency", "1", "4",
                          "--iterations", "60", "--warmup", "0", "--agents", "1",
                          "--audio-checks", "--output-dir", self.out, "--session-name", "espeak")
        self.assertEqual(r.returncode, 0, r.stderr)
        session = self.session_json("espeak")
        for level in session["levels"]:
            g, c = level["audio_integrity"], level["audio_consistency"]
            self.assertEqual(g["analysed"], 60)
            self.assertEqual(g.get("outliers_lowest", 0), 0, g)
            self.assertTrue(g["ok"], g.get("problems"))
            self.assertTrue(c["ok"], c.get("problems"))
            self.assertEqual(c["duration_ratio_min"], 1.0)
            self.assertEqual(c["duration_ratio_max"], 1.0)
        self.assertEqual(session["audio_quality"].get("cliffs", []), [])
        self.assertIn("No audio cliff", r.stdout)


if __name__ == "__main__":
    harness.main()
