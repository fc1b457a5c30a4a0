// Runs a few requests of a target through the real LoadRunner and returns their records: the
// shortest path from a dialect and a server to what the agent would report.
#ifndef TTSBENCH_TESTS_AGENT_RUNNER_HARNESS_H_
#define TTSBENCH_TESTS_AGENT_RUNNER_HARNESS_H_

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "agent/client/dialect.h"
#include "agent/load_runner.h"
#include "common/clock.h"
#include "gtest/gtest.h"

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

 private:
  std::mutex mu_;
  std::vector<v1::RequestRecord> all_;
};

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
};

struct RunResult {
  std::vector<v1::RequestRecord> records;  // measured, in completion order
  int connections_after_warmup = 0;
};

inline RunResult RunLoad(const RunSpec& spec) {
  RunResult out;
  auto url = common::ParseUrl(spec.target.url());
  EXPECT_TRUE(url.ok()) << url.status();
  if (!url.ok()) return out;
  auto dialect = MakeDialect(spec.target, *url, spec.secrets);
  EXPECT_TRUE(dialect.ok()) << dialect.status();
  if (!dialect.ok()) return out;
  ShardConfig cfg;
  cfg.url = *url;
  cfg.concurrency = spec.concurrency;
  cfg.iterations = spec.iterations;
  cfg.warmup = spec.warmup;
  cfg.keepalive = spec.keepalive;
  cfg.timeout_s = spec.timeout_s;
  cfg.time_limit_s = 30;  // a hung test fails instead of hanging the suite
  cfg.streamed = spec.target.streaming();
  cfg.threads = spec.threads;
  auto req = (*dialect)->Prepare(spec.text);
  EXPECT_TRUE(req.ok()) << req.status();
  if (!req.ok()) return out;
  cfg.requests.push_back(*req);
  CollectingSink sink;
  LoadRunner runner(std::move(cfg), **dialect, sink, TimelineMap{});
  out.connections_after_warmup = runner.Warmup();
  runner.Run(common::SteadyNowNs());
  out.records = sink.measured();
  return out;
}

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
