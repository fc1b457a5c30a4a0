#!/usr/bin/env python3
"""Many hosts, one clock: a coordinator and three agents on separate addresses (network
namespaces on a bridge, RFC 2544's benchmarking range 198.18.0.0/15, nothing routed outside),
agent clocks shifted by hours with time namespaces, agents and the coordinator killed with
SIGKILL or stopped with SIGSTOP past their lease, authentication and allowlist refusals. Needs
root (CI runs as root); skipped otherwise.

Run: fleet_test.py BIN_DIR [unittest args]
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

import harness

BRIDGE = "tbfleet0"
HOST_IP = "198.18.0.1"
AGENT_IPS = ["198.18.0.11", "198.18.0.12", "198.18.0.13"]


def backward_shift():
    """A monotonic clock cannot be set before boot: one agent goes back as far as the machine's
    uptime allows (up to 30 min, with a margin), so the test holds on a host just booted."""
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    back = int(min(1800, uptime - 20))
    return -back if back >= 1 else 3600


# Monotonic clock offsets per agent (seconds): hours apart, one behind where uptime allows.
CLOCK_SHIFTS = [0, 7200, backward_shift()]
TOKEN = "fleet-token-4c1d9e"


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def can_run():
    if os.geteuid() != 0:
        return "needs root for network and time namespaces"
    try:
        sh("ip", "netns", "list")
        sh("unshare", "--fork", "--time", "--monotonic", "1", "true")
    except (OSError, subprocess.CalledProcessError) as e:
        return f"namespaces unavailable: {e}"
    return None


class Fleet:
    """A bridge in the root namespace and one namespace per agent host."""

    def __init__(self):
        self.ns = [f"tbfleet{i + 1}" for i in range(len(AGENT_IPS))]
        self.teardown()
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for i, (ns, ip) in enumerate(zip(self.ns, AGENT_IPS)):
            host_end, ns_end = f"tbfv{i + 1}", f"tbfp{i + 1}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            sh("ip", "link", "set", host_end, "master", BRIDGE)
            sh("ip", "link", "set", host_end, "up")
            sh("ip", "link", "set", ns_end, "netns", ns)
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", ns_end)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_end, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def teardown(self):
        for i, ns in enumerate(self.ns):
            sh("ip", "netns", "del", ns, check=False)
            sh("ip", "link", "del", f"tbfv{i + 1}", check=False)
        sh("ip", "link", "del", BRIDGE, check=False)

    def agent(self, i, port, *extra, token=TOKEN, shift=None, once=True, allow=HOST_IP):
        """Starts ttsbench-agent on host i (its own netns, optionally its own clock)."""
        shift = CLOCK_SHIFTS[i] if shift is None else shift
        cmd = ["ip", "netns", "exec", self.ns[i]]
        if shift:
            cmd += ["unshare", "--fork", "--time", "--monotonic", str(shift)]
        cmd += [harness.binary("ttsbench-agent"), "--coordinator", f"{HOST_IP}:{port}",
                "--id", f"host-{i + 1}", "--allow-target", allow, *extra]
        if token:
            cmd += ["--token-file", self.token_file]
        if once:
            cmd.append("--once")
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)


@unittest.skipIf(can_run() is not None, can_run() or "")
class FleetTest(harness.E2eTest):
    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet()

    @classmethod
    def tearDownClass(cls):
        cls.fleet.teardown()

    def setUp(self):
        super().setUp()
        self.fleet.token_file = os.path.join(self.out, "token")
        with open(self.fleet.token_file, "w") as f:
            f.write(TOKEN + "\n")
        self.procs = []
        self.url = self.synth("--slots", "8", "--base-ms", "30", host=HOST_IP).url

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    p.kill()
                p.wait(timeout=10)

    def plan(self, name, **overrides):
        port = harness.free_port()
        agents = {"connect_timeout_s": 20, "max_clock_uncertainty_ms": 50}
        agents.update(overrides)
        agents_yaml = "".join(f"  {k}: {v}\n" for k, v in agents.items())
        text = f"""session_name: {name}
output_dir: {self.out}
target:
  url: {self.url}
  api: openai
  streaming: true
load:
  concurrency: [6, 12]
  iterations: 120
  warmup: 6
