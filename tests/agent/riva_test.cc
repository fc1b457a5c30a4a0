// api: riva — the request mapping, and the load engine's gRPC connection against the synthetic
// server's Riva service (unary, streaming, TLS, metadata, status errors, deadlines).
#include <grpcpp/grpcpp.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "absl/strings/match.h"
#include "agent/client/riva_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "synth/latency_model.h"
#include "synth/riva_service.h"
#include "synth/tls_cert.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent {
namespace {

using ::testing::HasSubstr;
using testing::kText;
using ::testing::Not;
using testing::RunLoad;
using testing::RunSpec;

v1::Target RivaTarget(const std::string& url, bool streaming = false) {
  v1::Target t;
  t.set_api("riva");
  t.set_url(url);
  t.set_format("pcm");
  t.set_streaming(streaming);
  return t;
}

// The exact audio length the synthetic server makes for `text` at `rate`.
double ExpectedSeconds(const synth::LatencyModel& model, const std::string& text, int rate) {
  synth::LatencyModel m = model;
  m.sample_rate = rate;
  return static_cast<double>(synth::AudioSamples(m, synth::CountCharacters(text))) / rate;
}

struct Riva {
  explicit Riva(synth::RivaOptions o = {}) : options(std::move(o)) {
    auto s = synth::RivaServer::Start(options);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) server = std::move(*s);
  }
  std::string url(const std::string& scheme = "grpc") const {
    return scheme + "://127.0.0.1:" + std::to_string(server->port());
  }
  synth::RivaOptions options;
  std::unique_ptr<synth::RivaServer> server;
};

// ------------------------------------------------------------------ request building, mapping

TEST(RivaMapping, FormatSelectsTheEncoding) {
  EXPECT_EQ(*RivaEncoding("pcm"), nvidia::riva::LINEAR_PCM);
  EXPECT_EQ(*RivaEncoding("opus"), nvidia::riva::OGGOPUS);
  EXPECT_EQ(*RivaEncoding("ogg"), nvidia::riva::OGGOPUS);
  auto wav = RivaEncoding("wav");
  ASSERT_FALSE(wav.ok());
  EXPECT_THAT(std::string(wav.status().message()), HasSubstr("pcm: LINEAR_PCM"));
}

TEST(RivaMapping, RequestTakesDefaultsWhereThePlanSaysNothing) {
  auto req = RivaRequest(RivaTarget("grpc://h:1"), "Hello.");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->text(), "Hello.");
  EXPECT_EQ(req->language_code(), "en-US");
  EXPECT_EQ(req->encoding(), nvidia::riva::LINEAR_PCM);
  EXPECT_EQ(req->sample_rate_hz(), kRivaDefaultSampleRate);
  EXPECT_EQ(req->voice_name(), "");
}

TEST(RivaMapping, RequestCarriesVoiceLanguageRateAndEncoding) {
  v1::Target t = RivaTarget("grpc://h:1");
  t.set_voice("English-US.Female-1");
  t.set_language("de-DE");
  t.set_sample_rate(22050);
  t.set_format("opus");
  auto req = RivaRequest(t, "Hallo.");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->voice_name(), "English-US.Female-1");
  EXPECT_EQ(req->language_code(), "de-DE");
  EXPECT_EQ(req->sample_rate_hz(), 22050);
  EXPECT_EQ(req->encoding(), nvidia::riva::OGGOPUS);
}

TEST(RivaMapping, PreparedWireIsTheSerializedRequest) {
  v1::Target t = RivaTarget("grpc://127.0.0.1:50051");
  t.set_voice("v");
  auto url = common::ParseUrl(t.url());
  ASSERT_TRUE(url.ok());
  auto dialect = MakeDialect(t, *url, {});
  ASSERT_TRUE(dialect.ok()) << dialect.status();
  auto prepared = (*dialect)->Prepare("Grüße aus Köln.");
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared->chars, 15);
  nvidia::riva::tts::SynthesizeSpeechRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(prepared->wire));
  EXPECT_EQ(parsed.text(), "Grüße aus Köln.");
  EXPECT_EQ(parsed.voice_name(), "v");
  EXPECT_EQ((*dialect)->transport().kind, TransportSpec::Kind::kGrpc);
  EXPECT_EQ((*dialect)->transport().grpc_target, "127.0.0.1:50051");
}

