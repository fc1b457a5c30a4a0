// Agent load engine against the real synthetic server on loopback.
#include "agent/load_runner.h"

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "synth/synth_server.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

struct Harness : LoopbackSynth {
  explicit Harness(const synth::SynthOptions& so = synth::SynthOptions())
      : LoopbackSynth(so), model(so.model) {}

  // Runs `iterations` measured requests after `warmup` at `concurrency`; returns the records.
  std::vector<v1::RequestRecord> Run(v1::Target target, int concurrency, int iterations, int warmup,
                                     int* connections = nullptr, int threads = 2) {
    target.set_url(url());
    if (target.voice().empty()) target.set_voice("default");
    RunSpec spec;
    spec.target = target;
    spec.concurrency = concurrency;
    spec.iterations = iterations;
    spec.warmup = warmup;
    spec.timeout_s = target.timeout_s() > 0 ? target.timeout_s() : 10;
    spec.threads = threads;
    const RunResult result = RunLoad(spec);
    if (connections != nullptr) *connections = result.connections_after_warmup;
    return result.records;
  }

  // A runner's shard against this server, voice "default"; the test sets the load.
  Shard ShardOf(v1::Target target) const {
    target.set_url(url());
    target.set_voice("default");
    return MakeShard(target);
  }

  synth::LatencyModel model;
};

double ExpectedAudioSeconds(const synth::LatencyModel& m) {
  return static_cast<double>(synth::AudioSamples(m, sizeof(kText) - 1)) / m.sample_rate;
}

v1::Target OpenAi(const std::string& format, bool streaming) {
  v1::Target t = OpenAiTarget(format, "", "");
  t.set_streaming(streaming);
  return t;
}

TEST(LoadRunnerTest, StreamedWavTtfaComesBeforeTheEndAndDurationIsExact) {
  // The first chunk is due 5 ms after the slot is taken, the end ~70 ms later: a margin that a
  // loaded machine's scheduling noise cannot close.
  synth::SynthOptions so;
  so.model.first_chunk_ms = 5;
  so.model.base_ms = 70;
  Harness h(so);
  int connections = 0;
  auto records = h.Run(OpenAi("wav", true), 2, 6, 2, &connections);
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(connections, 2);
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.DebugString();
    EXPECT_EQ(r.http_status(), 200);
    EXPECT_DOUBLE_EQ(r.audio_s(), ExpectedAudioSeconds(h.model));
    EXPECT_EQ(r.sample_rate(), 24000);
    EXPECT_GT(r.chunks(), 1);
    EXPECT_TRUE(r.streamed());
    EXPECT_LE(r.start_ns(), r.first_byte_ns());
    EXPECT_LE(r.first_byte_ns(), r.first_audio_ns());
    EXPECT_LT(r.first_audio_ns(), r.end_ns());
    // TTFA must be measurably earlier than the end of the body.
    EXPECT_LT(r.first_audio_ns() - r.start_ns(), r.end_ns() - r.start_ns() - 30'000'000);
    EXPECT_EQ(r.chars(), static_cast<int>(sizeof(kText) - 1));
  }
}

TEST(LoadRunnerTest, KeepAliveReusesWarmedConnections) {
  Harness h;
  auto records = h.Run(OpenAi("wav", false), 3, 12, 3);
  ASSERT_EQ(records.size(), 12u);
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_EQ(r.connect_ns(), 0) << "measured request opened a new connection";
  }
  EXPECT_EQ(h.server->stats().connections_accepted, 3u);
  EXPECT_EQ(h.server->stats().requests, 15u);
}

TEST(LoadRunnerTest, NonStreamedTtfaEqualsLatency) {
  Harness h;
  auto records = h.Run(OpenAi("wav", false), 1, 3, 0);
  ASSERT_EQ(records.size(), 3u);
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_DOUBLE_EQ(r.audio_s(), ExpectedAudioSeconds(h.model));
    // The whole body arrives at once: first audio is within a read of the end.
    EXPECT_LT(r.end_ns() - r.first_audio_ns(), 2'000'000);
  }
}

