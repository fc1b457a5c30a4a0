// Events and JSON answers read as they arrive (issue 12, target 6): pieces split anywhere give
// what the whole gives, and an event or answer is never held whole.
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "agent/client/audio_events.h"
#include "agent/client/dialect.h"
#include "agent/client/sse.h"
#include "gtest/gtest.h"
#include "tests/agent/fake_server.h"

namespace ttsbench::agent {
namespace {

// Cut points for `size` bytes: a few random ones, small pieces near the start.
std::vector<size_t> Cuts(size_t size, std::mt19937& rng) {
  std::vector<size_t> cuts;
  size_t at = 0;
  while (at < size) {
    at += 1 + rng() % (at < 64 ? 3 : 9000);
    if (at < size) cuts.push_back(at);
  }
  return cuts;
}

template <class F>
void InPieces(absl::string_view s, const std::vector<size_t>& cuts, F f) {
  size_t at = 0;
  for (size_t cut : cuts) {
    f(s.substr(at, cut - at));
    at = cut;
  }
  f(s.substr(at));
}

TEST(Base64StreamTest, PiecesSplitAnywhereDecodeAsTheWhole) {
  std::mt19937 rng(7);
  const std::vector<std::string> odd = {
      "QQ",     "QUI",  "QQ==",   "QUI=",  "QQ=", "Q",  "QUJD=",    "QU JD\nRA==", "Q===",
      "QUJD\t", "QU*D", "QQ==QQ", "QQ= =", "",    "  ", "QUJDRA..", "QUJDRA.="};
  for (int round = 0; round < 300; ++round) {
    std::string src;
    if (round < static_cast<int>(odd.size())) {
      src = odd[static_cast<size_t>(round)];
    } else {
      std::string raw(rng() % 2000, '\0');
      for (char& c : raw) c = static_cast<char>(rng());
      src = absl::Base64Escape(raw);
      if (round % 3 == 0) src.insert(rng() % (src.size() + 1), "\r\n");
      if (round % 5 == 0) src.insert(rng() % (src.size() + 1), "!");
      if (round % 7 == 0) src.resize(src.size() - rng() % 3);
    }
    std::string whole;
    const bool whole_ok = Base64Decode(src, &whole);
    Base64Stream stream;
    stream.Reset();
    std::string got;
    bool ok = true;
    InPieces(src, Cuts(src.size(), rng), [&](absl::string_view piece) {
      absl::string_view out;
      if (ok && !stream.Write(piece, &out)) ok = false;
      if (ok) got.append(out.data(), out.size());
    });
    absl::string_view out;
    if (ok && !stream.Finish(&out)) ok = false;
    if (ok) got.append(out.data(), out.size());
    ASSERT_EQ(ok, whole_ok) << src;
    if (ok) {
      EXPECT_EQ(got, whole) << src;
    }
  }
}

// One message written in pieces: its audio, as the sink got it, and its status.
struct Written {
  absl::Status status;
  std::string audio;
  AudioEvent event;
};
Written WriteInPieces(AudioEventParser& p, absl::string_view json,
                      const std::vector<size_t>& cuts) {
  Written w;
  auto sink = [&w](absl::string_view a) {
    w.audio.append(a.data(), a.size());
    return absl::OkStatus();
  };
  p.Begin();
  InPieces(json, cuts, [&](absl::string_view piece) {
    if (w.status.ok()) w.status = p.Write(piece, sink);
  });
  if (w.status.ok()) w.status = p.End(sink);
  w.event = p.event();
  return w;
}

TEST(AudioEventStreamTest, ALargeMessageInPiecesReadsAsTheWhole) {
  std::mt19937 rng(11);
  AudioEventSpec spec;
  spec.done_types = {"speech.audio.done"};
  spec.error_types = {"error"};
  AudioEventParser streamed(spec);
  for (int round = 0; round < 40; ++round) {
    std::string raw(rng() % 200000, '\0');
    for (char& c : raw) c = static_cast<char>(rng());
    std::string b64 = absl::Base64Escape(raw);
    if (round % 4 == 1) b64.insert(b64.size() / 2, "\\n");  // an escape inside the audio
    const std::string json = "  {\"type\":\"speech.audio.delta\",\"x\":[1,{\"audio\":\"no\"}]," +
                             std::string(round % 2 ? "\"audio\":null," : "") + "\"audio\":\"" +
                             b64 + "\",\"after\":{\"k\":\"" + std::string(round * 100, 'v') +
                             "\"}}\n";
    const Written w = WriteInPieces(streamed, json, Cuts(json.size(), rng));
    ASSERT_TRUE(w.status.ok()) << w.status;
    EXPECT_EQ(w.audio, raw);
    EXPECT_EQ(w.event.type, "speech.audio.delta");
    EXPECT_FALSE(w.event.done);
    auto whole = ParseAudioEvent(json, spec);
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(whole->audio, raw);
  }
  // Small ones are held and read whole: the sentinel, an end event, an error.
  EXPECT_TRUE(WriteInPieces(streamed, " [DONE] ", {2, 4}).event.done);
  EXPECT_TRUE(WriteInPieces(streamed, R"({"type":"speech.audio.done"})", {3}).event.done);
  EXPECT_TRUE(
      absl::IsFailedPrecondition(WriteInPieces(streamed, R"({"type":"error"})", {}).status));
}

TEST(AudioEventStreamTest, ALargeBadMessageFailsAndTheCapCountsBytes) {
  AudioEventSpec spec;
  spec.error_types = {"error"};
  spec.max_event_bytes = 100000;
  AudioEventParser p(spec);
  const std::string pad(50000, 'A');
  // Not base64, not JSON, not an object, an error report, trailing bytes.
  EXPECT_TRUE(
      absl::IsInvalidArgument(WriteInPieces(p, "{\"audio\":\"" + pad + "*\"}", {30000}).status));
  EXPECT_TRUE(absl::IsInvalidArgument(WriteInPieces(p, "{\"audio\":\"" + pad, {}).status));
  EXPECT_TRUE(absl::IsInvalidArgument(WriteInPieces(p, "[\"" + pad + "\"]", {}).status));
  const Written err = WriteInPieces(p, "{\"type\":\"error\",\"pad\":\"" + pad + "\"}", {});
  EXPECT_TRUE(absl::IsFailedPrecondition(err.status)) << err.status;
  EXPECT_NE(err.status.message().find("\"type\":\"error\""), absl::string_view::npos);
  EXPECT_TRUE(
      absl::IsInvalidArgument(WriteInPieces(p, "{\"audio\":\"" + pad + "\"} x", {50005}).status));
  EXPECT_TRUE(WriteInPieces(p, "{\"audio\":\"" + pad + "\"}  \n", {50012}).status.ok());
  // Past the cap: refused at once, whatever follows.
  const Written big = WriteInPieces(p, "{\"audio\":\"" + pad + pad + "\"}", {60000});
  EXPECT_TRUE(absl::IsInvalidArgument(big.status)) << big.status;
  EXPECT_NE(big.status.message().find("limit"), absl::string_view::npos);
  EXPECT_LT(big.audio.size(), 3 * pad.size() / 2);  // part of its audio came through
}

// Data as the SseHandler gets it.
class Recorder final : public SseHandler {
 public:
  absl::Status Data(absl::string_view part) override {
    data.append(part.data(), part.size());
    ++parts;
    return absl::OkStatus();
  }
  absl::Status Dispatch(absl::string_view event) override {
    events.push_back(std::string(event) + "|" + data);
    data.clear();
    return absl::OkStatus();
  }
  std::string data;
  int parts = 0;
  std::vector<std::string> events;
};

TEST(SseStreamTest, DataIsHandedOnBeforeItsLineEnds) {
  SseParser p(1 << 20);
  Recorder r;
  ASSERT_TRUE(p.Feed("event: speech\ndata: {\"audio\":\"AAAA", r).ok());
  EXPECT_EQ(r.data, "{\"audio\":\"AAAA");  // not held until the line ends
  ASSERT_TRUE(p.Feed("BBBB\"}\r", r).ok());
  ASSERT_TRUE(p.Feed("\ndata:", r).ok());
  ASSERT_TRUE(p.Feed(" x\n\n: comment\n", r).ok());
  ASSERT_TRUE(p.Finish(r).ok());
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0], "speech|{\"audio\":\"AAAABBBB\"}\nx");
}

