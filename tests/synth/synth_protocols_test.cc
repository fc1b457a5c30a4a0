// The synthetic server's other API shapes and transports: encoded formats, OpenAI SSE, Coqui,
// OpenTTS, Piper, torch-inference /synthesize and /audio/ws, ElevenLabs HTTP and stream-input,
// API keys, and TLS on the same port as plain HTTP.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "common/audio.h"
#include "synth/audio_source.h"
#include "synth/synth_server.h"
#include "synth/tls_cert.h"
#include "tests/synth/http_test_client.h"
#include "tests/synth/synth_harness.h"

namespace ttsbench::synth {
namespace {

using httptest::Get;
using httptest::Post;
using httptest::Reply;
using httptest::RunBounded;
namespace http = httptest::http;
namespace net = httptest::net;
namespace beast = httptest::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

google::protobuf::Struct ParseJson(const std::string& body) {
  google::protobuf::Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(body, &s).ok()) << body;
  return s;
}

// Samples of a decoded body (libsndfile), or -1.
int64_t DecodedFrames(const std::string& body, int* rate = nullptr) {
  auto d = common::DecodeWithSndfile(body);
  EXPECT_TRUE(d.ok()) << d.status();
  if (!d.ok()) return -1;
  if (rate != nullptr) *rate = d->sample_rate;
  return d->frames;
}

TEST(SynthProtocolsTest, EncodedFormatsDecodeToTheRequestedLength) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  // 20 characters * 0.05 s = 1 s: 24000 samples at 24 kHz.
  struct Case {
    std::string format, content_type;
    int64_t slack;  // codec padding a decoder may keep
  };
  for (const Case& c : std::vector<Case>{{"mp3", "audio/mpeg", 1152},
                                         {"flac", "audio/flac", 0},
                                         {"opus", "audio/ogg;codecs=opus", 0},
                                         {"vorbis", "audio/ogg", 0}}) {
    for (const bool stream : {false, true}) {
      Reply r = Post(server->port(), "/v1/audio/speech",
                     R"({"input":"The quick brown fox.","response_format":")" + c.format +
                         R"(","stream":)" + (stream ? "true" : "false") + "}");
      ASSERT_EQ(r.status(), 200u) << c.format << r.body();
      EXPECT_EQ(r.header(http::field::content_type), c.content_type);
      EXPECT_EQ(r.chunked, stream);
      int rate = 0;
      const int64_t frames = DecodedFrames(r.body(), &rate);
      const int64_t want = rate;  // one second, at whatever rate the decoder reports
      EXPECT_GE(frames, want) << c.format;
      EXPECT_LE(frames, want + c.slack) << c.format;
      // ttsbench's own meter measures it exactly (gapless MP3, Opus pre-skip).
      auto meter = common::MakeMeter({c.format, r.header(http::field::content_type), 24000, 1});
      ASSERT_TRUE(meter.ok());
      auto seconds = common::MeasureWhole(**meter, r.body());
      ASSERT_TRUE(seconds.ok()) << c.format << ": " << seconds.status();
      EXPECT_NEAR(*seconds, 1.0, c.format == "mp3" ? 0.048 : 1e-3) << c.format;
    }
  }
  // Raw formats, sized exactly.
  Reply ulaw = Post(server->port(), "/v1/audio/speech",
                    R"({"input":"The quick brown fox.","response_format":"ulaw"})");
  EXPECT_EQ(ulaw.header(http::field::content_type), "audio/basic;rate=24000");
  EXPECT_EQ(ulaw.body().size(), 24000u);
  // AAC in ADTS, encoded by ffmpeg (installed with the test dependencies).
  Reply aac = Post(server->port(), "/v1/audio/speech",
                   R"({"input":"The quick brown fox.","response_format":"aac"})");
  ASSERT_EQ(aac.status(), 200u) << aac.body();
  EXPECT_EQ(aac.header(http::field::content_type), "audio/aac");
  ASSERT_GE(aac.body().size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(aac.body()[0]), 0xFF);  // ADTS sync word
  EXPECT_EQ(static_cast<unsigned char>(aac.body()[1]) & 0xF0, 0xF0);
  EXPECT_EQ(
      Post(server->port(), "/v1/audio/speech", R"({"input":"x","response_format":"wma"})").status(),
      400u);
}

