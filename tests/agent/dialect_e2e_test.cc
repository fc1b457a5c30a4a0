// Every dialect and transport end to end: the real load engine against the synthetic server on
// loopback, streamed and not, over TLS, with exact audio durations and TTFA at the first audio.
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "synth/synth_server.h"
#include "synth/tls_cert.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

// Fast enough that the suite stays short, slow enough that TTFA is visibly before the end.
synth::SynthOptions Options() {
  synth::SynthOptions o;
  o.model.base_ms = 10;
  o.model.per_char_ms = 0.4;
  o.model.first_chunk_ms = 15;
  o.model.chunk_ms = 200;
  return o;
}

struct Server : LoopbackSynth {
  explicit Server(synth::SynthOptions o = Options()) : LoopbackSynth(std::move(o)) {}
  // Exact duration of the synthetic answer to kText at `rate`.
  double Seconds(int rate = 0, double speed = 1) const {
    const double s = synth::AudioSeconds(options.model, synth::CountCharacters(kText), speed);
    const int r = rate > 0 ? rate : options.model.sample_rate;
    return static_cast<double>(std::llround(s * r)) / r;
  }
};

RunSpec Spec(const Server& s, const std::string& api, const std::string& format = "wav") {
  RunSpec spec;
  spec.target.set_url(s.url());
  spec.target.set_api(api);
  spec.target.set_format(format);
  spec.target.set_voice("default");
  spec.iterations = 2;
  return spec;
}

void ExpectAllOk(const std::vector<v1::RequestRecord>& records, size_t n, double seconds,
                 double tolerance_s, const std::string& what) {
  ASSERT_EQ(records.size(), n) << what;
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE) << what << ": " << r.DebugString();
    EXPECT_NEAR(r.audio_s(), seconds, tolerance_s) << what;
    EXPECT_GT(r.first_audio_ns(), 0) << what;
    EXPECT_LE(r.start_ns(), r.first_byte_ns()) << what;
    EXPECT_LE(r.first_byte_ns(), r.first_audio_ns()) << what;
    EXPECT_LE(r.first_audio_ns(), r.end_ns()) << what;
  }
}

TEST(DialectE2eTest, OpenAiEveryFormatStreamedAndNot) {
  Server s;
  // Within one codec frame: MP3 1152 samples, AAC 1024, Opus 20 ms, FLAC and Vorbis a block;
  // PCM exact.
  const std::vector<std::pair<std::string, double>> formats = {
      {"wav", 1e-9},  {"pcm", 1e-9},  {"ulaw", 1e-9},         {"mp3", 0.048},
      {"flac", 0.02}, {"opus", 0.02}, {"aac", 1024.0 / 24000}};
  for (const auto& [format, tolerance] : formats) {
    for (bool streaming : {false, true}) {
      RunSpec spec = Spec(s, "openai", format);
      spec.target.set_streaming(streaming);
      const auto records = RunLoad(spec).records;
      ExpectAllOk(records, 2, s.Seconds(), tolerance, format + (streaming ? " streamed" : ""));
      for (const auto& r : records) {
        EXPECT_EQ(r.sample_rate(), format == "opus" ? 48000 : 24000) << format;
        if (streaming) {
          EXPECT_GT(r.chunks(), 1) << format;
          EXPECT_TRUE(r.streamed());
        }
      }
    }
  }
}

TEST(DialectE2eTest, OpenAiSpeedChangesTheAudioLength) {
  Server s;
  RunSpec spec = Spec(s, "openai", "pcm");
  spec.target.set_speed(2);
  ExpectAllOk(RunLoad(spec).records, 2, s.Seconds(0, 2), 1e-9, "speed 2");
}

TEST(DialectE2eTest, OpenAiSseTtfaIsTheFirstAudioDeltaNotTheFirstByte) {
  Server s;
  for (const std::string format : {"pcm", "wav", "mp3"}) {
    RunSpec spec = Spec(s, "openai", format);
    spec.target.set_stream_format("sse");
    const auto records = RunLoad(spec).records;
    ExpectAllOk(records, 2, s.Seconds(), format == "mp3" ? 0.048 : 1e-9, "sse " + format);
    for (const auto& r : records) {
      EXPECT_TRUE(r.streamed());
      EXPECT_GT(r.chunks(), 1);
      // The stream opens (a comment) with the headers; audio follows first_chunk_ms (15 ms)
      // after the request arrived, whatever the server spent encoding before the headers.
      EXPECT_LT(r.first_byte_ns(), r.first_audio_ns()) << format;
      EXPECT_GE(r.first_audio_ns() - r.start_ns(), 14'000'000) << format;
      EXPECT_LT(r.first_audio_ns(), r.end_ns());
    }
  }
}