TEST(RivaMapping, DialectRefusesWhatRivaCannotDo) {
  auto refuse = [](v1::Target t) {
    auto url = common::ParseUrl(t.url());
    if (!url.ok()) return std::string(url.status().message());
    auto d = MakeDialect(t, *url, {});
    return d.ok() ? std::string() : std::string(d.status().message());
  };
  EXPECT_THAT(refuse(RivaTarget("http://h:1")), HasSubstr("grpc:// or grpcs://"));
  v1::Target wav = RivaTarget("grpc://h:1");
  wav.set_format("wav");
  EXPECT_THAT(refuse(wav), HasSubstr("not a Riva encoding"));
  EXPECT_THAT(refuse(RivaTarget("grpc://h:1/base")), HasSubstr("no path"));
  v1::Target sse = RivaTarget("grpc://h:1");
  sse.set_stream_format("sse");
  EXPECT_FALSE(refuse(sse).empty());
}

TEST(RivaMapping, MetadataNamesAreLowercasedAndSecretsNeverEchoed) {
  auto md = GrpcMetadata({testing::H("Authorization", "Bearer k"), testing::H("Function-ID", "f")});
  ASSERT_TRUE(md.ok());
  ASSERT_EQ(md->size(), 2u);
  EXPECT_EQ((*md)[0].first, "authorization");
  EXPECT_EQ((*md)[0].second, "Bearer k");
  EXPECT_EQ((*md)[1].first, "function-id");
  auto bad = GrpcMetadata({testing::H("authorization", "Bearer secret\nvalue")});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("authorization"));
  EXPECT_THAT(std::string(bad.status().message()), Not(HasSubstr("secret")));
}

