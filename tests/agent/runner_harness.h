// Runs a few requests of a target through the real LoadRunner and returns their records: the
// shortest path from a dialect and a server (a FakeServer, or the synthetic server on loopback)
// to what the agent would report. Tests that drive a LoadRunner themselves start from MakeShard.
#ifndef TTSBENCH_TESTS_AGENT_RUNNER_HARNESS_H_
#define TTSBENCH_TESTS_AGENT_RUNNER_HARNESS_H_

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "agent/client/dialect.h"
#include "agent/load_runner.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "gtest/gtest.h"
#include "synth/synth_server.h"
#include "tests/agent/fake_server.h"

namespace ttsbench::agent::testing {

inline constexpr char kText[] = "The next train to the airport leaves from platform four.";

class CollectingSink final : public RecordSink {
 public:
  void Push(std::vector<v1::RequestRecord>&& records) override {
    std::lock_guard lock(mu_);
    for (auto& r : records) all_.push_back(std::move(r));
  }
  std::vector<v1::RequestRecord> measured() {
    std::lock_guard lock(mu_);
    std::vector<v1::RequestRecord> out;
    for (const auto& r : all_) {
      if (!r.warmup()) out.push_back(r);
    }
    return out;
  }
  std::vector<v1::RequestRecord> all() {  // warm-up and measured
    std::lock_guard lock(mu_);
    return all_;
  }

 private:
  std::mutex mu_;
  std::vector<v1::RequestRecord> all_;
};

inline v1::Header H(const std::string& name, const std::string& value) {
  v1::Header h;
  h.set_name(name);
  h.set_value(value);
  return h;
}

// OpenAI speech in `format` (and `stream_format`, "" for none).
inline v1::Target OpenAiTarget(const std::string& format, const std::string& stream_format = "",
                               const std::string& voice = "alloy") {
  v1::Target t;
  t.set_api("openai");
  t.set_voice(voice);
  t.set_format(format);
  t.set_stream_format(stream_format);
  return t;
}

// torch-inference over its WebSocket (/audio/ws).
inline v1::Target TorchWsTarget(const std::string& format = "") {
  v1::Target t;
  t.set_api("torch-inference");
  t.set_format(format);
  t.set_stream_format("ws");
  return t;
}

// One prepared request to `target` (url set) and the dialect that prepared it: a ShardConfig
// with url, request and `streamed` filled; the caller sets the load. A failure is a test failure
// and leaves `dialect` null.
struct Shard {
  std::unique_ptr<Dialect> dialect;
  ShardConfig cfg;
};

inline Shard MakeShard(const v1::Target& target, const std::string& text = kText,
                       const std::vector<v1::Header>& secrets = {}) {
  Shard out;
  auto url = common::ParseUrl(target.url());
  EXPECT_TRUE(url.ok()) << url.status();
  if (!url.ok()) return out;
  auto dialect = MakeDialect(target, *url, secrets);
  EXPECT_TRUE(dialect.ok()) << dialect.status();
  if (!dialect.ok()) return out;
  auto req = (*dialect)->Prepare(text);
  EXPECT_TRUE(req.ok()) << req.status();
  if (!req.ok()) return out;
  out.dialect = std::move(*dialect);
  out.cfg.url = *url;
  out.cfg.streamed = target.streaming();
  out.cfg.requests.push_back(*std::move(req));
  return out;
}

struct RunSpec {
  v1::Target target;  // url set
  std::vector<v1::Header> secrets;
  int concurrency = 1;
  int iterations = 1;
  int warmup = 0;
  bool keepalive = true;
  double timeout_s = 5;
  std::string text = kText;
  int threads = 1;
  double think_time_s = 0;
};

struct RunResult {
  std::vector<v1::RequestRecord> records;  // measured, in completion order
  int connections_after_warmup = 0;
  int64_t start_ns = 0;  // when the measured phase was to start
  PhaseCounters counters;
  common::LogHistogram gaps_us;  // inter-chunk gaps of the measured phase
};

// `shard` through a LoadRunner: warm-up, then the measured phase from `lead_ns` after it.
inline RunResult RunShard(Shard shard, int64_t lead_ns = 0) {
  RunResult out;
  if (shard.dialect == nullptr) return out;
  CollectingSink sink;
  LoadRunner runner(std::move(shard.cfg), *shard.dialect, sink, TimelineMap{});
  out.connections_after_warmup = runner.Warmup();
  out.start_ns = common::SteadyNowNs() + lead_ns;
  out.counters = runner.Run(out.start_ns);
  out.gaps_us = common::LogHistogram::FromProto(out.counters.gaps_us);
  out.records = sink.measured();
  return out;
}

inline RunResult RunLoad(const RunSpec& spec) {
  Shard shard = MakeShard(spec.target, spec.text, spec.secrets);
  ShardConfig& cfg = shard.cfg;
  cfg.concurrency = spec.concurrency;
  cfg.iterations = spec.iterations;
  cfg.warmup = spec.warmup;
  cfg.keepalive = spec.keepalive;
  cfg.timeout_s = spec.timeout_s;
  cfg.think_time_s = spec.think_time_s;
  cfg.time_limit_s = 30;  // a hung test fails instead of hanging the suite
  cfg.threads = spec.threads;
  return RunShard(std::move(shard));
}

// `spec` against `server`: its url set to the server's.
inline RunResult RunLoad(const FakeServer& server, RunSpec spec) {
  spec.target.set_url(server.url());
  return RunLoad(spec);
}

// `spec` against a FakeServer started for it with `options`; the measured records.
inline std::vector<v1::RequestRecord> RunAgainst(FakeServer::Options options, RunSpec spec) {
  FakeServer server(std::move(options));
  return RunLoad(server, std::move(spec)).records;
}

// The synthetic server on loopback, for one test.
struct LoopbackSynth {
  explicit LoopbackSynth(synth::SynthOptions o = synth::SynthOptions()) : options(std::move(o)) {
    auto s = synth::SynthServer::Start(options);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) server = std::move(*s);
  }
  uint16_t port() const { return server->port(); }
  std::string url(const std::string& scheme = "http") const {
    return scheme + "://127.0.0.1:" + std::to_string(server->port());
  }

  synth::SynthOptions options;
  std::unique_ptr<synth::SynthServer> server;
};

// ctest runs test cases as parallel processes: the pid and a counter keep their files apart.
inline std::string WriteTempFile(const std::string& name, const std::string& contents) {
  static std::atomic<int> counter{0};
  const std::string path = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter++) + "-" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  return path;
}

}  // namespace ttsbench::agent::testing

#endif  // TTSBENCH_TESTS_AGENT_RUNNER_HARNESS_H_
