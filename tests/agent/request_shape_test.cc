// Each dialect's requests as a server receives them (method, path, query, headers, JSON body,
// WebSocket handshake and messages), sent by the real load engine to a recording server.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/agent/fake_server.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

google::protobuf::Struct Json(const std::string& s) {
  google::protobuf::Struct out;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(s, &out).ok()) << s;
  return out;
}

std::string Str(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? "<absent>" : it->second.string_value();
}

double Num(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? -1 : it->second.number_value();
}

// One request to `server`; expects it to succeed and returns what the server saw.
Recorded OneRequest(const FakeServer& server, RunSpec spec, const std::string& base = "") {
  spec.target.set_url(server.url() + base);
  auto result = RunLoad(spec);
  EXPECT_EQ(result.records.size(), 1u);
  if (!result.records.empty()) {
    EXPECT_EQ(result.records[0].error(), v1::ERROR_NONE) << result.records[0].DebugString();
  }
  auto seen = server.requests();
  EXPECT_EQ(seen.size(), 1u);
  return seen.empty() ? Recorded{} : seen[0];
}

TEST(RequestShapeTest, OpenAiSpeechWithEveryOptionalField) {
  FakeServer server({});
  RunSpec spec;
  spec.target.set_api("openai");
  spec.target.set_voice("alloy");
  spec.target.set_model("gpt-4o-mini-tts");
  spec.target.set_format("wav");
  spec.target.set_speed(1.25);
  spec.target.set_instructions("Speak \"calmly\".");
  *spec.target.add_headers() = H("X-Team", "speech");
  spec.secrets = {H("Authorization", "Bearer sk-test")};
  spec.text = "Héllo \"world\"\n";
  const Recorded r = OneRequest(server, spec, "/base");
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/base/v1/audio/speech");
  EXPECT_EQ(r.Header("Authorization"), "Bearer sk-test");
  EXPECT_EQ(r.Header("X-Team"), "speech");
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  EXPECT_EQ(r.Header("Host"), "127.0.0.1:" + std::to_string(server.port()));
  const auto body = Json(r.body);
  EXPECT_EQ(Str(body, "model"), "gpt-4o-mini-tts");
  EXPECT_EQ(Str(body, "input"), "Héllo \"world\"\n");
  EXPECT_EQ(Str(body, "voice"), "alloy");
  EXPECT_EQ(Str(body, "response_format"), "wav");
  EXPECT_DOUBLE_EQ(Num(body, "speed"), 1.25);
  EXPECT_EQ(Str(body, "instructions"), "Speak \"calmly\".");
  EXPECT_FALSE(body.fields().at("stream").bool_value());
  EXPECT_FALSE(body.fields().contains("stream_format"));
}

TEST(RequestShapeTest, OpenAiSseAsksForAnEventStream) {
  const std::string audio = absl::Base64Escape(std::string(4800, '\0'));
  FakeServer server({.http = [&](const Recorded&) {
    return HttpAnswer{
        HttpOk("text/event-stream", "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" + audio +
                                        "\"}\n\ndata: {\"type\":\"speech.audio.done\"}\n\n")};
  }});
  RunSpec spec;
  spec.target.set_api("openai");
  spec.target.set_voice("alloy");
  spec.target.set_format("pcm");
  spec.target.set_stream_format("sse");
  const Recorded r = OneRequest(server, spec);
  EXPECT_EQ(r.Header("Accept"), "text/event-stream");
  const auto body = Json(r.body);
  EXPECT_EQ(Str(body, "stream_format"), "sse");
  EXPECT_TRUE(body.fields().at("stream").bool_value());
  EXPECT_FALSE(body.fields().contains("speed"));  // unset fields are not sent
  EXPECT_FALSE(body.fields().contains("instructions"));
}

