#include "agent/dialect.h"

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

}  // namespace
}  // namespace ttsbench::agent
