// Runs a plan through connected agents: admission, clock sync, per-level assign/ready/start
// under a lease, record collection with sequence checks. Records are kept whatever happens.
#ifndef TTSBENCH_COORDINATOR_ORCHESTRATOR_H_
#define TTSBENCH_COORDINATOR_ORCHESTRATOR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/histogram.h"
#include "common/record_store.h"
#include "coordinator/run/agent_hub.h"
#include "coordinator/run/asr.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// What a level has done so far, for the live progress line.
struct LevelProgress {
  std::string level;  // "concurrency 8", "voice=a rate 20/s"
  uint64_t done = 0;  // measured records received
  uint64_t errors = 0;
  int64_t planned = 0;  // measured requests planned (0: bound by time)
  double elapsed_s = 0;
  double planned_s = 0;  // for time-bound levels
};

struct RunOptions {
  v1::Plan plan;
  std::vector<v1::Header> secret_headers;  // sent to agents only
  std::vector<std::string> texts;
  int expect_agents = 1;
  double agent_timeout_s = 30;
  int clock_probes = 8;
  double lease_s = 5;
  double start_delay_s = 0.25;           // Start is sent this far ahead of the start instant
  double max_clock_uncertainty_ms = 10;  // refuse to start above this
  bool continue_on_agent_loss = false;   // failure_policy: continue
  const std::atomic<bool>* interrupted = nullptr;         // set by SIGINT/SIGTERM
  std::function<void(const LevelProgress&)> on_progress;  // about once a second during a level
};

// Every record of one level, each with the index (into Session.agents) of the agent that made it.
struct LevelData {
  int concurrency = 0;  // closed loop
  double rate = 0;      // open loop
  std::string series;   // which series of a multi-series session
  common::RecordStore records;
  double start_skew_ms = 0;      // spread of the agents' actual start instants
  double max_agent_cpu_pct = 0;  // highest share of one host's cores its agents used together
  uint64_t dropped = 0;          // open loop, all agents
  uint64_t late = 0;
  common::LogHistogram gaps_us;
  std::vector<std::string> lost_agents;  // lost during this level (failure_policy: continue)
  // Stopped their load early because their lease lapsed (the coordinator was unheard); still
  // connected, so they take part in later levels (failure_policy: continue).
  std::vector<std::string> lapsed_agents;
  // plan asr: the audio the agents kept for the recogniser (RequestRecord.asr_audio).
  std::vector<AsrSampleAudio> asr_samples;
  bool degraded() const { return !lost_agents.empty() || !lapsed_agents.empty(); }
};

struct RunResult {
  absl::Status status;  // not OK: the run could not be completed (exit 2); data is still kept
  v1::Session session;  // agents, warnings; levels filled by the caller from `levels`
  std::vector<LevelData> levels;
  int64_t epoch_ns = 0;
  // Some level ran without all of its agents or their whole share (failure_policy: continue):
  // the run is "degraded", never "completed".
  bool degraded() const;
};

// One level to run: closed loop (concurrency) or open loop (rate), for one series' target.
struct LevelSpec {
  int concurrency = 0;
  double rate = 0;
  std::string series;
  v1::Target target;       // empty url: the plan's target
  int64_t iterations = 0;  // > 0: measured requests of this level instead of the plan's count
};

// A series of levels with one target variant: a voice, streamed or not.
struct SeriesSpec {
  std::string name;  // "" for a single-series session; "voice=a streaming=off" otherwise
  v1::Target target;
};

// The series a plan asks for: one per voice (plan.voices), each streamed and not in
// comprehensive mode.
std::vector<SeriesSpec> PlanSeries(const v1::Plan& plan);
// Every level of every series, in run order.
std::vector<LevelSpec> PlanLevels(const v1::Plan& plan);

// Runs levels one at a time, so a caller (capacity search) can choose the next from the last.
class Orchestrator {
 public:
  Orchestrator(AgentHub& hub, const RunOptions& options);
  ~Orchestrator();
  // Waits for the agents and admits them. Non-OK: no run is possible.
  absl::Status Admit();
  // Re-measures the clocks, then runs one level. Non-OK: the run cannot go on (data kept).
  absl::Status RunLevel(const LevelSpec& spec);
  const std::vector<LevelData>& levels() const;
  // Stops the agents and hands back everything measured, with `status` as the run's status.
  RunResult Finish(absl::Status status);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Admit, every level of PlanLevels(plan), Finish.
RunResult RunPlan(AgentHub& hub, const RunOptions& options);

// "concurrency 8" or "rate 20/s", for messages.
std::string LevelName(const LevelData& level);

// Splits `total` across weights proportionally (largest remainder), every unit assigned.
std::vector<int64_t> SplitByWeight(int64_t total, const std::vector<double>& weights);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_ORCHESTRATOR_H_