TEST(DialectE2eTest, TorchInferenceJsonStreamAndLegacy) {
  Server s;
  RunSpec spec = Spec(s, "torch-inference");
  auto json = RunLoad(spec).records;
  ExpectAllOk(json, 2, s.Seconds(), 1e-9, "json");
  for (const auto& r : json) EXPECT_EQ(r.first_audio_ns(), r.end_ns());
  spec.target.set_streaming(true);
  auto stream = RunLoad(spec).records;
  ExpectAllOk(stream, 2, s.Seconds(), 1e-9, "stream");
  for (const auto& r : stream) EXPECT_LT(r.first_audio_ns(), r.end_ns());
  spec.target.set_streaming(false);
  spec.target.set_path("/synthesize");
  spec.target.set_model("synth");
  ExpectAllOk(RunLoad(spec).records, 2, s.Seconds(), 1e-9, "legacy");
}

TEST(DialectE2eTest, TorchInferenceWebSocketKeepsOneSessionPerUser) {
  for (const std::string encoding : {"pcm_f32le", "pcm_s16le"}) {
    synth::SynthOptions o = Options();
    o.ws_encoding = encoding;
    Server s(o);
    RunSpec spec = Spec(s, "torch-inference");
    spec.target.set_stream_format("ws");
    spec.concurrency = 2;
    spec.iterations = 6;
    spec.warmup = 2;
    spec.threads = 2;
    const auto result = RunLoad(spec);
    ExpectAllOk(result.records, 6, s.Seconds(), 1e-9, encoding);
    EXPECT_EQ(result.connections_after_warmup, 2);
    for (const auto& r : result.records) {
      EXPECT_EQ(r.connect_ns(), 0) << "measured request opened a socket";
      EXPECT_EQ(r.http_status(), 101);
      EXPECT_TRUE(r.streamed());
      EXPECT_GT(r.chunks(), 1);
      EXPECT_EQ(r.sample_rate(), 24000);
      // The tts_meta message comes first: TTFA is the first binary frame, after it.
      EXPECT_GT(r.first_audio_ns(), r.first_byte_ns());
    }
    const synth::SynthStats st = s.server->stats();
    EXPECT_EQ(st.websocket_sessions, 2u);
    EXPECT_EQ(st.websocket_requests, 8u);
  }
}

TEST(DialectE2eTest, CoquiOpenTtsAndPiperGetWav) {
  Server s;
  for (const std::string api : {"coqui", "opentts", "piper"}) {
    RunSpec spec = Spec(s, api);
    spec.concurrency = 2;
    spec.iterations = 4;
    ExpectAllOk(RunLoad(spec).records, 4, s.Seconds(), 1e-9, api);
  }
}

TEST(DialectE2eTest, ElevenLabsHttpAndWebSocket) {
  Server s;
  for (const auto& [format, rate, tolerance] : std::vector<std::tuple<std::string, int, double>>{
           {"mp3", 44100, 1152.0 / 44100}, {"pcm", 16000, 1e-9}, {"ulaw", 8000, 1e-9}}) {
    for (const std::string mode : {"", "stream", "ws"}) {
      RunSpec spec = Spec(s, "elevenlabs", format);
      spec.target.set_voice("21m00Tcm4TlvDq8ikWAM");
      if (format == "pcm") spec.target.set_sample_rate(16000);
      spec.target.set_streaming(mode == "stream");
      if (mode == "ws") spec.target.set_stream_format("ws");
      const auto records = RunLoad(spec).records;
      ExpectAllOk(records, 2, s.Seconds(rate), tolerance, format + " " + mode);
      for (const auto& r : records) {
        EXPECT_EQ(r.sample_rate(), rate);
        // stream-input is one socket per request: its set-up is every request's connect time.
        if (mode == "ws") {
          EXPECT_GT(r.connect_ns(), 0);
        }
      }
    }
  }
  EXPECT_EQ(s.server->stats().websocket_sessions, 6u);
}