TEST(LoadRunnerTest, RawPcmUsesTheRateFromContentType) {
  synth::SynthOptions so;
  so.model.sample_rate = 16000;
  Harness h(so);
  auto records = h.Run(OpenAi("pcm", true), 1, 2, 0);
  ASSERT_EQ(records.size(), 2u);
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_EQ(r.sample_rate(), 16000);
    EXPECT_DOUBLE_EQ(r.audio_s(), ExpectedAudioSeconds(h.model));
  }
}

TEST(LoadRunnerTest, TorchInferenceJsonAndStream) {
  Harness h;
  v1::Target t;
  t.set_api("torch-inference");
  auto json = h.Run(t, 1, 2, 0);
  ASSERT_EQ(json.size(), 2u);
  for (const auto& r : json) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_DOUBLE_EQ(r.audio_s(), ExpectedAudioSeconds(h.model));
    EXPECT_EQ(r.first_audio_ns(), r.end_ns());  // base64 audio exists once the JSON is whole
  }
  Harness h2;
  t.set_streaming(true);
  auto streamed = h2.Run(t, 1, 2, 0);
  ASSERT_EQ(streamed.size(), 2u);
  for (const auto& r : streamed) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_DOUBLE_EQ(r.audio_s(), ExpectedAudioSeconds(h2.model));
    EXPECT_LT(r.first_audio_ns(), r.end_ns());
  }
}

TEST(LoadRunnerTest, ServerErrorsBecomeClassifiedRecords) {
  synth::SynthOptions so;
  so.error_rate = 1.0;
  Harness h(so);
  auto records = h.Run(OpenAi("wav", false), 2, 4, 0);
  ASSERT_EQ(records.size(), 4u);
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_HTTP_5XX);
    EXPECT_EQ(r.http_status(), 500);
  }
}

TEST(LoadRunnerTest, BodyCutShortIsAReadError) {
  synth::SynthOptions so;
  so.truncate_rate = 1.0;
  Harness h(so);
  for (bool streaming : {false, true}) {
    auto records = h.Run(OpenAi("wav", streaming), 1, 2, 0);
    for (const auto& r : records) {
      EXPECT_NE(r.error(), v1::ERROR_NONE) << "streaming " << streaming;
      EXPECT_TRUE(r.error() == v1::ERROR_READ || r.error() == v1::ERROR_INVALID_AUDIO)
          << r.DebugString();
    }
  }
}

TEST(LoadRunnerTest, UnreachableTargetGivesConnectErrors) {
  Harness h;
  v1::Target t = OpenAi("wav", false);
  t.set_url(h.url());
  h.server->Stop();
  Shard shard = MakeShard(t);
  shard.cfg.concurrency = 2;
  shard.cfg.iterations = 4;
  auto records = RunShard(std::move(shard)).records;
  ASSERT_EQ(records.size(), 4u);
  for (const auto& r : records) EXPECT_EQ(r.error(), v1::ERROR_CONNECT);
}

TEST(LoadRunnerTest, PerRequestTimeoutIsEnforced) {
  synth::SynthOptions so;
  so.model.base_ms = 2000;
  Harness h(so);
  v1::Target t = OpenAi("wav", false);
  t.set_timeout_s(0.2);
  const auto began = std::chrono::steady_clock::now();
  auto records = h.Run(t, 1, 2, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(3));
  ASSERT_EQ(records.size(), 2u);
  for (const auto& r : records) EXPECT_EQ(r.error(), v1::ERROR_TIMEOUT);
}

TEST(LoadRunnerTest, LapsedLeaseStopsLoadAndCancelsInFlight) {
  synth::SynthOptions so;
  so.model.base_ms = 400;  // each request takes ~0.4 s
  Harness h(so);
  Shard shard = h.ShardOf(OpenAi("wav", true));  // streamed
  shard.cfg.concurrency = 2;
  shard.cfg.iterations = 1000;
  CollectingSink sink;
  LoadRunner runner(std::move(shard.cfg), *shard.dialect, sink, TimelineMap{});
  runner.Warmup();
  const auto began = std::chrono::steady_clock::now();
  runner.ExtendLease(common::SteadyNowNs() + 600'000'000);
  runner.Run(common::SteadyNowNs());
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(1500));
  // The agent tells the coordinator: its Done is not a clean one.
  EXPECT_TRUE(runner.lease_lapsed());
  auto records = sink.measured();
  EXPECT_LT(records.size(), 10u);
  int cancelled = 0;
  for (const auto& r : records) cancelled += r.error() == v1::ERROR_CANCELLED;
  EXPECT_GE(cancelled, 1);
}

