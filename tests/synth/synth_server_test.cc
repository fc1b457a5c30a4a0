#include "synth/synth_server.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/prometheus_text.h"
#include "tests/synth/http_test_client.h"
#include "tests/synth/synth_harness.h"

namespace ttsbench::synth {
namespace {

using httptest::Client;
using httptest::Clock;
using httptest::Get;
using httptest::Le16;
using httptest::Le32;
using httptest::Post;
using httptest::Reply;
using httptest::RunBounded;
namespace http = httptest::http;
namespace net = httptest::net;

google::protobuf::Struct ParseJson(const std::string& body) {
  google::protobuf::Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(body, &s).ok()) << body;
  return s;
}

// Runs `n` requests concurrently, each on its own connection, and returns their replies in
// launch order; `stagger_ms` delays the launch of request i by i * stagger_ms.
std::vector<Reply> Concurrent(uint16_t port, int n, const std::string& body, int stagger_ms = 0) {
  net::io_context ioc;
  std::vector<std::optional<Reply>> replies(n);
  std::vector<std::unique_ptr<Client>> clients;
  int done = 0;
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    clients.push_back(std::make_unique<Client>(ioc));
    net::co_spawn(
        ioc,
        [](Client& c, uint16_t p, std::string b, int delay_ms) -> net::awaitable<Reply> {
          net::steady_timer t(co_await net::this_coro::executor);
          t.expires_after(std::chrono::milliseconds(delay_ms));
          co_await t.async_wait(httptest::kUseTuple);
          if (auto ec = co_await c.Connect(p); ec) {
            co_return httptest::Failed(ec);
          }
          co_return co_await c.Fetch(http::verb::post, "/v1/audio/speech", std::move(b));
        }(*clients.back(), port, body, i * stagger_ms),
        [&, i](std::exception_ptr, Reply r) {
          r.finished_ms = httptest::MsSince(t0);
          replies[i] = std::move(r);
          ++done;
        });
  }
  ioc.run_for(std::chrono::seconds(20));
  EXPECT_EQ(done, n) << "requests did not finish in time";
  std::vector<Reply> out;
  for (auto& r : replies) out.push_back(r ? std::move(*r) : Reply{});
  return out;
}

TEST(SynthServerTest, ServesHealthModelsAndVoices) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  ASSERT_NE(server->port(), 0);

  Reply health = Get(server->port(), "/health");
  ASSERT_FALSE(health.ec) << health.ec.message();
  EXPECT_EQ(health.status(), 200u);
  EXPECT_EQ(health.body(), R"({"status":"ok"})");
  EXPECT_EQ(health.header(http::field::content_type), "application/json");

  Reply models = Get(server->port(), "/v1/models");
  EXPECT_EQ(models.status(), 200u);
  auto m = ParseJson(models.body());
  EXPECT_EQ(m.fields().at("object").string_value(), "list");
  ASSERT_EQ(m.fields().at("data").list_value().values_size(), 1);
  EXPECT_EQ(
      m.fields().at("data").list_value().values(0).struct_value().fields().at("id").string_value(),
      "synth-tts-1");

  Reply voices = Get(server->port(), "/v1/audio/voices");
  EXPECT_EQ(voices.status(), 200u);
  EXPECT_EQ(voices.body(), R"({"voices":["default","fast","premium"]})");
}

TEST(SynthServerTest, NonStreamedWavHasCorrectSizesAndExactSampleCount) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  // 11 characters * 0.05 s * 24000 Hz = 13200 samples.
  Reply r = Post(server->port(), "/v1/audio/speech",
                 R"({"model":"synth-tts-1","input":"hello world","voice":"default",)"
                 R"("response_format":"wav"})");
  ASSERT_FALSE(r.ec) << r.ec.message();
  ASSERT_EQ(r.status(), 200u) << r.body();
  EXPECT_FALSE(r.chunked);
  EXPECT_EQ(r.header(http::field::content_type), "audio/wav");
  const std::string& wav = r.body();
  constexpr uint32_t kData = 13200 * 2;
  ASSERT_EQ(wav.size(), 44 + kData);
  EXPECT_EQ(r.header(http::field::content_length), std::to_string(44 + kData));
  EXPECT_EQ(wav.substr(0, 4), "RIFF");
  EXPECT_EQ(Le32(wav, 4), 36 + kData);
  EXPECT_EQ(wav.substr(8, 8), "WAVEfmt ");
  EXPECT_EQ(Le16(wav, 20), 1);  // PCM
  EXPECT_EQ(Le16(wav, 22), 1);  // mono
  EXPECT_EQ(Le32(wav, 24), 24000u);
  EXPECT_EQ(Le16(wav, 34), 16);
  EXPECT_EQ(wav.substr(36, 4), "data");
  EXPECT_EQ(Le32(wav, 40), kData);
  // A real tone, not silence.
  int peak = 0;
  for (size_t i = 44; i < wav.size(); i += 2) {
    peak = std::max(peak, std::abs(static_cast<int16_t>(Le16(wav, i))));
  }
  EXPECT_GT(peak, 5000);
}

