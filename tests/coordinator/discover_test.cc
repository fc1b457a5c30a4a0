#include "coordinator/discover/discover.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "synth/synth_server.h"
#include "synth/tls_cert.h"

namespace ttsbench::coordinator {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// A loopback HTTP/1.1 server answering every request with `handler`: the servers that are not
// the synthetic one (no TTS at all, one dialect only).
class FakeServer {
 public:
  explicit FakeServer(std::function<Response(const Request&)> handler)
      : handler_(std::move(handler)),
        acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    net::co_spawn(ioc_, Accept(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~FakeServer() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  // Errors end the connection quietly: an exception would escape ioc_.run() on the thread.
  net::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) co_return;
      net::co_spawn(ioc_, Serve(std::move(socket)), net::detached);
    }
  }
  net::awaitable<void> Serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    Request req;
    if (auto [ec, n] = co_await http::async_read(socket, buffer, req, kUseTuple); ec) co_return;
    Response res = handler_(req);
    res.keep_alive(false);
    res.prepare_payload();
    co_await http::async_write(socket, res, kUseTuple);
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  std::function<Response(const Request&)> handler_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

Response NotFound(const Request& req) {
  Response res{http::status::not_found, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.body() = "not found";
  return res;
}

// Half a second of silence, 16 kHz s16le mono, as a canonical WAV.
std::string SilenceWav() {
  constexpr uint32_t kRate = 16000, kBytes = kRate;  // 8000 samples
  auto le32 = [](uint32_t v) {
    return std::string{static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 24)};
  };
  auto le16 = [](uint16_t v) {
    return std::string{static_cast<char>(v), static_cast<char>(v >> 8)};
  };
  return absl::StrCat("RIFF", le32(36 + kBytes), "WAVEfmt ", le32(16), le16(1), le16(1),
                      le32(kRate), le32(2 * kRate), le16(2), le16(16), "data", le32(kBytes),
                      std::string(kBytes, '\0'));
}

const EndpointProbe* Find(const DiscoveryResult& r, absl::string_view dialect,
                          absl::string_view path, absl::string_view variant = "") {
  for (const EndpointProbe& p : r.probes) {
    if (p.dialect == dialect && p.path == path && (variant.empty() || p.variant == variant)) {
      return &p;
    }
  }
  return nullptr;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// One discovery of the synthetic server, shared by the tests that only read it.
class SynthDiscoveryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    synth::SynthOptions options;
    auto server = synth::SynthServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server).release();
    DiscoverOptions discover;
    discover.url = absl::StrCat("http://127.0.0.1:", server_->port());
    discover.timeout_s = 3;
    v1::Header auth;
    auth.set_name("Authorization");
    auth.set_value("Bearer sk-very-secret-123");
    discover.headers.push_back(auth);
    discover.auth_flags = "--auth-token-env TTS_TOKEN";
    const Clock::time_point start = Clock::now();
    auto result = Discover(discover);
    elapsed_s_ = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_TRUE(result.ok()) << result.status();
    result_ = new DiscoveryResult(std::move(*result));
    std::cout << DiscoveryTable(*result_);  // what `ttsbench discover` prints, for the log
  }
  static void TearDownTestSuite() {
    delete result_;
    delete server_;
  }
  void SetUp() override { ASSERT_NE(result_, nullptr); }

  static synth::SynthServer* server_;
  static DiscoveryResult* result_;
  static double elapsed_s_;
};

synth::SynthServer* SynthDiscoveryTest::server_ = nullptr;
DiscoveryResult* SynthDiscoveryTest::result_ = nullptr;
double SynthDiscoveryTest::elapsed_s_ = 0;

TEST_F(SynthDiscoveryTest, FindsOpenAiAndTorchInferenceEndpointsWithAudio) {
  const DiscoveryResult& r = *result_;
  for (auto [dialect, path, variant, streaming] :
       {std::tuple{"openai", "/v1/audio/speech", "wav", false},
        std::tuple{"openai", "/v1/audio/speech", "stream", true},
        std::tuple{"torch-inference", "/tts/synthesize", "base64", false},
        std::tuple{"torch-inference", "/tts/stream", "stream", true}}) {
    SCOPED_TRACE(absl::StrCat(dialect, " ", path, " ", variant));
    const EndpointProbe* p = Find(r, dialect, path, variant);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->working) << p->why;
    EXPECT_EQ(p->kind, "speech");
    EXPECT_EQ(p->http_status, 200);
    EXPECT_GT(p->audio_s, 0.5);  // 30 characters at 0.06 s each
    EXPECT_EQ(p->sample_rate, 24000);
    EXPECT_EQ(p->streaming, streaming);
    EXPECT_GT(p->first_audio_ms, 0);
    EXPECT_LE(p->first_audio_ms, p->total_ms);
    EXPECT_FALSE(p->formats.empty());
    EXPECT_FALSE(p->server_flags.empty());
  }
  // Formats beyond wav are tried on the OpenAI endpoint and listed when they answer audio.
  const EndpointProbe* wav = Find(r, "openai", "/v1/audio/speech", "wav");
  EXPECT_EQ(wav->formats.front(), "wav");
  EXPECT_TRUE(Contains(wav->formats, "pcm"));
  EXPECT_EQ(Find(r, "torch-inference", "/tts/stream")->formats, std::vector<std::string>{"pcm"});
  EXPECT_TRUE(Find(r, "torch-inference", "/health")->working);
}

