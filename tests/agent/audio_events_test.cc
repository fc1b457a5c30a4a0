#include "agent/client/audio_events.h"

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

TEST(AudioEventsTest, AMessageOverTheBoundIsInvalidAudio) {
  AudioEventSpec spec = OpenAiSpec();
  spec.max_event_bytes = 64;
  const std::string small = R"({"type":"speech.audio.delta","audio":"AAAA"})";
  ASSERT_TRUE(ParseAudioEvent(small, spec).ok());
  const std::string big =
      R"({"type":"speech.audio.delta","audio":")" + std::string(64, 'A') + "\"}";
  const absl::Status st = ParseAudioEvent(big, spec).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_NE(st.message().find("limit of 64 bytes"), absl::string_view::npos) << st;
  EXPECT_EQ(AudioEventSpec().max_event_bytes, size_t{1} << 20);
}

TEST(AudioEventsTest, EscapesInsideStringsAreDecoded) {
  // \u0041 is 'A', \/ is '/', \" is a quote inside an unrelated field.
  auto ev = ParseAudioEvent(
      R"({"note":"say \"hi\"","type":"speech.audio.\u0064elta","audio":"\u0041A\/A"})",
      OpenAiSpec());
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type, "speech.audio.delta");
  std::string expected;
  ASSERT_TRUE(absl::Base64Unescape("AA/A", &expected));
  EXPECT_EQ(ev->audio, expected);
  EXPECT_TRUE(ParseAudioEvent(R"({"type":"speech.audio.d\u006Fne"})", OpenAiSpec())->done);
  // An escaped quote does not end the string early, so the audio after it is still found.
  auto quoted = ParseAudioEvent(R"({"x":"\"audio\":\"@@\"","audio":"AAAA"})", OpenAiSpec());
  ASSERT_TRUE(quoted.ok()) << quoted.status();
  EXPECT_EQ(quoted->audio.size(), 3u);
  // Invalid escapes and trailing garbage are not JSON.
  EXPECT_TRUE(absl::IsInvalidArgument(ParseAudioEvent(R"({"audio":"\q"})", OpenAiSpec()).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(ParseAudioEvent(R"({"audio":"AAAA"} x)", OpenAiSpec()).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(ParseAudioEvent(R"({"audio":"AAAA")", OpenAiSpec()).status()));
}

TEST(AudioEventsTest, UnknownFieldsAndLookalikesElsewhereAreIgnored) {
  auto ev = ParseAudioEvent(
      R"({"usage":{"audio":"@@","type":"error"},"items":[{"audio":42},{"type":"error"}],)"
      R"("a.udio":1,"n":-1.5e3,"t":true,"z":null,"type":"speech.audio.delta","audio":"AAAA"})",
      OpenAiSpec());
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type, "speech.audio.delta");
  EXPECT_EQ(ev->audio.size(), 3u);
  EXPECT_FALSE(ev->done);
  EXPECT_EQ(ev->sample_rate, 0);
}

TEST(AudioEventsTest, DeepDottedPathsRepeatedKeysAndReuse) {
  AudioEventSpec spec;
  spec.audio_fields = {"result.chunk.audio"};
  spec.final_field = "result.final";
  AudioEventParser parser(spec);
  ASSERT_TRUE(parser.Parse(R"({"result":{"chunk":{"audio":"AAAA"},"final":false}})").ok());
  EXPECT_EQ(parser.event().audio.size(), 3u);
  EXPECT_FALSE(parser.event().done);
  // A key with a dot is not a path; the message after keeps nothing of the one before.
  ASSERT_TRUE(parser.Parse(R"({"result.chunk.audio":"AAAA","result":{"final":1}})").ok());
  EXPECT_TRUE(parser.event().audio.empty());
  EXPECT_TRUE(parser.event().done);
  // A repeated key: the last one counts, with what is below it.
  ASSERT_TRUE(parser.Parse(R"({"result":{"chunk":{"audio":"AAAA"}},"result":{"final":0}})").ok());
  EXPECT_TRUE(parser.event().audio.empty());
  EXPECT_FALSE(parser.event().done);
  // A path that runs into a list or a string finds nothing.
  ASSERT_TRUE(parser.Parse(R"({"result":[{"chunk":{"audio":"AAAA"}}]})").ok());
  EXPECT_TRUE(parser.event().audio.empty());
  EXPECT_TRUE(absl::IsInvalidArgument(parser.Parse(R"({"result":{"chunk":{"audio":[]}}})")));
  ASSERT_TRUE(parser.Parse(R"({"result":{"chunk":{"audio":"AAAAAAAA"}}})").ok());
  EXPECT_EQ(parser.event().audio.size(), 6u);
}

}  // namespace
}  // namespace ttsbench::agent
