// The library's run: closed-loop levels on threads in this process, records as the agents make
// them, then the coordinator's own statistics, session assembly and writers.
#include "ttsbench/benchmark.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "common/level_deadlines.h"
#include "common/record_store.h"
#include "common/slo.h"
#include "common/texts.h"
#include "common/version.h"
#include "coordinator/cli/plan_file.h"
#include "coordinator/library/recording_sink.h"
#include "coordinator/report/report.h"
#include "coordinator/run/orchestrator.h"
#include "coordinator/run/self_checks.h"
#include "coordinator/run/session_runner.h"
#include "coordinator/sessions/sessions.h"
#include "google/protobuf/util/json_util.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench {

struct BenchmarkPlan::Impl {
  v1::Plan plan;
  std::vector<std::string> texts;  // empty: the built-in corpus of plan.texts().length()
  std::string engine = "engine";
};

struct BenchmarkResult::Impl {
  v1::Session session;
};

namespace {

using common::SteadyNowNs;

constexpr int kMaxConcurrency = 4096;  // threads, one per user

v1::Plan DefaultPlan() {
  v1::Plan plan;
  plan.set_mode("library");
  plan.mutable_target()->set_api("library");
  plan.mutable_target()->set_timeout_s(30);
  plan.mutable_texts()->set_length("medium");
  plan.mutable_load()->set_model("closed");
  plan.mutable_load()->add_concurrency(1);
  plan.mutable_load()->set_iterations(25);
  plan.mutable_load()->set_stall_threshold_ms(100);
  return plan;
}

// The first problem of a plan, named by its setter, or OK.
absl::Status CheckPlan(const BenchmarkPlan::Impl& p) {
  const v1::Load& load = p.plan.load();
  if (load.concurrency_size() == 0) return absl::InvalidArgumentError("Concurrency: no levels");
  for (const int c : load.concurrency()) {
    if (c < 1 || c > kMaxConcurrency) {
      return absl::InvalidArgumentError(
          absl::StrCat("Concurrency: ", c, " is outside 1..", kMaxConcurrency));
    }
  }
  if (load.iterations() < 0) return absl::InvalidArgumentError("Iterations: below 0");
  if (load.duration_s() < 0) return absl::InvalidArgumentError("Duration: below 0");
  if (load.iterations() == 0 && load.duration_s() == 0) {
    return absl::InvalidArgumentError("Iterations or Duration: one of them must be above 0");
  }
  if (load.warmup() < 0) return absl::InvalidArgumentError("Warmup: below 0");
  if (load.warmup_s() < 0) return absl::InvalidArgumentError("WarmupDuration: below 0");
  if (load.think_time_s() < 0) return absl::InvalidArgumentError("ThinkTime: below 0");
  if (load.ramp_up_s() < 0) return absl::InvalidArgumentError("RampUp: below 0");
  if (load.stall_threshold_ms() <= 0)
    return absl::InvalidArgumentError("StallThreshold: not above 0");
  if (!(p.plan.target().timeout_s() > 0)) return absl::InvalidArgumentError("Timeout: not above 0");
  for (size_t i = 0; i < p.texts.size(); ++i) {
    if (p.texts[i].empty())
      return absl::InvalidArgumentError(absl::StrCat("Texts: text ", i, " is empty"));
  }
  if (auto slos =
          common::ParseSlos(std::vector<std::string>(p.plan.slo().begin(), p.plan.slo().end()));
      !slos.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("Slo: ", slos.status().message()));
  }
  return absl::OkStatus();
}

Distribution View(const v1::Distribution& d) {
  return Distribution{d.mean(), d.p50(), d.p95(), d.p99(), d.max(), d.count()};
}