TEST(SseStreamTest, AnEndlessLineIsRefusedAtTheBoundWithoutBeingHeld) {
  SseParser p(1 << 20);
  Recorder r;
  ASSERT_TRUE(p.Feed("data: ", r).ok());
  const std::string chunk(64 << 10, 'A');
  absl::Status st;
  int n = 0;
  for (; n < 100 && st.ok(); ++n) st = p.Feed(chunk, r);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_EQ(n, 16);  // 16 x 64 KiB + "data: " is over 1 MiB
  EXPECT_TRUE(r.events.empty());
  // An endless comment too, dropped as it comes.
  SseParser q(1 << 20);
  Recorder none;
  ASSERT_TRUE(q.Feed(":", none).ok());
  st = absl::OkStatus();
  for (n = 0; n < 100 && st.ok(); ++n) st = q.Feed(chunk, none);
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_EQ(none.parts, 0);
}

v1::Target OpenAiSse() {
  v1::Target t;
  t.set_api("openai");
  t.set_format("pcm");
  t.set_streaming(true);
  t.set_stream_format("sse");
  return t;
}

// An answer fed to a decoder in pieces: the audio of each piece, and the end.
struct Decoded {
  absl::Status status;
  std::vector<double> piece_s;
  double finish_s = 0;
  double seconds = 0;
};
Decoded Decode(const v1::Target& t, absl::string_view content_type, absl::string_view body,
               const std::vector<size_t>& cuts) {
  Decoded d;
  auto dialect = MakeDialect(t, *common::ParseUrl("http://127.0.0.1:8000"), {});
  EXPECT_TRUE(dialect.ok());
  auto dec = (*dialect)->NewDecoder(content_type);
  EXPECT_TRUE(dec.ok());
  InPieces(body, cuts, [&](absl::string_view piece) {
    if (!d.status.ok()) return;
    auto feed = (*dec)->OnBody(piece);
    if (!feed.ok()) {
      d.status = feed.status();
      return;
    }
    d.piece_s.push_back(feed->audio_s);
  });
  if (d.status.ok()) {
    auto feed = (*dec)->Finish();
    if (feed.ok()) {
      d.finish_s = feed->audio_s;
    } else {
      d.status = feed.status();
    }
  }
  d.seconds = (*dec)->seconds();
  return d;
}