TEST(SynthServerTest, SpeedFieldShortensTheAudio) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  Reply r = Post(server->port(), "/v1/audio/speech",
                 R"({"input":"hello world","response_format":"pcm","speed":2})");
  ASSERT_EQ(r.status(), 200u) << r.body();
  EXPECT_EQ(r.body().size(), 6600u * 2);
}

TEST(SynthServerTest, StreamedWavIsChunkedWithUnknownSizesAndArrivesOverTime) {
  SynthOptions o = FastOptions();
  // 40 characters: 400 ms of synthesis, 2 s of audio in 10 chunks of 200 ms.
  o.model.base_ms = 0;
  o.model.per_char_ms = 10;
  o.model.first_chunk_ms = 30;
  o.model.chunk_ms = 200;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  const std::string text(40, 'a');
  Reply r = Post(server->port(), "/v1/audio/speech",
                 R"({"input":")" + text + R"(","response_format":"wav","stream":true})");
  ASSERT_FALSE(r.ec) << r.ec.message();
  ASSERT_EQ(r.status(), 200u);
  EXPECT_TRUE(r.chunked);
  EXPECT_EQ(r.header(http::field::content_type), "audio/wav");
  const std::string& wav = r.body();
  ASSERT_EQ(wav.size(), 44u + 48000 * 2);
  EXPECT_EQ(Le32(wav, 4), 0xFFFFFFFFu);
  EXPECT_EQ(Le32(wav, 40), 0xFFFFFFFFu);
  ASSERT_GE(r.arrivals.size(), 5u);
  EXPECT_LT(r.arrivals.front().at_ms, 200);
  EXPECT_GE(r.arrivals.back().at_ms, 380);
  EXPECT_GT(r.arrivals.back().at_ms - r.arrivals.front().at_ms, 250);
  EXPECT_EQ(server->stats().requests_streamed, 1u);
}

TEST(SynthServerTest, PcmContentTypeCarriesTheSampleRate) {
  SynthOptions o = FastOptions();
  o.model.sample_rate = 16000;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  for (const bool stream : {false, true}) {
    Reply r = Post(server->port(), "/v1/audio/speech",
                   std::string(R"({"input":"abcd","response_format":"pcm","stream":)") +
                       (stream ? "true" : "false") + "}");
    ASSERT_EQ(r.status(), 200u) << r.body();
    EXPECT_EQ(r.chunked, stream);
    EXPECT_EQ(r.header(http::field::content_type), "audio/pcm;rate=16000");
    EXPECT_EQ(r.body().size(), 3200u * 2);  // 4 * 0.05 s * 16000 Hz
  }
}

TEST(SynthServerTest, TorchSynthesizeReturnsDecodableBase64WavWithMatchingDuration) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  Reply r = Post(server->port(), "/tts/synthesize",
                 R"({"text":"The quick brown fox.","voice":"fast","speed":1.0})");
  ASSERT_FALSE(r.ec) << r.ec.message();
  ASSERT_EQ(r.status(), 200u) << r.body();
  EXPECT_EQ(r.header(http::field::content_type), "application/json");
  auto json = ParseJson(r.body());
  const auto& f = json.fields();
  EXPECT_TRUE(f.at("success").bool_value());
  EXPECT_EQ(f.at("format").string_value(), "wav");
  EXPECT_EQ(f.at("sample_rate").number_value(), 24000);
  std::string wav;
  ASSERT_TRUE(absl::Base64Unescape(f.at("audio_base64").string_value(), &wav));
  constexpr uint32_t kSamples = 20 * 1200;  // 20 characters * 0.05 s * 24000 Hz
  ASSERT_EQ(wav.size(), 44 + 2 * kSamples);
  EXPECT_EQ(wav.substr(0, 4), "RIFF");
  EXPECT_EQ(Le32(wav, 40), 2 * kSamples);
  EXPECT_DOUBLE_EQ(f.at("duration").number_value(), 1.0);
}

