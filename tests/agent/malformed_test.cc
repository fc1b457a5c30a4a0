// Broken answers become classified records, never crashes or hangs: truncated and garbage audio,
// wrong Content-Types, SSE with broken base64, WebSockets closed early, refused handshakes.
#include <chrono>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/agent/fake_server.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

// `n` requests, each answered with `answer`, a 2 s deadline each; their records.
std::vector<v1::RequestRecord> Against(HttpAnswer answer, v1::Target target, int n = 2) {
  RunSpec spec;
  spec.target = std::move(target);
  spec.iterations = n;
  spec.timeout_s = 2;
  return RunAgainst({.http = AlwaysAnswer(std::move(answer))}, std::move(spec));
}

v1::Target OpenAi(const std::string& format, const std::string& stream_format = "") {
  return OpenAiTarget(format, stream_format);
}

void ExpectAll(const std::vector<v1::RequestRecord>& records, v1::ErrorKind kind,
               const std::string& what) {
  ASSERT_FALSE(records.empty()) << what;
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), kind) << what << ": " << r.DebugString();
    EXPECT_GT(r.end_ns(), 0) << what;
  }
}

TEST(MalformedTest, BodyCutShortBeforeContentLengthIsARead) {
  const std::string wav = WavBytes(8000, 8000);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: " +
                           std::to_string(wav.size()) + "\r\n\r\n";
  ExpectAll(Against({head + wav.substr(0, 1000), true}, OpenAi("wav")), v1::ERROR_READ, "cut body");
}

TEST(MalformedTest, WavWhoseDataIsShorterThanItsHeaderSaysIsInvalidAudio) {
  std::string wav = WavBytes(8000, 8000);
  wav.resize(1000);  // the header still claims 16000 data bytes
  ExpectAll(Against({HttpOk("audio/wav", wav)}, OpenAi("wav")), v1::ERROR_INVALID_AUDIO,
            "truncated wav");
}

TEST(MalformedTest, GarbageBytesAreInvalidAudio) {
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>((i * 7919) % 251));
  ExpectAll(Against({HttpOk("audio/wav", garbage)}, OpenAi("wav")), v1::ERROR_INVALID_AUDIO,
            "garbage wav");
  ExpectAll(Against({HttpOk("audio/mpeg", garbage)}, OpenAi("mp3")), v1::ERROR_INVALID_AUDIO,
            "garbage mp3");
}

TEST(MalformedTest, WrongContentTypeWithANonAudioBodyIsInvalidAudio) {
  ExpectAll(Against({HttpOk("text/html", "<html><body>Bad gateway</body></html>")}, OpenAi("wav")),
            v1::ERROR_INVALID_AUDIO, "html");
  // A JSON error with status 200, raw PCM requested: text is not audio.
  ExpectAll(
      Against({HttpOk("application/json", R"({"error":{"message":"overloaded"}})")}, OpenAi("pcm")),
      v1::ERROR_INVALID_AUDIO, "json as pcm");
}

TEST(MalformedTest, EmptyBodyIsEmptyAudio) {
  ExpectAll(Against({HttpOk("audio/wav", "")}, OpenAi("wav")), v1::ERROR_EMPTY_AUDIO, "empty");
  ExpectAll(Against({HttpOk("audio/wav", WavBytes(8000, 0))}, OpenAi("wav")), v1::ERROR_EMPTY_AUDIO,
            "header only");
}

TEST(MalformedTest, StatusCodesAreClassified) {
  const std::string too_many =
      "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}";
  ExpectAll(Against({too_many}, OpenAi("wav")), v1::ERROR_HTTP_429, "429");
  ExpectAll(Against({"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"}, OpenAi("wav")),
            v1::ERROR_HTTP_5XX, "503");
  ExpectAll(
      Against({"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"}, OpenAi("wav")),
      v1::ERROR_PROTOCOL, "302");
  ExpectAll(Against({"HTTP/9.9 200 OK\r\n\r\n", true}, OpenAi("wav")), v1::ERROR_PROTOCOL,
            "bad version");
}

