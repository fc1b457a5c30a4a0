"""Telemetry and cost end to end (issue 14): scraping the synth's /metrics during a run, targets
that hang or answer garbage, cost and energy against figures computed here by hand, and the
capacity search's monthly cost."""
import os
import socket
import time

import harness
from harness import E2eTest, HttpServer, read_csv_rows


class TelemetryTest(E2eTest):
    def summaries(self, level, name):
        return [t for t in level.get("telemetry", []) if t["name"] == name]

    def test_scrapes_the_synth_per_level(self):
        synth = self.synth("--slots", "2", "--idle-watts", "50", "--watts-per-slot", "30",
                           "--per-char-ms", "1.5")
        r = self.ttsbench("server", "--url", synth.url, "--output-dir", self.out,
                          "--session-name", "tel", "--concurrency", "1", "4", "--duration", "2s",
                          "--warmup", "0", "--agents", "1", "--scrape", synth.url + "/metrics",
                          "--scrape-interval", "200ms")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Telemetry (mean / p95 / max over each level):", r.stdout)
        session = self.session_json("tel")
        self.assertEqual(session["telemetry_file"], "telemetry.csv")
        [target] = session["telemetry_targets"]
        self.assertEqual(target["url"], synth.url + "/metrics")
        self.assertGreaterEqual(target["scrapes"], 15)
        self.assertEqual(target["failed"], 0)
        low, high = session["levels"]
        for level in (low, high):
            [running] = self.summaries(level, "running")
            [power] = self.summaries(level, "GPU power")
            self.assertGreaterEqual(running["samples"], 5)
            # Busy slots never exceed the slots, and there is load in every level.
            self.assertLessEqual(running["max"], 2)
            self.assertGreater(running["mean"], 0)
            self.assertGreaterEqual(power["mean"], 50)
            self.assertLessEqual(power["max"], 50 + 2 * 30)
            self.assertEqual(power["unit"], "W")
            self.assertGreater(level["energy_j"], 0)
            self.assertAlmostEqual(level["audio_s_per_joule"],
                                   level["audio_seconds"] / level["energy_j"], places=9)
        # Concurrency 4 on 2 slots: both slots busy and a queue.
        self.assertEqual(self.summaries(high, "running")[0]["max"], 2)
        self.assertGreater(self.summaries(high, "waiting")[0]["max"], 0)
        self.assertEqual(self.summaries(low, "waiting")[0]["max"], 0)
        # The time series, on the records' timeline: the levels' requests fall inside it.
        header, rows = read_csv_rows(os.path.join(self.session_dir("tel"), "telemetry.csv"))
        self.assertEqual(header, ["t_s", "target", "series", "value"])
        times = [float(row[0]) for row in rows]
        self.assertEqual(times, sorted(times))
        starts = [float(row["start_s"]) for row in self.requests("tel")]
        ends = [float(row["end_s"]) for row in self.requests("tel")]
        self.assertLess(min(times), min(starts) + 0.5)
        self.assertGreater(max(times), max(ends) - 0.5)
        self.assertIn('DCGM_FI_DEV_POWER_USAGE{gpu="0",modelName="ttsbench-synth"}',
                      {row[2] for row in rows})
        # summary.csv carries the summaries as appended columns.
        header, rows = read_csv_rows(os.path.join(self.session_dir("tel"), "summary.csv"))
        self.assertEqual(header[0], "Concurrency")
        column = "running max"
        self.assertIn(column, header)
        self.assertEqual(float(rows[1][header.index(column)]), 2)
        html = open(os.path.join(self.session_dir("tel"), "report.html"), encoding="utf-8").read()
        self.assertIn("Server telemetry", html)

    def test_hung_and_garbage_targets_warn_and_never_stall(self):
        synth = self.synth()
        # A target that accepts (the kernel completes the handshake) and never answers.
        hung = socket.socket()
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        self.addCleanup(hung.close)
        hung_url = f"http://127.0.0.1:{hung.getsockname()[1]}/metrics"

        class Garbage(harness.http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"<html>this is not Prometheus text</html>\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        garbage = HttpServer(Garbage)
        self.addCleanup(garbage.close)
        down_url = f"http://127.0.0.1:{harness.free_port()}/metrics"
        began = time.monotonic()
        r = self.ttsbench("server", "--url", synth.url, "--output-dir", self.out,
                          "--session-name", "faults", "--concurrency", "1", "2",
                          "--duration", "1s", "--warmup", "0", "--agents", "1",
                          "--scrape", hung_url, garbage.url + "/metrics", down_url,
                          "--scrape-timeout", "60s")
        took = time.monotonic() - began
        self.assertEqual(r.returncode, 0, r.stderr)
        # A scrape hung for its whole 60 s timeout delays neither the levels nor the end.
        self.assertLess(took, 45)
        session = self.session_json("faults")
        self.assertEqual(session["status"], "completed")
        for level in session["levels"]:
            self.assertLess(level["t_wall_s"], 1.5)
        warnings = session["warnings"]
        for url in (hung_url, garbage.url + "/metrics", down_url):
            mine = [w for w in warnings if url in w]
            self.assertEqual(len(mine), 1, warnings)  # once per target, with counts
            self.assertRegex(mine[0], r"\d+ of \d+ scrapes failed")
        self.assertIn("not Prometheus text: line 1", " ".join(warnings))
        self.assertIn("connect: Connection refused", " ".join(warnings))
        self.assertIn("warning: telemetry: " + hung_url, r.stdout)
        self.assertEqual(session["telemetry_file"], "")
        self.assertFalse(os.path.exists(os.path.join(self.session_dir("faults"), "telemetry.csv")))

    def test_cost_and_energy_by_hand(self):
        # Constant 100 W: the energy of a level is 100 W x its window, T_wall.
        synth = self.synth("--idle-watts", "100", "--watts-per-slot", "0")
        r = self.ttsbench("server", "--url", synth.url, "--output-dir", self.out,
                          "--session-name", "cost", "--concurrency", "1", "3",
                          "--duration", "1500ms", "--warmup", "0", "--agents", "1",
                          "--scrape", synth.url, "--scrape-interval", "250ms",
                          "--cost-per-replica-hour", "3", "--replicas", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Cost ($3.00 per replica-hour x 2):", r.stdout)
        for level in self.session_json("cost")["levels"]:
            t_wall, audio = level["t_wall_s"], level["audio_seconds"]
            chars = int(level["characters"])
            # $6 per wall-hour spread over the audio-hours and characters made in T_wall.
            self.assertAlmostEqual(level["replica_hours"], 2 * t_wall / 3600, places=12)
            self.assertAlmostEqual(level["cost_per_audio_hour_usd"] / (6 * t_wall / audio), 1,
                                   places=9)
            self.assertAlmostEqual(level["cost_per_million_chars_usd"] /
                                   (6 * t_wall / 3600 / (chars / 1e6)), 1, places=9)
            self.assertAlmostEqual(level["energy_j"] / (100 * t_wall), 1, places=6)
            self.assertAlmostEqual(level["audio_s_per_joule"] / (audio / (100 * t_wall)), 1,
                                   places=6)
        header, rows = read_csv_rows(os.path.join(self.session_dir("cost"), "summary.csv"))
        for name in ("Cost_per_Audio_Hour_USD", "Cost_per_M_Chars_USD", "Energy_J",
                     "Audio_s_per_J"):
            self.assertIn(name, header)
            self.assertTrue(all(float(row[header.index(name)]) > 0 for row in rows))

    def test_capacity_prints_replicas_and_monthly_cost(self):
        synth = self.synth("--slots", "2")
        r = self.ttsbench("capacity", "--url", synth.url, "--output-dir", self.out,
                          "--session-name", "cap", "--slo", "latency_p50=10s",
                          "--max", "4", "--iterations", "20", "--warmup", "0", "--agents", "1",
                          "--target-streams", "10", "--cost-per-replica-hour", "2.5")
        self.assertEqual(r.returncode, 0, r.stderr)
        cap = self.session_json("cap")["capacity"]
        self.assertEqual(cap["found"], 4)
        self.assertEqual(cap["replicas_needed"], 3)  # ceil(10 / 4)
        self.assertAlmostEqual(cap["monthly_cost_usd"], 3 * 2.5 * 730)
        self.assertIn("cost: 3 replicas x $2.50/h x 730 h = $5475.00 per month", r.stdout)
        self.assertGreater(cap["cost_per_audio_hour_usd"], 0)

    def test_levels_between_scrapes_have_no_energy(self):
        # Short levels and a 5 s interval: the only scrapes are the idle ones before and after
        # the run (60 W), while the levels drew up to 220 W. They once gave every level an energy
        # figure from that idle draw; a level needs a power scrape inside it.
        synth = self.synth("--slots", "4")
        r = self.ttsbench("server", "--url", synth.url, "--output-dir", self.out,
                          "--session-name", "between", "--concurrency", "2", "4",
                          "--iterations", "20", "--warmup", "0", "--agents", "1",
                          "--scrape", synth.url, "--scrape-interval", "5s",
                          "--cost-per-replica-hour", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        session = self.session_json("between")
        for level in session["levels"]:
            self.assertLess(level["t_wall_s"], 2.5)
            self.assertEqual(level.get("energy_j", 0), 0, level)
            self.assertEqual(level.get("audio_s_per_joule", 0), 0, level)
        warnings = session.get("warnings", [])
        self.assertTrue(any("energy: no power scrape fell inside concurrency 2" in w and
                            "--scrape-interval" in w for w in warnings), warnings)
        self.assertNotIn("audio-s per J", r.stdout)

    def test_a_filter_that_matches_nothing_is_warned_of(self):
        synth = self.synth()
        r = self.ttsbench("server", "--url", synth.url, "--output-dir", self.out,
                          "--session-name", "nomatch", "--concurrency", "1", "--iterations", "20",
                          "--warmup", "0", "--agents", "1", "--scrape", synth.url,
                          "--scrape-interval", "100ms", "--scrape-series", "nonexistent_metric")
        self.assertEqual(r.returncode, 0, r.stderr)
        warnings = self.session_json("nomatch").get("warnings", [])
        self.assertTrue(any("no series matched --scrape-series 'nonexistent_metric'" in w
                            for w in warnings), warnings)
        self.assertIn("nonexistent_metric", r.stdout + r.stderr)

    def test_open_loop_capacity_refuses_target_streams(self):
        r = self.ttsbench("capacity", "--url", "http://127.0.0.1:9", "--open-loop",
                          "--slo", "latency_p95=400ms", "--target-streams", "100",
                          "--output-dir", self.out)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--target-streams counts concurrent streams, but --open-loop finds a "
                      "request rate", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_plan_keys_and_bad_values(self):
        synth = self.synth()
        plan = os.path.join(self.out, "plan.yaml")
        with open(plan, "w") as f:
            f.write(f"""session_name: planned
output_dir: {self.out}
target:
  url: {synth.url}
load:
  concurrency: [2]
  iterations: 30
telemetry:
  scrape: ["{synth.url}/metrics"]
  interval_s: 0.2
  series: [running, power]
cost:
  per_replica_hour_usd: 1.5
""")
        r = self.ttsbench("run", plan, "--print-plan")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("timeout_s: 0.2", r.stdout)  # defaults to the interval
        r = self.ttsbench("run", plan)
        self.assertEqual(r.returncode, 0, r.stderr)
        [level] = self.session_json("planned")["levels"]
        self.assertEqual(sorted(t["name"] for t in level["telemetry"]), ["GPU power", "running"])
        self.assertGreater(level["cost_per_audio_hour_usd"], 0)
        for bad, message in (
                ("cost.per_replica_hour_usd=-1", "cost.per_replica_hour_usd: must be between 0"),
                ("cost.replicas=-2", "cost.replicas: must be between 0"),
                ("telemetry.interval_s=0.001", "telemetry.interval_s: must be between 0.05")):
            r = self.ttsbench("run", plan, "--set", bad)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn(message, r.stderr)
        r = self.ttsbench("server", "--url", synth.url, "--scrape", "gpu:9400", "--print-plan")
        self.assertEqual(r.returncode, 1)
        self.assertIn("telemetry.scrape[0]: invalid URL 'gpu:9400'", r.stderr)


if __name__ == "__main__":
    harness.main()