TEST(SynthServerTest, TorchStreamReturnsChunkedPcm) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  Reply r = Post(server->port(), "/tts/stream", R"({"text":"hello there","voice":"default"})");
  ASSERT_FALSE(r.ec) << r.ec.message();
  ASSERT_EQ(r.status(), 200u) << r.body();
  EXPECT_TRUE(r.chunked);
  EXPECT_EQ(r.header(http::field::content_type), "audio/pcm;rate=24000");
  EXPECT_EQ(r.body().size(), 13200u * 2);
}

TEST(SynthServerTest, SlotsSaturateThroughput) {
  SynthOptions o = FastOptions();
  o.model.slots = 2;
  o.model.base_ms = 300;
  o.model.per_char_ms = 0;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  const std::string body = R"({"input":"x","response_format":"pcm"})";

  auto t0 = Clock::now();
  std::vector<Reply> two = Concurrent(server->port(), 2, body);
  const double two_ms = httptest::MsSince(t0);
  t0 = Clock::now();
  std::vector<Reply> four = Concurrent(server->port(), 4, body);
  const double four_ms = httptest::MsSince(t0);

  for (const Reply& r : two) EXPECT_EQ(r.status(), 200u);
  for (const Reply& r : four) EXPECT_EQ(r.status(), 200u);
  // One wave of two in parallel (serial would take 600 ms)...
  EXPECT_GE(two_ms, 295);
  EXPECT_LT(two_ms, 550);
  // ...and two waves of two: requests 3 and 4 wait for a free slot.
  EXPECT_GE(four_ms, 595);
  EXPECT_LT(four_ms, 1100);
}

TEST(SynthServerTest, QueuedRequestsAreServedInArrivalOrder) {
  SynthOptions o = FastOptions();
  o.model.slots = 1;
  o.model.base_ms = 80;
  o.model.per_char_ms = 0;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  std::vector<Reply> replies =
      Concurrent(server->port(), 4, R"({"input":"x","response_format":"pcm"})", 25);
  ASSERT_EQ(replies.size(), 4u);
  // Request i is launched at 25*i ms and, one slot wide, finishes at about 80*(i+1) ms. The
  // server cannot finish early, so the lower bounds alone prove the order: served in any other
  // order, the requests' finish times (80, 160, 240, 320) would put one below its bound. (Gaps
  // between replies as the client sees them are not checked: on a loaded machine the client
  // notices one reply late and the next on time.)
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(replies[i].status(), 200u);
    EXPECT_GE(replies[i].finished_ms, 80.0 * (i + 1) - 5) << i;
    EXPECT_LT(replies[i].finished_ms, 80.0 * (i + 1) + 150) << i;
  }
}

TEST(SynthServerTest, VoiceSpeedChangesSynthesisTime) {
  SynthOptions o = FastOptions();
  o.model.base_ms = 100;
  o.model.per_char_ms = 0;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Reply fast = Post(server->port(), "/v1/audio/speech", R"({"input":"x","voice":"fast"})");
  Reply premium = Post(server->port(), "/v1/audio/speech", R"({"input":"x","voice":"premium"})");
  ASSERT_EQ(fast.status(), 200u);
  ASSERT_EQ(premium.status(), 200u);
  EXPECT_GE(fast.total_ms, 49);
  EXPECT_LT(fast.total_ms, 150);
  EXPECT_GE(premium.total_ms, 199);
  EXPECT_LT(premium.total_ms, 350);
}

TEST(SynthServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  net::io_context ioc;
  Client client(ioc);
  auto replies = RunBounded<std::vector<Reply>>(
      ioc, [](Client& c, uint16_t port) -> net::awaitable<std::vector<Reply>> {
        std::vector<Reply> out;
        if (co_await c.Connect(port)) co_return out;
        out.push_back(co_await c.Fetch(http::verb::post, "/v1/audio/speech", R"({"input":"a"})"));
        out.push_back(co_await c.Fetch(http::verb::post, "/v1/audio/speech",
                                       R"({"input":"b","stream":true})"));
        out.push_back(co_await c.Fetch(http::verb::get, "/health"));
        co_return out;
      }(client, server->port()));
  ASSERT_TRUE(replies.has_value());
  ASSERT_EQ(replies->size(), 3u);
  for (const Reply& r : *replies) {
    EXPECT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.status(), 200u);
  }
  const SynthStats stats = server->stats();
  EXPECT_EQ(stats.connections_accepted, 1u);
  EXPECT_EQ(stats.requests, 3u);
  EXPECT_EQ(stats.requests_streamed, 1u);
}