TEST(MalformedTest, SseWithBrokenBase64IsInvalidAudio) {
  const std::string good = absl::Base64Escape(std::string(4800, '\0'));
  const std::string body = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" + good +
                           "\"}\n\ndata: {\"type\":\"speech.audio.delta\",\"audio\":\"%%%\"}\n\n"
                           "data: {\"type\":\"speech.audio.done\"}\n\n";
  const auto records = Against({HttpOk("text/event-stream", body)}, OpenAi("pcm", "sse"));
  ExpectAll(records, v1::ERROR_INVALID_AUDIO, "broken base64");
  // The good delta before it was still timed as audio.
  for (const auto& r : records) EXPECT_GT(r.first_audio_ns(), 0);
  ExpectAll(Against({HttpOk("text/event-stream", "data: not json\n\n")}, OpenAi("pcm", "sse")),
            v1::ERROR_INVALID_AUDIO, "not json");
  ExpectAll(Against({HttpOk("text/event-stream",
                            "data: {\"type\":\"error\",\"error\":{\"message\":\"x\"}}\n\n")},
                    OpenAi("pcm", "sse")),
            v1::ERROR_PROTOCOL, "error event");
  ExpectAll(Against({HttpOk("text/event-stream",
                            ": only a comment\n\ndata: {\"type\":\"speech.audio.done\"}\n\n")},
                    OpenAi("pcm", "sse")),
            v1::ERROR_EMPTY_AUDIO, "no audio events");
}

TEST(MalformedTest, SseEndingWithoutItsDoneEventIsProtocolWithTheAudioKept) {
  const std::string delta = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" +
                            absl::Base64Escape(std::string(4800, '\0')) + "\"}\n\n";
  const std::string body = delta + delta;  // 2 x 0.1 s of 24 kHz PCM, then the body ends
  const auto records = Against({HttpOk("text/event-stream", body)}, OpenAi("pcm", "sse"));
  ExpectAll(records, v1::ERROR_PROTOCOL, "no done event");
  for (const auto& r : records) {
    EXPECT_NEAR(r.audio_s(), 0.2, 1e-9);
    EXPECT_EQ(r.bytes(), static_cast<int64_t>(body.size()));
    EXPECT_GT(r.first_audio_ns(), 0);
    EXPECT_EQ(r.http_status(), 200);
  }
  // With its done event the same stream is a success.
  const std::string done = "data: {\"type\":\"speech.audio.done\"}\n\n";
  ExpectAll(Against({HttpOk("text/event-stream", body + done)}, OpenAi("pcm", "sse")),
            v1::ERROR_NONE, "done event");
}

TEST(MalformedTest, SseEventOverTheBoundIsInvalidAudioWithTheAudioBeforeItKept) {
  const std::string delta = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" +
                            absl::Base64Escape(std::string(4800, '\0')) + "\"}\n\n";
  // One event of over 1 MiB (the bound per event) after a good one: refused, not buffered.
  const std::string body = delta + "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" +
                           std::string((1 << 20) + 4, 'A') +
                           "\"}\n\ndata: {\"type\":\"speech.audio.done\"}\n\n";
  const auto records = Against({HttpOk("text/event-stream", body)}, OpenAi("pcm", "sse"));
  ExpectAll(records, v1::ERROR_INVALID_AUDIO, "event over the bound");
  for (const auto& r : records) {
    EXPECT_GT(r.first_audio_ns(), 0);
    EXPECT_NEAR(r.audio_s(), 0.1, 1e-9);
  }
}

TEST(MalformedTest, FailedAnswersKeepTheirBytesAndStatus) {
  const std::string wav = WavBytes(8000, 8000);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: " +
                           std::to_string(wav.size()) + "\r\n\r\n";
  const auto cut = Against({head + wav.substr(0, 1000), true}, OpenAi("wav"));
  ExpectAll(cut, v1::ERROR_READ, "cut body");
  for (const auto& r : cut) {
    EXPECT_EQ(r.bytes(), 1000);
    EXPECT_EQ(r.http_status(), 200);
    EXPECT_GT(r.first_byte_ns(), 0);
  }
  // A head larger than the agent reads (64 KB) after a 200 status line.
  const std::string huge_head =
      "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nX-Padding: " + std::string(70000, 'x') +
      "\r\nContent-Length: 0\r\n\r\n";
  const auto limited = Against({huge_head, true}, OpenAi("wav"));
  ExpectAll(limited, v1::ERROR_PROTOCOL, "head over the limit");
  for (const auto& r : limited) EXPECT_EQ(r.http_status(), 200);
}

TEST(MalformedTest, NonStreamedTtfaIsTheLatency) {
  // The head and the WAV header at once, the samples 300 ms later: the audio is one piece, in
  // hand at the end (DESIGN.md: for a non-streamed response TTFA equals the latency).
  const std::string wav = WavBytes(8000, 8000);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: " +
                           std::to_string(wav.size()) + "\r\n\r\n";
  HttpAnswer answer{head + wav.substr(0, 2000)};
  answer.more = {wav.substr(2000)};
  answer.every = std::chrono::milliseconds(300);
  const auto records = Against(answer, OpenAi("wav"), 1);
  ExpectAll(records, v1::ERROR_NONE, "two pieces");
  for (const auto& r : records) {
    EXPECT_FALSE(r.streamed());
    EXPECT_EQ(r.first_audio_ns(), r.end_ns());
    EXPECT_LT(r.first_byte_ns(), r.end_ns() - 200'000'000);
    EXPECT_EQ(r.chunks(), 1);
    EXPECT_DOUBLE_EQ(r.max_gap_ms(), 0);
  }
}

