// One request from first byte to record: the request's single deadline whatever the server's
// pace (HTTP, SSE, WebSocket), when a kept connection may be replaced and the request sent again,
// and which answers contribute inter-chunk gaps.
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/agent/fake_server.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

constexpr int64_t kMs = 1'000'000;

struct Load {
  v1::Target target;  // url set by RunShard
  int iterations = 1;
  double think_time_s = 0;
  bool keepalive = true;
};

// One closed-loop user through the real LoadRunner against `server`, a 1 s deadline a request.
RunResult RunShard(const FakeServer& server, Load load) {
  RunSpec spec;
  spec.target = std::move(load.target);
  spec.iterations = load.iterations;
  spec.keepalive = load.keepalive;
  spec.timeout_s = 1;
  spec.think_time_s = load.think_time_s;
  return RunLoad(server, std::move(spec));
}

v1::Target OpenAi(const std::string& format, const std::string& stream_format = "") {
  return OpenAiTarget(format, stream_format);
}

v1::Target TorchWs() { return TorchWsTarget(); }

std::string Chunk(const std::string& data) {
  return absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
}

std::string SseDelta(int samples) {
  return "data: {\"type\":\"speech.audio.delta\",\"audio\":\"" +
         absl::Base64Escape(std::string(2 * static_cast<size_t>(samples), '\0')) + "\"}\n\n";
}

constexpr char kSseDone[] = "data: {\"type\":\"speech.audio.done\"}\n\n";

// Timed out at the deadline (within scheduling slack), with what arrived kept.
void ExpectTimedOutKeepingWhatArrived(const RunResult& result, double timeout_s) {
  ASSERT_EQ(result.records.size(), 1u);
  const v1::RequestRecord& r = result.records[0];
  EXPECT_EQ(r.error(), v1::ERROR_TIMEOUT) << r.DebugString();
  const int64_t total = r.connect_ns() + (r.end_ns() - r.start_ns());
  EXPECT_GE(total, static_cast<int64_t>(timeout_s * 1000) * kMs - 5 * kMs);
  EXPECT_LT(total, static_cast<int64_t>(timeout_s * 1000) * kMs + 400 * kMs);
  EXPECT_GT(r.bytes(), 0);
  EXPECT_GT(r.first_byte_ns(), 0);
  EXPECT_GT(r.audio_s(), 0);
}

TEST(RequestDeadlineTest, HttpBodyArrivingAtFullSpeedStopsAtTheTimeout) {
  std::string wav_header = WavBytes(24000, 0);
  for (int i = 40; i < 44; ++i) wav_header[i] = '\xff';  // data size unknown: a stream
  HttpAnswer answer{
      "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n" +
      Chunk(wav_header)};
  answer.forever = Chunk(std::string(16384, '\0'));
  FakeServer server({.http = AlwaysAnswer(answer)});
  const RunResult result = RunShard(server, {.target = OpenAi("wav")});
  ExpectTimedOutKeepingWhatArrived(result, 1);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].http_status(), 200);
}

