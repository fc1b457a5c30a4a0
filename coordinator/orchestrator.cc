#include "coordinator/orchestrator.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "common/version.h"

namespace ttsbench::coordinator {
namespace {

using common::SteadyNowNs;
using Clock = std::chrono::steady_clock;

constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr auto kLeaseRenewEvery = std::chrono::seconds(1);

struct AgentState {
  int conn = 0;
  v1::Hello hello;
  common::OffsetEstimate clock;
  std::vector<common::ClockSample> samples;
  uint64_t last_seq = 0;
  bool ready = false;
  bool done = false;
  v1::ShardDone shard_done;
  double max_cpu = 0;
  bool lost = false;
};

// Kept as records arrive, so that the progress line never scans the store.
struct LevelCounts {
  uint64_t measured = 0;
  uint64_t errors = 0;
};

}  // namespace

class Orchestrator::Impl {
 public:
  Impl(AgentHub& hub, const RunOptions& options) : hub_(hub), o_(options) {
    epoch_ = SteadyNowNs();
    r_.epoch_ns = epoch_;
  }

  absl::Status Admit() { return AdmitAgents(); }

  absl::Status Level(const LevelSpec& spec) {
    RETURN_IF_ERROR(SyncClocks());
    LevelData level;
    level.concurrency = spec.rate > 0 ? 0 : spec.concurrency;
    level.rate = spec.rate;
    level.series = spec.series;
    r_.levels.push_back(std::move(level));
    counts_.emplace_back();
    v1::Load load = o_.plan.load();
    if (spec.iterations > 0) {
      // Sized by requests (a capacity probe), not by the plan's duration.
      load.set_iterations(static_cast<int32_t>(spec.iterations));
      load.set_duration_s(0);
    }
    return RunLevel(static_cast<uint32_t>(r_.levels.size() - 1),
                    spec.target.url().empty() ? o_.plan.target() : spec.target, load);
  }

  const std::vector<LevelData>& levels() const { return r_.levels; }

  RunResult Finish(absl::Status status) {
    r_.status = std::move(status);
    const std::string reason =
        r_.status.ok() ? "session complete" : std::string(r_.status.message());
    for (const AgentState& a : agents_) {
      v1::CoordinatorMessage stop;
      stop.mutable_stop()->set_reason(reason);
      hub_.Send(a.conn, std::move(stop));
    }
    hub_.FinishAll(grpc::Status::OK);
    for (size_t i = 0; i < agents_.size(); ++i) {
      v1::AgentInfo* info = r_.session.add_agents();
      info->set_id(agents_[i].hello.agent_id());
      info->set_host(agents_[i].hello.host());
      info->set_cores(agents_[i].hello.cores());
      info->set_version(agents_[i].hello.version());
      info->set_clock_offset_ms(static_cast<double>(agents_[i].clock.offset_ns) / 1e6);
      info->set_clock_uncertainty_ms(static_cast<double>(agents_[i].clock.uncertainty_ns) / 1e6);
      info->set_clock_samples(agents_[i].clock.samples);
    }
    return std::move(r_);
  }

 private:
  int64_t NowTimeline() const { return SteadyNowNs() - epoch_; }

  void Warn(std::string w) { r_.session.add_warnings(std::move(w)); }

