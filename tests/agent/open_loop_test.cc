// Open-loop scheduling against real servers on loopback: coordinated omission, drops, lateness.
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/load_runner.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "gtest/gtest.h"
#include "synth/synth_server.h"
#include "synth/tls_cert.h"
#include "tests/agent/fake_server.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

// A short WAV: 0.1 s at 24 kHz.
HttpAnswer ShortWav() { return HttpAnswer{HttpOk("audio/wav", WavBytes(24000, 2400))}; }

// Every request answered with the short WAV after 5 ms, except that the `stall_at`-th request
// freezes every response for one second (a GC pause, a model reload).
FakeServer::Options Stalling(int stall_at) {
  struct State {
    int requests = 0;
    std::chrono::steady_clock::time_point stall_until{};
  };
  // The server calls this on its one thread: no lock.
  return {.http = [state = std::make_shared<State>(), stall_at](const Recorded&) {
    const auto now = std::chrono::steady_clock::now();
    if (++state->requests == stall_at) state->stall_until = now + std::chrono::seconds(1);
    HttpAnswer answer = ShortWav();
    answer.delay = std::max(now + std::chrono::milliseconds(5), state->stall_until) - now;
    return answer;
  }};
}

// A shard of the OpenAI target against `url`: one thread, a 5 s timeout; the test sets the load.
Shard OpenAiShard(const std::string& url) {
  v1::Target t = OpenAiTarget("wav", "", "default");
  t.set_url(url);
  Shard shard = MakeShard(t, "Hello there.");
  shard.cfg.threads = 1;
  shard.cfg.timeout_s = 5;
  return shard;
}

// The synthetic server started with `so`, and an OpenAiShard against it.
struct SynthAndShard {
  explicit SynthAndShard(const synth::SynthOptions& so)
      : server(so), shard(OpenAiShard(server.url())) {}
  LoopbackSynth server;
  Shard shard;
};

TEST(OpenLoopTest, AServerStallShowsInLatencyFromIntendedButHidesInClosedLoop) {
  // Open loop, 50 requests/s for 2 s; the 20th request freezes the server for 1 s.
  FakeServer open_server(Stalling(20));
  Shard shard = OpenAiShard(open_server.url());
  ShardConfig& cfg = shard.cfg;
  cfg.open_loop = true;
  cfg.rate = 50;
  cfg.arrival = "constant";
  cfg.iterations = 100;
  const std::vector<v1::RequestRecord> records = RunShard(std::move(shard), 20'000'000).records;
  ASSERT_EQ(records.size(), 100u);
  const v1::LevelStats open = common::ComputeLevelStats(0, records);
  EXPECT_EQ(open.successful(), 100u);
  // About 50 of the 100 arrivals fell inside the stall and waited out the rest of it (1000 ms
  // down to 0): the tail and the mean carry it.
  EXPECT_GT(open.latency_from_intended_ms().p95(), 700);
  EXPECT_GT(open.latency_from_intended_ms().mean(), 150);
  // Arrivals kept their schedule during the stall (sends were not held back).
  EXPECT_LT(open.sched_lag_ms().p95(), 50);

  // Closed loop, one user: the same stall delays only the one request in flight.
  FakeServer closed_server(Stalling(20));
  Shard shard2 = OpenAiShard(closed_server.url());
  ShardConfig& cfg2 = shard2.cfg;
  cfg2.concurrency = 1;
  cfg2.iterations = 100;
  const v1::LevelStats closed = common::ComputeLevelStats(1, RunShard(std::move(shard2)).records);
  EXPECT_LT(closed.latency_ms().p95(), 100);  // coordinated omission: the stall is one sample
  EXPECT_GT(closed.latency_ms().max(), 900);
}

TEST(OpenLoopTest, InflightCapDropsAndCountsWhatCannotStart) {
  synth::SynthOptions so;
  so.model.slots = 1;
  so.model.base_ms = 100;
  SynthAndShard fx(so);
  ShardConfig& cfg = fx.shard.cfg;
  cfg.open_loop = true;
  cfg.rate = 100;  // far beyond 10 requests/s of capacity
  cfg.arrival = "constant";
  cfg.iterations = 50;
  cfg.max_inflight = 2;
  const RunResult run = RunShard(std::move(fx.shard));
  const std::vector<v1::RequestRecord>& records = run.records;
  const PhaseCounters& counters = run.counters;
  // Every arrival is either a record or a drop; nothing vanishes.
  EXPECT_EQ(records.size() + counters.dropped, 50u);
  EXPECT_GT(counters.dropped, 30u);
  EXPECT_GE(records.size(), 2u);
}