TEST(SynthProtocolsTest, OpenAiSseSendsBase64DeltasThenDone) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  Reply r =
      Post(server->port(), "/v1/audio/speech",
           R"({"input":"The quick brown fox.","response_format":"pcm","stream_format":"sse"})");
  ASSERT_EQ(r.status(), 200u) << r.body();
  EXPECT_TRUE(r.chunked);
  EXPECT_EQ(r.header(http::field::content_type), "text/event-stream");
  const std::string& body = r.body();
  EXPECT_EQ(body.rfind(": ttsbench-synth\n\n", 0), 0u);
  std::string pcm;
  int deltas = 0;
  bool done = false;
  for (absl::string_view event : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (event[0] == ':') continue;
    ASSERT_EQ(event.substr(0, 6), "data: ");
    const auto json = ParseJson(std::string(event.substr(6)));
    const std::string type = json.fields().at("type").string_value();
    if (type == "speech.audio.delta") {
      std::string bytes;
      ASSERT_TRUE(absl::Base64Unescape(json.fields().at("audio").string_value(), &bytes));
      pcm += bytes;
      ++deltas;
    } else {
      EXPECT_EQ(type, "speech.audio.done");
      done = true;
    }
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(deltas, 10);  // 1 s in 100 ms chunks
  EXPECT_EQ(pcm.size(), 48000u);
}

TEST(SynthProtocolsTest, CoquiOpenTtsPiperAndTorchLegacyRoutes) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  const uint16_t port = server->port();
  // 4 characters * 0.05 s * 24000 Hz = 4800 samples.
  for (const std::string target : {"/api/tts?text=abcd&speaker_id=p225&language_id=en",
                                   "/api/tts?voice=espeak%3Aen&text=ab+d"}) {
    Reply r = Get(port, target);
    ASSERT_EQ(r.status(), 200u) << target << r.body();
    EXPECT_EQ(r.header(http::field::content_type), "audio/wav");
    EXPECT_EQ(r.body().size(), 44u + 9600);
  }
  Reply form = Post(port, "/api/tts", "text=abcd");
  EXPECT_EQ(form.status(), 200u) << form.body();
  EXPECT_EQ(Get(port, "/api/tts?speaker_id=x").status(), 400u);
  Reply piper = Post(port, "/synthesize", R"({"text":"abcd","voice":"en","length_scale":2})");
  ASSERT_EQ(piper.status(), 200u) << piper.body();
  EXPECT_EQ(piper.header(http::field::content_type), "audio/wav");
  EXPECT_EQ(piper.body().size(), 44u + 19200);  // length_scale 2: phonemes twice as long
  Reply legacy = Post(port, "/synthesize",
                      R"({"model_name":"m","inputs":"abcd","voice":"v","output_format":"wav"})");
  ASSERT_EQ(legacy.status(), 200u) << legacy.body();
  const auto json = ParseJson(legacy.body());
  EXPECT_TRUE(json.fields().at("success").bool_value());
  EXPECT_DOUBLE_EQ(json.fields().at("duration").number_value(), 0.2);
  std::string wav;
  ASSERT_TRUE(absl::Base64Unescape(json.fields().at("audio_data").string_value(), &wav));
  EXPECT_EQ(wav.size(), 44u + 9600);
  EXPECT_EQ(Post(port, "/synthesize", R"({"inputs":"abcd"})").status(), 400u);  // no model_name
}

