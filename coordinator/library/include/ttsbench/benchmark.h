// ttsbench as a library: a plan (levels of concurrent users, requests or time per level,
// warm-up, texts, voice, timeout, SLOs), a run of it against a TtsClient in this process, and
// the same level statistics and session folder as the `ttsbench` CLI (docs/LIBRARY.md).
#ifndef TTSBENCH_BENCHMARK_H_
#define TTSBENCH_BENCHMARK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ttsbench/engine.h"

namespace ttsbench {

// A benchmark plan, built by chained setters. Every level runs closed loop, like the CLI's:
// N users (threads), each sending its next request when the last one ended (plus think time).
// Defaults: concurrency 1, 25 measured requests per level, no warm-up, the built-in "medium"
// texts, a 30 s timeout per request, no session folder.
class BenchmarkPlan {
 public:
  BenchmarkPlan();
  ~BenchmarkPlan();
  BenchmarkPlan(const BenchmarkPlan& other);
  BenchmarkPlan& operator=(const BenchmarkPlan& other);

  BenchmarkPlan& Concurrency(std::vector<int> levels);  // one level per entry, in order
  BenchmarkPlan& Iterations(int requests);  // measured requests per level, across its users
  BenchmarkPlan& Duration(double seconds);  // bound each level by time instead of requests
  BenchmarkPlan& Warmup(int requests);      // per level, excluded from the statistics
  BenchmarkPlan& WarmupDuration(double seconds);
  BenchmarkPlan& ThinkTime(double seconds);              // a user's pause between its requests
  BenchmarkPlan& RampUp(double seconds);                 // users start spread over this time
  BenchmarkPlan& Texts(std::vector<std::string> texts);  // else the built-in corpus
  BenchmarkPlan& TextLength(std::string length);         // built-in corpus: short|medium|long|mixed
  BenchmarkPlan& Seed(uint64_t seed);                    // which text each request gets
  BenchmarkPlan& Voice(std::string voice);
  BenchmarkPlan& Format(std::string format);  // a hint passed to the engine in each request
  BenchmarkPlan& Timeout(double seconds);     // per request
  // An objective, as the CLI's --slo: "ttfa_p95=300ms", "rtf_p95=0.5", "success_rate=99%".
  // Without a success_rate objective every level must reach 50 % success, as in the CLI.
  BenchmarkPlan& Slo(std::string objective);
  BenchmarkPlan& StallThreshold(double ms);     // continuity: worst stall allowed (default 100)
  BenchmarkPlan& EngineName(std::string name);  // how the session names the engine
  BenchmarkPlan& Description(std::string text);
  // Writes the session folder (session.json, summary.csv, requests.csv, plots, report.html) to
  // output_dir/session_name after the run; a taken name becomes name-2, ... unless Overwrite.
  BenchmarkPlan& OutputDir(std::string dir);
  BenchmarkPlan& SessionName(std::string name);  // default library_<UTC time>
  BenchmarkPlan& Overwrite(bool overwrite);

  // The plan as the CLI's `--print-plan` YAML.
  std::string ToYaml() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// A distribution of one metric over a level's successful requests (percentiles by linear
// interpolation between closest ranks).
struct Distribution {
  double mean = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
  uint32_t count = 0;
};

struct ErrorKindSummary {
  std::string kind;  // engine, timeout, invalid_audio, empty_audio, protocol, ...
  uint32_t count = 0;
  std::string first_detail;  // the error detail of the kind's earliest request
};

struct SloVerdict {
  std::string slo;  // as written, e.g. "ttfa_p95=300ms"
  double value = 0;
  bool pass = false;
};

// One level's statistics: the fields of the session's LevelStats that users read most, with
// DESIGN.md's definitions (docs/LIBRARY.md lists them).
struct LevelResult {
  int concurrency = 0;
  uint32_t attempted = 0;
  uint32_t successful = 0;
  uint32_t failed = 0;
  uint32_t cancelled = 0;  // ended by the run itself (level time limit, stop): not attempts
  uint32_t warmup_excluded = 0;
  double t_wall_s = 0;
  double asps = 0;  // audio seconds per wall second
  double rps = 0;
  double cps = 0;
  double goodput_rps = 0;
  double audio_seconds = 0;
  uint64_t characters = 0;
  double success_rate_pct = 0;
  Distribution rtf;
  double rtf_median = 0;
  Distribution ttfa_ms;
  Distribution latency_ms;
  Distribution gap_ms;       // inter-chunk gaps of streamed requests
  Distribution underrun_ms;  // per streamed request: total playback stall
  double continuity_ok_pct = 0;
  std::map<std::string, uint32_t> errors;  // kind -> count
  std::vector<ErrorKindSummary> error_summary;
  std::vector<SloVerdict> slos;
};

// A finished run. `ok()` is false when the run could not start or complete (a plan error, a
// session folder that cannot be written): `error` says why.
class BenchmarkResult {
 public:
  BenchmarkResult();
  ~BenchmarkResult();
  BenchmarkResult(BenchmarkResult&&) noexcept;
  BenchmarkResult& operator=(BenchmarkResult&&) noexcept;

  bool ok() const { return error.empty(); }
  std::string error;
  std::string status;  // completed | interrupted | failed (as session.json's)
  std::vector<LevelResult> levels;
  bool slo_passed = false;  // every level met every objective (the default floor included)
  std::vector<std::string> warnings;  // the CLI's self-checks (Little's law, too few requests...)
  std::string session_dir;            // where the session was written; "" if not

  // The CLI's console table ("Conc ASPS RTF RPS CPS TTFA p95 Success"), best lines, errors by
  // kind and SLO verdicts.
  std::string Table(const std::string& title = "Benchmark Results Summary") const;
  // The one line saying which objective failed, or "" when all passed.
  std::string SloFailureLine() const;
  // The session as session.json holds it (protobuf's JSON mapping of ttsbench.v1.Session).
  std::string SessionJson() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct RunOptions {
  // Set from another thread (e.g. a signal handler's flag) to stop: no new requests start,
  // in-flight ones are told through their sinks, the partial session is kept ("interrupted").
  const std::atomic<bool>* stop = nullptr;
  // Called after each level with its statistics (on the calling thread).
  std::function<void(const LevelResult&)> on_level;
};

// Runs every level of `plan` against `engine` and computes the CLI's statistics. Never throws
// for the engine's sake: its errors and exceptions are the requests' errors.
BenchmarkResult RunBenchmark(const BenchmarkPlan& plan, TtsClient& engine,
                             const RunOptions& options = {});

}  // namespace ttsbench

#endif  // TTSBENCH_BENCHMARK_H_