agents:
  expect: 3
  listen: "0.0.0.0:{port}"
  token_file: {self.fleet.token_file}
{agents_yaml}"""
        path = os.path.join(self.out, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path, port

    def coordinator(self, plan, *extra):
        p = harness.start("ttsbench", "run", plan, *extra, start_new_session=True)
        self.procs.append(p)
        return p

    def agents(self, port, *extra, **kw):
        ps = [self.fleet.agent(i, port, *extra, **kw) for i in range(3)]
        self.procs.extend(ps)
        return ps

    def read(self, name):
        return self.session_json(name), self.requests(name), self.summary(name)

    def test_three_hosts_shifted_clocks_merge_on_one_timeline(self):
        plan, port = self.plan("fleet")
        coord = self.coordinator(plan)
        self.agents(port)
        out, err = coord.communicate(timeout=120)
        self.assertEqual(coord.returncode, 0, err)
        session, requests, summary = self.read("fleet")
        offsets = {a["id"]: a["clock_offset_ms"] for a in session["agents"]}
        for i, shift in enumerate(CLOCK_SHIFTS):
            self.assertAlmostEqual(offsets[f"host-{i + 1}"], shift * 1000, delta=50,
                                   msg=f"offset of host-{i + 1}")
        for a in session["agents"]:
            self.assertLess(a["clock_uncertainty_ms"], 50)
        for row in summary:
            level = [r for r in requests if r["level"] == row["Concurrency"] and r["warmup"] == "0"]
            ok = [r for r in level if r["success"] == "1"]
            self.assertEqual({r["agent"] for r in level}, {"host-1", "host-2", "host-3"})
            t_wall = max(float(r["end_s"]) for r in level) - min(float(r["start_s"]) for r in level)
            asps = sum(float(r["audio_s"]) for r in ok) / t_wall
            self.assertAlmostEqual(float(row["ASPS"]), asps, delta=asps * 0.005)
            # Hours of clock shift must not leak into the timeline: the level is seconds long
            # and every host's TTFA is the server's (~25 ms), not hours.
            self.assertLess(t_wall, 60)
            for r in ok:
                ttfa = float(r["first_audio_s"]) - float(r["start_s"])
                self.assertGreater(ttfa, 0.0)
                self.assertLess(ttfa, 5.0)
            print(f"\nconcurrency {row['Concurrency']}: ASPS {float(row['ASPS']):.1f}, "
                  f"start skew {float(row['Start_Skew_ms']):.3f} ms", file=sys.stderr)
        print("clock:", [(a["id"], round(a["clock_offset_ms"], 3), a["clock_uncertainty_ms"])
                         for a in session["agents"]], file=sys.stderr)
        # The agent token never reaches any output.
        self.assertNotIn(TOKEN, out + err)
        for name in os.listdir(os.path.join(self.out, "fleet")):
            with open(os.path.join(self.out, "fleet", name), "rb") as f:
                self.assertNotIn(TOKEN.encode(), f.read(), name)

    def kill_agent_mid_level(self, policy):
        plan, port = self.plan(f"kill-{policy}", failure_policy=policy)
        coord = self.coordinator(plan, "--set", "load.iterations=600")
        agents = self.agents(port)
        # Admission, clock probes and warm-up take well under a second; the first level then
        # runs for several seconds (600 requests at ~150/s): kill one agent in the middle.
        time.sleep(3.0)
        self.assertIsNone(coord.poll(), "the run ended before the kill")
        os.killpg(agents[1].pid, signal.SIGKILL)
        out, err = coord.communicate(timeout=120)
        return coord.returncode, out, err

    def test_agent_killed_abort_policy_fails_and_keeps_records(self):
        code, out, err = self.kill_agent_mid_level("abort")
        self.assertEqual(code, 2, err)
        self.assertIn("host-2 was lost", err)
        session, requests, _ = self.read("kill-abort")
        self.assertEqual(session["status"], "failed")
        self.assertTrue(any(r["agent"] == "host-2" for r in requests))

    def test_agent_killed_continue_policy_marks_degraded(self):
        code, out, err = self.kill_agent_mid_level("continue")
        self.assertEqual(code, 0, err)
        session, _, _ = self.read("kill-continue")
        # A run that lost an agent is not a clean one.
        self.assertEqual(session["status"], "degraded")
        self.assertTrue(any(l.get("degraded") for l in session["levels"]), session["levels"])
        self.assertTrue(any("host-2" in w for w in session["warnings"]))

    def stop_mid_level(self, name, victim, policy, lease_s=3, pause_s=8):
        """A 20 s level on three agents; 5 s in, `victim` ("agent" or "coordinator") is stopped
        with SIGSTOP for `pause_s` and then continued. Returns (exit code, stderr, seconds from
        SIGSTOP to the coordinator's exit)."""
        plan, port = self.plan(name, failure_policy=policy, lease_s=lease_s)
        coord = self.coordinator(plan, "--set", "load.concurrency=[6]", "--set",
                                 "load.iterations=0", "--set", "load.duration_s=20")
        agents = self.agents(port)
        time.sleep(5)
        self.assertIsNone(coord.poll(), "the run ended before the stop")
        pgid = agents[1].pid if victim == "agent" else coord.pid
        os.killpg(pgid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            coord_exit = None
            while time.monotonic() - stopped < pause_s:
                if coord_exit is None and coord.poll() is not None:
                    coord_exit = time.monotonic() - stopped
                time.sleep(0.05)
        finally:
            os.killpg(pgid, signal.SIGCONT)
        _, err = coord.communicate(timeout=60)
        if coord_exit is None:
            coord_exit = time.monotonic() - stopped
        return coord.returncode, err, coord_exit

    def test_agent_stopped_past_its_lease_abort_policy_names_it_within_lease(self):
        code, err, exit_after = self.stop_mid_level("sigstop-abort", "agent", "abort")
        print(f"\nstopped agent: run failed {exit_after:.2f} s after SIGSTOP (lease 3 s)",
              file=sys.stderr)
        self.assertEqual(code, 2, err)
        self.assertIn("agent host-2 went silent", err)
        # Named within lease + 1 s of its last message (so of the SIGSTOP, which came later)...
        silent_for = float(re.search(r"nothing heard for ([0-9.]+) s", err).group(1))
        print(f"detected after {silent_for:.2f} s of silence", file=sys.stderr)
        self.assertLess(silent_for, 3 + 1)
        # ...and the run ended soon after (writing the session files and plots included).
        self.assertLess(exit_after, 3 + 1 + 5)
        session, _, _ = self.read("sigstop-abort")
        self.assertEqual(session["status"], "failed")

    def test_agent_stopped_past_its_lease_continue_policy_is_degraded(self):
        code, err, _ = self.stop_mid_level("sigstop-continue", "agent", "continue")
        self.assertEqual(code, 0, err)
        session, requests, _ = self.read("sigstop-continue")
        self.assertEqual(session["status"], "degraded")
        self.assertTrue(session["levels"][0].get("degraded"), session["levels"])
        self.assertTrue(any("host-2 went silent" in w for w in session["warnings"]),
                        session["warnings"])
        # The others ran the whole 20 s level.
        measured = [float(r["start_s"]) for r in requests
                    if r["warmup"] == "0" and r["agent"] != "host-2"]
        self.assertGreater(max(measured) - min(measured), 18)

    def test_coordinator_stopped_past_the_lease_is_never_completed(self):
        for policy, code_want, status_want in (("abort", 2, "failed"),
                                                ("continue", 0, "degraded")):
            with self.subTest(policy=policy):
                name = f"coord-stop-{policy}"
                code, err, _ = self.stop_mid_level(name, "coordinator", policy)
                self.assertEqual(code, code_want, err)
                session, _, _ = self.read(name)
                self.assertEqual(session["status"], status_want)
                text = err + "\n".join(session["warnings"])
                self.assertTrue("coordinator was stalled" in text or "lease lapsed" in text,
                                text)
                for p in self.procs:
                    if p.poll() is None:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait(timeout=10)
                self.procs.clear()

    def test_coordinator_killed_load_stops_within_the_lease(self):
        plan, port = self.plan("orphan", lease_s=3)
        coord = self.coordinator(plan, "--set", "load.iterations=100000",
                                 "--set", "load.concurrency=[12]")
        agents = self.agents(port)
        time.sleep(4)
        os.killpg(coord.pid, signal.SIGKILL)
        killed = time.monotonic()
        # The server's own request counter must stop moving within the lease.
        last, last_change, polls = None, killed, 0
        while time.monotonic() - killed < 10:
            with urllib.request.urlopen(f"{self.url}/stats", timeout=2) as resp:
                polls += 1
                n = json.load(resp)["requests"] - polls  # our own polls are requests too
            if n != last:
                last, last_change = n, time.monotonic()
            time.sleep(0.1)
        stopped_after = last_change - killed
        print(f"\nload stopped {stopped_after:.2f} s after the coordinator died (lease 3 s)",
              file=sys.stderr)
        self.assertLess(stopped_after, 3.5)
        for a in agents:
            a.wait(timeout=10)

    def make_pki(self):
        """A CA, a coordinator certificate for HOST_IP and one client certificate (openssl)."""
        d = os.path.join(self.out, "pki")
        os.makedirs(d)
        def run(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=ttsbench test CA")
        for name, ext in (("coord", f"subjectAltName=IP:{HOST_IP}"),
                          ("agent", "extendedKeyUsage=clientAuth")):
            run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
            with open(os.path.join(d, f"{name}.ext"), "w") as f:
                f.write(ext + "\n")
            run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext")
        return d

    def test_mutual_tls_run_and_refusal_without_a_client_certificate(self):
        pki = self.make_pki()
        path, port = self.plan("mtls", tls_cert=f"{pki}/coord.pem", tls_key=f"{pki}/coord.key",
                               tls_ca=f"{pki}/ca.pem")
        # TLS instead of the token for this run.
        with open(path) as f:
            text = f.read().replace(f"  token_file: {self.fleet.token_file}\n", "")
        with open(path, "w") as f:
            f.write(text)
        coord = self.coordinator(path, "--set", "load.iterations=30", "--set",
                                 "load.concurrency=[3]")
        tls = ["--tls-cert", f"{pki}/agent.pem", "--tls-key", f"{pki}/agent.key",
               "--tls-ca", f"{pki}/ca.pem"]
        ps = [self.fleet.agent(i, port, *tls, token=None) for i in range(3)]
        self.procs.extend(ps)
        _, err = coord.communicate(timeout=120)
        self.assertEqual(coord.returncode, 0, err)
        session, requests, _ = self.read("mtls")
        self.assertEqual(len(session["agents"]), 3)
        # The same coordinator set-up refuses an agent that has no client certificate.
        path2, port2 = self.plan("mtls2", tls_cert=f"{pki}/coord.pem", tls_key=f"{pki}/coord.key",
                                 tls_ca=f"{pki}/ca.pem", connect_timeout_s=4)
        with open(path2) as f:
            text = f.read().replace(f"  token_file: {self.fleet.token_file}\n", "")
        with open(path2, "w") as f:
            f.write(text)
        coord = self.coordinator(path2)
        agent = self.fleet.agent(0, port2)  # token only, no certificate
        self.procs.append(agent)
        agent.communicate(timeout=30)
        self.assertNotEqual(agent.returncode, 0)
        _, err = coord.communicate(timeout=60)
        self.assertEqual(coord.returncode, 2, err)
        self.assertIn("0 of 3 agents", err)

    def test_wrong_token_is_refused(self):
        plan, port = self.plan("badtoken", connect_timeout_s=3)
        coord = self.coordinator(plan)
        bad = os.path.join(self.out, "bad")
        with open(bad, "w") as f:
            f.write("not-the-token\n")
        agent = self.fleet.agent(0, port, "--token-file", bad, token=None)
        self.procs.append(agent)
        _, aerr = agent.communicate(timeout=30)
        self.assertNotEqual(agent.returncode, 0)
        self.assertIn("token", aerr)
        _, err = coord.communicate(timeout=60)
        self.assertEqual(coord.returncode, 2, err)
        self.assertIn("0 of 3 agents", err)

    def test_agent_without_credentials_refuses_a_remote_coordinator(self):
        agent = self.fleet.agent(0, 7070, token=None)
        _, err = agent.communicate(timeout=30)
        self.assertEqual(agent.returncode, 1)
        self.assertIn("only a loopback coordinator", err)

    def test_allowlist_refuses_a_target(self):
        plan, port = self.plan("allow")
        coord = self.coordinator(plan)
        for i in range(3):
            self.procs.append(self.fleet.agent(i, port, allow="203.0.113.7"))
        _, err = coord.communicate(timeout=60)
        self.assertEqual(coord.returncode, 2, err)
        self.assertIn("not allowed by this agent's --allow-target", err)


if __name__ == "__main__":
    harness.main()