TEST_F(SynthDiscoveryTest, FindsEveryDialectTheSyntheticServerSpeaks) {
  for (auto [dialect, path, variant] :
       {std::tuple{"openai", "/v1/audio/speech", "sse"},
        std::tuple{"torch-inference", "/audio/ws", "websocket"},
        std::tuple{"torch-inference", "/synthesize", "base64"},
        std::tuple{"coqui", "/api/tts", "wav"}, std::tuple{"opentts", "/api/tts", "wav"},
        std::tuple{"piper", "/synthesize", "wav"},
        std::tuple{"elevenlabs", "/v1/text-to-speech/default/stream", "stream"}}) {
    SCOPED_TRACE(absl::StrCat(dialect, " ", path, " ", variant));
    const EndpointProbe* p = Find(*result_, dialect, path, variant);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->working) << p->why;
    EXPECT_GT(p->audio_s, 0.5);
    EXPECT_GT(p->first_audio_ms, 0);
  }
  const EndpointProbe* sse = Find(*result_, "openai", "/v1/audio/speech", "sse");
  EXPECT_TRUE(sse->streaming);
  EXPECT_TRUE(
      absl::EndsWith(sse->server_flags, "--format pcm --stream-format sse --sample-rate 24000"))
      << sse->server_flags;
  const EndpointProbe* ws = Find(*result_, "torch-inference", "/audio/ws");
  EXPECT_TRUE(ws->streaming);
  EXPECT_TRUE(absl::EndsWith(ws->server_flags, "--format pcm --streaming --stream-format ws"))
      << ws->server_flags;
  EXPECT_TRUE(absl::StrContains(Find(*result_, "torch-inference", "/synthesize")->server_flags,
                                "--path /synthesize"));
}

TEST_F(SynthDiscoveryTest, ListsVoicesAndModels) {
  EXPECT_TRUE(Contains(result_->voices, "default"));
  EXPECT_TRUE(Contains(result_->voices, "fast"));
  EXPECT_TRUE(Contains(result_->voices, "premium"));
  EXPECT_TRUE(Contains(result_->models, "synth-tts-1"));
  const EndpointProbe* voices = Find(*result_, "openai", "/v1/audio/voices");
  ASSERT_NE(voices, nullptr);
  EXPECT_TRUE(voices->working) << voices->why;
  // The speech probes asked for a listed voice.
  EXPECT_EQ(Find(*result_, "openai", "/v1/audio/speech", "wav")->voice, "default");
}

TEST_F(SynthDiscoveryTest, MissingEndpointsSayWhy) {
  // Whatever the synthetic server does not serve (yet) is 404 or another clear reason, never
  // silently "working" without audio.
  for (const EndpointProbe& p : result_->probes) {
    SCOPED_TRACE(absl::StrCat(p.dialect, " ", p.method, " ", p.path, " ", p.variant));
    if (p.working) {
      EXPECT_TRUE(p.why.empty());
      if (p.kind == "speech") {
        EXPECT_GT(p.audio_s, 0);
      }
    } else {
      EXPECT_FALSE(p.why.empty());
      if (p.why == "404") {
        EXPECT_EQ(p.http_status, 404);
      }
    }
  }
}