TEST(DialectE2eTest, TemplatesReachEveryAudioLocation) {
  Server s;
  RunSpec spec = Spec(s, "template", "pcm");
  v1::RequestTemplate& t = *spec.target.mutable_request_template();
  // Raw body (OpenAI's endpoint described as a template).
  t.set_path("/v1/audio/speech");
  t.set_body(R"({"input":"{text}","voice":"{voice}","response_format":"{format}","stream":true})");
  ExpectAllOk(RunLoad(spec).records, 2, s.Seconds(), 1e-9, "template body");
  // Base64 in a JSON field (torch-inference /tts/synthesize).
  spec.target.set_format("wav");
  t.set_path("/tts/synthesize");
  t.set_body(R"({"text":"{text}"})");
  t.set_audio("json");
  t.set_audio_field("audio_base64");
  ExpectAllOk(RunLoad(spec).records, 2, s.Seconds(), 1e-9, "template json");
  // SSE events.
  spec.target.set_format("pcm");
  t.set_path("/v1/audio/speech");
  t.set_body(R"({"input":"{text}","response_format":"pcm","stream_format":"sse"})");
  t.set_audio("sse");
  t.set_audio_field("audio");
  t.set_done("type=speech.audio.done");
  ExpectAllOk(RunLoad(spec).records, 2, s.Seconds(), 1e-9, "template sse");
  // WebSocket frames (torch-inference /audio/ws).
  t.set_path("/audio/ws");
  t.clear_body();
  t.set_audio("websocket");
  t.set_done("type=tts_done");
  t.add_messages(R"({"type":"tts","text":"{text}"})");
  auto ws = RunLoad(spec).records;
  ExpectAllOk(ws, 2, s.Seconds(), 1e-9, "template websocket");
}

// ------------------------------------------------------------------------------------- TLS

// A synthetic server with a certificate made now for `names`, and the CA file that trusts it.
struct TlsServer : Server {
  struct Made {
    synth::SynthOptions options;
    std::string ca_file;
  };
  static Made WithCert(const std::vector<std::string>& names) {
    Made m{Options(), ""};
    auto pem = synth::MakeSelfSignedCertificate(names);
    EXPECT_TRUE(pem.ok()) << pem.status();
    m.options.tls_cert_pem = pem->cert;
    m.options.tls_key_pem = pem->key;
    m.ca_file = WriteTempFile("ttsbench-ca-" + names[0] + ".pem", pem->cert);
    return m;
  }
  explicit TlsServer(const std::vector<std::string>& names = {"localhost", "127.0.0.1"})
      : TlsServer(WithCert(names)) {}
  explicit TlsServer(Made m) : Server(m.options), ca_file(m.ca_file) {}
  std::string ca_file;
};

TEST(DialectE2eTest, TlsForHttpSseAndWebSocketWithVerifiedCertificates) {
  TlsServer s;
  struct Case {
    std::string api, format, stream_format;
    bool streaming;
  };
  const std::vector<Case> cases = {{"openai", "wav", "", false},
                                   {"openai", "pcm", "", true},
                                   {"openai", "pcm", "sse", false},
                                   {"torch-inference", "pcm", "ws", false},
                                   {"elevenlabs", "pcm", "ws", false}};
  for (const Case& c : cases) {
    for (const std::string host : {"127.0.0.1", "localhost"}) {
      RunSpec spec = Spec(s, c.api, c.format);
      spec.target.set_url("https://" + host + ":" + std::to_string(s.server->port()));
      spec.target.set_ca_file(s.ca_file);
      spec.target.set_streaming(c.streaming);
      spec.target.set_stream_format(c.stream_format);
      if (c.api == "elevenlabs") spec.target.set_sample_rate(24000);
      const auto records = RunLoad(spec).records;
      ExpectAllOk(records, 2, s.Seconds(), 1e-9, c.api + " " + c.stream_format + " " + host);
      // The first request paid the TLS handshake, counted as connect time.
      ASSERT_FALSE(records.empty());
    }
  }
  EXPECT_GE(s.server->stats().tls_connections, cases.size() * 2);
}

TEST(DialectE2eTest, TlsHandshakeIsConnectTimeOnPerRequestConnections) {
  TlsServer s;
  RunSpec spec = Spec(s, "openai");
  spec.target.set_url(s.url("https"));
  spec.target.set_ca_file(s.ca_file);
  spec.keepalive = false;
  spec.iterations = 3;
  const auto records = RunLoad(spec).records;
  ExpectAllOk(records, 3, s.Seconds(), 1e-9, "per request");
  for (const auto& r : records) EXPECT_GT(r.connect_ns(), 0);
  EXPECT_EQ(s.server->stats().tls_connections, 3u);
}