TEST(SynthServerTest, UnknownRoutesAre404) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  Reply r = Get(server->port(), "/nope");
  EXPECT_EQ(r.status(), 404u);
  EXPECT_TRUE(ParseJson(r.body()).fields().contains("error"));
  EXPECT_EQ(Get(server->port(), "/v1/audio/speech").status(), 404u);
  EXPECT_EQ(Post(server->port(), "/health", "{}").status(), 404u);
}

TEST(SynthServerTest, InvalidRequestsAre400AndKeepTheConnection) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/v1/audio/speech", "{not json"},
      {"/v1/audio/speech", R"(["input"])"},
      {"/v1/audio/speech", R"({"voice":"default"})"},
      {"/v1/audio/speech", R"({"input":""})"},
      {"/v1/audio/speech", R"({"input":42})"},
      {"/v1/audio/speech", R"({"input":"hi","response_format":"wma"})"},
      {"/v1/audio/speech", R"({"input":"hi","stream_format":"grpc"})"},
      {"/synthesize", R"({"inputs":"no model_name"})"},
      {"/v1/text-to-speech/v", R"({"text":"hi","voice_settings":{"speed":9}})"},
      {"/v1/audio/speech", R"({"input":"hi","speed":10})"},
      {"/v1/audio/speech", R"({"input":"hi","stream":"yes"})"},
      {"/tts/synthesize", R"({"input":"wrong key"})"},
      {"/tts/stream", R"({})"},
  };
  net::io_context ioc;
  Client client(ioc);
  auto replies = RunBounded<std::vector<Reply>>(
      ioc,
      [](Client& c, uint16_t port, std::vector<std::pair<std::string, std::string>> cases)
          -> net::awaitable<std::vector<Reply>> {
        std::vector<Reply> out;
        if (co_await c.Connect(port)) co_return out;
        for (auto& [target, body] : cases) {
          out.push_back(co_await c.Fetch(http::verb::post, target, body));
        }
        co_return out;
      }(client, server->port(), cases));
  ASSERT_TRUE(replies.has_value());
  ASSERT_EQ(replies->size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const Reply& r = (*replies)[i];
    EXPECT_FALSE(r.ec) << cases[i].second << ": " << r.ec.message();
    EXPECT_EQ(r.status(), 400u) << cases[i].second;
    EXPECT_EQ(r.header(http::field::content_type), "application/json");
    EXPECT_TRUE(ParseJson(r.body()).fields().contains("error")) << r.body();
  }
  EXPECT_EQ(server->stats().connections_accepted, 1u);
}

TEST(SynthServerTest, UnreadableRequestsAreAnsweredThenClosed) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  auto send_raw = [&](std::string bytes) {
    net::io_context ioc;
    Client client(ioc);
    auto reply = RunBounded<Reply>(
        ioc, [](Client& c, uint16_t port, std::string b) -> net::awaitable<Reply> {
          if (auto ec = co_await c.Connect(port); ec) co_return httptest::Failed(ec);
          co_return co_await c.SendRaw(std::move(b));
        }(client, server->port(), std::move(bytes)));
    return reply.value_or(Reply{});
  };
  // The body limit is enforced from Content-Length, before any body byte is sent.
  Reply too_large =
      send_raw("POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
  EXPECT_EQ(too_large.status(), 413u);
  EXPECT_FALSE(too_large.res.keep_alive());
  Reply garbage = send_raw("NOT HTTP\r\n\r\n");
  EXPECT_EQ(garbage.status(), 400u);
  EXPECT_FALSE(garbage.res.keep_alive());
}

TEST(SynthServerTest, ErrorRateOneAnswersEveryAudioRequestWith500) {
  SynthOptions o = FastOptions();
  o.error_rate = 1;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Post(server->port(), "/v1/audio/speech", R"({"input":"hi"})").status(), 500u);
  EXPECT_EQ(Post(server->port(), "/tts/synthesize", R"({"text":"hi"})").status(), 500u);
  EXPECT_EQ(Get(server->port(), "/health").status(), 200u);
  EXPECT_EQ(server->stats().errors_injected, 2u);
}