TEST(RequestShapeTest, TorchInferenceJsonStreamAndLegacyEndpoints) {
  const std::string wav_b64 = absl::Base64Escape(WavBytes(8000, 80));
  FakeServer server({.http = [&](const Recorded& r) {
    if (r.target == "/tts/stream")
      return HttpAnswer{HttpOk("audio/pcm;rate=8000", std::string(160, '\0'))};
    if (r.target == "/synthesize") {
      return HttpAnswer{
          HttpOk("application/json", "{\"success\":true,\"audio_data\":\"" + wav_b64 +
                                         "\",\"sample_rate\":8000,\"duration\":0.01}")};
    }
    return HttpAnswer{
        HttpOk("application/json", "{\"success\":true,\"audio_base64\":\"" + wav_b64 + "\"}")};
  }});
  RunSpec spec;
  spec.target.set_url(server.url());
  spec.target.set_api("torch-inference");
  spec.target.set_voice("af_heart");
  spec.target.set_speed(0.9);
  spec.target.set_model("kokoro");
  ASSERT_EQ(RunLoad(spec).records.at(0).error(), v1::ERROR_NONE);
  spec.target.set_streaming(true);
  ASSERT_EQ(RunLoad(spec).records.at(0).error(), v1::ERROR_NONE);
  spec.target.set_streaming(false);
  spec.target.set_path("/synthesize");
  ASSERT_EQ(RunLoad(spec).records.at(0).error(), v1::ERROR_NONE);
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].target, "/tts/synthesize");
  EXPECT_EQ(seen[0].Header("Accept"), "application/json");
  auto body = Json(seen[0].body);
  EXPECT_EQ(Str(body, "text"), testing::kText);
  EXPECT_EQ(Str(body, "voice"), "af_heart");
  EXPECT_DOUBLE_EQ(Num(body, "speed"), 0.9);
  EXPECT_EQ(seen[1].target, "/tts/stream");
  EXPECT_EQ(Json(seen[1].body).fields().size(), 3u);
  EXPECT_EQ(seen[2].method, "POST");
  EXPECT_EQ(seen[2].target, "/synthesize");
  body = Json(seen[2].body);
  EXPECT_EQ(Str(body, "model_name"), "kokoro");
  EXPECT_EQ(Str(body, "inputs"), testing::kText);
  EXPECT_EQ(Str(body, "voice"), "af_heart");
  EXPECT_EQ(Str(body, "output_format"), "wav");
}

TEST(RequestShapeTest, TorchInferenceWebSocketSendsATtsMessage) {
  FakeServer server({
      .ws =
          [](const Recorded&, const std::string&) {
            WsAnswer a;
            a.frames = {{R"({"type":"tts_meta","sample_rate":16000,"encoding":"pcm_s16le"})"},
                        {std::string(3200, '\0'), true},
                        {R"({"type":"tts_done","duration_ms":100})"}};
            return a;
          },
      .ws_greeting = {{R"({"type":"ready"})"}},
  });
  RunSpec spec;
  spec.target.set_api("torch-inference");
  spec.target.set_stream_format("ws");
  spec.target.set_voice("af_heart");
  spec.secrets = {H("Authorization", "Bearer t0ken")};
  *spec.target.add_headers() = H("X-Trace", "abc");
  const Recorded r = OneRequest(server, spec);
  EXPECT_TRUE(r.websocket);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/audio/ws");
  EXPECT_EQ(r.Header("Authorization"), "Bearer t0ken");
  EXPECT_EQ(r.Header("X-Trace"), "abc");
  ASSERT_EQ(r.messages.size(), 1u);
  const auto msg = Json(r.messages[0]);
  EXPECT_EQ(Str(msg, "type"), "tts");
  EXPECT_EQ(Str(msg, "text"), testing::kText);
  EXPECT_EQ(Str(msg, "voice"), "af_heart");
}

TEST(RequestShapeTest, CoquiAndOpenTtsPutEncodedParametersInTheQuery) {
  FakeServer server({});
  RunSpec spec;
  spec.target.set_api("coqui");
  spec.target.set_voice("p225");
  spec.target.set_language("en");
  spec.text = "Fish & chips, 100% ünïcode?";
  Recorded r = OneRequest(server, spec);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target,
            "/api/tts?text=Fish%20%26%20chips%2C%20100%25%20%C3%BCn%C3%AFcode%3F&speaker_id=p225"
            "&language_id=en");
  EXPECT_FALSE(r.HasHeader("Content-Length"));

  FakeServer opentts({});
  spec.target.set_api("opentts");
  spec.target.set_voice("espeak:en");
  spec.target.clear_language();
  spec.text = "Hello world";
  r = OneRequest(opentts, spec);
  EXPECT_EQ(r.target, "/api/tts?voice=espeak%3Aen&text=Hello%20world");
}

