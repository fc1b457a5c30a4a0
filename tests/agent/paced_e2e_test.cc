// Text that arrives over time (issue 13), end to end: each protocol that takes text in pieces
// against the synthetic server's honest and buffering text-paced models, barge-in, and the
// faults a paced server can commit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/client/text_pacing.h"
#include "common/metrics.h"
#include "tests/agent/paced_harness.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

struct Protocol {
  std::string name;
  v1::Target target;
};

std::vector<Protocol> Protocols() {
  std::vector<Protocol> out;
  v1::Target el;
  el.set_api("elevenlabs");
  el.set_voice("v1");
  el.set_format("pcm");
  el.set_sample_rate(24000);
  el.set_stream_format("ws");
  el.set_streaming(true);
  out.push_back({"elevenlabs stream-input", el});
  el.set_ws_endpoint("multi-stream-input");
  out.push_back({"elevenlabs multi-stream-input", el});
  v1::Target ca;
  ca.set_api("cartesia");
  ca.set_voice("v1");
  ca.set_format("pcm");
  ca.set_streaming(true);
  out.push_back({"cartesia", ca});
  v1::Target dg;
  dg.set_api("deepgram");
  dg.set_format("pcm");
  dg.set_streaming(true);
  out.push_back({"deepgram", dg});
  return out;
}

