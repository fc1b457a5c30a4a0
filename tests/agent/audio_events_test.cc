#include "agent/audio_events.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace ttsbench::agent {
namespace {

AudioEventSpec OpenAiSpec() {
  AudioEventSpec s;
  s.done_types = {"speech.audio.done"};
  s.error_types = {"error"};
  return s;
}

TEST(AudioEventsTest, DecodesBase64AudioAndTheEndMarker) {
  const std::string b64 = absl::Base64Escape(std::string("\x01\x02\x03\x04", 4));
  auto ev =
      ParseAudioEvent(R"({"type":"speech.audio.delta","audio":")" + b64 + "\"}", OpenAiSpec());
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type, "speech.audio.delta");
  EXPECT_EQ(ev->audio, std::string("\x01\x02\x03\x04", 4));
  EXPECT_FALSE(ev->done);
  auto done = ParseAudioEvent(R"({"type":"speech.audio.done","usage":{}})", OpenAiSpec());
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->done);
  EXPECT_TRUE(done->audio.empty());
  auto sentinel = ParseAudioEvent(" [DONE] ", OpenAiSpec());
  ASSERT_TRUE(sentinel.ok());
  EXPECT_TRUE(sentinel->done);
}

TEST(AudioEventsTest, BrokenBase64OrNonJsonIsInvalidAudio) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseAudioEvent(R"({"audio":"@@not base64@@"})", OpenAiSpec()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseAudioEvent(R"({"audio":42})", OpenAiSpec()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseAudioEvent("not json", OpenAiSpec()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseAudioEvent("[1,2]", OpenAiSpec()).status()));
}

TEST(AudioEventsTest, ErrorKindsAndFieldsAreFailedPrecondition) {
  EXPECT_TRUE(absl::IsFailedPrecondition(
      ParseAudioEvent(R"({"type":"error","msg":"boom"})", OpenAiSpec()).status()));
  AudioEventSpec eleven;
  eleven.final_field = "isFinal";
  eleven.error_field = "error";
  EXPECT_TRUE(absl::IsFailedPrecondition(
      ParseAudioEvent(R"({"message":"quota","error":"quota_exceeded"})", eleven).status()));
  auto ok = ParseAudioEvent(R"({"audio":null,"isFinal":true,"error":null})", eleven);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->done);
  auto mid = ParseAudioEvent(R"({"audio":"AAAA","isFinal":null})", eleven);
  ASSERT_TRUE(mid.ok());
  EXPECT_FALSE(mid->done);
  EXPECT_EQ(mid->audio.size(), 3u);
}

TEST(AudioEventsTest, MetadataGreetingsAndNestedPaths) {
  AudioEventSpec torch;
  torch.done_types = {"tts_done"};
  torch.ignore_types = {"ready"};
  auto meta =
      ParseAudioEvent(R"({"type":"tts_meta","sample_rate":22050,"encoding":"pcm_f32le"})", torch);
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->sample_rate, 22050);
  EXPECT_EQ(meta->encoding, "pcm_f32le");
  EXPECT_FALSE(meta->ignored);
  EXPECT_TRUE(ParseAudioEvent(R"({"type":"ready"})", torch)->ignored);
  EXPECT_TRUE(ParseAudioEvent(R"({"type":"tts_done","duration_ms":5})", torch)->done);

  AudioEventSpec nested;
  nested.audio_fields = {"data.audio", "audio"};
  nested.type_field = "kind";
  nested.done_types = {"end"};
  auto ev = ParseAudioEvent(R"({"kind":"chunk","data":{"audio":"AAAA"}})", nested);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->audio.size(), 3u);
  EXPECT_TRUE(ParseAudioEvent(R"({"kind":"end"})", nested)->done);
}

}  // namespace
}  // namespace ttsbench::agent