TEST(RequestDeadlineTest, SseEventsArrivingAtFullSpeedStopAtTheTimeout) {
  HttpAnswer answer{
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"};
  answer.forever = Chunk(SseDelta(2400));
  FakeServer server({.http = AlwaysAnswer(answer)});
  const RunResult result = RunShard(server, {.target = OpenAi("pcm", "sse")});
  ExpectTimedOutKeepingWhatArrived(result, 1);
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_GT(result.records[0].first_audio_ns(), 0);
  EXPECT_GT(result.records[0].chunks(), 0);
  EXPECT_EQ(result.gaps_us.count(), 0u);  // a failed answer's gaps are not continuity data
}

TEST(RequestDeadlineTest, WebSocketFramesArrivingAtFullSpeedStopAtTheTimeout) {
  FakeServer server({.ws = [](const Recorded&, const std::string&) {
    WsAnswer a;
    a.frames = {{R"({"type":"tts_meta","sample_rate":24000,"encoding":"pcm_s16le"})"},
                {std::string(4800, '\0'), true}};
    a.forever = true;  // never tts_done
    return a;
  }});
  ExpectTimedOutKeepingWhatArrived(RunShard(server, {.target = TorchWs()}), 1);
}

TEST(RequestDeadlineTest, TrickledBodyStopsAtTheTimeout) {
  HttpAnswer answer{
      "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n" +
      Chunk(WavBytes(24000, 0))};
  answer.forever = Chunk(std::string(480, '\0'));
  answer.every = std::chrono::milliseconds(50);
  FakeServer server({.http = AlwaysAnswer(answer)});
  const RunResult result = RunShard(server, {.target = OpenAi("wav")});
  ASSERT_EQ(result.records.size(), 1u);
  EXPECT_EQ(result.records[0].error(), v1::ERROR_TIMEOUT);
  EXPECT_LT(result.records[0].end_ns() - result.records[0].start_ns(), 1400 * kMs);
  EXPECT_GT(result.records[0].bytes(), 0);
}

TEST(RequestDeadlineTest, ConnectionSetUpCountsAgainstTheSameTimeout) {
  // A connection per request (keepalive off); the WebSocket handshake takes 600 ms of the 1 s,
  // and the answer never comes: the request ends 1 s after it began, not 1.6 s.
  FakeServer server({.ws = [](const Recorded&, const std::string&) { return WsAnswer{}; },
                     .ws_accept_delay = std::chrono::milliseconds(600)});
  const RunResult result = RunShard(server, {.target = TorchWs(), .keepalive = false});
  ASSERT_EQ(result.records.size(), 1u);
  const v1::RequestRecord& r = result.records[0];
  EXPECT_EQ(r.error(), v1::ERROR_TIMEOUT) << r.DebugString();
  EXPECT_GE(r.connect_ns(), 550 * kMs);
  EXPECT_LT(r.connect_ns() + (r.end_ns() - r.start_ns()), 1300 * kMs);
}

// Answers a connection's first request; every later request on it is read, then reset.
HttpAnswer FirstOnlyThenReset(const Recorded& r) {
  HttpAnswer a{HttpOk("audio/wav", WavBytes(8000, 800))};
  a.reset = r.on_connection > 0;
  return a;
}

TEST(KeptConnectionTest, ServerResettingAnAcceptedRequestIsAnErrorNotARetry) {
  FakeServer server({.http = FirstOnlyThenReset});
  const RunResult result = RunShard(server, {.target = OpenAi("wav"), .iterations = 6});
  ASSERT_EQ(result.records.size(), 6u);
  int ok = 0, read = 0;
  for (const auto& r : result.records) {
    ok += r.error() == v1::ERROR_NONE;
    read += r.error() == v1::ERROR_READ;
  }
  // Each connection: one answer, then one reset request; the next request opens a new one.
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(read, 3);
  EXPECT_EQ(server.requests().size(), 6u);  // nothing was sent twice
}

TEST(KeptConnectionTest, ServerResettingEveryRequestShowsOnlyErrors) {
  FakeServer server({.http = [](const Recorded&) {
    HttpAnswer a;
    a.reset = true;
    return a;
  }});
  const RunResult result = RunShard(server, {.target = OpenAi("wav"), .iterations = 4});
  ASSERT_EQ(result.records.size(), 4u);
  for (const auto& r : result.records) EXPECT_EQ(r.error(), v1::ERROR_READ) << r.DebugString();
}

TEST(KeptConnectionTest, SocketClosedWhileIdleIsReopenedAndTimedFromTheFirstAttempt) {
  // Each session answers one request and then drops the socket (no close frame). The next
  // request, 200 ms later, finds it closed before sending: it opens a new socket (a 300 ms
  // handshake) and succeeds, and its latency includes that reopening.
  FakeServer server(
      {.ws =
           [](const Recorded&, const std::string&) {
             WsAnswer a;
             a.frames = {{R"({"type":"tts_meta","sample_rate":24000,"encoding":"pcm_s16le"})"},
                         {std::string(4800, '\0'), true},
                         {R"({"type":"tts_done"})"}};
             a.close_abruptly = true;
             return a;
           },
       .ws_accept_delay = std::chrono::milliseconds(300)});
  const RunResult result =
      RunShard(server, {.target = TorchWs(), .iterations = 3, .think_time_s = 0.2});
  ASSERT_EQ(result.records.size(), 3u);
  // The first request uses the connection opened before the level; the others reopen.
  for (size_t i = 1; i < result.records.size(); ++i) {
    const v1::RequestRecord& r = result.records[i];
    EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.DebugString();
    EXPECT_GE(r.connect_ns(), 250 * kMs);
    EXPECT_GE(r.end_ns() - r.start_ns(), r.connect_ns());
  }
}

TEST(KeptConnectionTest, HttpConnectionClosedWhileIdleIsReopenedNotFailed) {
  // Each answer is followed by the server closing the connection without saying so
  // (no Connection: close): 200 ms later the next request finds it closed and reopens.
  FakeServer server({.http = [](const Recorded&) {
    return HttpAnswer(HttpOk("audio/wav", WavBytes(8000, 800)), /*c=*/true);
  }});
  const RunResult result =
      RunShard(server, {.target = OpenAi("wav"), .iterations = 3, .think_time_s = 0.2});
  ASSERT_EQ(result.records.size(), 3u);
  for (size_t i = 1; i < result.records.size(); ++i) {
    const v1::RequestRecord& r = result.records[i];
    EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.DebugString();
    EXPECT_GT(r.connect_ns(), 0);
    EXPECT_GE(r.end_ns() - r.start_ns(), r.connect_ns());
  }
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(GapAccountingTest, OnlyStreamedSuccessesAddInterChunkGaps) {
  // Three events 50 ms apart: two gaps per streamed success.
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
  HttpAnswer whole{head + Chunk(SseDelta(2400))};
  whole.more = {Chunk(SseDelta(2400)), Chunk(SseDelta(2400)) + Chunk(kSseDone) + Chunk("")};
  whole.every = std::chrono::milliseconds(50);
  HttpAnswer cut = whole;
  cut.more.back() = Chunk(SseDelta(2400)) + Chunk("");  // no done event: truncated
  {
    FakeServer server({.http = AlwaysAnswer(whole)});
    const RunResult result = RunShard(server, {.target = OpenAi("pcm", "sse"), .iterations = 2});
    ASSERT_EQ(result.records.size(), 2u);
    for (const auto& r : result.records) EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.DebugString();
    EXPECT_EQ(result.gaps_us.count(), 4u);
  }
  {
    FakeServer server({.http = AlwaysAnswer(cut)});
    const RunResult result = RunShard(server, {.target = OpenAi("pcm", "sse"), .iterations = 2});
    ASSERT_EQ(result.records.size(), 2u);
    for (const auto& r : result.records) {
      EXPECT_EQ(r.error(), v1::ERROR_PROTOCOL);
      EXPECT_EQ(r.chunks(), 3);  // still in the record
    }
    EXPECT_EQ(result.gaps_us.count(), 0u);
  }
  {
    // Raw audio in pieces, not asked to stream: one chunk, no gaps.
    const std::string wav = WavBytes(8000, 8000);
    HttpAnswer pieces{"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: " +
                      std::to_string(wav.size()) + "\r\n\r\n" + wav.substr(0, 4000)};
    pieces.more = {wav.substr(4000, 4000), wav.substr(8000)};
    pieces.every = std::chrono::milliseconds(50);
    FakeServer server({.http = AlwaysAnswer(pieces)});
    const RunResult result = RunShard(server, {.target = OpenAi("wav"), .iterations = 2});
    ASSERT_EQ(result.records.size(), 2u);
    for (const auto& r : result.records) {
      EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.DebugString();
      EXPECT_EQ(r.chunks(), 1);
    }
    EXPECT_EQ(result.gaps_us.count(), 0u);
  }
}

}  // namespace
}  // namespace ttsbench::agent::testing