// `iterations` paced requests of `target` against `server`, one user.
RunResult RunPaced(const LoopbackSynth& server, v1::Target target, const v1::TextPacing& pacing,
                   int iterations = 3, double timeout_s = 10) {
  target.set_url(server.url());
  Shard shard;
  auto url = common::ParseUrl(target.url());
  EXPECT_TRUE(url.ok());
  auto dialect = MakeDialect(target, *url, {});
  EXPECT_TRUE(dialect.ok()) << dialect.status();
  if (!dialect.ok()) return {};
  google::protobuf::RepeatedPtrField<std::string> texts;
  texts.Add(std::string(kPacedText));
  auto reqs = PrepareTexts(**dialect, texts, pacing);
  EXPECT_TRUE(reqs.ok()) << reqs.status();
  if (!reqs.ok()) return {};
  shard.dialect = std::move(*dialect);
  shard.cfg.url = *url;
  shard.cfg.streamed = true;
  shard.cfg.requests = std::move(*reqs);
  shard.cfg.pacing = pacing;
  shard.cfg.concurrency = 1;
  shard.cfg.iterations = iterations;
  shard.cfg.timeout_s = timeout_s;
  shard.cfg.time_limit_s = 30;
  shard.cfg.seed = 7;
  return RunShard(std::move(shard));
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

TEST(PacedE2eTest, HonestServerSpeaksBeforeTheInputEndsAndBufferingOneAfterIt) {
  LoopbackSynth honest(Paced("honest"));
  LoopbackSynth buffering(Paced("buffering"));
  const size_t pieces = SplitText(kPacedText, "token").size();
  for (const Protocol& p : Protocols()) {
    SCOPED_TRACE(p.name);
    const RunResult h = RunPaced(honest, p.target, Pacing());
    const RunResult b = RunPaced(buffering, p.target, Pacing());
    ASSERT_EQ(h.records.size(), 3u);
    ASSERT_EQ(b.records.size(), 3u);
    for (const auto* run : {&h, &b}) {
      for (const v1::RequestRecord& r : run->records) {
        ASSERT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();
        EXPECT_EQ(r.text_pieces(), static_cast<int>(pieces));
        EXPECT_GT(r.first_text_ns(), r.start_ns());
        EXPECT_GT(r.end_of_input_ns(), r.first_text_ns());
        EXPECT_GE(r.last_audio_ns(), r.first_audio_ns());
        EXPECT_LT(Ms(r.pacing_late_max_ns()), 250);  // recorded; generous on a loaded machine
        // The whole text was spoken (stretches lose the blanks between them).
        EXPECT_NEAR(r.audio_s(), 0.06 * 84, 0.06 * 84 * 0.1);
      }
    }
    // The text takes ~pieces/40 s to arrive. The honest server speaks after its first 20
    // characters; the buffering one only once the input ended: first-token-to-speech tells
    // them apart by about the whole text's pacing time.
    for (size_t i = 0; i < 3; ++i) {
      const v1::RequestRecord& hr = h.records[i];
      const v1::RequestRecord& br = b.records[i];
      const double input_ms = Ms(hr.end_of_input_ns() - hr.first_text_ns());
      EXPECT_GT(input_ms, 0.5 * 1000.0 * static_cast<double>(pieces - 1) / 40);
      const double ftts_h = Ms(hr.first_audio_ns() - hr.first_text_ns());
      const double ftts_b = Ms(br.first_audio_ns() - br.first_text_ns());
      EXPECT_LT(ftts_h, 0.6 * input_ms);
      EXPECT_GE(ftts_b, Ms(br.end_of_input_ns() - br.first_text_ns()));
      EXPECT_GT(ftts_b - ftts_h, 0.4 * input_ms);
      EXPECT_GT(hr.last_audio_ns(), hr.end_of_input_ns());  // the last stretch ends with input
      EXPECT_GT(br.last_audio_ns(), br.end_of_input_ns());
    }
  }
}

TEST(PacedE2eTest, TimelineSampleHoldsEveryPieceAndTheAudio) {
  LoopbackSynth honest(Paced("honest"));
  const RunResult r = RunPaced(honest, Protocols()[0].target, Pacing(), 2);
  ASSERT_EQ(r.records.size(), 2u);
  int with_timeline = 0;
  for (const v1::RequestRecord& rec : r.records) {
    if (!rec.has_timeline()) continue;
    ++with_timeline;
    EXPECT_EQ(rec.timeline().text_ns_size(), rec.text_pieces());
    EXPECT_EQ(rec.timeline().text_ns(0), rec.first_text_ns());
    EXPECT_EQ(rec.timeline().audio_ns_size(), rec.chunks());
    // The record's end of input is the end of the text (its last piece); the timeline marks
    // the end message itself, end_delay_ms (0 here) later.
    EXPECT_EQ(rec.end_of_input_ns(), rec.timeline().text_ns(rec.timeline().text_ns_size() - 1));
    EXPECT_GE(rec.timeline().end_of_input_ns(), rec.end_of_input_ns());
  }
  EXPECT_EQ(with_timeline, 1);
}

// A delayed end of input (end_delay_ms, with a flush): an honest server speaks the last token
// as soon as it has it, before the end message comes. Last-token-to-last-audio is measured
// from the end of the text, so it is never negative: the last audio cannot precede the last
// token, whatever end_delay_ms.
TEST(PacedE2eTest, LastTokenToLastAudioIsNeverNegativeWithADelayedEnd) {
  LoopbackSynth honest(Paced("honest"));
  v1::TextPacing pacing = Pacing();
  pacing.set_flush(true);
  pacing.set_end_delay_ms(300);
  for (const Protocol& p : Protocols()) {
    SCOPED_TRACE(p.name);
    const RunResult r = RunPaced(honest, p.target, pacing, 3);
    ASSERT_EQ(r.records.size(), 3u);
    for (const v1::RequestRecord& rec : r.records) {
      ASSERT_EQ(rec.error(), v1::ERROR_NONE) << rec.error_detail();
      ASSERT_NE(rec.end_of_input_ns(), 0);
      EXPECT_GE(rec.last_audio_ns(), rec.end_of_input_ns())
          << "LTLA " << Ms(rec.last_audio_ns() - rec.end_of_input_ns()) << " ms";
    }
    const v1::LevelStats st = common::ComputeLevelStats(1, r.records, {});
    EXPECT_GE(st.last_token_to_last_audio_ms().p50(), 0);
  }
}

TEST(PacedE2eTest, BargeInFallsSilentWithinTheServersStopDelay) {
  synth::SynthOptions o = Paced("honest");
  o.stop_delay_ms = 40;
  o.model.per_char_ms = 15;  // a long synthesis: chunks every few ms while it speaks
  o.model.chunk_ms = 20;
  LoopbackSynth server(o);
  v1::TextPacing p = Pacing(200);
  p.set_interrupt_fraction(1);
  p.set_interrupt_after_ms(30);
  p.set_silence_limit_ms(300);
  // Deepgram answers Clear with Cleared, Cartesia's cancel has no answer (the silence bound
  // ends it), ElevenLabs' stream-input is interrupted by a close frame.
  for (const Protocol& proto : {Protocols()[3], Protocols()[2]}) {
    SCOPED_TRACE(proto.name);
    const RunResult r = RunPaced(server, proto.target, p, 3);
    ASSERT_EQ(r.records.size(), 3u);
    for (const v1::RequestRecord& rec : r.records) {
      ASSERT_EQ(rec.error(), v1::ERROR_NONE) << rec.error_detail();
      ASSERT_GT(rec.interrupt_ns(), 0);
      // Due 30 ms after the first audio; the sender's lateness on a loaded machine is recorded.
      EXPECT_GE(Ms(rec.interrupt_ns() - rec.first_audio_ns()), 30);
      EXPECT_LE(Ms(rec.interrupt_ns() - rec.first_audio_ns()), 30 + 30);
      // Chunks go out every ~5 ms while the server speaks: the last one lands within a few ms
      // of the stop delay.
      const double silence = Ms(rec.last_audio_ns() - rec.interrupt_ns());
      EXPECT_GE(silence, 40 - 15) << "audio stopped before the stop delay";
      EXPECT_LE(silence, 40 + 25) << "audio went on past the stop delay";
      EXPECT_GT(rec.bytes_after_interrupt(), 0);
    }
  }
  const RunResult el = RunPaced(server, Protocols()[0].target, p, 2);
  ASSERT_EQ(el.records.size(), 2u);
  for (const v1::RequestRecord& rec : el.records) {
    EXPECT_EQ(rec.error(), v1::ERROR_NONE) << rec.error_detail();
    EXPECT_GT(rec.interrupt_ns(), 0);
    EXPECT_LE(Ms(rec.last_audio_ns() - rec.interrupt_ns()), 15);  // a close stops it at once
  }
}

TEST(PacedE2eTest, FaultsAreClassifiedAndKeepWhatArrived) {
  struct Case {
    std::string misbehave;
    int protocol;
    v1::ErrorKind want;
  };
  for (const Case& c : std::vector<Case>{{"never-flush", 3, v1::ERROR_FLUSH_UNANSWERED},
                                         {"never-flush", 0, v1::ERROR_FLUSH_UNANSWERED},
                                         {"close-mid-turn", 0, v1::ERROR_CLOSED_MID_TURN},
                                         {"close-mid-turn", 2, v1::ERROR_CLOSED_MID_TURN},
                                         {"unknown-message", 3, v1::ERROR_UNKNOWN_MESSAGE},
                                         {"unknown-message", 2, v1::ERROR_UNKNOWN_MESSAGE},
                                         {"talk-after-cancel", 3, v1::ERROR_AUDIO_AFTER_CANCEL}}) {
    SCOPED_TRACE(c.misbehave + " " + Protocols()[static_cast<size_t>(c.protocol)].name);
    synth::SynthOptions o = Paced("honest");
    o.misbehave = c.misbehave;
    o.model.per_char_ms = 15;
    o.model.chunk_ms = 20;
    LoopbackSynth server(o);
    v1::TextPacing p = Pacing(200);
    p.set_flush_timeout_ms(300);
    if (c.want == v1::ERROR_AUDIO_AFTER_CANCEL) {
      p.set_interrupt_fraction(1);
      p.set_interrupt_after_ms(10);
      p.set_silence_limit_ms(60);
    }
    const RunResult r =
        RunPaced(server, Protocols()[static_cast<size_t>(c.protocol)].target, p, 1, 5);
    ASSERT_EQ(r.records.size(), 1u);
    const v1::RequestRecord& rec = r.records[0];
    EXPECT_EQ(rec.error(), c.want) << rec.error_detail();
    EXPECT_FALSE(rec.error_detail().empty());
    EXPECT_GT(rec.first_text_ns(), 0);
    if (c.misbehave != "unknown-message") {
      EXPECT_GT(rec.audio_s(), 0);  // kept
    }
  }
}

TEST(PacedE2eTest, DialectsWithoutIncrementalInputRefusePacing) {
  v1::Target t = OpenAiTarget("wav");
  t.set_url("http://127.0.0.1:1");
  auto url = common::ParseUrl(t.url());
  auto d = MakeDialect(t, *url, {});
  ASSERT_TRUE(d.ok());
  google::protobuf::RepeatedPtrField<std::string> texts;
  texts.Add("hello");
  auto r = PrepareTexts(**d, texts, Pacing());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("WebSocket"));
}

}  // namespace
}  // namespace ttsbench::agent::testing