TEST(RequestShapeTest, CoquiSendsLongTextsAsAFormBody) {
  FakeServer server({});
  RunSpec spec;
  spec.target.set_api("coqui");
  spec.text = std::string(5000, 'a');
  const Recorded r = OneRequest(server, spec);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/api/tts");
  EXPECT_EQ(r.Header("Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(r.body, "text=" + std::string(5000, 'a'));
}

TEST(RequestShapeTest, PiperPostsJsonAndItsWavIsReadWhateverTheContentType) {
  FakeServer server({.http = [](const Recorded&) {
    return HttpAnswer{HttpOk("application/octet-stream", WavBytes(22050, 2205))};
  }});
  RunSpec spec;
  spec.target.set_api("piper");
  spec.target.set_voice("en_US-lessac-medium");
  spec.target.set_speed(2);
  auto result = RunLoad(server, spec);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].error(), v1::ERROR_NONE);
  EXPECT_DOUBLE_EQ(result.records[0].audio_s(), 0.1);
  const Recorded r = server.requests().at(0);
  EXPECT_EQ(r.target, "/synthesize");
  const auto body = Json(r.body);
  EXPECT_EQ(Str(body, "text"), testing::kText);
  EXPECT_EQ(Str(body, "voice"), "en_US-lessac-medium");
  EXPECT_DOUBLE_EQ(Num(body, "length_scale"), 0.5);
}

TEST(RequestShapeTest, ElevenLabsHttpCarriesTheKeyFormatAndVoiceSettings) {
  FakeServer server({.http = [](const Recorded&) {
    return HttpAnswer{HttpOk("audio/pcm", std::string(3200, '\0'))};
  }});
  RunSpec spec;
  spec.target.set_api("elevenlabs");
  spec.target.set_voice("21m00Tcm4TlvDq8ikWAM");
  spec.target.set_model("eleven_flash_v2_5");
  spec.target.set_format("pcm");
  spec.target.set_sample_rate(16000);
  spec.target.set_speed(1.1);
  spec.target.set_streaming(true);
  spec.secrets = {H("xi-api-key", "xi-secret")};
  auto result = RunLoad(server, spec);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].error(), v1::ERROR_NONE);
  EXPECT_DOUBLE_EQ(result.records[0].audio_s(), 0.1);  // 1600 samples at 16 kHz
  const Recorded r = server.requests().at(0);
  EXPECT_EQ(r.target, "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream?output_format=pcm_16000");
  EXPECT_EQ(r.Header("xi-api-key"), "xi-secret");
  EXPECT_FALSE(r.HasHeader("Authorization"));
  const auto body = Json(r.body);
  EXPECT_EQ(Str(body, "text"), testing::kText);
  EXPECT_EQ(Str(body, "model_id"), "eleven_flash_v2_5");
  EXPECT_DOUBLE_EQ(Num(body.fields().at("voice_settings").struct_value(), "speed"), 1.1);
}

