#!/usr/bin/env python3
"""End-to-end tests of the command target (api: command, issue 15): `ttsbench server --api
command` and plan files with espeak-ng as the engine, real agents and real processes; and the
refusals: a program nobody allowed never starts.

Run: command_test.py BIN_DIR [unittest args]
"""
import os
import shutil
import struct
import subprocess
import unittest

import harness

ESPEAK = shutil.which("espeak-ng")
TEXTS = [
    "The next train to the airport leaves from platform four.",
    "Please mind the gap between the train and the platform edge.",
    "Tickets are checked on board; it's \"quoted\" & $HOME stays as written.",
]


def espeak_seconds(text, tmp):
    """Duration of the WAV espeak-ng writes itself (-w) for `text`: its data bytes / 2 / rate."""
    path = os.path.join(tmp, "ref.wav")
    subprocess.run([ESPEAK, "-v", "en", "-w", path, text], check=True, timeout=30)
    with open(path, "rb") as f:
        wav = f.read()
    assert wav[36:40] == b"data", wav[:44]
    rate = struct.unpack_from("<I", wav, 24)[0]
    assert rate == 22050, rate
    return (len(wav) - 44) // 2 / rate


@unittest.skipIf(ESPEAK is None, "espeak-ng is not installed")
class CommandTest(harness.E2eTest):

    def texts_file(self):
        path = os.path.join(self.out, "texts.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(TEXTS) + "\n")
        return path

    def expected_by_chars(self):
        """{characters: seconds}: the texts have distinct lengths, so a row's chars names it."""
        expected = {len(t): espeak_seconds(t, self.out) for t in TEXTS}
        self.assertEqual(len(expected), len(TEXTS))
        return expected

    def assert_exact_durations(self, name, levels):
        expected = self.expected_by_chars()
        rows = self.requests(name)
        self.assertEqual({int(r["level"]) for r in rows}, set(levels))  # level: its concurrency
        for r in rows:
            self.assertEqual(r["success"], "1", r)
            self.assertEqual(r["sample_rate"], "22050")
            # Exactly the samples espeak-ng writes for the same text (to float printing).
            self.assertAlmostEqual(float(r["audio_s"]), expected[int(r["chars"])], places=8)
            self.assertGreater(float(r["connect_ms"]), 0, "process start time is recorded")
            self.assertLessEqual(float(r["start_s"]), float(r["first_audio_s"]))
            self.assertLessEqual(float(r["first_audio_s"]), float(r["end_s"]))
        summary = self.summary(name)
        self.assertEqual([int(s["Concurrency"]) for s in summary], levels)
        for s in summary:
            self.assertEqual(float(s["Success_Rate_%"]), 100.0)
            self.assertGreater(float(s["ASPS"]), 0)
        return rows

    def test_server_api_command_espeak_at_concurrency_1_2_4(self):
        r = self.ttsbench("server", "--api", "command", "--command",
                          "espeak-ng --stdout -v {voice}", "--voice", "en", "--concurrency",
                          "1", "2", "4", "--iterations", "12", "--warmup", "2", "--texts",
                          self.texts_file(), "--agents", "2", "--output-dir", self.out,
                          "--session-name", "espeak")
        self.assertEqual(r.returncode, 0, r.stderr)
        for level in ("1 ", "2 ", "4 "):
            self.assertIn("\n" + level, r.stdout)
        rows = self.assert_exact_durations("espeak", [1, 2, 4])
        self.assertEqual(sum(1 for q in rows if q["warmup"] == "0"), 36)
        session = self.session_json("espeak")
        self.assertEqual(session["plan"]["target"]["api"], "command")
        self.assertEqual(session["plan"]["target"]["command"]["argv"],
                         ["espeak-ng", "--stdout", "-v", "{voice}"])
        self.assertTrue(session["plan"]["target"]["streaming"])

    def write_plan(self, argv, name):
        path = os.path.join(self.out, f"{name}.yaml")
        args = ", ".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in argv)
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"""session_name: {name}
output_dir: {self.out}
target:
  api: command
  voice: en
  command:
    argv: [{args}]
texts:
  file: {self.texts_file()}
load:
  concurrency: [2]
  iterations: 6
  warmup: 0
agents:
  spawn: 1
""")
        return path

    def test_plan_file_runs_only_with_allow_command_on_the_command_line(self):
        plan = self.write_plan([ESPEAK, "--stdout", "-v", "{voice}", "{text}"], "planned")
        refused = self.ttsbench("run", plan)
        self.assertEqual(refused.returncode, 1, refused.stderr)
        self.assertEqual(len(refused.stderr.strip().splitlines()), 1, refused.stderr)
        self.assertIn(f"command {ESPEAK}", refused.stderr)
        self.assertIn("allowed: nothing (no --allow-command given)", refused.stderr)
        # The program alone, or another argument list, allows nothing: a plan could otherwise
        # make an allowed program write or read any file.
        for allowed in ("espeak-ng", "espeak-ng --stdout -v {voice}"):
            other = self.ttsbench("run", plan, "--allow-command", allowed)
            self.assertEqual(other.returncode, 1, other.stderr)
            self.assertIn("is not allowed", other.stderr)
        r = self.ttsbench("run", plan, "--allow-command", "espeak-ng --stdout -v {voice} {text}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_exact_durations("planned", [2])

    def test_program_not_allowed_is_refused_before_any_process_starts(self):
        marker = os.path.join(self.out, "ran")
        plan = self.write_plan(["/bin/sh", "-c", f"touch {marker}"], "shell")
        r = self.ttsbench("run", plan, "--allow-command", ESPEAK)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("command /bin/sh", lines[0])
        self.assertIn(f"allowed: {os.path.realpath(ESPEAK)}", lines[0])
        self.assertFalse(os.path.exists(marker))
        self.assertFalse(os.path.exists(self.session_dir("shell")))

    def test_remote_agent_refuses_a_program_its_operator_did_not_allow(self):
        # The coordinator's own command line cannot allow anything for a remote agent.
        marker = os.path.join(self.out, "ran")
        port = harness.free_port()
        coord = harness.start("ttsbench", "server", "--api", "command", "--command",
                              f"/bin/sh -c 'touch {marker}'", "--expect-agents", "1",
                              "--listen", f"127.0.0.1:{port}", "--concurrency", "1",
                              "--iterations", "2", "--warmup", "0", "--output-dir", self.out,
                              "--session-name", "remote")
        agent = harness.start("ttsbench-agent", "--coordinator", f"127.0.0.1:{port}", "--id",
                              "far-1", "--once", "--allow-command", ESPEAK)
        try:
            _, err = coord.communicate(timeout=60)
            agent.wait(timeout=20)
        finally:
            for p in (coord, agent):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            agent.stdout.close()
            agent.stderr.close()
        self.assertEqual(coord.returncode, 2, err)
        self.assertIn("far-1: command /bin/sh", err)
        self.assertIn(f"allowed: {os.path.realpath(ESPEAK)}", err)
        self.assertFalse(os.path.exists(marker))

    def test_bad_command_plans_name_the_key_and_line(self):
        cases = [
            ("  url: http://127.0.0.1:1\n", "target.url", "not used by api: command"),
            ("  format: pcm\n", "target.sample_rate", "required for raw pcm"),
            ("  command:\n    input: file\n", "target.command.input", "stdin, argument"),
        ]
        for extra, key, problem in cases:
            path = os.path.join(self.out, "bad.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write("target:\n  api: command\n" + extra)
                if "command:" not in extra:
                    f.write("  command:\n    argv: [espeak-ng, --stdout]\n")
                else:
                    f.write("    argv: [espeak-ng, --stdout]\n")
            r = self.ttsbench("run", path)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(key, r.stderr)
            self.assertIn(problem, r.stderr)
        r = self.ttsbench("server", "--api", "command")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--api command needs --command", r.stderr)
        r = self.ttsbench("server", "--api", "command", "--command", "say 'unclosed")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--command: command has an unclosed ' quote", r.stderr)

    def test_failing_program_is_counted_with_its_exit_status_and_stderr(self):
        script = os.path.join(self.out, "fails.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho 'no voice named en' >&2\nexit 3\n")
        os.chmod(script, 0o755)
        r = self.ttsbench("server", "--api", "command", "--command", script, "--agents", "1",
                          "--concurrency", "2", "--iterations", "4", "--warmup", "0",
                          "--output-dir", self.out, "--session-name", "fails")
        self.assertEqual(r.returncode, 3, r.stderr)  # the default success-rate floor
        rows = self.requests("fails")
        self.assertEqual({q["error"] for q in rows}, {"exit"})
        self.assertEqual({q["error_detail"] for q in rows}, {"exit 3: no voice named en"})
        self.assertIn("exit 3: no voice named en", r.stdout + r.stderr)

    def test_voices_and_capacity_size_a_local_engine(self):
        cmd = f"{ESPEAK} --stdout -v {{voice}}"
        r = self.ttsbench("voices", "--api", "command", "--command", cmd, "--voices", "en",
                          "en-us", "--agents", "1", "--concurrency", "2", "--iterations", "4",
                          "--warmup", "0", "--output-dir", self.out, "--session-name", "vs")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([row["Series"] for row in self.summary("vs")],
                         ["voice=en", "voice=en-us"])
        # Capacity of the engine on this host: a search whose every probe ran the program (a p50
        # objective: 20 requests a probe; a 99% success rate would take 1,000).
        r = self.ttsbench("capacity", "--api", "command", "--command", cmd, "--voice", "en",
                          "--slo", "ttfa_p50=10s", "--max", "4", "--agents", "1",
                          "--iterations", "4", "--warmup", "0", "--output-dir", self.out,
                          "--session-name", "cap")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Capacity: 4", r.stdout)
        # comprehensive compares a server's answer shapes: refused in one line.
        r = self.ttsbench("comprehensive", "--api", "command", "--command", cmd, "--url",
                          "http://127.0.0.1:1")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("comprehensive: --api command is not supported", r.stderr)
        # A program that is not there is named with the flag the user typed.
        r = self.ttsbench("server", "--api", "command", "--command", "/nonexistent/tts --x")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--command: command '/nonexistent/tts' is not an executable file", r.stderr)


if __name__ == "__main__":
    harness.main()