LevelResult View(const v1::LevelStats& s) {
  LevelResult r;
  r.concurrency = s.concurrency();
  r.attempted = s.attempted();
  r.successful = s.successful();
  r.failed = s.failed();
  r.cancelled = s.cancelled();
  r.warmup_excluded = s.warmup_excluded();
  r.t_wall_s = s.t_wall_s();
  r.asps = s.asps();
  r.rps = s.rps();
  r.cps = s.cps();
  r.goodput_rps = s.goodput_rps();
  r.audio_seconds = s.audio_seconds();
  r.characters = s.characters();
  r.success_rate_pct = s.success_rate_pct();
  r.rtf = View(s.rtf());
  r.rtf_median = s.rtf_median();
  r.ttfa_ms = View(s.ttfa_ms());
  r.latency_ms = View(s.latency_ms());
  r.gap_ms = View(s.gap_ms());
  r.underrun_ms = View(s.underrun_ms());
  r.continuity_ok_pct = s.continuity_ok_pct();
  r.errors.insert(s.errors().begin(), s.errors().end());
  for (const v1::ErrorSummary& e : s.error_summary()) {
    r.error_summary.push_back({e.kind(), e.count(), e.first_detail()});
  }
  for (const v1::SloResult& v : s.slo()) r.slos.push_back({v.slo(), v.value(), v.pass()});
  return r;
}

// One phase of a level (warm-up or measured), as the agent's load runner has them.
struct Phase {
  bool warmup = false;
  int64_t count = INT64_MAX;     // requests to send
  int64_t start_ns = 0;          // steady clock
  int64_t end_ns = INT64_MAX;    // no request starts after this
  int64_t limit_ns = INT64_MAX;  // in-flight requests are stopped after this
  int64_t id_base = 0;           // request ids: warm-up first, measured after
};

// What one user (thread) measured in a phase.
struct UserOutput {
  std::vector<v1::RequestRecord> records;
  common::LogHistogram gaps_us;
};

class LevelRunner {
 public:
  LevelRunner(const v1::Plan& plan, const std::vector<std::string>& texts, TtsClient& engine,
              int64_t epoch_ns, const std::atomic<bool>* user_stop)
      : plan_(plan), texts_(texts), engine_(engine), epoch_ns_(epoch_ns), user_stop_(user_stop) {}

  // Runs the phase on `concurrency` threads; returns how many requests it started.
  int64_t Run(const Phase& ph, int concurrency, coordinator::LevelData& level) {
    next_.store(0);
    cancel_.store(false);
    active_ = concurrency;
    std::vector<UserOutput> out(static_cast<size_t>(concurrency));
    std::vector<std::thread> users;
    users.reserve(out.size());
    for (int u = 0; u < concurrency; ++u) {
      users.emplace_back([&, u] {
        User(ph, u, concurrency, out[static_cast<size_t>(u)]);
        std::lock_guard<std::mutex> lock(mu_);
        if (--active_ == 0) done_.notify_all();
      });
    }
    {
      // The phase's limit and the user's stop end it; the users notice through their sinks.
      std::unique_lock<std::mutex> lock(mu_);
      while (active_ > 0) {
        done_.wait_for(lock, std::chrono::milliseconds(20));
        if (SteadyNowNs() >= ph.limit_ns || Stopped()) cancel_.store(true);
      }
    }
    for (std::thread& t : users) t.join();
    std::vector<v1::RequestRecord> all;
    for (UserOutput& o : out) {
      for (v1::RequestRecord& r : o.records) all.push_back(std::move(r));
      level.gaps_us.Merge(o.gaps_us);
    }
    std::sort(all.begin(), all.end(), [](const v1::RequestRecord& a, const v1::RequestRecord& b) {
      return a.start_ns() < b.start_ns();
    });
    for (const v1::RequestRecord& r : all) level.records.Append(r, 0);
    return std::min(next_.load(), ph.count);
  }

  bool Stopped() const { return user_stop_ != nullptr && user_stop_->load(); }

 private:
  static int64_t Ns(double s) { return static_cast<int64_t>(s * 1e9); }

  // Sleeps until `at_ns`, waking early when the phase is cancelled.
  void SleepUntil(int64_t at_ns) const {
    while (!cancel_.load() && SteadyNowNs() < at_ns) {
      std::this_thread::sleep_for(
          std::chrono::nanoseconds(std::min<int64_t>(at_ns - SteadyNowNs(), 20'000'000)));
    }
  }

  bool Claim(const Phase& ph, int64_t* n) {
    if (cancel_.load() || Stopped() || SteadyNowNs() >= ph.end_ns) return false;
    *n = next_.fetch_add(1);
    return *n < ph.count;
  }

