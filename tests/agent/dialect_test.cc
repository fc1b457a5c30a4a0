#include "agent/client/dialect.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace ttsbench::agent {
namespace {

common::Url Local() { return *common::ParseUrl("http://127.0.0.1:8000/base"); }

TEST(DialectTest, OpenAiRequestShape) {
  v1::Target t;
  t.set_api("openai");
  t.set_voice("alloy");
  t.set_format("wav");
  t.set_streaming(true);
  v1::Header auth;
  auth.set_name("Authorization");
  auth.set_value("Bearer s3cret");
  auto d = MakeDialect(t, Local(), {auth});
  ASSERT_TRUE(d.ok());
  auto req = (*d)->Prepare("Say \"hi\"\n");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->chars, 9);
  const std::string& w = req->wire;
  EXPECT_EQ(w.rfind("POST /base/v1/audio/speech HTTP/1.1\r\n", 0), 0u) << w;
  EXPECT_NE(w.find("\r\nHost: 127.0.0.1:8000\r\n"), std::string::npos);
  EXPECT_NE(w.find("\r\nAuthorization: Bearer s3cret\r\n"), std::string::npos);
  const std::string body = w.substr(w.find("\r\n\r\n") + 4);
  EXPECT_NE(w.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(body.find("\"input\":\"Say \\\"hi\\\"\\n\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"stream\":true"), std::string::npos);
  EXPECT_NE(body.find("\"response_format\":\"wav\""), std::string::npos);
}

TEST(DialectTest, TorchInferencePaths) {
  v1::Target t;
  t.set_api("torch-inference");
  t.set_voice("default");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->Prepare("x")->wire.rfind("POST /base/tts/synthesize ", 0), 0u);
  t.set_streaming(true);
  d = MakeDialect(t, Local(), {});
  EXPECT_EQ((*d)->Prepare("x")->wire.rfind("POST /base/tts/stream ", 0), 0u);
}

TEST(DialectTest, RejectsUnknownApiFormatAndHeaderInjection) {
  v1::Target t;
  t.set_api("nope");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  t.set_api("openai");
  t.set_format("wma");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  t.set_format("wav");
  v1::Header evil;
  evil.set_name("X");
  evil.set_value("a\r\nInjected: 1");
  EXPECT_FALSE(MakeDialect(t, Local(), {evil}).ok());
}

TEST(DialectTest, JsonBase64DecoderFindsTheAudio) {
  v1::Target t;
  t.set_api("torch-inference");
  auto d = MakeDialect(t, Local(), {});
  auto dec = (*d)->NewDecoder("application/json");
  ASSERT_TRUE(dec.ok());
  // A 44-byte WAV header + 4 samples of 16-bit mono at 8 kHz, base64.
  std::string wav = "RIFF";
  auto le = [&](uint32_t v, int n) {
    for (int i = 0; i < n; ++i) wav.push_back(static_cast<char>(v >> (8 * i)));
  };
  le(44, 4);
  wav += "WAVEfmt ";
  le(16, 4);
  le(1, 2);
  le(1, 2);
  le(8000, 4);
  le(16000, 4);
  le(2, 2);
  le(16, 2);
  wav += "data";
  le(8, 4);
  wav += std::string(8, '\0');
  std::string b64;
  absl::Base64Escape(wav, &b64);
  const std::string body = "{\"success\":true,\"audio_base64\":\"" + b64 + "\"}";
  ASSERT_TRUE((*dec)->OnBody(body.substr(0, 10)).ok());
  ASSERT_TRUE((*dec)->OnBody(body.substr(10)).ok());
  auto tail = (*dec)->Finish();
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(tail->audio_bytes, 8u);
  EXPECT_DOUBLE_EQ((*dec)->seconds(), 4.0 / 8000);
  auto bad = (*d)->NewDecoder("application/json");
  ASSERT_TRUE((*bad)->OnBody("{\"audio_base64\":\"!!!\"}").ok());
  EXPECT_FALSE((*bad)->Finish().ok());
}

TEST(DialectTest, EveryApiIsKnownAndUnknownOnesNameTheChoices) {
  for (const std::string api : {"openai", "torch-inference", "coqui", "opentts", "piper"}) {
    v1::Target t;
    t.set_api(api);
    t.set_format("wav");
    EXPECT_TRUE(MakeDialect(t, Local(), {}).ok()) << api;
  }
  v1::Target t;
  t.set_api("grpc");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("elevenlabs"), absl::string_view::npos);
}

TEST(DialectTest, StreamFormatsBelongToTheirDialects) {
  v1::Target t;
  t.set_api("coqui");
  t.set_stream_format("sse");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  t.set_stream_format("ws");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  t.set_api("openai");
  t.set_format("pcm");
  t.set_stream_format("grpc");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  t.set_stream_format("sse");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->transport().streamed);
  EXPECT_EQ((*d)->transport().kind, TransportSpec::Kind::kHttp);
  t.set_api("torch-inference");
  t.set_stream_format("ws");
  d = MakeDialect(t, *common::ParseUrl("https://tts.example:8443/api"), {});
  ASSERT_TRUE(d.ok());
  const TransportSpec& ws = (*d)->transport();
  EXPECT_EQ(ws.kind, TransportSpec::Kind::kWebSocket);
  EXPECT_TRUE(ws.ws_reuse);
  EXPECT_EQ(ws.ws_target, "/api/audio/ws");
  EXPECT_EQ(ws.ws_host, "tts.example:8443");
  EXPECT_TRUE(ws.tls.enabled);
  EXPECT_EQ(ws.tls.host, "tts.example");
  EXPECT_TRUE((*d)->Prepare("hi")->wire.empty());
}

