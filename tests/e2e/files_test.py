#!/usr/bin/env python3
"""End-to-end tests of the output files with hostile names (issue 10): voices, series and session
names holding commas, quotes, backslashes, line breaks, non-ASCII text and 10 KB go through every
file a session writes and are read back by standard parsers and by `ttsbench sessions` and
`ttsbench compare`. Also: a target that cannot be reached leaves a session marked failed.

Run: files_test.py BIN_DIR [unittest args]
"""
import html
import json
import os
import re
import subprocess

import harness

# The names of the issue, then one of each kind; the last is 10 KB.
HOSTILE_VOICES = [
    'al,"loy\\x',
    "two\nlines\r\nthree",
    "back\\slash and \"quotes\", commas",
    "Grüße, 世界 😀",
    "tab\there 'single' #hash: colon - [list] {map} & *star",
    "x" * 5000 + ',"\n' + "y" * (10 * 1024 - 5003),
]
# Session names are folder names: no "/" or "\\" and at most 255 bytes, otherwise as hostile.
SESSION_A = 'base,"line" é'
SESSION_B = "cand 'two', ünï"


class FilesTest(harness.E2eTest):
    def setUp(self):
        super().setUp()
        self.url = self.synth("--slots", "8").url

    def ttsbench(self, *args):
        # Hostile names hold line breaks of every kind: read the output as it was written.
        return super().ttsbench(*args, keep_newlines=True)

    def run_voices(self, session):
        r = self.ttsbench("voices", "--url", self.url, "--voices", *HOSTILE_VOICES,
                          "--concurrency", "2", "--iterations", "10", "--warmup", "1", "--jsonl",
                          "--output-dir", self.out, "--session-name", session)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        return os.path.join(self.out, session)

    def check_session_files(self, d, session):
        series = ["voice=" + v for v in HOSTILE_VOICES]

        header, rows = harness.read_csv_rows(os.path.join(d, "summary.csv"))
        self.assertTrue(all(len(row) == len(header) for row in rows))
        self.assertEqual([row[header.index("Series")] for row in rows], series)

        header, rows = harness.read_csv_rows(os.path.join(d, "requests.csv"))
        self.assertEqual(len(rows), len(series) * 11)  # 10 measured + 1 warm-up each
        self.assertTrue(all(len(row) == len(header) for row in rows),
                        sorted({len(row) for row in rows}))
        got = [row[header.index("series")] for row in rows]
        self.assertEqual(sorted(set(got)), sorted(series))
        self.assertTrue(all(row[header.index("success")] == "1" for row in rows))

        with open(os.path.join(d, "requests.jsonl"), encoding="utf-8") as f:
            lines = [json.loads(line) for line in f.read().split("\n") if line]
        self.assertEqual(len(lines), len(rows))
        self.assertEqual(sorted({line["series"] for line in lines}), sorted(series))
        self.assertTrue(all("record" in line for line in lines))

        s = harness.read_json(os.path.join(d, "session.json"))
        self.assertEqual(s["name"], session)
        self.assertEqual([lv["series"] for lv in s["levels"]], series)
        self.assertEqual(s["plan"]["voices"], HOSTILE_VOICES)

        # The plan as run in report.html is the YAML of --print-plan: `ttsbench run` reads it back
        # and prints it unchanged.
        with open(os.path.join(d, "report.html"), encoding="utf-8") as f:
            page = f.read()
        m = re.search(r"<h2>Plan as run</h2>\n<pre>(.*?)</pre>", page, re.S)
        self.assertIsNotNone(m)
        plan_yaml = html.unescape(m.group(1))
        plan_file = os.path.join(self.out, "plan_from_report.yaml")
        with open(plan_file, "w", encoding="utf-8") as f:
            f.write(plan_yaml)
        r = self.ttsbench("run", plan_file, "--print-plan")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(r.stdout, plan_yaml)
        strings = self.yaml_strings(plan_yaml)
        for v in HOSTILE_VOICES:
            self.assertIn(v, strings)

    @staticmethod
    def yaml_strings(text):
        """Every string scalar of a YAML document, read by PyYAML (an independent reader)."""
        import yaml
        found = []

        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(k)
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
            elif isinstance(node, str):
                found.append(node)
        walk(yaml.safe_load(text))
        return found

    def test_hostile_names_survive_every_file_sessions_and_compare(self):
        da = self.run_voices(SESSION_A)
        self.check_session_files(da, SESSION_A)
        db = self.run_voices(SESSION_B)

        r = self.ttsbench("sessions", "list", "--output-dir", self.out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(SESSION_A, r.stdout)
        self.assertNotIn("unreadable", r.stdout)
        r = self.ttsbench("sessions", "show", SESSION_A, "--output-dir", self.out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("voice=Grüße, 世界 😀 c=2", r.stdout)

        cmp_dir = os.path.join(self.out, "cmp")
        r = self.ttsbench("compare", SESSION_A, SESSION_B, "--output-dir", self.out,
                          "--fail-on", "success_rate=-50", "--write", cmp_dir)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-2000:])
        self.assertNotIn("no per-request data", r.stdout)
        self.assertNotIn("unmatched level", r.stdout)

        series = ["voice=" + v for v in HOSTILE_VOICES]
        header, rows = harness.read_csv_rows(os.path.join(cmp_dir, "compare.csv"))
        self.assertTrue(all(len(row) == len(header) for row in rows))
        self.assertEqual({row[header.index("baseline")] for row in rows}, {SESSION_A})
        self.assertEqual({row[header.index("candidate")] for row in rows}, {SESSION_B})
        self.assertEqual(sorted({row[header.index("series")] for row in rows}), sorted(series))
        # Per-request data was read back from requests.csv: every level has its 10 requests.
        self.assertEqual({row[header.index("baseline_requests")] for row in rows}, {"10"})
        self.assertEqual({row[header.index("candidate_requests")] for row in rows}, {"10"})

        c = harness.read_json(os.path.join(cmp_dir, "compare.json"))
        self.assertEqual(c["candidates"][0]["baseline"], SESSION_A)
        self.assertEqual([lv["series"] for lv in c["candidates"][0]["levels"]], series)
        self.assertTrue(os.path.isdir(db))

    def test_name_that_is_not_utf8_is_refused_before_the_run(self):
        r = subprocess.run([harness.binary("ttsbench"), "voices", "--url", self.url,
                            "--voices", b"bad\xffname", "default", "--output-dir", self.out,
                            "--session-name", "bad"], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"voices[0]: not valid UTF-8 (byte 4)", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.out, "bad")))

    def test_unreachable_target_leaves_a_session_marked_failed(self):
        dead = f"http://127.0.0.1:{harness.free_port()}"
        r = self.ttsbench("server", "--url", dead, "--concurrency", "1", "--iterations", "2",
                          "--output-dir", self.out, "--session-name", "dead")
        self.assertEqual(r.returncode, 2, r.stderr)
        s = self.session_json("dead")
        self.assertEqual(s["status"], "failed")
        self.assertTrue(any(w.startswith("run failed: ") and "127.0.0.1" in w
                            for w in s["warnings"]), s["warnings"])
        self.assertEqual(s["plan"]["target"]["url"], dead)
        r = self.ttsbench("sessions", "list", "--output-dir", self.out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"dead\s+\S+\s+server\s+failed")


if __name__ == "__main__":
    harness.main()