TEST_F(SynthDiscoveryTest, SuggestsTheBestStreamingEndpointWithItsApi) {
  const DiscoveryResult& r = *result_;
  ASSERT_GE(r.best_probe, 0);
  const EndpointProbe& best = r.probes[r.best_probe];
  EXPECT_EQ(r.best_dialect, best.dialect);
  EXPECT_TRUE(r.best_dialect == "openai" || r.best_dialect == "torch-inference") << r.best_dialect;
  EXPECT_TRUE(best.streaming);
  // Streaming first, then the lowest first-audio time (near-ties go to the earlier probe).
  for (const EndpointProbe& p : r.probes) {
    if (p.working && p.kind == "speech" && p.streaming && !p.server_flags.empty()) {
      EXPECT_LE(best.first_audio_ms, std::max(p.first_audio_ms / 0.9, p.first_audio_ms + 2))
          << p.dialect << " " << p.path;
    }
  }
  const std::string url = absl::StrCat("http://127.0.0.1:", server_->port());
  EXPECT_TRUE(absl::StartsWith(r.suggested_command, absl::StrCat("ttsbench server --url ", url,
                                                                 " --api ", r.best_dialect, " ")))
      << r.suggested_command;
  EXPECT_TRUE(absl::StrContains(r.suggested_command, " --streaming")) << r.suggested_command;
  EXPECT_TRUE(absl::StrContains(r.suggested_command, " --format ")) << r.suggested_command;
  EXPECT_TRUE(absl::EndsWith(r.suggested_command, " --auth-token-env TTS_TOKEN"));
  const std::string table = DiscoveryTable(r);
  EXPECT_TRUE(absl::StrContains(table, r.suggested_command)) << table;
  EXPECT_TRUE(absl::StrContains(table, "best match: ")) << table;
}

TEST_F(SynthDiscoveryTest, WritesParseableDiscoveryJsonWithoutSecrets) {
  const std::string path =
      (std::filesystem::temp_directory_path() / absl::StrCat("discovery-", getpid(), ".json"))
          .string();
  ASSERT_TRUE(WriteDiscoveryJson(path, *result_).ok());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), &json).ok()) << text.str();
  const auto& f = json.fields();
  EXPECT_EQ(f.at("url").string_value(), absl::StrCat("http://127.0.0.1:", server_->port()));
  EXPECT_EQ(f.at("best_dialect").string_value(), result_->best_dialect);
  EXPECT_EQ(f.at("suggested_command").string_value(), result_->suggested_command);
  EXPECT_TRUE(f.at("tts_endpoint_found").bool_value());
  EXPECT_EQ(f.at("probes").list_value().values_size(), static_cast<int>(result_->probes.size()));
  EXPECT_GE(f.at("voices").list_value().values_size(), 3);
  const auto& first = f.at("probes").list_value().values(0).struct_value().fields();
  for (const char* key : {"dialect", "kind", "method", "path", "working", "why", "http_status",
                          "formats", "streaming", "sample_rate", "first_audio_ms", "audio_s"}) {
    EXPECT_TRUE(first.contains(key)) << key;
  }
  EXPECT_FALSE(absl::StrContains(text.str(), "sk-very-secret"));
  EXPECT_FALSE(absl::StrContains(DiscoveryTable(*result_), "sk-very-secret"));
}

TEST_F(SynthDiscoveryTest, StaysWellInsideTheBudget) { EXPECT_LT(elapsed_s_, 10); }

std::string WriteTemp(absl::string_view name, absl::string_view text) {
  const std::string path =
      (std::filesystem::temp_directory_path() / absl::StrCat(name, "-", getpid())).string();
  std::ofstream(path) << text;
  return path;
}

TEST(DiscoverTest, HttpsIsVerifiedAgainstTheGivenCa) {
  auto cert = synth::MakeSelfSignedCertificate({"127.0.0.1"});
  ASSERT_TRUE(cert.ok()) << cert.status();
  synth::SynthOptions synth_options;
  synth_options.tls_cert_pem = cert->cert;
  synth_options.tls_key_pem = cert->key;
  auto server = synth::SynthServer::Start(synth_options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string ca = WriteTemp("discover-ca.pem", cert->cert);
  DiscoverOptions options;
  options.url = absl::StrCat("https://127.0.0.1:", (*server)->port());

  // Not trusted: the host is there, but nothing can be said over it.
  auto untrusted = Discover(options);
  EXPECT_TRUE(absl::IsUnavailable(untrusted.status())) << untrusted.status();
  EXPECT_TRUE(absl::StrContains(untrusted.status().message(), "tls")) << untrusted.status();

  options.ca_file = ca;
  auto trusted = Discover(options);
  std::filesystem::remove(ca);
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  const EndpointProbe* p = Find(*trusted, "openai", "/v1/audio/speech", "stream");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->working) << p->why;
  EXPECT_FALSE(trusted->best_dialect.empty());
  EXPECT_TRUE(absl::EndsWith(trusted->suggested_command, absl::StrCat(" --ca-file ", ca)))
      << trusted->suggested_command;
  EXPECT_GT((*server)->stats().tls_connections, 15u);
}

