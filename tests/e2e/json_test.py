#!/usr/bin/env python3
"""End-to-end tests of `--json` (issue 15): a load mode prints one JSON document on stdout, the
session as session.json has it plus how the run ended, and every human line on stderr; failed
runs print it too.

Run: json_test.py BIN_DIR [unittest args]
"""
import json
import os
import signal
import time

import harness

# Short levels: enough requests for level statistics, over in a few seconds.
SHORT = ("--concurrency", "1", "2", "--iterations", "8", "--warmup", "1")


class JsonTest(harness.E2eTest):
    def outcome(self, r, exit_code):
        """stdout parsed as the one JSON document it must be, after checking the exit code."""
        self.assertEqual(r.returncode, exit_code, r.stderr)
        try:
            return json.loads(r.stdout)  # one document, nothing before or after it
        except json.JSONDecodeError as e:
            self.fail(f"stdout is not one JSON document ({e}):\n{r.stdout}")

    def assert_matches_session_json(self, doc, name):
        """The document's session is session.json's, key for key, and names its folder."""
        self.assertEqual(os.path.realpath(doc["session_dir"]),
                         os.path.realpath(self.session_dir(name)))
        self.assertEqual(doc["session"], self.session_json(name))
        self.assertEqual(doc["schema_version"], 1)
        self.assertEqual(doc["session"]["schema_version"], 1)

    def test_demo_json_is_one_document_matching_session_json(self):
        r = self.ttsbench("demo", "--json", *SHORT, "--output-dir", self.out,
                          "--session-name", "demo")
        doc = self.outcome(r, 0)
        self.assertEqual((doc["exit_code"], doc["result"], doc["error"]), (0, "ok", ""))
        self.assert_matches_session_json(doc, "demo")
        session = doc["session"]
        self.assertEqual(session["status"], "completed")
        self.assertTrue(session["slo_passed"])
        self.assertTrue(session["plan"]["output"]["json"])
        levels = session["levels"]
        self.assertEqual([level["concurrency"] for level in levels], [1, 2])
        for level in levels:
            self.assertEqual(level["attempted"], 8)
            self.assertEqual(level["successful"], 8)
            self.assertGreater(level["asps"], 0)
            self.assertGreater(level["ttfa_ms"]["p95"], 0)
            self.assertEqual([s["slo"] for s in level["slo"]], ["success_rate=50% (default)"])
            self.assertTrue(all(s["pass"] for s in level["slo"]))
        # The same figures as summary.csv.
        for level, row in zip(levels, self.summary("demo")):
            self.assertAlmostEqual(level["asps"], float(row["ASPS"]), places=3)
        # Everything a person reads went to stderr: the server banner, progress, the table.
        self.assertIn("Synthetic TTS server on http://127.0.0.1:", r.stderr)
        self.assertIn("ttsbench: level 2: concurrency 2", r.stderr)
        self.assertIn("Demo Benchmark Results Summary", r.stderr)
        self.assertIn("Conc ASPS", r.stderr)
        self.assertIn("Session written to", r.stderr)

    def test_unreachable_target_still_prints_the_failed_session(self):
        port = harness.free_port()  # nothing listens there
        r = self.ttsbench("server", "--url", f"http://127.0.0.1:{port}", "--json", *SHORT,
                          "--output-dir", self.out, "--session-name", "down")
        doc = self.outcome(r, 2)
        self.assertEqual(doc["result"], "run_failed")
        self.assertIn(f"cannot reach http://127.0.0.1:{port}", doc["error"])
        self.assertIn(doc["error"], r.stderr)
        self.assert_matches_session_json(doc, "down")
        self.assertEqual(doc["session"]["status"], "failed")
        self.assertEqual(doc["session"]["levels"], [])

    def test_slo_failure_exits_3_with_every_level_and_the_verdict(self):
        r = self.ttsbench("demo", "--json", *SHORT, "--slo", "ttfa_p95=1ms", "--output-dir",
                          self.out, "--session-name", "slow")
        doc = self.outcome(r, 3)
        self.assertEqual(doc["result"], "slo_failed")
        self.assertTrue(doc["error"].startswith("SLO failed: ttfa_p95=1ms at concurrency"),
                        doc["error"])
        self.assert_matches_session_json(doc, "slow")
        self.assertFalse(doc["session"]["slo_passed"])
        self.assertEqual(len(doc["session"]["levels"]), 2)
        for level in doc["session"]["levels"]:
            verdict = {s["slo"]: s for s in level["slo"]}["ttfa_p95=1ms"]
            self.assertFalse(verdict["pass"])
            self.assertEqual(verdict["value"], level["ttfa_ms"]["p95"])
        self.assertIn("FAIL ttfa_p95=1ms", r.stderr)

    def test_interrupted_run_prints_what_it_measured(self):
        p = harness.start("ttsbench", "demo", "--json", "--concurrency", "4", "--iterations",
                          "100000", "--warmup", "0", "--output-dir", self.out,
                          "--session-name", "cut")
        time.sleep(3)
        p.send_signal(signal.SIGINT)  # as Ctrl-C
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 2, err)
        doc = json.loads(out)
        self.assertEqual(doc["exit_code"], 2)
        self.assertEqual(doc["result"], "run_failed")
        self.assertIn("interrupted", doc["error"])
        self.assert_matches_session_json(doc, "cut")
        self.assertEqual(doc["session"]["status"], "interrupted")
        level = doc["session"]["levels"][0]
        self.assertGreater(level["attempted"], 20)  # every request measured before Ctrl-C
        self.assertGreater(level["asps"], 0)

    def test_error_before_the_session_prints_an_outcome_without_one(self):
        env = {k: v for k, v in os.environ.items() if k != "TTSBENCH_JSON_TEST_UNSET"}
        r = self.ttsbench("demo", "--json", *SHORT, "--auth-token-env",
                          "TTSBENCH_JSON_TEST_UNSET", "--output-dir", self.out, env=env)
        doc = self.outcome(r, 1)
        self.assertEqual(doc["result"], "usage_error")
        self.assertIn("TTSBENCH_JSON_TEST_UNSET is not set", doc["error"])
        self.assertNotIn("session", doc)
        self.assertEqual(doc["session_dir"], "")
        # A mode's own usage error after parsing, too.
        r = self.ttsbench("capacity", "--url", "http://127.0.0.1:1", "--json")
        doc = self.outcome(r, 1)
        self.assertIn("capacity needs at least one --slo", doc["error"])

    def test_plan_output_json_key_and_run_flag(self):
        synth = self.synth("--slots", "4")
        plan = os.path.join(self.out, "plan.yaml")
        with open(plan, "w") as f:
            f.write(f"""session_name: planned
output_dir: {self.out}
target:
  url: {synth.url}
load:
  concurrency: [2]
  iterations: 6
  warmup: 0
output:
  json: true
""")
        r = self.ttsbench("run", plan)
        doc = self.outcome(r, 0)
        self.assert_matches_session_json(doc, "planned")
        self.assertIn("Benchmark Results Summary", r.stderr)
        # --print-plan still prints its YAML, with the key.
        r = self.ttsbench("run", plan, "--print-plan")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  json: true", r.stdout)
        # Without the key, `run --json` does the same; without either, the table is on stdout.
        r = self.ttsbench("run", plan, "--set", "output.json=false", "--json")
        doc = self.outcome(r, 0)
        self.assertEqual(doc["session"]["name"], "planned-2")
        r = self.ttsbench("run", plan, "--set", "output.json=false")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Benchmark Results Summary", r.stdout)

    def test_capacity_json_carries_the_search_result(self):
        synth = self.synth("--slots", "2")
        r = self.ttsbench("capacity", "--url", synth.url, "--json", "--slo", "success_rate=50%",
                          "--max", "2", "--iterations", "8", "--warmup", "0", "--output-dir",
                          self.out, "--session-name", "cap")
        doc = self.outcome(r, 0)
        self.assert_matches_session_json(doc, "cap")
        cap = doc["session"]["capacity"]
        self.assertEqual(cap["found"], 2)
        self.assertEqual(cap["unit"], "concurrency")
        self.assertEqual(len(cap["probes"]), len(doc["session"]["levels"]))
        self.assertIn("Capacity:", r.stderr)


    def test_discover_compare_and_sessions_print_json(self):
        synth = self.synth("--slots", "4")
        r = self.ttsbench("discover", "--url", synth.url, "--json", "--output-dir", self.out)
        doc = self.outcome(r, 0)
        self.assertEqual(doc, harness.read_json(os.path.join(self.out, "discovery.json")))
        self.assertIn("Wrote ", r.stderr)
        for name in ("a", "b"):
            r = self.ttsbench("server", "--url", synth.url, "--concurrency", "2",
                              "--iterations", "6", "--warmup", "0", "--output-dir", self.out,
                              "--session-name", name)
            self.assertEqual(r.returncode, 0, r.stderr)
        listed = self.outcome(self.ttsbench("sessions", "list", "--json", "--output-dir",
                                            self.out), 0)
        self.assertEqual([s["name"] for s in listed], ["a", "b"])
        self.assertEqual(listed[0]["status"], "completed")
        self.assertEqual(listed[0]["levels"], 1)
        shown = self.outcome(self.ttsbench("sessions", "show", "a", "--json", "--output-dir",
                                           self.out), 0)
        self.assertEqual(shown, self.session_json("a"))
        # Six requests a level are too few to judge (exit 5): the verdict is printed all the same.
        r = self.ttsbench("compare", "a", "b", "--json", "--output-dir", self.out)
        doc = self.outcome(r, 5)
        self.assertTrue(doc["not_evaluated"])
        self.assertEqual(doc, harness.read_json(os.path.join(self.out, "b", "compare.json")))
        self.assertIn("Wrote ", r.stderr)
        # A session of a newer layout is refused, not misread.
        future = self.session_json("a")
        future["schema_version"] = 99
        os.makedirs(self.session_dir("future"))
        with open(os.path.join(self.session_dir("future"), "session.json"), "w") as f:
            json.dump(future, f)
        r = self.ttsbench("sessions", "show", "future", "--json", "--output-dir", self.out)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("schema_version 99 is newer than this ttsbench reads (1)", r.stderr)


if __name__ == "__main__":
    harness.main()
