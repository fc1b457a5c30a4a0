#include "coordinator/run/orchestrator.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/level_deadlines.h"
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
  double cpu_now = 0;  // the last heartbeat's share of its host's cores
  bool lost = false;
  int64_t last_heard_ns = 0;    // coordinator steady clock: the last message of any kind
  bool warned_silence = false;  // this level: a stall shorter than the lease was reported
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
    // A level of no series carries no target (a command target has no URL, so the URL alone
    // cannot tell: a series' target always has its api).
    const bool own_target = !spec.target.url().empty() || !spec.target.api().empty();
    return RunLevel(static_cast<uint32_t>(r_.levels.size() - 1),
                    own_target ? spec.target : o_.plan.target(), load);
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
      return LoseAgent(agents_[it->second], "was lost");
    }
    // A lost agent's later messages (it may wake up after a stall) belong to no level: its old
    // Done must not count again, its records arrive after the level was closed without it.
    if (it != by_conn_.end() && agents_[it->second].lost) {
      if (ev.kind == AgentEvent::Kind::kRecords) hub_.Recycle(std::move(ev.records));
      return absl::OkStatus();
    }
    if (it != by_conn_.end()) {
      NoteSilence(agents_[it->second], ev.recv_ns);
      agents_[it->second].last_heard_ns = ev.recv_ns;
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
      case v1::AgentMessage::kHeartbeat: {
        // Agents on one host share its cores: what limits the generator is their sum.
        a.cpu_now = ev.msg.heartbeat().cpu_percent();
        double host = 0;
        for (const AgentState& b : agents_) {
          if (!b.lost && b.hello.host() == a.hello.host()) host += b.cpu_now;
        }
        level_host_cpu_ = std::max(level_host_cpu_, host);
        break;
      }
      case v1::AgentMessage::kDone:
        // Only the Done of the level being run counts: never an earlier level's.
        if (r_.levels.empty() || ev.msg.done().level() != r_.levels.size() - 1) break;
        a.done = true;
        a.shard_done = ev.msg.done();
        if (a.shard_done.batches() != a.last_seq) {
          Warn(absl::StrCat("agent ", a.hello.agent_id(), " sent ", a.shard_done.batches(),
                            " record batches but ", a.last_seq, " arrived"));
        }
        if (a.shard_done.lease_lapsed()) return LeaseLapsed(a);
        break;
      case v1::AgentMessage::kError:
        return absl::AbortedError(
            absl::StrCat("agent ", a.hello.agent_id(), ": ", ev.msg.error().message()));
      default:
        break;
    }
    return absl::OkStatus();
  }

  size_t Alive() const {
    return static_cast<size_t>(
        std::count_if(agents_.begin(), agents_.end(), [](const AgentState& a) { return !a.lost; }));
  }

  std::string During() const {
    return r_.levels.empty() || !in_level_ ? "" : " during " + LevelName(r_.levels.back());
  }

  // An agent is gone (disconnected, or silent past its lease): abort, or under
  // failure_policy continue finish the level on the others, marked degraded.
  absl::Status LoseAgent(AgentState& lost, const std::string& what) {
    if (lost.lost) return absl::OkStatus();
    // Agents that go away while the user interrupts the run went with it (a signal to the whole
    // process group, a CI job cancelled): the run was interrupted, no agent failed.
    if (o_.interrupted != nullptr && o_.interrupted->load()) {
      return absl::CancelledError("interrupted");
    }
    lost.lost = true;
    const size_t alive = Alive();
    const std::string message = absl::StrCat("agent ", lost.hello.agent_id(), " ", what, During());
    if (!o_.continue_on_agent_loss || alive == 0 || !admission_closed_) {
      return absl::UnavailableError(message);
    }
    if (in_level_) r_.levels.back().lost_agents.push_back(lost.hello.agent_id());
    Warn(absl::StrCat(message, "; continuing on ", alive, " agent(s)"));
    return absl::OkStatus();
  }

  // An agent reports that it stopped its load early because its lease ran out: the coordinator
  // was unheard (stalled, or the network was). Its share of the level is incomplete.
  absl::Status LeaseLapsed(AgentState& a) {
    const std::string message = absl::StrCat(
        "agent ", a.hello.agent_id(), " stopped its load", During(),
        ": its lease lapsed (no lease renewal from the coordinator for ", o_.lease_s, " s)");
    if (!o_.continue_on_agent_loss) return absl::UnavailableError(message);
    if (in_level_) {
      std::vector<std::string>& lapsed = r_.levels.back().lapsed_agents;
      if (std::find(lapsed.begin(), lapsed.end(), a.hello.agent_id()) == lapsed.end()) {
        lapsed.push_back(a.hello.agent_id());
      }
    }
    Warn(message);
    return absl::OkStatus();
  }

  // An agent heard again after more than a second of silence, but within its lease, was stalled
  // (SIGSTOP, swapping, a frozen VM or network): the requests it had in flight carry that stall
  // as server latency, so the reader is told. A silence that the coordinator's own stall explains
  // is not the agent's.
  void NoteSilence(AgentState& a, int64_t heard_ns) {
    constexpr int64_t kSilenceNs = 1'000'000'000;
    const int64_t gap = heard_ns - a.last_heard_ns;
    if (!in_level_ || a.done || a.warned_silence || a.last_heard_ns == 0 || gap <= kSilenceNs ||
        last_stall_end_ns_ > a.last_heard_ns) {
      return;
    }
    a.warned_silence = true;
    Warn(absl::StrFormat(
        "agent %s was unheard for %.1f s%s (stalled, or its host or network was): requests it "
        "had in flight then include that time",
        a.hello.agent_id(), static_cast<double>(gap) / 1e9, During()));
  }

  // Run on every turn of the event loop during a level. An agent sends a heartbeat four times a
  // second, so one unheard for a whole lease (1 s at least) has stopped its load or is gone. The
  // coordinator itself may have been the one stopped (SIGSTOP, a paused VM): then it has sent
  // no renewals, every agent's lease has lapsed, and no agent is to blame.
  absl::Status CheckLeases() {
    const int64_t now = SteadyNowNs();
    const int64_t lease_ns = static_cast<int64_t>(o_.lease_s * 1e9);
    const int64_t stalled = last_tick_ns_ == 0 ? 0 : now - last_tick_ns_;
    last_tick_ns_ = now;
    if (stalled > 500'000'000) last_stall_end_ns_ = now;
    if (!in_level_) return absl::OkStatus();
    if (stalled > lease_ns) {
      for (AgentState& a : agents_) a.last_heard_ns = now;  // they were unheard, not silent
      const std::string message = absl::StrFormat(
          "the coordinator was stalled for %.1f s%s, longer than the %g s lease: the agents "
          "stopped their load",
          static_cast<double>(stalled) / 1e9, During(), o_.lease_s);
      if (!o_.continue_on_agent_loss) return absl::UnavailableError(message);
      LevelData& level = r_.levels.back();
      level.lapsed_agents.clear();
      for (const AgentState& a : agents_) {
        if (!a.lost) level.lapsed_agents.push_back(a.hello.agent_id());
      }
      Warn(message);
      return absl::OkStatus();
    }
    for (AgentState& a : agents_) {
      if (a.lost || a.done || a.last_heard_ns == 0 || now - a.last_heard_ns <= lease_ns) continue;
      RETURN_IF_ERROR(LoseAgent(
          a, absl::StrFormat("went silent: nothing heard for %.1f s, longer than its %g s lease",
                             static_cast<double>(now - a.last_heard_ns) / 1e9, o_.lease_s)));
      // Whatever it sends when (if) it wakes is ignored; its stream is closed.
      v1::CoordinatorMessage stop;
      stop.mutable_stop()->set_reason("lost: silent past the lease");
      hub_.Send(a.conn, std::move(stop));
      hub_.Finish(a.conn, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "silent past lease"));
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
    for (const AsrSampleAudio& s : ev.asr_samples) {  // plan asr only
      r_.levels[ev.batch_level].asr_samples.push_back(s);
      r_.levels[ev.batch_level].asr_samples.back().agent = static_cast<uint32_t>(index);
    }
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
    a.last_heard_ns = ev.recv_ns;
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
      RETURN_IF_ERROR(CheckLeases());
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
    const std::vector<int64_t> asr = SplitByWeight(o_.plan.asr().sample_per_level(), share);
    int64_t max_uncertainty = 0;
    in_level_ = true;
    last_tick_ns_ = SteadyNowNs();
    level_host_cpu_ = 0;
    double share_begin = 0;
    for (size_t i = 0; i < agents_.size(); ++i) {
      AgentState& a = agents_[i];
      a.ready = a.done = a.warned_silence = false;
      a.shard_done.Clear();
      a.last_heard_ns = last_tick_ns_;
      if (a.lost) continue;  // no share, no messages: its stream is closed or closing
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
        // One arrival schedule for the level: this agent takes its weight's slice of it.
        as->set_level_rate(level.rate);
        as->set_arrival_share_begin(share_begin);
        share_begin += weights[i] / weight_sum;
        as->set_arrival_share_end(i + 1 == agents_.size() ? 1.0 : share_begin);
      }
      *as->mutable_load() = load;
      if (o_.plan.audio_checks().enabled()) *as->mutable_audio_checks() = o_.plan.audio_checks();
      as->set_asr_sample(static_cast<int32_t>(asr[i]));
      *as->mutable_pacing() = o_.plan.pacing();              // paced text (issue 13)
      *as->mutable_conversation() = o_.plan.conversation();  // conversations (issue 13)
      hub_.Send(a.conn, std::move(m));
    }
    // Every bound of the level from the one model the agents use too.
    const common::LevelDeadlines deadlines = common::DeriveLevelDeadlines(
        common::ShapeOfLevel(load, target.timeout_s(), level.concurrency, open ? level.rate : 0));
    RETURN_IF_ERROR(WaitUntil(
        [&] {
          return std::all_of(agents_.begin(), agents_.end(),
                             [](const AgentState& a) { return a.ready || a.lost; });
        },
        After(deadlines.ready_wait_s), absl::StrCat("agents not ready for ", LevelName(level))));

    const int64_t at =
        NowTimeline() + static_cast<int64_t>(o_.start_delay_s * 1e9) + 2 * max_uncertainty;
    const int64_t lease_ns = static_cast<int64_t>(o_.lease_s * 1e9);
    for (const AgentState& a : agents_) {
      if (a.lost) continue;
      v1::CoordinatorMessage m;
      m.mutable_start()->set_level(li);
      m.mutable_start()->set_at_ns(at);
      m.mutable_start()->set_valid_until_ns(at + lease_ns);
      hub_.Send(a.conn, std::move(m));
    }
    // A level never runs unbounded, and never shorter than the plan asks.
    const auto deadline = After(o_.start_delay_s + static_cast<double>(2 * max_uncertainty) / 1e9 +
                                deadlines.done_wait_s);
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
        std::vector<std::string> late;
        for (const AgentState& a : agents_) {
          if (!a.done && !a.lost) late.push_back(a.hello.agent_id());
        }
        Warn(absl::StrFormat("%s: not done %.0f s after its start (agents %s); agents stopped",
                             LevelName(level), deadlines.done_wait_s, absl::StrJoin(late, ", ")));
        for (const AgentState& a : agents_) {
          v1::CoordinatorMessage m;
          m.mutable_stop()->set_reason("level time limit");
          hub_.Send(a.conn, std::move(m));
        }
        return absl::DeadlineExceededError(absl::StrCat(LevelName(level),
                                                        " did not finish in time (agents ",
                                                        absl::StrJoin(late, ", "), " not done)"));
      }
      for (const AgentState& a : agents_) {
        if (a.lost || a.done) continue;
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
    in_level_ = false;
    level.max_agent_cpu_pct = level_host_cpu_;
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (size_t i = 0; i < agents_.size(); ++i) {
      if (!agents_[i].done) continue;  // lost in this level or before: nothing of it counts
      const v1::ShardDone& done = agents_[i].shard_done;
      level.dropped += done.dropped();
      level.late += done.late();
      level.gaps_us.Merge(common::LogHistogram::FromProto(done.gaps_us()));
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
  bool in_level_ = false;          // between a level's Assign and its last Done
  int64_t last_tick_ns_ = 0;       // the event loop's last turn, to notice its own stalls
  int64_t last_stall_end_ns_ = 0;  // when the event loop last woke from a stall over 0.5 s
  double level_host_cpu_ = 0;      // this level's highest CPU of one host's agents together
};

Orchestrator::Orchestrator(AgentHub& hub, const RunOptions& options)
    : impl_(std::make_unique<Impl>(hub, options)) {}
Orchestrator::~Orchestrator() = default;
absl::Status Orchestrator::Admit() { return impl_->Admit(); }
absl::Status Orchestrator::RunLevel(const LevelSpec& spec) { return impl_->Level(spec); }
const std::vector<LevelData>& Orchestrator::levels() const { return impl_->levels(); }
RunResult Orchestrator::Finish(absl::Status status) { return impl_->Finish(std::move(status)); }

bool RunResult::degraded() const {
  return std::any_of(levels.begin(), levels.end(), [](const LevelData& l) { return l.degraded(); });
}

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
      if (both) {
        s.target.set_streaming(streamed == 1);
        // The non-streamed series asks for the whole answer: no SSE or WebSocket stream.
        if (streamed == 0) s.target.clear_stream_format();
      }
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