TEST(RivaMapping, StatusDetailNamesTheCodeAndKeepsTheMessagePrintable) {
  EXPECT_EQ(GrpcStatusDetail(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad\nkey")),
            "UNAUTHENTICATED (16): bad key");
  EXPECT_EQ(GrpcStatusDetail(grpc::Status(grpc::StatusCode::INTERNAL, "")), "INTERNAL (13)");
  const std::string long_message(1000, 'x');
  EXPECT_LT(GrpcStatusDetail(grpc::Status(grpc::StatusCode::UNKNOWN, long_message)).size(), 260u);
}

// ------------------------------------------------------------------ against the synthetic server

TEST(RivaTransport, UnaryAnswerIsOnePieceWithExactAudio) {
  Riva riva;
  RunSpec spec;
  spec.target = RivaTarget(riva.url());
  spec.iterations = 3;
  auto result = RunLoad(spec);
  ASSERT_EQ(result.records.size(), 3u);
  for (const auto& r : result.records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();
    EXPECT_FALSE(r.streamed());
    EXPECT_EQ(r.chunks(), 1);
    EXPECT_EQ(r.first_audio_ns(), r.end_ns());  // a whole answer: TTFA = latency
    EXPECT_EQ(r.sample_rate(), kRivaDefaultSampleRate);
    EXPECT_NEAR(r.audio_s(), ExpectedSeconds(riva.options.model, kText, 44100), 1e-9);
    EXPECT_EQ(r.bytes(), static_cast<int64_t>(r.audio_s() * 44100 + 0.5) * 2);
    EXPECT_EQ(r.grpc_status(), 0);
  }
  // Kept channels: one connection set-up, in warm-up, none in the measured requests.
  EXPECT_EQ(result.connections_after_warmup, 1);
  for (const auto& r : result.records) EXPECT_EQ(r.connect_ns(), 0);
}

TEST(RivaTransport, StreamingTimesEveryMessage) {
  synth::RivaOptions o;
  o.model.chunk_ms = 100;
  o.model.per_char_ms = 4;  // synthesis spread over the chunks
  Riva riva(o);
  RunSpec spec;
  spec.target = RivaTarget(riva.url(), /*streaming=*/true);
  spec.target.set_sample_rate(24000);
  spec.iterations = 2;
  auto result = RunLoad(spec);
  ASSERT_EQ(result.records.size(), 2u);
  const double expected = ExpectedSeconds(o.model, kText, 24000);
  for (const auto& r : result.records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();
    EXPECT_TRUE(r.streamed());
    EXPECT_NEAR(r.audio_s(), expected, 1e-9);
    EXPECT_EQ(r.chunks(), static_cast<int>(std::ceil(expected / 0.1 - 1e-9)));
    EXPECT_GT(r.first_audio_ns(), r.start_ns());
    EXPECT_LT(r.first_audio_ns(), r.end_ns());
    EXPECT_GT(r.max_gap_ms(), 0);
  }
  EXPECT_GT(result.gaps_us.count(), 0u);
}

TEST(RivaTransport, OggOpusIsMeasuredByTheOggMeter) {
  Riva riva;
  RunSpec spec;
  spec.target = RivaTarget(riva.url(), /*streaming=*/true);
  spec.target.set_format("opus");
  spec.target.set_sample_rate(48000);
  auto result = RunLoad(spec);
  ASSERT_EQ(result.records.size(), 1u);
  const auto& r = result.records[0];
  EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();
  EXPECT_NEAR(r.audio_s(), ExpectedSeconds(riva.options.model, kText, 48000), 0.03);
}

TEST(RivaTransport, TlsWithTheServersCaSucceedsAndWithoutItIsATlsError) {
  auto pem = synth::MakeSelfSignedCertificate({"localhost", "127.0.0.1"});
  ASSERT_TRUE(pem.ok());
  synth::RivaOptions o;
  o.tls_cert_pem = pem->cert;
  o.tls_key_pem = pem->key;
  Riva riva(o);
  RunSpec spec;
  spec.target = RivaTarget(riva.url("grpcs"), true);
  spec.target.set_ca_file(testing::WriteTempFile("riva-ca.pem", pem->cert));
  auto ok = RunLoad(spec);
  ASSERT_EQ(ok.records.size(), 1u);
  EXPECT_EQ(ok.records[0].error(), v1::ERROR_NONE) << ok.records[0].error_detail();

  spec.target.clear_ca_file();
  auto untrusted = RunLoad(spec);
  ASSERT_EQ(untrusted.records.size(), 1u);
  EXPECT_EQ(untrusted.records[0].error(), v1::ERROR_TLS) << untrusted.records[0].error_detail();

  spec.target.set_insecure(true);
  auto insecure = RunLoad(spec);
  ASSERT_EQ(insecure.records.size(), 1u);
  EXPECT_EQ(insecure.records[0].error(), v1::ERROR_NONE) << insecure.records[0].error_detail();
}

TEST(RivaTransport, RequiredMetadataWrongKeyIsAClassifiedStatusError) {
  synth::RivaOptions o;
  o.api_key = "right-key";
  o.function_id = "fn-123";
  Riva riva(o);
  RunSpec spec;
  spec.target = RivaTarget(riva.url(), true);
  spec.iterations = 2;
  spec.secrets = {testing::H("Authorization", "Bearer right-key"),
                  testing::H("function-id", "fn-123")};
  auto ok = RunLoad(spec);
  ASSERT_EQ(ok.records.size(), 2u);
  for (const auto& r : ok.records) EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();

  spec.secrets = {testing::H("Authorization", "Bearer wrong-key"),
                  testing::H("function-id", "fn-123")};
  auto wrong = RunLoad(spec);
  ASSERT_EQ(wrong.records.size(), 2u);  // every record kept
  for (const auto& r : wrong.records) {
    EXPECT_EQ(r.error(), v1::ERROR_GRPC_STATUS);
    EXPECT_EQ(r.grpc_status(), 16);
    EXPECT_THAT(r.error_detail(), HasSubstr("UNAUTHENTICATED (16)"));
    EXPECT_THAT(r.error_detail(), Not(HasSubstr("wrong-key")));
  }

  spec.secrets = {testing::H("Authorization", "Bearer right-key")};
  auto no_function = RunLoad(spec);
  ASSERT_EQ(no_function.records.size(), 2u);
  EXPECT_EQ(no_function.records[0].grpc_status(), 5);  // NOT_FOUND
  EXPECT_EQ(riva.server->stats().unauthenticated, 2u);
}

TEST(RivaTransport, ServerStatusErrorIsClassifiedWithCodeAndMessage) {
  synth::RivaOptions o;
  o.error_rate = 1;
  Riva riva(o);
  RunSpec spec;
  spec.target = RivaTarget(riva.url(), true);
  spec.iterations = 3;
  auto result = RunLoad(spec);
  ASSERT_EQ(result.records.size(), 3u);
  for (const auto& r : result.records) {
    EXPECT_EQ(r.error(), v1::ERROR_GRPC_STATUS);
    EXPECT_EQ(r.grpc_status(), 13);
    EXPECT_THAT(r.error_detail(), HasSubstr("INTERNAL (13): injected error"));
  }
  // A refused request is an answer on a working channel: it stays open.
  EXPECT_EQ(result.records[1].connect_ns(), 0);
}

TEST(RivaTransport, DeadlineIsATimeoutThatKeepsTheAudioReceived) {
  synth::RivaOptions o;
  o.model.first_chunk_ms = 10;
  o.model.per_char_ms = 60;  // about 3.5 s of synthesis, the first chunk at once
  o.model.chunk_ms = 100;
  Riva riva(o);
  RunSpec spec;
  spec.target = RivaTarget(riva.url(), true);
  spec.timeout_s = 0.6;
  spec.iterations = 1;
  const int64_t t0 = common::SteadyNowNs();
  auto result = RunLoad(spec);
  ASSERT_EQ(result.records.size(), 1u);
  const auto& r = result.records[0];
  EXPECT_EQ(r.error(), v1::ERROR_TIMEOUT) << r.error_detail();
  EXPECT_THAT(r.error_detail(), HasSubstr("--timeout 0.6s"));
  EXPECT_GE(r.chunks(), 1);
  EXPECT_GT(r.audio_s(), 0);
  EXPECT_GT(r.first_audio_ns(), 0);
  EXPECT_LT(common::SteadyNowNs() - t0, 5'000'000'000);  // cut at the deadline, not at the end
}

TEST(RivaTransport, NothingListeningIsAConnectError) {
  // A port that was free a moment ago.
  int port = 0;
  {
    Riva riva;
    port = riva.server->port();
  }
  RunSpec spec;
  spec.target = RivaTarget("grpc://127.0.0.1:" + std::to_string(port));
  spec.timeout_s = 2;
  auto result = RunLoad(spec);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].error(), v1::ERROR_CONNECT) << result.records[0].error_detail();
}

