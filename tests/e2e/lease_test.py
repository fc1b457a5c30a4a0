#!/usr/bin/env python3
"""Leases with real processes on one host (no root needed): `ttsbench run` spawns two local
agents; one agent, or the coordinator itself, is stopped with SIGSTOP mid-level for longer than
the lease and then continued. A stopped agent must be named within lease + 1 s and the run must
follow the failure policy; a stopped coordinator must never report the level as completed.

Run: lease_test.py BIN_DIR [unittest args]
"""
import os
import re
import signal
import sys
import time

import harness

LEASE_S = 2


def children(pid):
    """The local agents the coordinator spawned (its child processes)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


class LeaseTest(harness.E2eTest):
    def setUp(self):
        super().setUp()
        self.url = self.synth().url
        self.coord = None

    def tearDown(self):
        if self.coord is not None:
            if self.coord.poll() is None:
                # The coordinator and its local agents share a process group.
                os.killpg(self.coord.pid, signal.SIGCONT)
                os.killpg(self.coord.pid, signal.SIGKILL)
                self.coord.wait(timeout=10)
            self.coord.stdout.close()
            self.coord.stderr.close()

    def stop_mid_level(self, name, victim, policy, pause_s=5):
        """A 12 s level on two local agents; 3 s in, `victim` ("agent" or "coordinator") gets
        SIGSTOP for `pause_s`, then SIGCONT. Returns (exit code, stderr, session)."""
        plan = os.path.join(self.out, f"{name}.yaml")
        with open(plan, "w") as f:
            f.write(f"""session_name: {name}
output_dir: {self.out}
target:
  url: {self.url}
  api: openai
load:
  concurrency: [4]
  duration_s: 12
agents:
  spawn: 2
  lease_s: {LEASE_S}
  failure_policy: {policy}
""")
        self.coord = harness.start("ttsbench", "run", plan, start_new_session=True)
        time.sleep(3)
        self.assertIsNone(self.coord.poll(), "the run ended before the stop")
        pid = children(self.coord.pid)[1] if victim == "agent" else self.coord.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(pause_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        _, err = self.coord.communicate(timeout=60)
        return self.coord.returncode, err, self.session_json(name)

    def test_stopped_agent_is_named_within_the_lease_and_fails_the_run(self):
        code, err, session = self.stop_mid_level("agent-abort", "agent", "abort")
        self.assertEqual(code, 2, err)
        self.assertEqual(session["status"], "failed")
        m = re.search(r"agent (local-\d) went silent: nothing heard for ([0-9.]+) s", err)
        self.assertIsNotNone(m, err)
        print(f"\n{m.group(1)} named after {m.group(2)} s of silence (lease {LEASE_S} s)",
              file=sys.stderr)
        self.assertLess(float(m.group(2)), LEASE_S + 1)

    def test_stopped_agent_under_continue_policy_degrades_the_run(self):
        code, err, session = self.stop_mid_level("agent-continue", "agent", "continue")
        self.assertEqual(code, 0, err)
        self.assertEqual(session["status"], "degraded")
        self.assertTrue(session["levels"][0].get("degraded"))
        self.assertTrue(any("went silent" in w for w in session["warnings"]), session["warnings"])

    def test_stopped_coordinator_never_reports_completed(self):
        for policy, want_code, want_status in (("abort", 2, "failed"),
                                               ("continue", 0, "degraded")):
            with self.subTest(policy=policy):
                code, err, session = self.stop_mid_level(f"coord-{policy}", "coordinator",
                                                         policy)
                self.assertEqual(code, want_code, err)
                self.assertEqual(session["status"], want_status)
                text = err + "\n".join(session["warnings"])
                self.assertTrue("coordinator was stalled" in text or "lease lapsed" in text, text)
                print(f"\ncoordinator stopped ({policy}): {session['status']}; "
                      f"{[w for w in session['warnings'] if 'lease' in w][:1]}", file=sys.stderr)
                self.coord.stdout.close()
                self.coord.stderr.close()
                self.coord = None


if __name__ == "__main__":
    harness.main()