TEST(DialectTest, ElevenLabsNeedsAVoiceAndOneOfItsFormats) {
  v1::Target t;
  t.set_api("elevenlabs");
  t.set_format("mp3");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  t.set_voice("v");
  EXPECT_TRUE(MakeDialect(t, Local(), {}).ok());
  t.set_format("wav");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("mp3_44100_128"), absl::string_view::npos);
  t.set_format("mp3_22050_32");
  d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  EXPECT_NE((*d)->Prepare("x")->wire.find("?output_format=mp3_22050_32 "), std::string::npos);
}

TEST(DialectTest, TemplatesAreCheckedBeforeLoad) {
  v1::Target t;
  t.set_api("template");
  t.set_format("wav");
  v1::RequestTemplate& x = *t.mutable_request_template();
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());  // no path
  x.set_path("/speak");
  EXPECT_TRUE(MakeDialect(t, Local(), {}).ok());
  x.set_body(R"({"text": {text}})");  // unquoted: not JSON once filled in
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  x.set_body(R"({"text": "{text}"})");
  EXPECT_TRUE(MakeDialect(t, Local(), {}).ok());
  x.set_audio("carrier-pigeon");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  x.set_audio("websocket");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());  // nothing to send
  x.add_messages(R"({"t":"{text}"})");
  EXPECT_TRUE(MakeDialect(t, Local(), {}).ok());
  x.set_path("/ws/{text}");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());  // the handshake is made once
  x.Clear();
  x.set_path("/speak");
  x.set_method("GET");
  x.set_body("{}");
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
  x.clear_body();
  x.add_headers();
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());  // empty header name
}

TEST(DialectTest, ExtraHeadersAreValidatedAndSecretsNeverEchoed) {
  v1::Target t;
  t.set_api("openai");
  t.set_format("wav");
  v1::Header bad;
  bad.set_name("Authorization");
  bad.set_value("Bearer s3cret\r\nX: y");
  auto d = MakeDialect(t, Local(), {bad});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message().find("s3cret"), absl::string_view::npos);
  v1::Header extra;
  extra.set_name("X-Team");
  extra.set_value("a\nb");
  *t.add_headers() = extra;
  EXPECT_FALSE(MakeDialect(t, Local(), {}).ok());
}

TEST(DialectTest, UrlEncodeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(UrlEncode("aZ0-._~"), "aZ0-._~");
  EXPECT_EQ(UrlEncode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
}

TEST(DialectTest, SseEventOverTheBoundIsInvalidAudioWithTheAudioBeforeItKept) {
  v1::Target t;
  t.set_api("openai");
  t.set_format("pcm");
  t.set_stream_format("sse");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  auto dec = (*d)->NewDecoder("text/event-stream");
  ASSERT_TRUE(dec.ok());
  const std::string delta = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" +
                            absl::Base64Escape(std::string(4800, '\0')) + "\"}\n\n";
  const std::string huge = "data: {\"audio\":\"" + std::string((1 << 20) + 4, 'A');
  auto feed = (*dec)->OnBody(delta + huge);
  ASSERT_TRUE(feed.ok()) << feed.status();
  EXPECT_EQ(feed->audio_bytes, 4800u);
  const absl::Status st = (*dec)->OnBody("AAAA\"}\n\n").status();
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_NEAR((*dec)->seconds(), 0.1, 1e-9);
}

TEST(DialectTest, JsonAnswerOverItsBoundIsInvalidAudio) {
  v1::Target t;
  t.set_api("torch-inference");
  t.set_voice("default");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok());
  auto dec = (*d)->NewDecoder("application/json");
  ASSERT_TRUE(dec.ok());
  const std::string piece(1 << 20, 'A');
  absl::Status st;
  for (int i = 0; i < 17 && st.ok(); ++i) st = (*dec)->OnBody(piece).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_NE(st.message().find("16 MiB"), absl::string_view::npos) << st;
}

TEST(DialectTest, TemplateSseFindsAudioAtANestedPath) {
  v1::Target t;
  t.set_api("template");
  t.set_format("pcm");
  t.set_sample_rate(24000);
  v1::RequestTemplate& x = *t.mutable_request_template();
  x.set_path("/speak");
  x.set_audio("sse");
  x.set_audio_field("data.chunk.b64");
  x.set_done("event=end");
  auto d = MakeDialect(t, Local(), {});
  ASSERT_TRUE(d.ok()) << d.status();
  auto dec = (*d)->NewDecoder("text/event-stream");
  ASSERT_TRUE(dec.ok());
  const std::string b64 = absl::Base64Escape(std::string(480, '\0'));
  auto feed = (*dec)->OnBody("data: {\"event\":\"chunk\",\"data\":{\"id\":1,\"chunk\":{\"b64\":\"" +
                             b64 + "\"}}}\n\ndata: {\"event\":\"end\"}\n\n");
  ASSERT_TRUE(feed.ok()) << feed.status();
  EXPECT_EQ(feed->audio_bytes, 480u);
  ASSERT_TRUE((*dec)->Finish().ok());
  EXPECT_NEAR((*dec)->seconds(), 0.01, 1e-9);
}

}  // namespace
}  // namespace ttsbench::agent