TEST(RivaTransport, ClosingMidStreamCancelsTheCallAndRecordsCancelled) {
  synth::RivaOptions o;
  o.model.first_chunk_ms = 5;
  o.model.per_char_ms = 100;  // a stream of several seconds
  Riva riva(o);
  v1::Target t = RivaTarget(riva.url(), true);
  auto url = common::ParseUrl(t.url());
  ASSERT_TRUE(url.ok());
  auto dialect = MakeDialect(t, *url, {});
  ASSERT_TRUE(dialect.ok()) << dialect.status();
  auto req = (*dialect)->Prepare(kText);
  ASSERT_TRUE(req.ok());
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::resolver resolver(ioc);
  const Endpoints endpoints = resolver.resolve("127.0.0.1", std::to_string(riva.server->port()));
  auto conn = MakeConnection(ioc, (*dialect)->transport(), nullptr);
  std::atomic<bool> stopping{false};
  v1::RequestRecord rec;
  rec.set_streamed(true);
  boost::asio::steady_timer stop(ioc);
  boost::asio::co_spawn(
      ioc,
      [&]() -> boost::asio::awaitable<void> {
        const OpenResult open = co_await conn->Open(endpoints, std::chrono::seconds(5));
        EXPECT_EQ(open.error, v1::ERROR_NONE) << open.detail;
        // The run ends the level while the answer streams (CancelPhase: stopping, then Close).
        stop.expires_after(std::chrono::milliseconds(300));
        stop.async_wait([&](const boost::system::error_code&) {
          stopping = true;
          conn->Close();
        });
        ExchangeContext ctx{**dialect, rec, nullptr, true, stopping, std::chrono::seconds(10)};
        co_await conn->Exchange(*req, ctx);
      },
      boost::asio::detached);
  const int64_t t0 = common::SteadyNowNs();
  ioc.run();
  EXPECT_LT(common::SteadyNowNs() - t0, 3'000'000'000);  // not the stream's whole length
  EXPECT_EQ(rec.error(), v1::ERROR_CANCELLED) << rec.error_detail();
  EXPECT_GE(rec.chunks(), 1);  // what arrived before is kept
  EXPECT_FALSE(conn->is_open());
  // The server saw the cancel.
  for (int i = 0; i < 100 && riva.server->stats().cancelled == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(riva.server->stats().cancelled, 1u);
}

TEST(RivaTransport, ConcurrentUsersEachGetTheirAnswers) {
  Riva riva;
  RunSpec spec;
  spec.target = RivaTarget(riva.url(), true);
  spec.concurrency = 4;
  spec.threads = 2;
  spec.iterations = 12;
  auto result = RunLoad(spec);
  ASSERT_EQ(result.records.size(), 12u);
  for (const auto& r : result.records) EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();
  EXPECT_EQ(result.connections_after_warmup, 4);
}

}  // namespace
}  // namespace ttsbench::agent