TEST(SynthProtocolsTest, ElevenLabsHttpHonoursOutputFormat) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  const uint16_t port = server->port();
  Reply pcm = Post(port, "/v1/text-to-speech/voice1?output_format=pcm_16000", R"({"text":"abcd"})");
  ASSERT_EQ(pcm.status(), 200u) << pcm.body();
  EXPECT_EQ(pcm.header(http::field::content_type), "audio/pcm;rate=16000");
  EXPECT_EQ(pcm.body().size(), 6400u);  // 0.2 s at 16 kHz, 2 bytes a sample
  Reply mp3 = Post(port, "/v1/text-to-speech/voice1/stream", R"({"text":"abcd"})");
  ASSERT_EQ(mp3.status(), 200u) << mp3.body();
  EXPECT_TRUE(mp3.chunked);
  EXPECT_EQ(mp3.header(http::field::content_type), "audio/mpeg");
  int rate = 0;
  DecodedFrames(mp3.body(), &rate);
  EXPECT_EQ(rate, 44100);
  EXPECT_EQ(Post(port, "/v1/text-to-speech/voice1?output_format=wma_1", R"({"text":"a"})").status(),
            400u);
  Reply speed = Post(port, "/v1/text-to-speech/v?output_format=ulaw_8000",
                     R"({"text":"abcd","voice_settings":{"speed":2}})");
  EXPECT_EQ(speed.body().size(), 800u);
}

TEST(SynthProtocolsTest, ApiKeyGuardsAudioEndpointsOnly) {
  SynthOptions o = FastOptions();
  o.api_key = "sekret";
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Get(server->port(), "/health").status(), 200u);
  EXPECT_EQ(Post(server->port(), "/v1/audio/speech", R"({"input":"hi"})").status(), 401u);
  EXPECT_EQ(server->stats().unauthorized, 1u);
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer sekret"},
                                                        {"Authorization", "Token sekret"},
                                                        {"X-API-Key", "sekret"},
                                                        {"xi-api-key", "sekret"}}) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server->port()));
    http::request<http::string_body> req{http::verb::post, "/v1/audio/speech", 11};
    req.set(http::field::host, "x");
    req.set(name, value);
    req.body() = R"({"input":"hi"})";
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    EXPECT_EQ(res.result_int(), 200u) << name;
  }
}

// A bounded synchronous WebSocket client for one session.
class WsClient {
 public:
  WsClient(uint16_t port, const std::string& target) : ws_(ioc_) {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(ws_).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    ws_.handshake("127.0.0.1", target);
  }
  void Send(const std::string& text) {
    ws_.text(true);
    ws_.write(net::buffer(text));
  }
  // Next message; sets *binary. An error (close) ends the session: returns nullopt.
  std::optional<std::string> Read(bool* binary = nullptr) {
    beast::flat_buffer buf;
    beast::error_code ec;
    ws_.read(buf, ec);
    if (ec) return std::nullopt;
    if (binary != nullptr) *binary = ws_.got_binary();
    return beast::buffers_to_string(buf.data());
  }

 private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
};

TEST(SynthProtocolsTest, TorchWebSocketStreamsFramesBetweenMetaAndDone) {
  for (const std::string encoding : {"pcm_f32le", "pcm_s16le"}) {
    SynthOptions o = FastOptions();
    o.ws_encoding = encoding;
    auto server = StartOrDie(o);
    ASSERT_NE(server, nullptr);
    WsClient ws(server->port(), "/audio/ws");
    EXPECT_EQ(ws.Read(), R"({"type":"ready"})");
    for (int request = 0; request < 2; ++request) {
      ws.Send(R"({"type":"tts","text":"The quick brown fox.","voice":"default"})");
      auto meta = ws.Read();
      ASSERT_TRUE(meta.has_value());
      const auto m = ParseJson(*meta);
      EXPECT_EQ(m.fields().at("type").string_value(), "tts_meta");
      EXPECT_EQ(m.fields().at("sample_rate").number_value(), 24000);
      EXPECT_EQ(m.fields().at("encoding").string_value(), encoding);
      size_t bytes = 0;
      int frames = 0;
      for (;;) {
        bool binary = false;
        auto msg = ws.Read(&binary);
        ASSERT_TRUE(msg.has_value());
        if (!binary) {
          EXPECT_EQ(ParseJson(*msg).fields().at("type").string_value(), "tts_done");
          break;
        }
        bytes += msg->size();
        ++frames;
      }
      EXPECT_EQ(frames, 10);
      EXPECT_EQ(bytes, 24000u * (encoding == "pcm_f32le" ? 4 : 2));
    }
    ws.Send(R"({"type":"nope"})");
    EXPECT_EQ(ParseJson(*ws.Read()).fields().at("type").string_value(), "error");
    EXPECT_EQ(server->stats().websocket_sessions, 1u);
    EXPECT_EQ(server->stats().websocket_requests, 2u);
  }
}