TEST(StreamDecodeTest, SseEventsLargerThanTheHeldBytesCountAsWhole) {
  std::mt19937 rng(3);
  // 0.05 s, then 2 s of 24 kHz PCM in one event (128 KB of base64), then the end.
  const std::string body = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" +
                           absl::Base64Escape(std::string(2400, '\0')) +
                           "\"}\n\ndata: {\"type\":\"speech." + "audio.delta\",\"audio\":\"" +
                           absl::Base64Escape(std::string(96000, '\0')) +
                           "\"}\r\n\r\ndata: {\"type\":\"speech.audio.done\"}\n\n";
  for (int round = 0; round < 10; ++round) {
    const Decoded d = Decode(OpenAiSse(), "text/event-stream", body, Cuts(body.size(), rng));
    ASSERT_TRUE(d.status.ok()) << d.status;
    double sum = d.finish_s;
    for (double s : d.piece_s) sum += s;
    EXPECT_NEAR(sum, 2.05, 1e-9);
    EXPECT_NEAR(d.seconds, 2.05, 1e-9);
  }
}

TEST(StreamDecodeTest, ARefusedLargeEventKeepsTheAudioBeforeIt) {
  const std::string body = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" +
                           absl::Base64Escape(std::string(2400, '\0')) +
                           "\"}\n\ndata: {\"type\":\"speech." + "audio.delta\",\"audio\":\"" +
                           std::string(100000, 'A') + "*\"}\n\n";
  const Decoded d = Decode(OpenAiSse(), "text/event-stream", body, {body.size() / 2});
  EXPECT_TRUE(absl::IsInvalidArgument(d.status)) << d.status;
  EXPECT_NEAR(d.seconds, 0.05, 1e-9);
}

TEST(StreamDecodeTest, AJsonAnswerInPiecesCountsItsAudioAtTheEnd) {
  v1::Target t;
  t.set_api("torch-inference");
  t.set_voice("default");
  std::mt19937 rng(5);
  const std::string body = "{\"success\":true,\"audio_base64\":\"" +
                           absl::Base64Escape(testing::WavBytes(24000, 24000)) +
                           "\",\"sample_rate\":24000}";
  for (int round = 0; round < 10; ++round) {
    const Decoded d = Decode(t, "application/json", body, Cuts(body.size(), rng));
    ASSERT_TRUE(d.status.ok()) << d.status;
    for (double s : d.piece_s) EXPECT_EQ(s, 0);  // a non-streamed answer's audio is its end
    EXPECT_NEAR(d.finish_s, 1.0, 1e-9);
    EXPECT_NEAR(d.seconds, 1.0, 1e-9);
  }
  // A bad answer is reported at its end, with no audio counted.
  const std::string bad = body.substr(0, body.size() - 30) + "*" + body.substr(body.size() - 29);
  const Decoded b = Decode(t, "application/json", bad, {1000, 40000});
  EXPECT_TRUE(absl::IsInvalidArgument(b.status)) << b.status;
  EXPECT_EQ(b.seconds, 0);
}

}  // namespace
}  // namespace ttsbench::agent
