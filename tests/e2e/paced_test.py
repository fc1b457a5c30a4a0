"""Paced text and barge-in (issue 13) through the CLI: `ttsbench server` feeding text over the
WebSocket like an LLM's tokens, against the synthetic server's honest and buffering text-paced
models, for each protocol that takes text in pieces. The console table, summary.csv,
requests.csv and the two plots must carry first-token-to-speech (FTTS) and time-to-silence, and
FTTS must tell the honest server from the buffering one."""
import os
import statistics

import harness
from harness import E2eTest

TEXT = "Your order has shipped, and it should arrive on Thursday before noon. Anything else?"

PROTOCOLS = [
    ("deepgram", ["--api", "deepgram", "--format", "pcm"]),
    ("cartesia", ["--api", "cartesia", "--format", "pcm", "--voice", "v1"]),
    ("elevenlabs", ["--api", "elevenlabs", "--stream-format", "ws", "--format", "pcm",
                    "--voice", "v1"]),
    ("elevenlabs-multi", ["--api", "elevenlabs", "--stream-format", "ws", "--format", "pcm",
                          "--voice", "v1", "--ws-endpoint", "multi-stream-input"]),
]

# 84 characters at 40 tokens/s in 4-character tokens: the input takes about 0.55 s to arrive.
PACING = ["--pace-tokens-per-s", "40", "--pace-first-token", "50ms", "--pace-unit", "word"]


class PacedTest(E2eTest):

    def run_paced(self, url, name, flags, *extra):
        text_file = os.path.join(self.out, "texts.txt")
        with open(text_file, "w") as f:
            f.write(TEXT + "\n")
        r = self.ttsbench("server", "--url", url, *flags, "--streaming", "--agents", "1",
                          "--concurrency", "1", "4", "--iterations", "12", "--warmup", "1",
                          "--texts", text_file, *PACING, *extra, "--output-dir", self.out,
                          "--session-name", name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def test_ftts_tells_honest_from_buffering_in_every_protocol(self):
        honest = self.synth("--paced-mode", "honest", "--lookahead-chars", "20")
        buffering = self.synth("--paced-mode", "buffering")
        for proto, flags in PROTOCOLS:
            with self.subTest(protocol=proto):
                r = self.run_paced(honest.url, f"{proto}-honest", flags)
                self.run_paced(buffering.url, f"{proto}-buffering", flags)
                h = self.session_json(f"{proto}-honest")["levels"]
                b = self.session_json(f"{proto}-buffering")["levels"]
                for lh, lb in zip(h, b):
                    self.assertEqual(lh["successful"], 12, lh)
                    self.assertEqual(lb["successful"], 12, lb)
                    # Honest speaks after the first 20 characters (about 5 words); buffering
                    # only once the whole input came (about 0.5 s later).
                    self.assertLess(lh["first_token_to_speech_ms"]["p50"], 300, lh)
                    self.assertGreater(lb["first_token_to_speech_ms"]["p50"],
                                       lh["first_token_to_speech_ms"]["p50"] + 250, (lh, lb))
                    # Both speak the rest soon after the end of input.
                    self.assertLess(lh["last_token_to_last_audio_ms"]["p50"],
                                    lb["last_token_to_last_audio_ms"]["p50"] + 100)
                self.assertIn("Paced text", r.stdout)
                summary = self.summary(f"{proto}-honest")
                self.assertAlmostEqual(float(summary[0]["FTTS_p50_ms"]),
                                       h[0]["first_token_to_speech_ms"]["p50"], delta=0.01)
                rows = [q for q in self.requests(f"{proto}-honest") if q["warmup"] == "0"]
                self.assertEqual(len(rows), 24)
                for q in rows:
                    ftts = (float(q["first_audio_s"]) - float(q["first_text_s"])) * 1e3
                    self.assertAlmostEqual(float(q["first_token_to_speech_ms"]), ftts, delta=0.01)
                    self.assertGreater(int(q["text_pieces"]), 10)
                    self.assertEqual(q["interrupt_s"], "")
                d = self.session_dir(f"{proto}-honest")
                for plot in ("ftts_cdf.png", "paced_timeline.png"):
                    self.assertGreater(os.path.getsize(os.path.join(d, plot)), 5000, plot)

    def test_barge_in_falls_silent_within_the_stop_delay_and_a_talker_is_an_error(self):
        # A long synthesis: 20 ms chunks every few ms while it speaks, so audio is still coming
        # when the interrupt goes 100 ms after the first audio.
        slow = ["--per-char-ms", "15", "--chunk-ms", "20"]
        s = self.synth("--paced-mode", "honest", "--stop-delay-ms", "40", *slow)
        flags = PROTOCOLS[0][1]
        self.run_paced(s.url, "barge", flags, "--interrupt-fraction", "1",
                       "--interrupt-after", "100ms")
        level = self.session_json("barge")["levels"][0]
        self.assertEqual(level["interrupted"], 12, level)
        # The synth sends what is due for 40 ms after the Clear; one chunk may be in flight.
        self.assertGreater(level["time_to_silence_ms"]["p50"], 40 - 15, level)
        self.assertLess(level["time_to_silence_ms"]["p95"], 40 + 60, level)
        self.assertIn("Time_To_Silence_p50_ms", self.summary("barge")[0])
        rows = [q for q in self.requests("barge") if q["warmup"] == "0"]
        for q in rows[:12]:
            self.assertNotEqual(q["interrupt_s"], "")
            self.assertGreaterEqual(float(q["time_to_silence_ms"]), 0)
        # A server that keeps talking after the interrupt: audio_after_cancel, records kept.
        talker = self.synth("--paced-mode", "honest", "--misbehave", "talk-after-cancel", *slow)
        r = self.ttsbench("server", "--url", talker.url, *flags, "--streaming", "--agents", "1",
                          "--concurrency", "1", "--iterations", "4", "--warmup", "0",
                          "--texts", os.path.join(self.out, "texts.txt"), *PACING,
                          "--interrupt-fraction", "1", "--interrupt-after", "50ms",
                          "--silence-limit", "100ms", "--output-dir", self.out,
                          "--session-name", "talker")
        self.assertNotEqual(r.returncode, 0)
        rows = self.requests("talker")
        self.assertEqual(len(rows), 4)
        self.assertTrue(all(q["error"] == "audio_after_cancel" for q in rows), rows)
        self.assertTrue(all(int(q["bytes_after_interrupt"]) > 0 for q in rows), rows)


if __name__ == "__main__":
    harness.main()
