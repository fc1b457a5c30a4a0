#include "synth/paced_messages.h"

#include <gtest/gtest.h>

namespace ttsbench::synth {
namespace {

TEST(ParsePacedMessage, ElevenLabsTextFlushAndEndOfInput) {
  auto e = ParsePacedMessage(PacedProtocol::kElevenLabs,
                             R"({"text":" hi","try_trigger_generation":true,"flush":true})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->text, " hi");
  EXPECT_TRUE(e->flush);
  EXPECT_FALSE(e->end);
  e = ParsePacedMessage(PacedProtocol::kElevenLabs, R"({"text":""})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->end);
  e = ParsePacedMessage(PacedProtocol::kElevenLabs,
                        R"({"text":" ","voice_settings":{"speed":1.5}})");
  ASSERT_TRUE(e.ok());
  EXPECT_DOUBLE_EQ(e->speed, 1.5);
  EXPECT_FALSE(ParsePacedMessage(PacedProtocol::kElevenLabs, R"({"txt":"x"})").ok());
  EXPECT_FALSE(ParsePacedMessage(PacedProtocol::kElevenLabs, R"({"text":3})").ok());
  EXPECT_FALSE(ParsePacedMessage(PacedProtocol::kElevenLabs, "[1]").ok());
}

TEST(ParsePacedMessage, ElevenLabsMultiContexts) {
  auto e = ParsePacedMessage(PacedProtocol::kElevenLabsMulti, R"({"text":"a","context_id":"c1"})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->context_id, "c1");
  e = ParsePacedMessage(PacedProtocol::kElevenLabsMulti,
                        R"({"context_id":"c1","close_context":true})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->end);
  e = ParsePacedMessage(PacedProtocol::kElevenLabsMulti, R"({"close_socket":true})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->close_socket);
  EXPECT_FALSE(ParsePacedMessage(PacedProtocol::kElevenLabsMulti, R"({"context_id":"c"})").ok());
}

TEST(ParsePacedMessage, CartesiaContinueCancelAndFormat) {
  auto e = ParsePacedMessage(
      PacedProtocol::kCartesia,
      R"({"context_id":"c","transcript":"Hi ","continue":true,)"
      R"("output_format":{"container":"raw","encoding":"pcm_f32le","sample_rate":16000}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->text, "Hi ");
  EXPECT_FALSE(e->end);
  EXPECT_EQ(e->encoding, "pcm_f32le");
  EXPECT_EQ(e->sample_rate, 16000);
  e = ParsePacedMessage(PacedProtocol::kCartesia, R"({"context_id":"c","transcript":""})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->end);  // continue defaults to false
  e = ParsePacedMessage(PacedProtocol::kCartesia, R"({"context_id":"c","cancel":true})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->cancel);
  EXPECT_FALSE(ParsePacedMessage(PacedProtocol::kCartesia, R"({"transcript":"x"})").ok());
  EXPECT_FALSE(ParsePacedMessage(PacedProtocol::kCartesia,
                                 R"({"context_id":"c","transcript":"x","continue":1})")
                   .ok());
}

TEST(ParsePacedMessage, DeepgramMessageTypes) {
  auto e = ParsePacedMessage(PacedProtocol::kDeepgram, R"({"type":"Speak","text":"hi"})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->text, "hi");
  e = ParsePacedMessage(PacedProtocol::kDeepgram, R"({"type":"Flush"})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->flush && e->end);
  e = ParsePacedMessage(PacedProtocol::kDeepgram, R"({"type":"Clear"})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->cancel);
  e = ParsePacedMessage(PacedProtocol::kDeepgram, R"({"type":"Close"})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->close_socket);
  const auto bad = ParsePacedMessage(PacedProtocol::kDeepgram, R"({"type":"Shout"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
}

// vLLM-Omni's /v1/audio/speech/stream (issue 13): input.done flushes and ends the utterance; the
// socket stays open for the next one; session.close ends it.
TEST(ParsePacedMessage, VllmOmniMessageTypes) {
  auto e = ParsePacedMessage(PacedProtocol::kVllmOmni,
                             R"({"type":"session.config","voice":"vivian","response_format":)"
                             R"("pcm","stream_audio":true,"speed":1.5})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->text.empty());
  EXPECT_EQ(e->speed, 1.5);
  e = ParsePacedMessage(PacedProtocol::kVllmOmni, R"({"type":"input.text","text":"Hi "})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->text, "Hi ");
  EXPECT_FALSE(e->end);
  e = ParsePacedMessage(PacedProtocol::kVllmOmni, R"({"type":"input.done"})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->flush && e->end && !e->close_socket);
  e = ParsePacedMessage(PacedProtocol::kVllmOmni, R"({"type":"session.close"})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->close_socket);
  EXPECT_FALSE(ParsePacedMessage(PacedProtocol::kVllmOmni, R"({"type":"input.text"})").ok());
  EXPECT_FALSE(ParsePacedMessage(PacedProtocol::kVllmOmni,
                                 R"({"type":"session.config","response_format":"mp3"})")
                   .ok());
  const auto bad = ParsePacedMessage(PacedProtocol::kVllmOmni, R"({"type":"input.cancel"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
}

}  // namespace
}  // namespace ttsbench::synth