TEST(SynthServerTest, TruncateRateOneCutsBodiesShort) {
  SynthOptions o = FastOptions();
  o.truncate_rate = 1;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  const std::string text(40, 'a');  // 2 s of audio = 96000 bytes of PCM
  Reply whole = Post(server->port(), "/v1/audio/speech", R"({"input":")" + text + R"("})");
  EXPECT_EQ(whole.ec, http::error::partial_message) << whole.ec.message();
  EXPECT_EQ(whole.header(http::field::content_length), std::to_string(44 + 96000));
  EXPECT_EQ(whole.body().size(), 44u + 48000);

  Reply streamed =
      Post(server->port(), "/v1/audio/speech", R"({"input":")" + text + R"(","stream":true})");
  EXPECT_EQ(streamed.ec, http::error::partial_message) << streamed.ec.message();
  EXPECT_EQ(streamed.body().size(), 44u + 48000);
  EXPECT_EQ(server->stats().truncations_injected, 2u);
}

// Body sizes of successful replies, smallest first (which request the server saw first is up to
// the scheduler).
std::vector<size_t> Sizes(const std::vector<Reply>& replies) {
  std::vector<size_t> out;
  for (const Reply& r : replies) {
    EXPECT_EQ(r.status(), 200u) << r.body();
    out.push_back(r.body().size());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SynthServerTest, TruncateAboveShortensAnswersOnlyUnderConcurrentLoad) {
  SynthOptions o = FastOptions();
  o.model.slots = 1;
  o.model.base_ms = 300;
  o.model.per_char_ms = 0;
  o.model.degrade.truncate_above = 1;
  o.model.degrade.truncate_fraction = 0.5;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  const std::string body = R"({"input":"hello world","response_format":"pcm"})";
  // 11 characters * 0.05 s * 24000 Hz = 13200 samples; alone, an answer is whole, every time.
  for (int i = 0; i < 2; ++i) {
    Reply r = Post(server->port(), "/v1/audio/speech", body);
    ASSERT_EQ(r.status(), 200u) << r.body();
    EXPECT_EQ(r.body().size(), 13200u * 2);
  }
  // The later request arrives while the first is still in its slot: two in flight, above 1.
  std::vector<Reply> two = Concurrent(server->port(), 2, body, 50);
  EXPECT_EQ(Sizes(two), (std::vector<size_t>{6600u * 2, 13200u * 2}));
  // A well-formed, shorter answer: a complete body, no truncation fault.
  EXPECT_FALSE(two[0].ec || two[1].ec);
  EXPECT_EQ(server->stats().degraded_answers, 1u);
  EXPECT_EQ(server->stats().truncations_injected, 0u);
}

TEST(SynthServerTest, SpeedupAboveShortensStreamedAnswersUnderLoad) {
  SynthOptions o = FastOptions();
  o.model.slots = 1;
  o.model.base_ms = 300;
  o.model.per_char_ms = 0;
  o.model.degrade.speedup_above = 1;
  o.model.degrade.speedup = 2;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  const std::string body = R"({"input":"hello world","response_format":"pcm","stream":true})";
  std::vector<Reply> two = Concurrent(server->port(), 2, body, 50);
  EXPECT_EQ(Sizes(two), (std::vector<size_t>{6600u * 2, 13200u * 2}));
  EXPECT_EQ(server->stats().degraded_answers, 1u);
}

TEST(SynthServerTest, FaultInjectionIsDeterministicUnderSeed) {
  auto statuses = [](uint64_t seed) {
    SynthOptions o = FastOptions();
    o.error_rate = 0.5;
    o.model.seed = seed;
    auto server = StartOrDie(o);
    std::vector<unsigned> out;
    for (int i = 0; i < 16 && server; ++i) {
      out.push_back(Post(server->port(), "/v1/audio/speech", R"({"input":"x"})").status());
    }
    return out;
  };
  const std::vector<unsigned> a = statuses(5);
  EXPECT_EQ(a, statuses(5));
  EXPECT_EQ(a.size(), 16u);
  EXPECT_GT(std::count(a.begin(), a.end(), 500u), 0);
  EXPECT_GT(std::count(a.begin(), a.end(), 200u), 0);
}

TEST(SynthServerTest, ManyConcurrentRequestsOnSeveralThreads) {
  SynthOptions o = FastOptions();
  o.threads = 2;
  o.model.slots = 3;
  o.model.base_ms = 20;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  std::vector<Reply> replies =
      Concurrent(server->port(), 12, R"({"input":"hello","stream":true,"response_format":"pcm"})");
  for (const Reply& r : replies) {
    EXPECT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.status(), 200u);
    EXPECT_EQ(r.body().size(), 6000u * 2);
  }
  EXPECT_EQ(server->stats().connections_accepted, 12u);
}