TEST(DiscoverTest, MissingAuthIsReportedAsTheServersAnswer) {
  synth::SynthOptions synth_options;
  synth_options.api_key = "k-123";
  auto server = synth::SynthServer::Start(synth_options);
  ASSERT_TRUE(server.ok()) << server.status();
  DiscoverOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", (*server)->port());
  auto without = Discover(options);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_TRUE(without->best_dialect.empty());
  const EndpointProbe* p = Find(*without, "openai", "/v1/audio/speech", "wav");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->http_status, 401);
  EXPECT_TRUE(absl::StartsWith(p->why, "401")) << p->why;

  v1::Header auth;
  auth.set_name("Authorization");
  auth.set_value("Bearer k-123");
  options.headers.push_back(auth);
  auto with = Discover(options);
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_FALSE(with->best_dialect.empty());
  EXPECT_TRUE(Find(*with, "openai", "/v1/audio/speech", "wav")->working);
}

TEST(DiscoverTest, NamesTheOnlyDialectAServerSpeaks) {
  FakeServer piper([](const Request& req) {
    if (req.method() != http::verb::post || req.target() != "/synthesize") return NotFound(req);
    Response res{http::status::ok, req.version()};
    // Piper answers WAV under a generic type: the bytes say what it is.
    res.set(http::field::content_type, "application/octet-stream");
    res.body() = SilenceWav();
    return res;
  });
  DiscoverOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", piper.port(), "/");
  auto result = Discover(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->best_dialect, "piper");
  const EndpointProbe* p = Find(*result, "piper", "/synthesize");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->working) << p->why;
  EXPECT_FALSE(p->streaming);
  EXPECT_EQ(p->sample_rate, 16000);
  EXPECT_DOUBLE_EQ(p->audio_s, 0.5);
  // The same path, asked in torch-inference's older JSON shape, answers audio, not JSON.
  const EndpointProbe* legacy = Find(*result, "torch-inference", "/synthesize");
  ASSERT_NE(legacy, nullptr);
  EXPECT_FALSE(legacy->working);
  EXPECT_EQ(result->suggested_command, absl::StrCat("ttsbench server --url http://127.0.0.1:",
                                                    piper.port(), " --api piper --format wav"));
}

// A server at 22,050 Hz: SSE PCM names no rate, so the WAV answer of the same endpoint gives it;
// every measured duration is the true one and the suggestion names the rate.
TEST(DiscoverTest, RawPcmTakesItsRateFromTheServerNeverAGuess) {
  synth::SynthOptions so;
  so.model.sample_rate = 22050;
  auto server = synth::SynthServer::Start(so);
  ASSERT_TRUE(server.ok()) << server.status();
  DiscoverOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", (*server)->port());
  std::vector<int> best;
  for (int run = 0; run < 3; ++run) {
    auto result = Discover(options);
    ASSERT_TRUE(result.ok()) << result.status();
    const EndpointProbe* wav = Find(*result, "openai", "/v1/audio/speech", "wav");
    const EndpointProbe* sse = Find(*result, "openai", "/v1/audio/speech", "sse");
    ASSERT_TRUE(wav != nullptr && sse != nullptr && wav->working && sse->working);
    EXPECT_EQ(sse->sample_rate, 22050);
    EXPECT_EQ(sse->rate_source, "WAV answer of the same endpoint");
    EXPECT_NEAR(sse->audio_s, wav->audio_s, 1e-3);
    EXPECT_TRUE(absl::EndsWith(sse->server_flags, "--sample-rate 22050")) << sse->server_flags;
    for (const EndpointProbe& p : result->probes) {
      if (!p.working || p.kind != "speech") continue;
      SCOPED_TRACE(absl::StrCat(p.dialect, " ", p.path, " ", p.variant));
      EXPECT_FALSE(p.rate_source.empty());
      // ElevenLabs was asked for pcm_24000 and gets it; everything else is 22,050 Hz.
      EXPECT_EQ(p.sample_rate, p.dialect == "elevenlabs" ? 24000 : 22050);
      EXPECT_NEAR(p.audio_s, wav->audio_s, 1e-3);
    }
    EXPECT_TRUE(result->notes.empty());
    best.push_back(result->best_probe);
  }
  // A fixed rule: the same best match every time, whatever the timing noise.
  EXPECT_EQ(best, std::vector<int>(3, best[0]));
  (*server)->Stop();
}