TEST(SynthProtocolsTest, ElevenLabsStreamInputAnswersFlushAndEndOfInput) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  WsClient ws(server->port(), "/v1/text-to-speech/v1/stream-input?output_format=pcm_16000");
  ws.Send(R"({"text":" "})");
  ws.Send(R"({"text":"abcd ","flush":true})");
  ws.Send(R"({"text":""})");
  std::string pcm;
  bool final_seen = false;
  while (auto msg = ws.Read()) {
    const auto json = ParseJson(*msg);
    if (json.fields().contains("isFinal") && json.fields().at("isFinal").bool_value()) {
      final_seen = true;
      continue;
    }
    std::string bytes;
    ASSERT_TRUE(absl::Base64Unescape(json.fields().at("audio").string_value(), &bytes));
    pcm += bytes;
  }
  EXPECT_TRUE(final_seen);
  EXPECT_EQ(pcm.size(), 6400u);  // "abcd": 0.2 s at 16 kHz
}

TEST(SynthProtocolsTest, TlsAndPlainHttpShareThePort) {
  auto pem = MakeSelfSignedCertificate({"localhost", "127.0.0.1"});
  ASSERT_TRUE(pem.ok()) << pem.status();
  SynthOptions o = FastOptions();
  o.tls_cert_pem = pem->cert;
  o.tls_key_pem = pem->key;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Get(server->port(), "/health").status(), 200u);

  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.add_certificate_authority(net::buffer(pem->cert));
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> tls(ioc, ctx);
  beast::get_lowest_layer(tls).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(tls).connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), server->port()));
  tls.set_verify_callback(net::ssl::host_name_verification("127.0.0.1"));
  tls.handshake(net::ssl::stream_base::client);
  http::request<http::string_body> req{http::verb::post, "/v1/audio/speech", 11};
  req.set(http::field::host, "127.0.0.1");
  req.body() = R"({"input":"abcd","response_format":"pcm"})";
  req.prepare_payload();
  http::write(tls, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(tls, buf, res);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body().size(), 9600u);
  EXPECT_EQ(server->stats().tls_connections, 1u);
  EXPECT_EQ(server->stats().connections_accepted, 2u);

  SynthOptions half = FastOptions();
  half.tls_cert_pem = pem->cert;
  EXPECT_FALSE(SynthServer::Start(half).ok());
  half.tls_key_pem = "not a key";
  EXPECT_FALSE(SynthServer::Start(half).ok());
}

TEST(AudioSourceTest, SlicesOfEncodedFilesAddUpToTheFile) {
  AudioLibrary lib;
  auto body = AudioBody::Make(lib, AudioFormat::kFlac, 16000, 16000, false);
  ASSERT_TRUE(body.ok()) << body.status();
  std::string joined;
  for (int64_t at = 0; at < body->samples(); at += 1000) {
    joined += body->Copy(at, std::min<int64_t>(at + 1000, body->samples()));
  }
  EXPECT_EQ(joined, body->Copy(0, body->samples()));
  EXPECT_EQ(joined.size(), body->TotalBytes());
  // Opus only at its own rates.
  EXPECT_FALSE(AudioBody::Make(lib, AudioFormat::kOpus, 22050, 100, false).ok());
  // Raw slices are exactly the samples, the WAV header on the first.
  auto wav = AudioBody::Make(lib, AudioFormat::kWav, 8000, 100, true);
  ASSERT_TRUE(wav.ok());
  EXPECT_EQ(wav->Copy(0, 10).size(), kWavHeaderBytes + 20);
  EXPECT_EQ(wav->Copy(10, 30).size(), 40u);
}

}  // namespace
}  // namespace ttsbench::synth