TEST(MalformedTest, TorchJsonWithoutAudioIsInvalidAudio) {
  v1::Target t;
  t.set_api("torch-inference");
  ExpectAll(Against({HttpOk("application/json", R"({"success":true})")}, t),
            v1::ERROR_INVALID_AUDIO, "no field");
  ExpectAll(
      Against({HttpOk("application/json", R"({"success":false,"error":"model not loaded"})")}, t),
      v1::ERROR_PROTOCOL, "error field");
  ExpectAll(Against({HttpOk("application/json", R"({"audio_base64":)")}, t),
            v1::ERROR_INVALID_AUDIO, "cut json");
}

v1::Target TorchWs() { return TorchWsTarget(); }

// Two requests to a server made from `options`, a 1 s deadline each; their records.
std::vector<v1::RequestRecord> AgainstWs(FakeServer::Options options, v1::Target target) {
  RunSpec spec;
  spec.target = std::move(target);
  spec.iterations = 2;
  spec.timeout_s = 1;
  return RunAgainst(std::move(options), std::move(spec));
}

TEST(MalformedTest, WebSocketClosedBeforeTheEndIsARead) {
  // Abruptly (a crash) and with a close frame (an orderly close, but before tts_done).
  for (const bool abrupt : {true, false}) {
    const auto records = AgainstWs(
        {.ws =
             [abrupt](const Recorded&, const std::string&) {
               WsAnswer a;
               a.frames = {{R"({"type":"tts_meta","sample_rate":24000,"encoding":"pcm_s16le"})"},
                           {std::string(4800, '\0'), true}};
               a.close_abruptly = abrupt;
               a.close_normally = !abrupt;
               return a;
             }},
        TorchWs());
    ExpectAll(records, v1::ERROR_READ, abrupt ? "abrupt" : "close frame");
    for (const auto& r : records) {
      EXPECT_GT(r.first_audio_ns(), 0);
      EXPECT_GT(r.bytes(), 4800);  // what arrived before the close is kept
      EXPECT_NEAR(r.audio_s(), 0.1, 1e-9);
    }
  }
}

TEST(MalformedTest, WebSocketErrorsAndBadFramesAreClassified) {
  ExpectAll(AgainstWs({.ws =
                           [](const Recorded&, const std::string&) {
                             return WsAnswer{{{R"({"type":"error","msg":"no engine"})"}}};
                           }},
                      TorchWs()),
            v1::ERROR_PROTOCOL, "error message");
  ExpectAll(AgainstWs({.ws = [](const Recorded&,
                                const std::string&) { return WsAnswer{{{"not json at all"}}}; }},
                      TorchWs()),
            v1::ERROR_INVALID_AUDIO, "text not json");
  // Audio in an encoding the meta message names but nothing can measure.
  ExpectAll(AgainstWs({.ws =
                           [](const Recorded&, const std::string&) {
                             return WsAnswer{
                                 {{R"({"type":"tts_meta","sample_rate":24000,"encoding":"speex"})"},
                                  {std::string(4800, '\0'), true},
                                  {R"({"type":"tts_done"})"}}};
                           }},
                      TorchWs()),
            v1::ERROR_INVALID_AUDIO, "unknown encoding");
  ExpectAll(
      AgainstWs({.ws = [](const Recorded&,
                          const std::string&) { return WsAnswer{{{R"({"type":"tts_done"})"}}}; }},
                TorchWs()),
      v1::ERROR_EMPTY_AUDIO, "no audio");
}

TEST(MalformedTest, RefusedHandshakeIsItsStatus) {
  const auto records = AgainstWs({.ws_refuse_status = 403}, TorchWs());
  ExpectAll(records, v1::ERROR_HTTP_4XX, "403");
  for (const auto& r : records) EXPECT_EQ(r.http_status(), 403);
}

TEST(MalformedTest, SilentWebSocketTimesOut) {
  const auto began = std::chrono::steady_clock::now();
  const auto records =
      AgainstWs({.ws = [](const Recorded&, const std::string&) { return WsAnswer{}; }}, TorchWs());
  ExpectAll(records, v1::ERROR_TIMEOUT, "silent");
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(5));
}

}  // namespace
}  // namespace ttsbench::agent::testing
