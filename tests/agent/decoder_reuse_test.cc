// A connection keeps its decoder from answer to answer (ResponseDecoder::Reset): a reset decoder
// must read every answer exactly as a new one from the dialect would, whatever the answer before
// it was (whole, failed half-way, cut short, or with a metadata message that changed the rate).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent/client/dialect.h"
#include "gtest/gtest.h"

namespace ttsbench::agent {
namespace {

common::Url Local() { return *common::ParseUrl("http://127.0.0.1:8000"); }

// What one answer gave: every piece's audio, the end, and the totals (or the first error).
struct Reading {
  std::vector<size_t> audio_bytes;
  std::string error;
  double seconds = 0;
  int sample_rate = 0;
  bool operator==(const Reading&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Reading& r) {
  os << "{bytes:";
  for (size_t b : r.audio_bytes) os << b << ",";
  return os << " error:'" << r.error << "' s:" << r.seconds << " rate:" << r.sample_rate << "}";
}

Reading ReadBody(ResponseDecoder& d, const std::string& body, size_t piece) {
  Reading r;
  for (size_t at = 0; at < body.size(); at += piece) {
    auto feed = d.OnBody(absl::string_view(body).substr(at, piece));
    if (!feed.ok()) {
      r.error = std::string(feed.status().message());
      return r;
    }
    r.audio_bytes.push_back(feed->audio_bytes);
  }
  auto tail = d.Finish();
  if (!tail.ok()) {
    r.error = std::string(tail.status().message());
  } else {
    r.audio_bytes.push_back(tail->audio_bytes);
  }
  r.seconds = d.seconds();
  r.sample_rate = d.sample_rate();
  return r;
}

Reading ReadMessages(ResponseDecoder& d, const std::vector<std::pair<std::string, bool>>& msgs) {
  Reading r;
  for (const auto& [payload, binary] : msgs) {
    auto m = d.OnMessage(payload, binary);
    if (!m.ok()) {
      r.error = std::string(m.status().message());
      return r;
    }
    r.audio_bytes.push_back(m->feed.audio_bytes);
  }
  auto tail = d.Finish();
  if (!tail.ok()) r.error = std::string(tail.status().message());
  r.seconds = d.seconds();
  r.sample_rate = d.sample_rate();
  return r;
}

std::string Event(absl::string_view type, absl::string_view audio) {
  return absl::StrCat("event: ", type, "\ndata: {\"type\":\"", type, "\",\"audio\":\"",
                      absl::Base64Escape(audio), "\"}\n\n");
}

std::string Wav(uint32_t data_bytes) {
  std::string w = "RIFF";
  auto u32 = [&w](uint32_t v) {
    for (int i = 0; i < 4; ++i) w.push_back(static_cast<char>(v >> (8 * i)));
  };
  auto u16 = [&w](uint16_t v) {
    for (int i = 0; i < 2; ++i) w.push_back(static_cast<char>(v >> (8 * i)));
  };
  u32(36 + data_bytes);
  w += "WAVEfmt ";
  u32(16);
  u16(1);
  u16(1);
  u32(16000);
  u32(32000);
  u16(2);
  u16(16);
  w += "data";
  u32(data_bytes);
  w.append(data_bytes, '\x02');
  return w;
}

// Reads `bodies` in order with one decoder reset between answers, and each with a new decoder;
// the readings must agree.
void ExpectResetReadsAsNew(const Dialect& dialect, absl::string_view content_type,
                           const std::vector<std::string>& bodies, size_t piece) {
  auto kept = dialect.NewDecoder(content_type);
  ASSERT_TRUE(kept.ok());
  for (size_t i = 0; i < bodies.size(); ++i) {
    if (i > 0) {
      ASSERT_TRUE((*kept)->Reset());
    }
    auto fresh = dialect.NewDecoder(content_type);
    ASSERT_TRUE(fresh.ok());
    const Reading want = ReadBody(**fresh, bodies[i], piece);
    EXPECT_EQ(ReadBody(**kept, bodies[i], piece), want) << "answer " << i;
  }
}

TEST(DecoderReuseTest, OpenAiSseAfterWholeBadAndTruncatedAnswers) {
  v1::Target t;
  t.set_api("openai");
  t.set_format("pcm");
  t.set_sample_rate(24000);
  t.set_stream_format("sse");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  const std::string pcm(4800, '\x01');
  const std::string whole = Event("speech.audio.delta", pcm) + Event("speech.audio.delta", pcm) +
                            "event: speech.audio.done\ndata: {\"type\":\"speech.audio.done\"}\n\n";
  const std::string bad = Event("speech.audio.delta", pcm) +
                          "data: {\"type\":\"speech.audio.delta\",\"audio\":\"@@@\"}\n\n" + whole;
  const std::string cut = Event("speech.audio.delta", pcm) + "data: {\"type\":\"speech.au";
  const std::string error = "data: {\"type\":\"error\",\"error\":{\"message\":\"boom\"}}\n\n";
  const std::string huge = "data: " + std::string(2 << 20, 'x');
  for (size_t piece : {7, 100, 16384}) {
    ExpectResetReadsAsNew(**d, "text/event-stream",
                          {whole, bad, whole, cut, whole, error, whole, huge, whole}, piece);
  }
}

TEST(DecoderReuseTest, TorchInferenceJsonAfterEveryKindOfAnswer) {
  v1::Target t;
  t.set_api("torch-inference");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  auto json = [](const std::string& wav) {
    return absl::StrCat("{\"success\":true,\"audio_base64\":\"", absl::Base64Escape(wav), "\"}");
  };
  const std::string big = json(Wav(64000));
  const std::string small = json(Wav(3200));
  const std::string escaped = "{\"audio_base64\":\"" + absl::Base64Escape(Wav(320)) + "\\/\"}";
  const std::string no_audio = "{\"success\":false}";
  const std::string broken = "{\"audio_base64\":\"UklG";
  for (size_t piece : {13, 4096, 1 << 20}) {
    ExpectResetReadsAsNew(**d, "application/json",
                          {big, small, no_audio, big, broken, small, escaped, big}, piece);
  }
}

TEST(DecoderReuseTest, RawWavAndPcmStartAFreshMeter) {
  v1::Target t;
  t.set_api("openai");
  t.set_format("wav");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  const std::string wav = Wav(32000);
  ExpectResetReadsAsNew(**d, "audio/wav", {wav, wav.substr(0, 30), wav, "not audio", wav}, 1000);
  t.set_format("pcm");
  d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  ExpectResetReadsAsNew(**d, "audio/pcm;rate=16000", {std::string(32001, 'a'), "xyz"}, 4096);
}

TEST(DecoderReuseTest, WebSocketMetadataDoesNotLeakIntoTheNextAnswer) {
  v1::Target t;
  t.set_api("torch-inference");
  t.set_stream_format("ws");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  const std::vector<std::pair<std::string, bool>> with_meta = {
      {"{\"type\":\"ready\"}", false},
      {"{\"type\":\"meta\",\"sample_rate\":16000,\"encoding\":\"pcm_f32le\"}", false},
      {std::string(64000, '\x01'), true},
      {"{\"type\":\"tts_done\"}", false}};
  const std::vector<std::pair<std::string, bool>> without_meta = {
      {std::string(48000, '\x01'), true}, {"{\"type\":\"tts_done\"}", false}};
  auto kept = (*d)->NewDecoder("");
  ASSERT_TRUE(kept.ok());
  auto fresh1 = (*d)->NewDecoder("");
  const Reading first = ReadMessages(**kept, with_meta);
  EXPECT_EQ(first, ReadMessages(**fresh1, with_meta));
  EXPECT_EQ(first.sample_rate, 16000);
  ASSERT_TRUE((*kept)->Reset());
  auto fresh2 = (*d)->NewDecoder("");
  const Reading second = ReadMessages(**kept, without_meta);
  EXPECT_EQ(second, ReadMessages(**fresh2, without_meta));
  EXPECT_EQ(second.sample_rate, 24000);  // the dialect's default, not the last answer's 16 kHz
  EXPECT_DOUBLE_EQ(second.seconds, 1.0);
}

}  // namespace
}  // namespace ttsbench::agent
