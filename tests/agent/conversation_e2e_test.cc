// Conversations (issue 13), end to end on loopback: virtual users keep one WebSocket for N
// turns against the synthetic server, with paced text, barge-in and a server that hangs up; and
// vLLM-Omni's streaming-text speech WebSocket, honest against buffering.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/client/conversation.h"
#include "agent/client/text_pacing.h"
#include "common/metrics.h"
#include "tests/agent/paced_harness.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

v1::Target Deepgram() {
  v1::Target t;
  t.set_api("deepgram");
  t.set_format("pcm");
  t.set_streaming(true);
  return t;
}

v1::Target Cartesia() {
  v1::Target t;
  t.set_api("cartesia");
  t.set_voice("v1");
  t.set_format("pcm");
  t.set_streaming(true);
  return t;
}

v1::Target ElevenLabsMulti() {
  v1::Target t;
  t.set_api("elevenlabs");
  t.set_voice("v1");
  t.set_format("pcm");
  t.set_sample_rate(24000);
  t.set_stream_format("ws");
  t.set_ws_endpoint("multi-stream-input");
  t.set_streaming(true);
  return t;
}

v1::Target VllmOmni() {
  v1::Target t;
  t.set_api("vllm-omni");
  t.set_voice("vivian");
  t.set_format("pcm");
  t.set_streaming(true);
  return t;
}

v1::Conversation Turns(int turns, double think_ms) {
  v1::Conversation c;
  c.set_turns(turns);
  c.set_think_time_ms(think_ms);
  c.set_think_jitter(0.2);
  return c;
}