TEST(LoadRunnerTest, StopFromAnotherThreadEndsTheRun) {
  synth::SynthOptions so;
  so.model.base_ms = 300;
  Harness h(so);
  Shard shard = h.ShardOf(OpenAi("wav", false));
  shard.cfg.concurrency = 4;
  shard.cfg.iterations = 100000;
  shard.cfg.threads = 2;
  CollectingSink sink;
  LoadRunner runner(std::move(shard.cfg), *shard.dialect, sink, TimelineMap{});
  runner.Warmup();
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    runner.Stop();
  });
  const auto began = std::chrono::steady_clock::now();
  runner.Run(common::SteadyNowNs());
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(2));
  EXPECT_LT(sink.measured().size(), 100u);
}

TEST(LoadRunnerTest, RecordsAreOnTheCoordinatorTimeline) {
  Harness h;
  Shard shard = h.ShardOf(OpenAi("wav", false));
  shard.cfg.concurrency = 1;
  shard.cfg.iterations = 1;
  CollectingSink sink;
  // The agent's clock runs 5 s ahead of the coordinator's; the epoch is "now" on the latter.
  const int64_t offset = 5'000'000'000;
  const int64_t epoch = common::SteadyNowNs() - offset;
  LoadRunner runner(std::move(shard.cfg), *shard.dialect, sink, TimelineMap{epoch, offset});
  runner.Warmup();
  runner.Run(common::SteadyNowNs());
  auto records = sink.measured();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_GT(records[0].start_ns(), 0);
  EXPECT_LT(records[0].start_ns(), 2'000'000'000);
}

TEST(LoadRunnerTest, TimeBoundWarmupIsNotCutByTheLevelTimeLimit) {
  // The level time limit bounds the measured phase; it once also cut a longer time-bound
  // warm-up, and the cut stopped the runner for good: no measured request at all.
  Harness h;
  Shard shard = h.ShardOf(OpenAi("wav", false));
  shard.cfg.timeout_s = 5;
  shard.cfg.concurrency = 2;
  shard.cfg.warmup_s = 0.6;
  shard.cfg.duration_s = 0.3;
  shard.cfg.time_limit_s = 0.4;
  CollectingSink sink;
  LoadRunner runner(std::move(shard.cfg), *shard.dialect, sink, TimelineMap{});
  const auto began = std::chrono::steady_clock::now();
  runner.Warmup();
  EXPECT_GE(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(550));
  runner.Run(common::SteadyNowNs());
  EXPECT_FALSE(runner.lease_lapsed());
  // The measured phase ran: successes, and at most a last request or two cut by the limit.
  size_t ok = 0;
  for (const auto& r : sink.measured()) {
    ok += r.error() == v1::ERROR_NONE;
    if (r.error() != v1::ERROR_NONE) {
      EXPECT_EQ(r.error(), v1::ERROR_CANCELLED) << r.DebugString();
    }
  }
  EXPECT_GE(ok, 4u);
}

TEST(LoadRunnerTest, TimeBoundWarmupAndMeasuredRequestIdsNeverCollide) {
  Harness h;
  Shard shard = h.ShardOf(OpenAi("wav", false));
  shard.cfg.timeout_s = 5;
  shard.cfg.concurrency = 2;
  shard.cfg.warmup_s = 0.2;  // how many warm-up requests that is, nobody knows beforehand
  shard.cfg.iterations = 20;
  shard.cfg.threads = 2;
  CollectingSink sink;
  LoadRunner runner(std::move(shard.cfg), *shard.dialect, sink, TimelineMap{});
  runner.Warmup();
  runner.Run(common::SteadyNowNs());
  std::set<uint64_t> ids;
  size_t warmup = 0;
  std::vector<v1::RequestRecord> all = sink.all();
  for (const auto& r : all) {
    warmup += r.warmup();
    EXPECT_TRUE(ids.insert(r.request_id()).second) << "duplicate id " << r.request_id();
  }
  EXPECT_GT(warmup, 0u);
  EXPECT_EQ(all.size() - warmup, 20u);
}

}  // namespace
}  // namespace ttsbench::agent::testing