TEST(RequestShapeTest, ElevenLabsWebSocketStreamsInputAndEndsIt) {
  FakeServer server({.ws = [](const Recorded&, const std::string& msg) {
    WsAnswer a;
    if (msg == R"({"text":""})") {
      a.frames = {{R"({"audio":")" + absl::Base64Escape(std::string(1600, '\x7f')) +
                   R"(","isFinal":null})"},
                  {R"({"isFinal":true})"}};
      a.close_normally = true;
    }
    return a;
  }});
  RunSpec spec;
  spec.target.set_api("elevenlabs");
  spec.target.set_voice("voice one");
  spec.target.set_model("eleven_flash_v2_5");
  spec.target.set_format("ulaw");
  spec.target.set_stream_format("ws");
  spec.secrets = {H("xi-api-key", "xi-secret")};
  auto result = RunLoad(server, spec);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].error(), v1::ERROR_NONE) << result.records[0].DebugString();
  EXPECT_DOUBLE_EQ(result.records[0].audio_s(), 0.2);  // 1600 mu-law bytes at 8 kHz
  const Recorded r = server.requests().at(0);
  EXPECT_TRUE(r.websocket);
  EXPECT_EQ(r.target,
            "/v1/text-to-speech/voice%20one/stream-input?output_format=ulaw_8000&model_id="
            "eleven_flash_v2_5");
  EXPECT_EQ(r.Header("xi-api-key"), "xi-secret");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(Str(Json(r.messages[0]), "text"), " ");
  const auto text = Json(r.messages[1]);
  EXPECT_EQ(Str(text, "text"), std::string(testing::kText) + " ");
  EXPECT_TRUE(text.fields().at("flush").bool_value());
  EXPECT_EQ(r.messages[2], R"({"text":""})");
}

TEST(RequestShapeTest, TemplateFillsPathQueryHeadersAndBody) {
  FakeServer server({.http = [](const Recorded&) {
    return HttpAnswer{
        HttpOk("application/json",
               "{\"result\":{\"wav\":\"" + absl::Base64Escape(WavBytes(8000, 800)) + "\"}}")};
  }});
  RunSpec spec;
  spec.target.set_api("template");
  spec.target.set_voice("ana/1");
  spec.target.set_format("wav");
  spec.target.set_speed(1.5);
  spec.target.set_model("m1");
  v1::RequestTemplate& t = *spec.target.mutable_request_template();
  t.set_method("POST");
  t.set_path("/v2/voices/{voice}/speak");
  *t.add_query() = H("fmt", "{format}");
  *t.add_query() = H("q", "{text}");
  *t.add_headers() = H("X-Model", "{model}");
  t.set_body(R"({"input":{"text":"{text}"},"speed":{speed},"rate":{sample_rate}})");
  t.set_audio("json");
  t.set_audio_field("result.wav");
  spec.text = "say \"hi\" & go";
  spec.secrets = {H("X-API-Key", "k")};
  const Recorded r = OneRequest(server, spec);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/v2/voices/ana%2F1/speak?fmt=wav&q=say%20%22hi%22%20%26%20go");
  EXPECT_EQ(r.Header("X-Model"), "m1");
  EXPECT_EQ(r.Header("X-API-Key"), "k");
  const auto body = Json(r.body);
  EXPECT_EQ(Str(body.fields().at("input").struct_value(), "text"), "say \"hi\" & go");
  EXPECT_DOUBLE_EQ(Num(body, "speed"), 1.5);
  EXPECT_DOUBLE_EQ(Num(body, "rate"), 24000);
}

TEST(RequestShapeTest, TemplateWebSocketSendsItsMessagesAndEndsOnTheMarker) {
  FakeServer server({.ws = [](const Recorded& r, const std::string&) {
    WsAnswer a;
    if (r.messages.size() == 2) {
      a.frames = {{std::string(800, '\0'), true}, {R"({"event":"end"})"}};
    }
    return a;
  }});
  RunSpec spec;
  spec.target.set_api("template");
  spec.target.set_voice("v");
  spec.target.set_format("pcm");
  spec.target.set_sample_rate(8000);
  v1::RequestTemplate& t = *spec.target.mutable_request_template();
  t.set_path("/stream/{voice}");
  t.set_audio("websocket");
  t.set_done("event=end");
  t.add_messages(R"({"op":"start","voice":"{voice}"})");
  t.add_messages(R"({"op":"speak","text":"{text}"})");
  const Recorded r = OneRequest(server, spec);
  EXPECT_EQ(r.target, "/stream/v");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0], R"({"op":"start","voice":"v"})");
  EXPECT_EQ(Str(Json(r.messages[1]), "text"), testing::kText);
}

}  // namespace
}  // namespace ttsbench::agent::testing