// Only SSE PCM and nothing that names its rate: the probe works, is never the suggested match
// over one with a known rate, and a note says which flag to set.
TEST(DiscoverTest, AssumedPcmRateIsFlaggedAndNamesTheFlag) {
  FakeServer sse_only([](const Request& req) {
    if (req.method() != http::verb::post || req.target() != "/v1/audio/speech" ||
        !absl::StrContains(req.body(), "\"sse\"")) {
      return NotFound(req);
    }
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/event-stream");
    const std::string pcm(4800, '\0');  // 0.1 s at 24 kHz, 0.109 s at 22,050 Hz
    res.body() =
        absl::StrCat("data: {\"type\":\"speech.audio.delta\",\"audio\":\"", absl::Base64Escape(pcm),
                     "\"}\n\ndata: {\"type\":\"speech.audio.done\"}\n\n");
    return res;
  });
  DiscoverOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", sse_only.port());
  auto result = Discover(options);
  ASSERT_TRUE(result.ok()) << result.status();
  const EndpointProbe* sse = Find(*result, "openai", "/v1/audio/speech", "sse");
  ASSERT_NE(sse, nullptr);
  EXPECT_TRUE(sse->working) << sse->why;
  EXPECT_TRUE(sse->rate_source.empty());
  ASSERT_EQ(result->notes.size(), 1u);
  EXPECT_TRUE(absl::StrContains(result->notes[0], "--sample-rate")) << result->notes[0];
  const std::string table = DiscoveryTable(*result);
  EXPECT_TRUE(absl::StrContains(table, "24000?")) << table;
  EXPECT_TRUE(absl::StrContains(table, "note: openai POST /v1/audio/speech (sse)")) << table;
}

TEST(DiscoverTest, ServerWithoutTtsEndpointsGivesNoTtsEndpointFound) {
  FakeServer nothing(NotFound);
  DiscoverOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", nothing.port());
  auto result = Discover(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->best_dialect.empty());
  EXPECT_EQ(result->best_probe, -1);
  EXPECT_TRUE(result->suggested_command.empty());
  EXPECT_TRUE(result->voices.empty());
  ASSERT_GE(result->probes.size(), 15u);
  for (const EndpointProbe& p : result->probes) {
    EXPECT_FALSE(p.working) << p.path;
    EXPECT_EQ(p.why, "404") << p.path;
    EXPECT_EQ(p.http_status, 404) << p.path;
  }
  EXPECT_TRUE(absl::StrContains(DiscoveryTable(*result), "no TTS endpoint found"))
      << DiscoveryTable(*result);
  EXPECT_TRUE(absl::StrContains(DiscoveryJson(*result), "\"tts_endpoint_found\": false"));
}

TEST(DiscoverTest, SynthBelowAnUnknownBasePathIsNoTtsEndpoint) {
  synth::SynthOptions synth_options;
  auto server = synth::SynthServer::Start(synth_options);
  ASSERT_TRUE(server.ok()) << server.status();
  DiscoverOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", (*server)->port(), "/not-here");
  auto result = Discover(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->best_dialect.empty());
  EXPECT_EQ(result->url, options.url);
  EXPECT_GE((*server)->stats().requests, 15u);
}

TEST(DiscoverTest, UnreachablePortIsUnavailableQuickly) {
  uint16_t port = 0;
  {
    // A port that was free a moment ago and has no listener now.
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  DiscoverOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", port);
  const Clock::time_point start = Clock::now();
  auto result = Discover(options);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 2);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::IsUnavailable(result.status())) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "connection refused"))
      << result.status();
}

TEST(DiscoverTest, ServerThatNeverAnswersIsBoundedByTimeoutAndBudget) {
  // Listening but never accepting: the kernel completes connections, nobody answers.
  net::io_context ioc;
  tcp::acceptor silent(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  DiscoverOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", silent.local_endpoint().port());
  options.timeout_s = 0.3;
  options.budget_s = 1.2;
  const Clock::time_point start = Clock::now();
  auto result = Discover(options);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 2);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->best_dialect.empty());
  int timeouts = 0, skipped = 0;
  for (const EndpointProbe& p : result->probes) {
    EXPECT_FALSE(p.working);
    timeouts += p.why == "timeout";
    skipped += p.why == "skipped: time budget spent";
  }
  EXPECT_GE(timeouts, 6);  // the lists at once, then speech probes one by one
  EXPECT_GE(skipped, 1);
  EXPECT_EQ(timeouts + skipped, static_cast<int>(result->probes.size()));
}

TEST(DiscoverTest, BadUrlIsInvalidArgument) {
  DiscoverOptions options;
  options.url = "ftp://example.com";
  EXPECT_TRUE(absl::IsInvalidArgument(Discover(options).status()));
}

}  // namespace
}  // namespace ttsbench::coordinator