  // Closed loop: one user, back to back (plus think time), until the phase ends.
  void User(const Phase& ph, int user, int concurrency, UserOutput& out) {
    const v1::Load& load = plan_.load();
    int64_t intended = ph.start_ns;
    if (!ph.warmup && load.ramp_up_s() > 0) {
      intended += Ns(load.ramp_up_s()) * user / concurrency;
    }
    SleepUntil(intended);
    intended = std::max(intended, SteadyNowNs());
    std::vector<int64_t> gaps_ns;
    int64_t n = 0;
    while (Claim(ph, &n)) {
      out.records.push_back(Send(ph, n, intended, gaps_ns, ph.warmup ? nullptr : &out.gaps_us));
      intended = SteadyNowNs() + Ns(load.think_time_s());
      if (load.think_time_s() > 0) SleepUntil(intended);
    }
  }

  v1::RequestRecord Send(const Phase& ph, int64_t n, int64_t intended,
                         std::vector<int64_t>& gaps_ns, common::LogHistogram* gaps_us) {
    const std::string& text = texts_[common::PickText(plan_.texts().seed(), ph.warmup ? 1 : 0,
                                                      static_cast<uint64_t>(n), texts_.size())];
    SynthesisRequest req;
    req.text = text;
    req.voice = plan_.target().voice();
    req.format = plan_.target().format();
    req.id = static_cast<uint64_t>(ph.id_base + n);
    req.warmup = ph.warmup;
    v1::RequestRecord rec;
    rec.set_request_id(req.id);
    rec.set_warmup(ph.warmup);
    rec.set_intended_ns(intended);
    rec.set_chars(common::CountCharacters(text));
    const int64_t start = SteadyNowNs();
    rec.set_start_ns(start);
    library::RecordingSink sink(rec, start + Ns(plan_.target().timeout_s()), cancel_, gaps_ns);
    EngineStatus status;
    // An engine's exception is its request's error, never the run's end.
    try {
      status = engine_.Synthesize(req, sink);
    } catch (const std::exception& e) {
      status = EngineStatus::Error(absl::StrCat("exception: ", e.what()));
    } catch (...) {
      status = EngineStatus::Error("an exception that is not a std::exception");
    }
    sink.Finish(SteadyNowNs(), status, gaps_us);
    // The session's timeline: nanoseconds since the run's start (0 stays "never").
    for (auto [get, set] :
         {std::pair{&v1::RequestRecord::intended_ns, &v1::RequestRecord::set_intended_ns},
          std::pair{&v1::RequestRecord::start_ns, &v1::RequestRecord::set_start_ns},
          std::pair{&v1::RequestRecord::first_byte_ns, &v1::RequestRecord::set_first_byte_ns},
          std::pair{&v1::RequestRecord::first_audio_ns, &v1::RequestRecord::set_first_audio_ns},
          std::pair{&v1::RequestRecord::end_ns, &v1::RequestRecord::set_end_ns}}) {
      const int64_t t = (rec.*get)();
      if (t != 0) (rec.*set)(t - epoch_ns_);
    }
    return rec;
  }

  const v1::Plan& plan_;
  const std::vector<std::string>& texts_;
  TtsClient& engine_;
  const int64_t epoch_ns_;
  const std::atomic<bool>* user_stop_;
  std::atomic<int64_t> next_{0};
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable done_;
  int active_ = 0;
};

// Warm-up, then the measured phase, of one level, bounded by the CLI's deadline model.
coordinator::LevelData RunLevel(LevelRunner& runner, const v1::Plan& plan, int concurrency) {
  coordinator::LevelData level;
  level.concurrency = concurrency;
  const v1::Load& load = plan.load();
  const common::LevelDeadlines deadlines = common::DeriveLevelDeadlines(
      common::ShapeOfLevel(load, plan.target().timeout_s(), concurrency, 0));
  auto after = [](int64_t from, double s) {
    return s > 0 ? from + static_cast<int64_t>(s * 1e9) : INT64_MAX;
  };
  int64_t warm_requests = 0;
  if (load.warmup() > 0 || load.warmup_s() > 0) {
    Phase warm;
    warm.warmup = true;
    warm.start_ns = SteadyNowNs();
    warm.count = load.warmup_s() > 0 ? INT64_MAX : load.warmup();
    warm.end_ns = after(warm.start_ns, deadlines.warmup_end_s);
    warm.limit_ns = after(warm.start_ns, deadlines.warmup_limit_s);
    warm_requests = runner.Run(warm, concurrency, level);
  }
  if (runner.Stopped()) return level;
  Phase measured;
  measured.start_ns = SteadyNowNs();
  measured.count = load.iterations() > 0 ? load.iterations() : INT64_MAX;
  measured.end_ns = after(measured.start_ns, deadlines.measured_end_s);
  measured.limit_ns = after(measured.start_ns, deadlines.measured_limit_s);
  measured.id_base = warm_requests;
  runner.Run(measured, concurrency, level);
  return level;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

BenchmarkResult Failed(std::string error) {
  BenchmarkResult r;
  r.error = std::move(error);
  r.status = "failed";
  return r;
}

}  // namespace