TEST(OpenLoopTest, DurationBoundLevelStopsOnTime) {
  synth::SynthOptions so;
  SynthAndShard fx(so);
  ShardConfig& cfg = fx.shard.cfg;
  cfg.open_loop = true;
  cfg.rate = 40;
  cfg.arrival = "poisson";
  cfg.iterations = INT64_MAX / 2;
  cfg.duration_s = 1.0;
  CollectingSink sink;
  LoadRunner runner(std::move(cfg), *fx.shard.dialect, sink, TimelineMap{});
  runner.Warmup();
  const auto began = std::chrono::steady_clock::now();
  runner.Run(common::SteadyNowNs());
  const std::vector<v1::RequestRecord> records = sink.measured();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(2500));
  EXPECT_GT(records.size(), 20u);
  EXPECT_LT(records.size(), 70u);
}

TEST(ClosedLoopTest, ThinkTimeAndRampUpSpaceRequests) {
  synth::SynthOptions so;
  SynthAndShard fx(so);
  ShardConfig& cfg = fx.shard.cfg;
  cfg.concurrency = 2;
  cfg.iterations = 6;
  cfg.think_time_s = 0.1;
  cfg.ramp_up_s = 0.2;
  const RunResult run = RunShard(std::move(fx.shard));
  const std::vector<v1::RequestRecord>& records = run.records;
  const int64_t t0 = run.start_ns;
  ASSERT_EQ(records.size(), 6u);
  int64_t latest_first = 0;
  for (const auto& r : records) latest_first = std::max(latest_first, r.intended_ns() - t0);
  // The second user started ~100 ms in (ramp 200 ms over 2 users); with 100 ms think time,
  // three requests per user take at least 200 ms of thinking.
  EXPECT_GT(latest_first, 200'000'000);
}

TEST(ClosedLoopTest, PerRequestConnectionsRecordConnectTime) {
  synth::SynthOptions so;
  SynthAndShard fx(so);
  ShardConfig& cfg = fx.shard.cfg;
  cfg.concurrency = 2;
  cfg.iterations = 6;
  cfg.keepalive = false;
  const std::vector<v1::RequestRecord> records = RunShard(std::move(fx.shard)).records;
  ASSERT_EQ(records.size(), 6u);
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_GT(r.connect_ns(), 0);
  }
  EXPECT_GE(fx.server.server->stats().connections_accepted, 6u);
}

// Serves the short WAV over TLS, one request per connection, but only after holding every
// TLS handshake for `handshake_delay`: connection set-up that is slow and has nothing to do with
// when a send was decided.
FakeServer::Options SlowHandshakeTls(std::chrono::milliseconds handshake_delay) {
  auto pem = synth::MakeSelfSignedCertificate({"127.0.0.1"});
  EXPECT_TRUE(pem.ok()) << pem.status();
  HttpAnswer one = ShortWav();
  one.close = true;
  return {.http = AlwaysAnswer(one),
          .tls_cert_pem = pem.ok() ? pem->cert : "",
          .tls_key_pem = pem.ok() ? pem->key : "",
          .connect_delay = handshake_delay};
}

TEST(OpenLoopTest, LatenessIsTheSendDecisionNotTheConnectionSetUp) {
  // A new TLS connection per request whose handshake takes 30 ms: every request's first byte
  // leaves ~30 ms after it was due, yet every send was decided on time. That is connect time
  // (recorded as such), not scheduling lateness.
  FakeServer server(SlowHandshakeTls(std::chrono::milliseconds(30)));
  v1::Target t = OpenAiTarget("wav", "", "default");
  t.set_insecure(true);
  t.set_url(server.url());
  Shard shard = MakeShard(t, "Hello there.");
  ShardConfig& cfg = shard.cfg;
  cfg.threads = 1;
  cfg.timeout_s = 5;
  cfg.open_loop = true;
  cfg.rate = 20;
  cfg.arrival = "constant";
  cfg.iterations = 10;
  cfg.keepalive = false;
  const RunResult run = RunShard(std::move(shard), 20'000'000);
  const std::vector<v1::RequestRecord>& records = run.records;
  const PhaseCounters& counters = run.counters;
  ASSERT_EQ(records.size(), 10u);
  // A send decided late was also late to start connecting: the connection set-up began after
  // the decision. So no more sends are late than requests whose first byte, less their connect
  // time, left over 1 ms after they were due; counting first bytes made every one late.
  uint64_t late_before_connecting = 0;
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.DebugString();
    EXPECT_GE(r.connect_ns(), 25'000'000);
    EXPECT_GE(r.start_ns() - r.intended_ns(), 25'000'000);
    late_before_connecting += r.start_ns() - r.connect_ns() - r.intended_ns() > 1'000'000;
  }
  EXPECT_LE(counters.late, late_before_connecting);
}