  // Processes one event. Non-OK aborts the run.
  absl::Status Handle(AgentEvent& ev) {
    auto it = by_conn_.find(ev.conn);
    if (ev.kind == AgentEvent::Kind::kDisconnected) {
      if (it == by_conn_.end()) return absl::OkStatus();
      AgentState& lost = agents_[it->second];
      if (lost.lost) return absl::OkStatus();
      lost.lost = true;
      const size_t alive = static_cast<size_t>(std::count_if(
          agents_.begin(), agents_.end(), [](const AgentState& a) { return !a.lost; }));
      if (!o_.continue_on_agent_loss || alive == 0 || !admission_closed_) {
        return absl::UnavailableError(absl::StrCat("agent ", lost.hello.agent_id(), " was lost"));
      }
      // failure_policy continue: the level finishes on the others and is marked degraded.
      if (!r_.levels.empty()) r_.levels.back().lost_agents.push_back(lost.hello.agent_id());
      Warn(absl::StrCat("agent ", lost.hello.agent_id(), " was lost",
                        r_.levels.empty() ? "" : " during " + LevelName(r_.levels.back()),
                        "; continuing on ", alive, " agent(s)"));
      return absl::OkStatus();
    }
    if (ev.kind == AgentEvent::Kind::kRecords) {
      if (it != by_conn_.end()) StoreRecords(agents_[it->second], it->second, ev);
      hub_.Recycle(std::move(ev.records));
      return absl::OkStatus();
    }
    if (ev.msg.has_hello()) return Admit(ev);
    if (it == by_conn_.end()) return absl::OkStatus();
    AgentState& a = agents_[it->second];
    switch (ev.msg.msg_case()) {
      case v1::AgentMessage::kClockReply: {
        const v1::ClockReply& c = ev.msg.clock_reply();
        a.samples.push_back({c.t0_ns(), c.t1_ns(), c.t2_ns(), ev.recv_ns});
        break;
      }
      case v1::AgentMessage::kReady:
        a.ready = true;
        break;
      case v1::AgentMessage::kHeartbeat:
        a.max_cpu = std::max(a.max_cpu, ev.msg.heartbeat().cpu_percent());
        break;
      case v1::AgentMessage::kDone:
        a.done = true;
        a.shard_done = ev.msg.done();
        if (a.shard_done.batches() != a.last_seq) {
          Warn(absl::StrCat("agent ", a.hello.agent_id(), " sent ", a.shard_done.batches(),
                            " record batches but ", a.last_seq, " arrived"));
        }
        break;
      case v1::AgentMessage::kError:
        return absl::AbortedError(
            absl::StrCat("agent ", a.hello.agent_id(), ": ", ev.msg.error().message()));
      default:
        break;
    }
    return absl::OkStatus();
  }

  // The ingest hot path: a converted batch is appended to its level's store.
  void StoreRecords(AgentState& a, int index, const AgentEvent& ev) {
    if (ev.batch_seq != a.last_seq + 1) {
      Warn(absl::StrCat("agent ", a.hello.agent_id(), ": record batches ", a.last_seq + 1, "..",
                        ev.batch_seq - 1, " missing"));
    }
    a.last_seq = std::max(a.last_seq, ev.batch_seq);
    if (ev.batch_level >= r_.levels.size()) return;
    r_.levels[ev.batch_level].records.Append(ev.records, static_cast<uint32_t>(index));
    LevelCounts& counts = counts_[ev.batch_level];
    for (const common::Record& r : ev.records) {
      counts.measured += !r.warmup;
      counts.errors += !r.warmup && r.error != v1::ERROR_NONE;
    }
  }

  absl::Status Admit(const AgentEvent& ev) {
    const v1::Hello& h = ev.msg.hello();
    auto refuse = [&](const std::string& why) {
      v1::CoordinatorMessage stop;
      stop.mutable_stop()->set_reason(why);
      hub_.Send(ev.conn, std::move(stop));
      hub_.Finish(ev.conn, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why));
      Warn(absl::StrCat("refused agent ", h.agent_id(), " from ", ev.peer, ": ", why));
    };
    if (h.version() != common::kVersion) {
      refuse(absl::StrCat("version mismatch: agent ", h.agent_id(), " runs ", h.version(),
                          ", coordinator runs ", common::kVersion));
      return absl::OkStatus();
    }
    if (static_cast<int>(agents_.size()) >= o_.expect_agents || admission_closed_) {
      refuse("the session already has all the agents it expects");
      return absl::OkStatus();
    }
    for (const AgentState& a : agents_) {
      if (a.hello.agent_id() == h.agent_id()) {
        refuse(absl::StrCat("an agent named ", h.agent_id(), " is already connected"));
        return absl::OkStatus();
      }
    }
    AgentState a;
    a.conn = ev.conn;
    a.hello = h;
    by_conn_[ev.conn] = static_cast<int>(agents_.size());
    v1::CoordinatorMessage welcome;
    welcome.mutable_welcome()->set_session(o_.plan.session_name());
    welcome.mutable_welcome()->set_agent_index(static_cast<uint32_t>(agents_.size()));
    agents_.push_back(std::move(a));
    hub_.Send(ev.conn, std::move(welcome));
    return absl::OkStatus();
  }