TEST(SynthServerTest, StartRejectsInvalidOptions) {
  SynthOptions o;
  o.model.slots = 0;
  EXPECT_EQ(SynthServer::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = SynthOptions();
  o.error_rate = 2;
  EXPECT_EQ(SynthServer::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = SynthOptions();
  o.threads = 0;
  EXPECT_EQ(SynthServer::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = SynthOptions();
  o.model.degrade.speedup = 0.5;
  EXPECT_EQ(SynthServer::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SynthServerTest, StartFailsWhenThePortIsTaken) {
  auto first = StartOrDie(FastOptions());
  ASSERT_NE(first, nullptr);
  SynthOptions o = FastOptions();
  o.port = first->port();
  auto second = SynthServer::Start(o);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

TEST(SynthServerTest, StopIsIdempotentAndEndsServing) {
  auto server = StartOrDie(FastOptions());
  ASSERT_NE(server, nullptr);
  const uint16_t port = server->port();
  ASSERT_EQ(Get(port, "/health").status(), 200u);
  server->Stop();
  server->Stop();
  EXPECT_TRUE(Get(port, "/health").ec);
}

TEST(SynthServerTest, StopWhileRequestsAreQueuedDoesNotHang) {
  SynthOptions o = FastOptions();
  o.model.slots = 1;
  o.model.base_ms = 5000;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  // Three requests in flight (one synthesising, two queued) when the server stops.
  net::io_context ioc;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(ioc));
    net::co_spawn(
        ioc,
        [](Client& c, uint16_t p) -> net::awaitable<void> {
          if (co_await c.Connect(p)) co_return;
          co_await c.Fetch(http::verb::post, "/v1/audio/speech", R"({"input":"x"})");
        }(*clients.back(), server->port()),
        net::detached);
  }
  ioc.run_for(std::chrono::milliseconds(200));
  const auto t0 = Clock::now();
  server->Stop();
  EXPECT_LT(httptest::MsSince(t0), 1000);
  // The clients see their connections closed rather than waiting for the 5 s synthesis.
  ioc.run_for(std::chrono::seconds(2));
  EXPECT_TRUE(ioc.stopped());
}

}  // namespace
}  // namespace ttsbench::synth

namespace ttsbench::synth {
namespace {

// GET /metrics: the slot model as Prometheus text, read here by the parser telemetry uses.
double MetricValue(const std::string& page, const std::string& name) {
  auto samples = common::ParsePrometheusText(page);
  EXPECT_TRUE(samples.ok()) << samples.status();
  if (!samples.ok()) return -1;
  for (const common::PromSample& s : *samples) {
    if (s.name == name) return s.value;
  }
  ADD_FAILURE() << name << " missing from " << page;
  return -1;
}

TEST(SynthServerTest, MetricsExportBusySlotsQueueAndSimulatedPower) {
  SynthOptions o = FastOptions();
  o.model.slots = 2;
  o.model.base_ms = 600;
  o.model.per_char_ms = 0;
  o.idle_watts = 55;
  o.watts_per_busy_slot = 30;
  auto server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  Reply idle = Get(server->port(), "/metrics");
  ASSERT_EQ(idle.status(), 200u);
  EXPECT_EQ(idle.header(http::field::content_type), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(MetricValue(idle.body(), "vllm:num_requests_running"), 0);
  EXPECT_EQ(MetricValue(idle.body(), "DCGM_FI_DEV_POWER_USAGE"), 55);
  EXPECT_EQ(MetricValue(idle.body(), "ttsbench_synth_slots"), 2);
  // Four requests of 600 ms on two slots: while the first two synthesise, two wait.
  std::string busy;
  std::thread load(
      [&] { Concurrent(server->port(), 4, R"({"input":"x","response_format":"pcm"})"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  busy = Get(server->port(), "/metrics").body();
  load.join();
  EXPECT_EQ(MetricValue(busy, "vllm:num_requests_running"), 2);
  EXPECT_EQ(MetricValue(busy, "vllm:num_requests_waiting"), 2);
  EXPECT_EQ(MetricValue(busy, "DCGM_FI_DEV_POWER_USAGE"), 55 + 2 * 30);
  EXPECT_EQ(MetricValue(busy, "DCGM_FI_DEV_GPU_UTIL"), 100);
  const std::string after = Get(server->port(), "/metrics").body();
  EXPECT_EQ(MetricValue(after, "ttsbench_synth_requests_total"), 4);
  EXPECT_EQ(MetricValue(after, "vllm:num_requests_running"), 0);
}

}  // namespace
}  // namespace ttsbench::synth