TEST(OpenLoopTest, InflightCapIsOneCapForTheAgentWhateverItsThreads) {
  // Four threads, a cap of 2: never more than 2 requests in flight (a per-thread split made it
  // one per thread, 4 in all), and no arrival dropped while the cap still had room.
  synth::SynthOptions so;
  so.model.slots = 16;
  so.model.base_ms = 150;
  SynthAndShard fx(so);
  ShardConfig& cfg = fx.shard.cfg;
  cfg.open_loop = true;
  cfg.threads = 4;
  cfg.rate = 40;
  cfg.arrival = "constant";
  cfg.iterations = 40;
  cfg.max_inflight = 2;
  const RunResult run = RunShard(std::move(fx.shard), 20'000'000);
  const std::vector<v1::RequestRecord>& records = run.records;
  const PhaseCounters& counters = run.counters;
  EXPECT_EQ(records.size() + counters.dropped, 40u);
  // Sweep the requests' [start, end] intervals: the most that overlapped.
  std::vector<std::pair<int64_t, int>> edges;
  for (const auto& r : records) {
    edges.push_back({r.start_ns(), +1});
    edges.push_back({r.end_ns(), -1});
  }
  std::sort(edges.begin(), edges.end());
  int now = 0, most = 0;
  for (const auto& [t, d] : edges) most = std::max(most, now += d);
  EXPECT_EQ(most, 2);
  // 150 ms per request, 2 at a time, an arrival every 25 ms: about a third get through.
  EXPECT_GE(records.size(), 8u);
  EXPECT_LE(records.size(), 20u);
}

TEST(OpenLoopTest, TwoAgentsSendOneEvenlySpacedConstantSchedule) {
  // Two agents, each with two threads, share one constant 100/s schedule: the merged sends are
  // 10 ms apart (they once came in pairs, every 20 ms).
  synth::SynthOptions so;
  so.model.slots = 16;
  LoopbackSynth server(so);
  Shard shard = OpenAiShard(server.url());
  CollectingSink sink;
  std::vector<std::unique_ptr<LoadRunner>> agents;
  for (int a = 0; a < 2; ++a) {
    ShardConfig cfg = shard.cfg;
    cfg.open_loop = true;
    cfg.threads = 2;
    cfg.rate = 50;
    cfg.level_rate = 100;
    cfg.share_begin = a * 0.5;
    cfg.share_end = (a + 1) * 0.5;
    cfg.arrival = "constant";
    cfg.iterations = 60;  // the level's
    cfg.agent_index = static_cast<uint32_t>(a);
    agents.push_back(
        std::make_unique<LoadRunner>(std::move(cfg), *shard.dialect, sink, TimelineMap{}));
    agents.back()->Warmup();
  }
  const int64_t start = common::SteadyNowNs() + 50'000'000;
  std::thread other([&] { agents[1]->Run(start); });
  agents[0]->Run(start);
  other.join();
  const std::vector<v1::RequestRecord> records = sink.measured();
  ASSERT_EQ(records.size(), 60u);
  std::vector<int64_t> intended;
  for (const auto& r : records) intended.push_back(r.intended_ns());
  std::sort(intended.begin(), intended.end());
  for (size_t i = 1; i < intended.size(); ++i) {
    EXPECT_EQ(intended[i] - intended[i - 1], 10'000'000) << i;
  }
  EXPECT_EQ(intended.front(), start);
}

}  // namespace
}  // namespace ttsbench::agent::testing