  // Handles events until `done()` or `deadline`. DeadlineExceeded names `what`.
  absl::Status WaitUntil(const std::function<bool()>& done, Clock::time_point deadline,
                         const std::string& what) {
    while (!done()) {
      if (o_.interrupted != nullptr && o_.interrupted->load()) {
        return absl::CancelledError("interrupted");
      }
      if (Clock::now() >= deadline) return absl::DeadlineExceededError(what);
      auto ev = hub_.Next(std::min(
          kPoll, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()) +
                     std::chrono::milliseconds(1)));
      if (!ev) continue;
      if (auto st = Handle(*ev); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  Clock::time_point After(double seconds) const {
    return Clock::now() + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  }

  absl::Status AdmitAgents() {
    auto st = WaitUntil([&] { return static_cast<int>(agents_.size()) >= o_.expect_agents; },
                        After(o_.agent_timeout_s), "");
    admission_closed_ = true;
    if (absl::IsDeadlineExceeded(st)) {
      std::vector<std::string> names;
      for (const AgentState& a : agents_) names.push_back(a.hello.agent_id());
      return absl::UnavailableError(absl::StrCat(
          agents_.size(), " of ", o_.expect_agents, " agents connected within ", o_.agent_timeout_s,
          " s", names.empty() ? "" : ": ", absl::StrJoin(names, ", ")));
    }
    return st;
  }

  // Four-timestamp exchange, one probe in flight per agent, min-RTT sample kept.
  absl::Status SyncClocks() {
    for (AgentState& a : agents_) a.samples.clear();
    for (int i = 0; i < o_.clock_probes; ++i) {
      for (AgentState& a : agents_) {
        v1::CoordinatorMessage probe;
        probe.mutable_clock_probe()->set_seq(static_cast<uint32_t>(i));
        probe.mutable_clock_probe()->set_t0_ns(SteadyNowNs());
        hub_.Send(a.conn, std::move(probe));
      }
      const size_t want = static_cast<size_t>(i) + 1;
      RETURN_IF_ERROR(WaitUntil(
          [&] {
            return std::all_of(agents_.begin(), agents_.end(), [&](const AgentState& a) {
              return a.lost || a.samples.size() >= want;
            });
          },
          After(5), "clock probe unanswered for 5 s"));
    }
    for (AgentState& a : agents_) {
      if (a.lost) continue;
      auto est = common::EstimateOffset(a.samples);
      if (!est.ok()) {
        return absl::UnavailableError(
            absl::StrCat("agent ", a.hello.agent_id(), ": ", est.status().message()));
      }
      a.clock = *est;
      const double uncertainty_ms = static_cast<double>(a.clock.uncertainty_ns) / 1e6;
      if (uncertainty_ms > o_.max_clock_uncertainty_ms) {
        return absl::FailedPreconditionError(absl::StrCat(
            "agent ", a.hello.agent_id(), ": clock uncertainty ", uncertainty_ms,
            " ms exceeds agents.max_clock_uncertainty_ms ", o_.max_clock_uncertainty_ms));
      }
    }
    return absl::OkStatus();
  }

  absl::Status RunLevel(uint32_t li, const v1::Target& target, const v1::Load& load) {
    LevelData& level = r_.levels[li];
    const bool open = load.model() == "open";
    // The plan's weights (in connection order) or, by default, each agent's cores.
    std::vector<double> weights;
    const auto& plan_weights = o_.plan.agents().weights();
    for (size_t i = 0; i < agents_.size(); ++i) {
      // A lost agent gets no share: its load moves to the others.
      weights.push_back(agents_[i].lost ? 0.0
                        : plan_weights.size() == static_cast<int>(agents_.size())
                            ? plan_weights[static_cast<int>(i)]
                            : std::max(1, agents_[i].hello.cores()));
    }
    const double weight_sum = std::accumulate(weights.begin(), weights.end(), 0.0);
    // Closed loop: users split by weight, requests follow the users. Open loop: rate, requests
    // and the in-flight cap split by weight.
    const std::vector<int64_t> conc =
        open ? std::vector<int64_t>(agents_.size(), 0) : SplitByWeight(level.concurrency, weights);
    const std::vector<double> share =
        open ? weights : std::vector<double>(conc.begin(), conc.end());
    const std::vector<int64_t> iters = SplitByWeight(load.iterations(), share);
    const std::vector<int64_t> warm = SplitByWeight(load.warmup(), share);
    const std::vector<int64_t> caps = SplitByWeight(load.max_inflight(), share);
    int64_t max_uncertainty = 0;
    for (size_t i = 0; i < agents_.size(); ++i) {
      AgentState& a = agents_[i];
      a.ready = a.done = false;
      max_uncertainty = std::max(max_uncertainty, a.clock.uncertainty_ns);
      v1::CoordinatorMessage m;
      v1::Assign* as = m.mutable_assign();
      as->set_level(li);
      as->set_concurrency(static_cast<int32_t>(conc[i]));
      as->set_iterations(iters[i]);
      as->set_warmup(warm[i]);
      *as->mutable_target() = target;
      for (const v1::Header& h : o_.secret_headers) *as->add_secret_headers() = h;
      for (const std::string& t : o_.texts) as->add_texts(t);
      as->set_seed(o_.plan.texts().seed() + li);
      as->set_clock_offset_ns(a.clock.offset_ns);
      as->set_epoch_ns(epoch_);
      if (open) {
        as->set_rate(level.rate * weights[i] / weight_sum);
        as->set_max_inflight(load.max_inflight() > 0 ? std::max<int32_t>(1, caps[i]) : 0);
      }
      *as->mutable_load() = load;
      hub_.Send(a.conn, std::move(m));
    }
    const double timeout_s = o_.plan.target().timeout_s();
    const int64_t per_vu_warm = level.concurrency > 0 ? load.warmup() / level.concurrency + 1 : 1;
    RETURN_IF_ERROR(WaitUntil(
        [&] {
          return std::all_of(agents_.begin(), agents_.end(),
                             [](const AgentState& a) { return a.ready || a.lost; });
        },
        After(o_.agent_timeout_s + timeout_s * static_cast<double>(per_vu_warm)),
        absl::StrCat("agents not ready for ", LevelName(level))));

    const int64_t at =
        NowTimeline() + static_cast<int64_t>(o_.start_delay_s * 1e9) + 2 * max_uncertainty;
    const int64_t lease_ns = static_cast<int64_t>(o_.lease_s * 1e9);
    for (const AgentState& a : agents_) {
      v1::CoordinatorMessage m;
      m.mutable_start()->set_level(li);
      m.mutable_start()->set_at_ns(at);
      m.mutable_start()->set_valid_until_ns(at + lease_ns);
      hub_.Send(a.conn, std::move(m));
    }
    // A level never runs unbounded: every request may take its whole timeout, plus slack.
    const int64_t rounds =
        level.concurrency > 0 ? (load.iterations() + level.concurrency - 1) / level.concurrency : 1;
    const auto deadline =
        After(o_.start_delay_s + 2 * timeout_s * static_cast<double>(rounds) + 60);
    auto all_done = [&] {
      return std::all_of(agents_.begin(), agents_.end(),
                         [](const AgentState& a) { return a.done || a.lost; });
    };
    for (;;) {
      const auto renew_at = Clock::now() + kLeaseRenewEvery;
      auto st = WaitUntil(all_done, std::min(renew_at, deadline), "");
      if (st.ok()) break;
      if (!absl::IsDeadlineExceeded(st)) return st;
      if (Clock::now() >= deadline) {
        Warn(absl::StrCat(LevelName(level), ": level time limit reached; agents stopped"));
        for (const AgentState& a : agents_) {
          v1::CoordinatorMessage m;
          m.mutable_stop()->set_reason("level time limit");
          hub_.Send(a.conn, std::move(m));
        }
        return absl::DeadlineExceededError(
            absl::StrCat(LevelName(level), " did not finish in time"));
      }
      for (const AgentState& a : agents_) {
        v1::CoordinatorMessage m;
        m.mutable_lease()->set_valid_until_ns(NowTimeline() + lease_ns);
        hub_.Send(a.conn, std::move(m));
      }
      if (o_.on_progress) {
        LevelProgress p;
        p.level = absl::StrCat(level.series.empty() ? "" : level.series + " ", LevelName(level));
        p.done = counts_[li].measured;
        p.errors = counts_[li].errors;
        p.planned = load.duration_s() > 0 ? 0 : load.iterations();
        p.planned_s = load.duration_s();
        p.elapsed_s = static_cast<double>(NowTimeline() - at) / 1e9;
        o_.on_progress(p);
      }
    }
    // Start skew: the spread of the agents' first measured sends on the global timeline (the
    // scheduled instant is the same for all; this is what the clocks and timers delivered).
    std::vector<int64_t> first_send(agents_.size(), INT64_MAX);
    level.records.ForEach([&](const common::RecordStore::Chunk& c, size_t k) {
      if (c.warmup(k) || c.start_ns[k] == 0 || c.agent[k] >= first_send.size()) return;
      first_send[c.agent[k]] = std::min(first_send[c.agent[k]], c.start_ns[k]);
    });
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (size_t i = 0; i < agents_.size(); ++i) {
      const v1::ShardDone& done = agents_[i].shard_done;
      level.dropped += done.dropped();
      level.late += done.late();
      level.gaps_us.Merge(common::LogHistogram::FromProto(done.gaps_us()));
      level.max_agent_cpu_pct = std::max(level.max_agent_cpu_pct, agents_[i].max_cpu);
      agents_[i].max_cpu = 0;
      // Open loop sends at random instants: only closed-loop first sends mark the start.
      if (open || first_send[i] == INT64_MAX) continue;
      first = std::min(first, first_send[i]);
      last = std::max(last, first_send[i]);
    }
    if (first != INT64_MAX) level.start_skew_ms = static_cast<double>(last - first) / 1e6;
    return absl::OkStatus();
  }

  AgentHub& hub_;
  const RunOptions& o_;
  RunResult r_;
  int64_t epoch_ = 0;
  std::vector<AgentState> agents_;
  std::vector<LevelCounts> counts_;  // per level, for the progress line
  std::map<int, int> by_conn_;
  bool admission_closed_ = false;
};

Orchestrator::Orchestrator(AgentHub& hub, const RunOptions& options)
    : impl_(std::make_unique<Impl>(hub, options)) {}
Orchestrator::~Orchestrator() = default;
absl::Status Orchestrator::Admit() { return impl_->Admit(); }
absl::Status Orchestrator::RunLevel(const LevelSpec& spec) { return impl_->Level(spec); }
const std::vector<LevelData>& Orchestrator::levels() const { return impl_->levels(); }
RunResult Orchestrator::Finish(absl::Status status) { return impl_->Finish(std::move(status)); }

std::vector<LevelSpec> PlanLevels(const v1::Plan& plan) {
  std::vector<LevelSpec> out;
  const v1::Load& load = plan.load();
  const bool open = load.model() == "open";
  for (const SeriesSpec& series : PlanSeries(plan)) {
    const int n = open ? load.rate_size() : load.concurrency_size();
    for (int i = 0; i < n; ++i) {
      LevelSpec spec;
      spec.series = series.name;
      spec.target = series.target;
      if (open) {
        spec.rate = load.rate(i);
      } else {
        spec.concurrency = load.concurrency(i);
      }
      out.push_back(std::move(spec));
    }
  }
  return out;
}

std::vector<SeriesSpec> PlanSeries(const v1::Plan& plan) {
  std::vector<SeriesSpec> out;
  const bool both = plan.mode() == "comprehensive";
  std::vector<std::string> voices(plan.voices().begin(), plan.voices().end());
  const bool per_voice = !voices.empty();
  if (!per_voice) voices.push_back(plan.target().voice());
  for (const std::string& voice : voices) {
    for (int streamed = 1; streamed >= (both ? 0 : 1); --streamed) {
      SeriesSpec s;
      s.target = plan.target();
      s.target.set_voice(voice);
      if (both) s.target.set_streaming(streamed == 1);
      if (per_voice) s.name = absl::StrCat("voice=", voice);
      if (both)
        absl::StrAppend(&s.name, s.name.empty() ? "" : " ", "streaming=", streamed ? "on" : "off");
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::string LevelName(const LevelData& level) {
  if (level.rate > 0) return absl::StrCat("rate ", level.rate, "/s");
  return absl::StrCat("concurrency ", level.concurrency);
}

std::vector<int64_t> SplitByWeight(int64_t total, const std::vector<double>& weights) {
  std::vector<int64_t> out(weights.size(), 0);
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  if (weights.empty() || sum <= 0 || total <= 0) return out;
  std::vector<std::pair<double, size_t>> remainders;
  int64_t given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = static_cast<double>(total) * weights[i] / sum;
    out[i] = static_cast<int64_t>(std::floor(exact));
    given += out[i];
    if (weights[i] > 0) remainders.push_back({exact - static_cast<double>(out[i]), i});
  }
  // Largest remainder first; ties go to the earlier agent so the split is deterministic.
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < total && !remainders.empty(); k = (k + 1) % remainders.size()) {
    ++out[remainders[k].second];
    ++given;
  }
  return out;
}

RunResult RunPlan(AgentHub& hub, const RunOptions& options) {
  Orchestrator orchestrator(hub, options);
  absl::Status st = orchestrator.Admit();
  for (const LevelSpec& spec : PlanLevels(options.plan)) {
    if (!st.ok()) break;
    st = orchestrator.RunLevel(spec);
  }
  return orchestrator.Finish(std::move(st));
}

}  // namespace ttsbench::coordinator