// `users` virtual users, each making `conversations` conversations of `conv` against `server`.
RunResult Converse(const LoopbackSynth& server, v1::Target target, const v1::TextPacing& pacing,
                   const v1::Conversation& conv, int users = 1, int conversations = 1,
                   double timeout_s = 10) {
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
  shard.cfg.conversation = conv;
  shard.cfg.concurrency = users;
  shard.cfg.iterations = users * conversations * conv.turns();
  shard.cfg.timeout_s = timeout_s;
  shard.cfg.time_limit_s = 60;
  shard.cfg.seed = 11;
  return RunShard(std::move(shard));
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// The turns of each conversation, by turn index.
std::map<uint64_t, std::map<int, v1::RequestRecord>> ByConversation(const RunResult& r) {
  std::map<uint64_t, std::map<int, v1::RequestRecord>> out;
  for (const v1::RequestRecord& rec : r.records) out[rec.conversation_id()][rec.turn()] = rec;
  return out;
}

TEST(ConversationTest, ThinkTimesAreSeededAndJittered) {
  const v1::Conversation c = Turns(4, 500);
  EXPECT_EQ(ThinkTimeNs(c, 1, 7, 1), ThinkTimeNs(c, 1, 7, 1));
  std::set<int64_t> seen;
  for (int turn = 1; turn < 40; ++turn) {
    const int64_t t = ThinkTimeNs(c, 1, 7, turn);
    EXPECT_GE(t, 400'000'000);
    EXPECT_LE(t, 600'000'000);
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 30u);
  EXPECT_NE(ConversationId(0, 1, 0), ConversationId(0, 1, 1));
  EXPECT_NE(ConversationId(0, 1, 0), ConversationId(1, 1, 0));
  EXPECT_NE(ConversationId(0, 0, 0), 0u);
}

TEST(ConversationTest, BadKeysAreNamed) {
  v1::Conversation c = Turns(3, 100);
  c.set_think_jitter(1.5);
  EXPECT_THAT(std::string(ValidateConversation(c).message()),
              ::testing::HasSubstr("conversation.think_jitter must be in [0, 1)"));
  c = Turns(-1, 0);
  EXPECT_THAT(std::string(ValidateConversation(c).message()),
              ::testing::HasSubstr("conversation.turns"));
  c = Turns(1, 300);
  EXPECT_THAT(std::string(ValidateConversation(c).message()),
              ::testing::HasSubstr("conversation.turns must be >= 2 with a think time"));
}

// N turns on one connection: one set-up per conversation, outside every turn's TTFA; think time
// between the turns; honest vs buffering first-token-to-speech per turn; the level's stats.
TEST(ConversationTest, OneSetUpPerConversationAndEveryTurnMeasured) {
  LoopbackSynth honest(Paced("honest"));
  LoopbackSynth buffering(Paced("buffering"));
  constexpr int kTurns = 4;
  const v1::Conversation conv = Turns(kTurns, 80);
  for (const v1::Target& target : {Deepgram(), Cartesia(), ElevenLabsMulti(), VllmOmni()}) {
    SCOPED_TRACE(target.api() + " " + target.ws_endpoint());
    const RunResult h = Converse(honest, target, Pacing(), conv, 2, 1);
    const RunResult b = Converse(buffering, target, Pacing(), conv, 1, 1);
    ASSERT_EQ(h.records.size(), 2u * kTurns);
    ASSERT_EQ(b.records.size(), 1u * kTurns);
    for (const RunResult* run : {&h, &b}) {
      const auto convs = ByConversation(*run);
      for (const auto& [id, turns] : convs) {
        ASSERT_NE(id, 0u);
        ASSERT_EQ(turns.size(), static_cast<size_t>(kTurns));
        int setups = 0;
        for (const auto& [turn, rec] : turns) {
          ASSERT_EQ(rec.error(), v1::ERROR_NONE) << rec.error_detail();
          EXPECT_FALSE(rec.reconnect());
          if (rec.conversation_setup_ns() > 0) {
            ++setups;
            EXPECT_EQ(turn, 0);
            EXPECT_EQ(rec.conversation_setup_ns(), rec.connect_ns());
          } else {
            EXPECT_EQ(rec.connect_ns(), 0);  // the same connection
          }
          EXPECT_GT(rec.first_text_ns(), rec.start_ns());
          if (turn > 0) {
            // Think time (80 ms +-20 %) after the previous turn's end.
            const double gap = Ms(rec.start_ns() - turns.at(turn - 1).end_ns());
            EXPECT_GE(gap, 80 * 0.8 - 1);
            EXPECT_LT(gap, 80 * 1.2 + 150);
          }
        }
        EXPECT_EQ(setups, 1) << "N turns, one set-up";
      }
    }
    // Per turn, the buffering server speaks only after the input ended.
    for (const v1::RequestRecord& br : b.records) {
      const v1::RequestRecord* hr = nullptr;
      for (const v1::RequestRecord& r : h.records) {
        if (r.turn() == br.turn()) hr = &r;
      }
      ASSERT_NE(hr, nullptr);
      const double input_ms = Ms(hr->end_of_input_ns() - hr->first_text_ns());
      const double ftts_h = Ms(hr->first_audio_ns() - hr->first_text_ns());
      const double ftts_b = Ms(br.first_audio_ns() - br.first_text_ns());
      EXPECT_LT(ftts_h, 0.6 * input_ms) << "turn " << br.turn();
      EXPECT_GE(ftts_b, Ms(br.end_of_input_ns() - br.first_text_ns())) << "turn " << br.turn();
      EXPECT_GT(ftts_b - ftts_h, 0.4 * input_ms) << "turn " << br.turn();
    }
    const v1::LevelStats st = common::ComputeLevelStats(2, h.records, {});
    EXPECT_EQ(st.conversations(), 2u);
    EXPECT_EQ(st.conversation_turns(), 2u * kTurns);
    EXPECT_EQ(st.conversation_setup_ms().count(), 2u);
    EXPECT_GT(st.conversation_setup_ms().p50(), 0);
    EXPECT_EQ(st.reconnects(), 0u);
    EXPECT_EQ(st.conversations_failed(), 0u);
  }
}

// Barge-in inside a conversation: Deepgram's Clear is acknowledged (Cleared), so the next turn
// goes on with the same connection; vLLM-Omni has no cancel, its barge-in is a close frame, and
// the conversation reconnects for the next turn, counted.
TEST(ConversationTest, BargeInEndsTheTurnAndTheConversationGoesOn) {
  synth::SynthOptions o = Paced("honest");
  o.stop_delay_ms = 40;
  o.model.per_char_ms = 15;
  o.model.chunk_ms = 20;
  LoopbackSynth server(o);
  v1::TextPacing p = Pacing(200);
  p.set_interrupt_fraction(1);
  p.set_interrupt_after_ms(30);
  p.set_silence_limit_ms(300);
  constexpr int kTurns = 3;
  {
    SCOPED_TRACE("deepgram");
    const RunResult r = Converse(server, Deepgram(), p, Turns(kTurns, 30));
    ASSERT_EQ(r.records.size(), static_cast<size_t>(kTurns));
    int setups = 0;
    for (const v1::RequestRecord& rec : r.records) {
      ASSERT_EQ(rec.error(), v1::ERROR_NONE) << rec.error_detail();
      ASSERT_GT(rec.interrupt_ns(), 0);
      const double silence = Ms(rec.last_audio_ns() - rec.interrupt_ns());
      EXPECT_GE(silence, 40 - 15);
      EXPECT_LE(silence, 40 + 25);
      setups += rec.conversation_setup_ns() > 0 ? 1 : 0;
      EXPECT_FALSE(rec.reconnect());
    }
    EXPECT_EQ(setups, 1) << "Cleared leaves the socket clean: no reconnect";
  }
  {
    SCOPED_TRACE("vllm-omni");
    const RunResult r = Converse(server, VllmOmni(), p, Turns(kTurns, 30));
    ASSERT_EQ(r.records.size(), static_cast<size_t>(kTurns));
    for (const v1::RequestRecord& rec : r.records) {
      ASSERT_EQ(rec.error(), v1::ERROR_NONE) << rec.error_detail();
      ASSERT_GT(rec.interrupt_ns(), 0);
      EXPECT_LE(Ms(rec.last_audio_ns() - rec.interrupt_ns()), 15);  // a close stops it at once
      // Every turn waited for a set-up: the first, then a reconnect after each close frame.
      EXPECT_GT(rec.conversation_setup_ns(), 0);
      EXPECT_EQ(rec.reconnect(), rec.turn() > 0);
    }
    const v1::LevelStats st = common::ComputeLevelStats(1, r.records, {});
    EXPECT_EQ(st.conversations(), 1u);
    EXPECT_EQ(st.reconnects(), static_cast<uint32_t>(kTurns - 1));
    EXPECT_EQ(st.conversation_setup_ms().count(), static_cast<uint32_t>(kTurns));
  }
}

// A server that closes the socket mid-turn: each turn is closed_mid_turn with what arrived kept,
// the conversation reconnects for the next, and the level counts it as failed.
TEST(ConversationTest, ServerClosingMidConversationIsClassifiedAndRecordsKept) {
  synth::SynthOptions o = Paced("honest");
  o.misbehave = "close-mid-turn";
  o.model.per_char_ms = 15;
  o.model.chunk_ms = 20;
  LoopbackSynth server(o);
  constexpr int kTurns = 3;
  for (const v1::Target& target : {Cartesia(), VllmOmni()}) {
    SCOPED_TRACE(target.api());
    const RunResult r = Converse(server, target, Pacing(200), Turns(kTurns, 20), 1, 1, 5);
    ASSERT_EQ(r.records.size(), static_cast<size_t>(kTurns));
    for (const v1::RequestRecord& rec : r.records) {
      EXPECT_EQ(rec.error(), v1::ERROR_CLOSED_MID_TURN) << rec.error_detail();
      EXPECT_FALSE(rec.error_detail().empty());
      EXPECT_GT(rec.audio_s(), 0);  // kept
      EXPECT_NE(rec.conversation_id(), 0u);
      EXPECT_EQ(rec.reconnect(), rec.turn() > 0);
    }
    const v1::LevelStats st = common::ComputeLevelStats(1, r.records, {});
    EXPECT_EQ(st.conversations(), 1u);
    EXPECT_EQ(st.conversation_turns(), static_cast<uint32_t>(kTurns));
    EXPECT_EQ(st.conversations_failed(), 1u);
    EXPECT_EQ(st.reconnects(), static_cast<uint32_t>(kTurns - 1));
    EXPECT_EQ(st.errors().at("closed_mid_turn"), static_cast<uint32_t>(kTurns));
  }
}

// A server that hangs up after each turn (idle, between turns): the next turn finds the socket
// closed (or its close frame waiting) before writing and opens a new one inside its deadline, a
// reconnect, counted. A close frame the WebSocket layer had already buffered with the last
// answer cannot be seen before writing: that turn is closed_mid_turn, its record kept, and the
// next one reconnects.
TEST(ConversationTest, ServerHangingUpBetweenTurnsIsAReconnect) {
  synth::SynthOptions o = Paced("honest");
  o.misbehave = "close-after-turn";
  LoopbackSynth server(o);
  constexpr int kTurns = 3;
  for (const v1::Target& target : {Deepgram(), VllmOmni()}) {
    SCOPED_TRACE(target.api());
    const RunResult r = Converse(server, target, Pacing(200), Turns(kTurns, 60), 1, 1, 5);
    ASSERT_EQ(r.records.size(), static_cast<size_t>(kTurns));
    int failed = 0;
    for (const v1::RequestRecord& rec : r.records) {
      if (rec.error() == v1::ERROR_CLOSED_MID_TURN) {
        ++failed;
        continue;
      }
      ASSERT_EQ(rec.error(), v1::ERROR_NONE) << rec.error_detail();
      EXPECT_GT(rec.conversation_setup_ns(), 0) << "turn " << rec.turn();
      EXPECT_EQ(rec.reconnect(), rec.turn() > 0);
    }
    EXPECT_LE(failed, 1) << "the close frame was seen before writing at most turns";
    const v1::LevelStats st = common::ComputeLevelStats(1, r.records, {});
    EXPECT_EQ(st.reconnects() + static_cast<uint32_t>(failed), static_cast<uint32_t>(kTurns - 1));
  }
}

// vLLM-Omni's WebSocket without pacing: the whole text in one input.text, then input.done; the
// socket carries request after request.
TEST(ConversationTest, VllmOmniUnpacedRequestsShareOneSocket) {
  LoopbackSynth server(Paced("honest"));
  v1::Target t = VllmOmni();
  t.set_url(server.url());
  RunSpec spec;
  spec.target = t;
  spec.iterations = 4;
  const RunResult r = RunLoad(spec);
  ASSERT_EQ(r.records.size(), 4u);
  int connects = 0;
  for (const v1::RequestRecord& rec : r.records) {
    ASSERT_EQ(rec.error(), v1::ERROR_NONE) << rec.error_detail();
    EXPECT_GT(rec.audio_s(), 0);
    EXPECT_EQ(rec.sample_rate(), 24000);
    connects += rec.connect_ns() > 0 ? 1 : 0;
  }
  EXPECT_EQ(connects, 0);  // opened once before the measured phase, kept
}

}  // namespace
}  // namespace ttsbench::agent::testing