TEST(DialectE2eTest, UntrustedOrMismatchedCertificatesAreTlsErrorsUnlessInsecure) {
  TlsServer s;
  TlsServer other(std::vector<std::string>{"other.example"});
  for (const std::string stream_format : {"", "ws"}) {
    RunSpec spec = Spec(s, "torch-inference");
    spec.target.set_stream_format(stream_format);
    spec.target.set_url(s.url("https"));
    // No ca_file: a self-signed certificate is not in the system store.
    for (const auto& r : RunLoad(spec).records) {
      EXPECT_EQ(r.error(), v1::ERROR_TLS) << r.DebugString();
      EXPECT_EQ(r.error_detail(), "certificate verify failed: self-signed certificate");
      EXPECT_GT(r.connect_ns(), 0);
    }
    // Trusted, but made for another name.
    spec.target.set_url(other.url("https"));
    spec.target.set_ca_file(other.ca_file);
    for (const auto& r : RunLoad(spec).records) {
      EXPECT_EQ(r.error(), v1::ERROR_TLS);
      EXPECT_THAT(r.error_detail(), ::testing::StartsWith("certificate verify failed: "));
      EXPECT_THAT(r.error_detail(), ::testing::HasSubstr("mismatch"));
    }
    // Verification off by explicit choice.
    spec.target.set_ca_file("");
    spec.target.set_insecure(true);
    ExpectAllOk(RunLoad(spec).records, 2, other.Seconds(), 1e-9, "insecure");
  }
}

TEST(DialectE2eTest, PlainHttpToATlsOnlyPortOrTlsToPlainIsClassified) {
  Server plain;
  RunSpec spec = Spec(plain, "openai");
  spec.target.set_url(plain.url("https"));
  spec.target.set_insecure(true);
  for (const auto& r : RunLoad(spec).records) {
    EXPECT_EQ(r.error(), v1::ERROR_TLS);
    EXPECT_THAT(r.error_detail(), ::testing::HasSubstr("TLS handshake: wrong version number"));
  }
}

TEST(DialectE2eTest, CaFileThatCannotBeLoadedIsAConfigurationError) {
  v1::Target t;
  t.set_api("openai");
  t.set_format("wav");
  t.set_ca_file("/nonexistent/ca.pem");
  auto d = MakeDialect(t, *common::ParseUrl("https://127.0.0.1:1"), {});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("/nonexistent/ca.pem"), absl::string_view::npos);
  // Plain HTTP never reads it.
  EXPECT_TRUE(MakeDialect(t, *common::ParseUrl("http://127.0.0.1:1"), {}).ok());
}

// ------------------------------------------------------------------------------------- auth

TEST(DialectE2eTest, SecretHeadersAuthenticateHttpAndWebSocket) {
  synth::SynthOptions o = Options();
  o.api_key = "k-123";
  Server s(o);
  struct Case {
    std::string api, stream_format, header, value;
  };
  for (const Case& c : std::vector<Case>{{"openai", "", "Authorization", "Bearer k-123"},
                                         {"openai", "sse", "X-API-Key", "k-123"},
                                         {"torch-inference", "ws", "Authorization", "Token k-123"},
                                         {"elevenlabs", "ws", "xi-api-key", "k-123"},
                                         {"elevenlabs", "", "xi-api-key", "k-123"}}) {
    RunSpec spec = Spec(s, c.api, c.api == "elevenlabs" ? "pcm" : "wav");
    spec.target.set_stream_format(c.stream_format);
    spec.iterations = 1;
    const auto denied = RunLoad(spec).records;
    ASSERT_EQ(denied.size(), 1u);
    EXPECT_EQ(denied[0].error(), v1::ERROR_HTTP_4XX) << c.api << " " << c.stream_format;
    EXPECT_EQ(denied[0].http_status(), 401);
    spec.secrets = {H(c.header, c.value)};
    const auto allowed = RunLoad(spec).records;
    ASSERT_EQ(allowed.size(), 1u);
    EXPECT_EQ(allowed[0].error(), v1::ERROR_NONE) << c.api << " " << c.stream_format;
  }
}

// ------------------------------------------------------------------------------------- faults

TEST(DialectE2eTest, InjectedFaultsOnStreamsAreClassified) {
  synth::SynthOptions o = Options();
  o.truncate_rate = 1;
  Server s(o);
  for (const auto& [api, sf] : std::vector<std::pair<std::string, std::string>>{
           {"openai", "sse"}, {"torch-inference", "ws"}, {"elevenlabs", "ws"}}) {
    RunSpec spec = Spec(s, api, "pcm");
    spec.target.set_stream_format(sf);
    for (const auto& r : RunLoad(spec).records) {
      EXPECT_EQ(r.error(), v1::ERROR_READ) << api << " " << sf << ": " << r.DebugString();
    }
  }
  o.truncate_rate = 0;
  o.error_rate = 1;
  Server e(o);
  for (const auto& [api, sf] : std::vector<std::pair<std::string, std::string>>{
           {"torch-inference", "ws"}, {"elevenlabs", "ws"}}) {
    RunSpec spec = Spec(e, api, "pcm");
    spec.target.set_stream_format(sf);
    for (const auto& r : RunLoad(spec).records) {
      EXPECT_EQ(r.error(), v1::ERROR_PROTOCOL) << api << ": " << r.DebugString();
    }
  }
}

}  // namespace
}  // namespace ttsbench::agent::testing
