"""Conversations and vLLM-Omni's streaming-text WebSocket (issue 13) through the CLI: real
coordinator and agent processes, a ttsbench-synth process, sockets on loopback. What the agent's
records say per turn is tested in tests/agent/conversation_e2e_test.cc; here, that it reaches
requests.csv, summary.csv, session.json and the console."""
import collections
import os

import harness


class ConversationTest(harness.E2eTest):

    def converse(self, synth, name, api, *extra, tokens_per_s="80"):
        return self.ttsbench(
            "server", "--url", synth.url, "--api", api, "--format", "pcm", "--agents", "2",
            "--concurrency", "2", "--iterations", "12", "--warmup", "0",
            "--pace-tokens-per-s", tokens_per_s, "--pace-first-token", "10ms", "--turns", "3",
            "--turn-think", "50ms", "--output-dir", self.out, "--session-name", name, *extra)

    def test_turns_share_one_set_up_per_conversation(self):
        synth = self.synth("--paced-mode", "honest", "--slots", "8")
        r = self.converse(synth, "dg", "deepgram")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Conversations", r.stdout)
        rows = [row for row in self.requests("dg") if row["warmup"] == "0"]
        self.assertEqual(len(rows), 12)
        convs = collections.defaultdict(list)
        for row in rows:
            self.assertEqual(row["success"], "1", row["error_detail"])
            convs[row["conversation_id"]].append(row)
        # Two users (one per agent), 12 turns of 3: four conversations, each with one set-up,
        # before its turn 0.
        self.assertEqual(len(convs), 4)
        for turns in convs.values():
            self.assertEqual(sorted(int(t["turn"]) for t in turns), [0, 1, 2])
            setups = [t for t in turns if t["conversation_setup_ms"]]
            self.assertEqual([t["turn"] for t in setups], ["0"])
            self.assertTrue(all(t["reconnect"] == "0" for t in turns))
            self.assertTrue(all(float(t["first_token_to_speech_ms"]) > 0 for t in turns))
        level = self.summary("dg")[0]
        self.assertEqual(level["Conversations"], "4")
        self.assertEqual(level["Conversation_Turns"], "12")
        self.assertEqual(level["Reconnects"], "0")
        self.assertEqual(level["Conversations_Failed"], "0")
        self.assertGreater(float(level["Conversation_Setup_p50_ms"]), 0)
        stats = self.session_json("dg")["levels"][0]
        self.assertEqual(stats["conversations"], 4)
        self.assertEqual(stats["conversation_setup_ms"]["count"], 4)
        self.assertEqual(self.session_json("dg")["plan"]["conversation"]["turns"], 3)

    def test_vllm_omni_honest_speaks_before_the_input_ends_buffering_after(self):
        ftts = {}
        for mode in ("honest", "buffering"):
            synth = self.synth("--paced-mode", mode, "--slots", "8")
            r = self.converse(synth, mode, "vllm-omni", tokens_per_s="30")
            self.assertEqual(r.returncode, 0, r.stderr)
            level = self.summary(mode)[0]
            self.assertEqual(level["Conversation_Turns"], "12")
            ftts[mode] = float(level["FTTS_p50_ms"])
            rows = self.requests(mode)
            for row in rows:
                self.assertEqual(row["success"], "1", row["error_detail"])
                input_ms = (float(row["end_of_input_s"]) - float(row["first_text_s"])) * 1000
                if mode == "buffering":
                    self.assertGreaterEqual(float(row["first_token_to_speech_ms"]), input_ms)
        # The texts take ~1-3 s to arrive at 30 tokens/s: the buffering server's FTTS holds it.
        self.assertGreater(ftts["buffering"], ftts["honest"] + 300, ftts)

    def test_server_closing_mid_turn_is_classified_and_the_conversation_reconnects(self):
        synth = self.synth("--paced-mode", "honest", "--misbehave", "close-mid-turn")
        r = self.converse(synth, "closing", "cartesia", "--voice", "v1",
                          "--slo", "success_rate=0%")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.requests("closing")
        self.assertEqual(len(rows), 12)
        for row in rows:
            self.assertEqual(row["error"], "closed_mid_turn")
            self.assertGreater(float(row["audio_s"]), 0)  # what arrived is kept
            self.assertEqual(row["reconnect"], "0" if row["turn"] == "0" else "1")
        level = self.summary("closing")[0]
        self.assertEqual(level["Conversations_Failed"], "4")
        self.assertEqual(level["Reconnects"], "8")

    def test_bad_conversation_flags_are_named(self):
        synth = self.synth()
        r = self.ttsbench("server", "--url", synth.url, "--api", "deepgram", "--format", "pcm",
                          "--turns", "3", "--turn-think-jitter", "2", "--output-dir", self.out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("conversation.think_jitter: must be in [0, 1)", r.stderr)
        r = self.ttsbench("server", "--url", synth.url, "--turns", "3", "--rate", "5",
                          "--output-dir", self.out)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("conversation", r.stderr)


if __name__ == "__main__":
    harness.main()