BenchmarkPlan::BenchmarkPlan() : impl_(std::make_unique<Impl>()) { impl_->plan = DefaultPlan(); }
BenchmarkPlan::~BenchmarkPlan() = default;
BenchmarkPlan::BenchmarkPlan(const BenchmarkPlan& other)
    : impl_(std::make_unique<Impl>(*other.impl_)) {}
BenchmarkPlan& BenchmarkPlan::operator=(const BenchmarkPlan& other) {
  *impl_ = *other.impl_;
  return *this;
}

BenchmarkPlan& BenchmarkPlan::Concurrency(std::vector<int> levels) {
  impl_->plan.mutable_load()->clear_concurrency();
  for (const int c : levels) impl_->plan.mutable_load()->add_concurrency(c);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Iterations(int requests) {
  impl_->plan.mutable_load()->set_iterations(requests);
  impl_->plan.mutable_load()->set_duration_s(0);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Duration(double seconds) {
  impl_->plan.mutable_load()->set_duration_s(seconds);
  impl_->plan.mutable_load()->set_iterations(0);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Warmup(int requests) {
  impl_->plan.mutable_load()->set_warmup(requests);
  impl_->plan.mutable_load()->set_warmup_s(0);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::WarmupDuration(double seconds) {
  impl_->plan.mutable_load()->set_warmup_s(seconds);
  impl_->plan.mutable_load()->set_warmup(0);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::ThinkTime(double seconds) {
  impl_->plan.mutable_load()->set_think_time_s(seconds);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::RampUp(double seconds) {
  impl_->plan.mutable_load()->set_ramp_up_s(seconds);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Texts(std::vector<std::string> texts) {
  impl_->texts = std::move(texts);
  impl_->plan.mutable_texts()->clear_length();
  return *this;
}
BenchmarkPlan& BenchmarkPlan::TextLength(std::string length) {
  impl_->plan.mutable_texts()->set_length(std::move(length));
  impl_->texts.clear();
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Seed(uint64_t seed) {
  impl_->plan.mutable_texts()->set_seed(seed);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Voice(std::string voice) {
  impl_->plan.mutable_target()->set_voice(std::move(voice));
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Format(std::string format) {
  impl_->plan.mutable_target()->set_format(std::move(format));
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Timeout(double seconds) {
  impl_->plan.mutable_target()->set_timeout_s(seconds);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Slo(std::string objective) {
  impl_->plan.add_slo(std::move(objective));
  return *this;
}
BenchmarkPlan& BenchmarkPlan::StallThreshold(double ms) {
  impl_->plan.mutable_load()->set_stall_threshold_ms(ms);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::EngineName(std::string name) {
  impl_->engine = std::move(name);
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Description(std::string text) {
  impl_->plan.set_description(std::move(text));
  return *this;
}
BenchmarkPlan& BenchmarkPlan::OutputDir(std::string dir) {
  impl_->plan.set_output_dir(std::move(dir));
  return *this;
}
BenchmarkPlan& BenchmarkPlan::SessionName(std::string name) {
  impl_->plan.set_session_name(std::move(name));
  return *this;
}
BenchmarkPlan& BenchmarkPlan::Overwrite(bool overwrite) {
  impl_->plan.mutable_output()->set_overwrite(overwrite);
  return *this;
}

std::string BenchmarkPlan::ToYaml() const {
  v1::Plan plan = impl_->plan;
  plan.mutable_target()->set_url(absl::StrCat("inprocess://", impl_->engine));
  return coordinator::PlanToYaml(plan);
}

BenchmarkResult::BenchmarkResult() : impl_(std::make_unique<Impl>()) {}
BenchmarkResult::~BenchmarkResult() = default;
BenchmarkResult::BenchmarkResult(BenchmarkResult&&) noexcept = default;
BenchmarkResult& BenchmarkResult::operator=(BenchmarkResult&&) noexcept = default;

std::string BenchmarkResult::Table(const std::string& title) const {
  return coordinator::ConsoleTable(title, impl_->session);
}

std::string BenchmarkResult::SloFailureLine() const {
  return coordinator::SloFailureLine(impl_->session);
}

std::string BenchmarkResult::SessionJson() const {
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(impl_->session, &json, opts).ok()) return "";
  return json;
}

BenchmarkResult RunBenchmark(const BenchmarkPlan& plan_in, TtsClient& engine,
                             const RunOptions& options) {
  const BenchmarkPlan::Impl& p = plan_in.impl();
  if (auto st = CheckPlan(p); !st.ok())
    return Failed(absl::StrCat("BenchmarkPlan: ", st.message()));
  v1::Plan plan = p.plan;
  plan.mutable_target()->set_url(absl::StrCat("inprocess://", p.engine));
  std::vector<std::string> texts = p.texts;
  if (texts.empty()) {
    auto builtin = common::BuiltinTexts(plan.texts().length());
    if (!builtin.ok()) {
      // Texts({}) leaves no texts and no length: say which setter to use.
      return Failed(plan.texts().length().empty()
                        ? std::string("BenchmarkPlan: Texts: no texts given (pass at least one, "
                                      "or use TextLength)")
                        : absl::StrCat("BenchmarkPlan: TextLength: ", builtin.status().message()));
    }
    texts = *std::move(builtin);
  }
  auto slos = common::ParseSlos(std::vector<std::string>(plan.slo().begin(), plan.slo().end()));
  // The CLI's default success-rate floor: a run whose requests mostly failed measured nothing.
  const std::vector<common::Slo> slo_list = common::WithDefaultSlos(*slos);
  if (plan.session_name().empty()) {
    plan.set_session_name(coordinator::DefaultSessionName(plan.mode()));
  }
  BenchmarkResult result;
  // The folder is claimed before any load, as the CLI does: a run is never lost to it.
  std::string dir;
  if (!plan.output_dir().empty()) {
    auto claimed = coordinator::ClaimSessionDir(plan.output_dir(), plan.session_name(),
                                                plan.output().overwrite());
    if (!claimed.ok()) return Failed(std::string(claimed.status().message()));
    if (!claimed->notice.empty()) result.warnings.push_back(claimed->notice);
    plan.set_session_name(claimed->name);
    dir = claimed->dir;
    if (auto st = coordinator::PrepareOutputDir(dir); !st.ok()) {
      return Failed(std::string(st.message()));
    }
  }

  coordinator::RunResult run;
  run.epoch_ns = SteadyNowNs();
  v1::AgentInfo* self = run.session.add_agents();
  self->set_id("in-process");
  self->set_host(HostName());
  self->set_cores(static_cast<int32_t>(std::thread::hardware_concurrency()));
  self->set_version(common::kVersion);
  const std::string started_at = coordinator::WallClockLabel();
  LevelRunner runner(plan, texts, engine, run.epoch_ns, options.stop);
  std::vector<std::string> ignored;
  for (const int concurrency : plan.load().concurrency()) {
    if (runner.Stopped()) break;
    run.levels.push_back(RunLevel(runner, plan, concurrency));
    if (options.on_level) {
      options.on_level(View(coordinator::BuildLevelStats(run.levels.back(), plan, slo_list,
                                                         coordinator::CheckBounds{}, &ignored)));
    }
  }
  if (runner.Stopped()) run.status = absl::CancelledError("stopped");
  coordinator::FillSession(plan, slo_list, started_at, run);
  v1::Session& session = run.session;
  session.set_timeline("seconds on this process's steady clock from the run's start");
  if (!dir.empty()) {
    std::ostringstream notes;
    const absl::Status written = coordinator::WriteSessionOutputs(dir, session, run.levels, notes);
    std::string line;
    std::istringstream lines(notes.str());
    while (std::getline(lines, line)) result.warnings.push_back(line);
    if (written.ok()) {
      result.session_dir = dir;
    } else {
      result.error = std::string(written.message());
    }
  }
  result.status = session.status();
  result.slo_passed = session.slo_passed();
  for (const v1::LevelStats& l : session.levels()) result.levels.push_back(View(l));
  for (const std::string& w : session.warnings()) result.warnings.push_back(w);
  result.impl().session = std::move(session);
  return result;
}

}  // namespace ttsbench
