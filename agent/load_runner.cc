#include "agent/load_runner.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>

#include "agent/arrivals.h"
#include "agent/client/audio_capture.h"
#include "agent/client/conversation.h"
#include "agent/client/text_pacing.h"
#include "agent/client/tls.h"
#include "agent/client/transport.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "common/level_deadlines.h"
#include "common/texts.h"

namespace ttsbench::agent {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using common::SteadyNowNs;

namespace {

constexpr auto kUse = net::as_tuple(net::use_awaitable);
constexpr auto kFlushInterval = std::chrono::milliseconds(100);
constexpr int64_t kLateNs = 1'000'000;

net::steady_timer::time_point LocalTimePoint(int64_t local_ns) {
  return net::steady_timer::time_point(std::chrono::nanoseconds(local_ns));
}

}  // namespace

struct LoadRunner::VirtualUser {
  VirtualUser(net::io_context& ioc, const TransportSpec& transport, net::ssl::context* tls,
              const v1::AudioChecks& checks)
      : conn(MakeConnection(ioc, transport, tls)), wait_timer(ioc) {
    if (checks.enabled()) analyser = std::make_unique<common::AudioAnalyser>(checks);
  }
  void Close() { conn->Close(); }
  bool connected() const { return conn->is_open(); }
  std::unique_ptr<ClientConnection> conn;  // HTTP or WebSocket, over TCP or TLS
  net::steady_timer wait_timer;
  std::unique_ptr<common::AudioAnalyser> analyser;  // only with audio_checks enabled
  std::unique_ptr<AudioCapture> capture;  // the ASR sample's buffer, made when first needed
  uint64_t conversations = 0;             // conversations this user began (their ids' sequence)
};

// Everything one worker thread touches; nothing here is shared with other workers.
struct LoadRunner::Worker {
  net::io_context ioc{1};
  size_t index = 0;
  // One TLS context per thread: OpenSSL's per-context locks are never shared between workers.
  std::unique_ptr<net::ssl::context> tls;
  std::vector<std::unique_ptr<VirtualUser>> vus;  // closed loop: one per user; open loop: pool
  std::vector<VirtualUser*> idle;                 // open loop: connections free for the next send
  std::vector<v1::RequestRecord> local;
  int active = 0;        // coroutines of the phase still running
  int64_t ids_used = 0;  // highest request number of the phase + 1
  uint64_t dropped = 0;
  uint64_t late = 0;
  common::LogHistogram gaps_us;
  bool timeline_taken = false;  // paced text: this worker sent its timeline sample
  std::unique_ptr<net::steady_timer> flush_timer;
  std::unique_ptr<net::steady_timer> arrival_timer;
};

// The bounds of one phase (warm-up or measured).
struct LoadRunner::Phase {
  bool warmup = false;
  int64_t count = 0;  // requests; INT64_MAX when bound by time only
  int64_t start_local_ns = 0;
  int64_t end_local_ns = INT64_MAX;       // no request starts at or after this
  int64_t deadline_local_ns = INT64_MAX;  // in-flight requests are cancelled after this
};

class LoadRunner::Impl {
 public:
  Impl(ShardConfig config, const Dialect& dialect, RecordSink& sink, TimelineMap timeline)
      : config_(std::move(config)),
        dialect_(dialect),
        transport_(dialect.transport()),
        // Connections the transport cannot keep (a WebSocket the server ends with each answer)
        // are opened per request whatever the plan says.
        keepalive_(config_.keepalive && Reusable(transport_)),
        sink_(sink),
        timeline_(timeline),
        deadlines_(common::DeriveLevelDeadlines(Shape(config_))) {
    // Closed loop: never more threads than users. Open loop: arrivals are split over threads.
    const int want = config_.open_loop
                         ? config_.threads
                         : std::min(config_.threads, std::max(1, config_.concurrency));
    for (int i = 0; i < std::max(1, want); ++i) {
      workers_.push_back(std::make_unique<Worker>());
      workers_.back()->index = static_cast<size_t>(i);
      if (transport_.tls.enabled) {
        // MakeDialect has checked the options; a failure here leaves the context null and every
        // connection fails as a tls error.
        auto tls = MakeClientTlsContext(transport_.tls);
        if (tls.ok()) workers_.back()->tls = std::move(*tls);
      }
    }
    if (!config_.open_loop) {
      for (int v = 0; v < config_.concurrency; ++v) {
        Worker& w = *workers_[static_cast<size_t>(v) % workers_.size()];
        w.vus.push_back(NewUser(w));
      }
    }
    // Resolve once: name lookups are not part of any request's latency. A command target has
    // no address: each request starts a local program.
    if (transport_.kind == TransportSpec::Kind::kCommand) return;
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    boost::system::error_code ec;
    endpoints_ = resolver.resolve(config_.url.host, std::to_string(config_.url.port), ec);
  }

  int Warmup() {
    Phase ph;
    ph.warmup = true;
    ph.start_local_ns = SteadyNowNs();
    ph.count = config_.warmup_s > 0 ? INT64_MAX : config_.warmup;
    if (deadlines_.warmup_end_s > 0) ph.end_local_ns = After(ph, deadlines_.warmup_end_s);
    ph.deadline_local_ns = After(ph, deadlines_.warmup_limit_s);
    RunPhase(ph);
    // Measured requests are numbered after the last warm-up one, however many a time-bound
    // warm-up made: one id space per agent.
    for (auto& w : workers_) measured_id_base_ = std::max(measured_id_base_, w->ids_used);
    int open = 0;
    for (auto& w : workers_) {
      for (auto& vu : w->vus) open += vu->connected() ? 1 : 0;
    }
    return open;
  }

  PhaseCounters Run(int64_t start_local_ns) {
    Phase ph;
    ph.start_local_ns = start_local_ns;
    ph.count = config_.duration_s > 0 && config_.iterations == 0 ? INT64_MAX : config_.iterations;
    if (deadlines_.measured_end_s > 0) ph.end_local_ns = After(ph, deadlines_.measured_end_s);
    ph.deadline_local_ns = After(ph, deadlines_.measured_limit_s);
    asr_kept_.store(0);
    for (auto& w : workers_) {
      w->dropped = w->late = 0;
      w->gaps_us = common::LogHistogram();
      // No gap outlasts the request timeout: the histogram never grows during the phase.
      w->gaps_us.Reserve(static_cast<uint64_t>(std::max(config_.timeout_s, 1.0) * 1e6));
    }
    RunPhase(ph);
    PhaseCounters out;
    common::LogHistogram gaps;
    for (auto& w : workers_) {
      out.dropped += w->dropped;
      out.late += w->late;
      gaps.Merge(w->gaps_us);
    }
    out.gaps_us = gaps.ToProto();
    return out;
  }

  void ExtendLease(int64_t until) { lease_until_.store(until); }

  bool lease_lapsed() const { return lease_lapsed_.load(); }

  // For good: no phase runs after it.
  void Stop() {
    stopping_.store(true);
    CancelPhase();
  }

  uint64_t records() const { return records_.load(); }

 private:
  static int64_t Ns(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

  static common::LevelShape Shape(const ShardConfig& c) {
    common::LevelShape s;
    s.open_loop = c.open_loop;
    s.concurrency = c.concurrency;
    s.rate = c.open_loop ? (c.level_rate > 0 ? c.level_rate : c.rate) : 0;
    s.iterations = c.duration_s > 0 && c.iterations >= INT64_MAX / 4 ? 0 : c.iterations;
    s.warmup = c.warmup;
    s.warmup_s = c.warmup_s;
    s.duration_s = c.duration_s;
    s.ramp_up_s = c.ramp_up_s;
    s.think_time_s = c.think_time_s;
    s.arrival = c.arrival;
    s.burstiness = c.burstiness;
    s.timeout_s = c.timeout_s;
    s.level_time_limit_s = c.time_limit_s;
    return s;
  }

  // `seconds` after the phase's start; 0 means no bound.
  static int64_t After(const Phase& ph, double seconds) {
    return seconds > 0 ? ph.start_local_ns + Ns(seconds) : INT64_MAX;
  }

  // Ends the current phase: no new requests, in-flight ones cancelled. The next phase runs.
  void CancelPhase() {
    if (cancel_.exchange(true)) return;
    for (auto& w : workers_) {
      Worker* wp = w.get();
      net::post(wp->ioc, [wp] {
        for (auto& vu : wp->vus) {
          vu->Close();
          vu->wait_timer.cancel();
        }
        if (wp->flush_timer) wp->flush_timer->cancel();
        if (wp->arrival_timer) wp->arrival_timer->cancel();
      });
    }
  }

  std::unique_ptr<VirtualUser> NewUser(Worker& w) const {
    return std::make_unique<VirtualUser>(w.ioc, transport_, w.tls.get(), config_.audio_checks);
  }

  void RunPhase(const Phase& ph) {
    if (stopping_.load()) return;
    cancel_.store(false);
    next_.store(0);
    analysed_.store(0);
    inflight_.store(0);
    for (auto& w : workers_) w->ids_used = 0;
    // A closed-loop warm-up of zero requests still opens every user's connection.
    if (config_.open_loop && ph.count <= 0 && ph.end_local_ns == INT64_MAX) return;
    for (auto& w : workers_) {
      w->flush_timer = std::make_unique<net::steady_timer>(w->ioc);
      w->arrival_timer = std::make_unique<net::steady_timer>(w->ioc);
      if (config_.open_loop) {
        w->active = 1;
        net::co_spawn(w->ioc, Arrivals(*w, ph), net::detached);
      } else {
        w->active = static_cast<int>(w->vus.size());
        for (size_t i = 0; i < w->vus.size(); ++i) {
          const size_t user = i * workers_.size() + w->index;
          net::co_spawn(w->ioc, VuLoop(*w, *w->vus[i], ph, user), net::detached);
        }
      }
      net::co_spawn(w->ioc, Flusher(*w, ph), net::detached);
    }
    std::vector<std::thread> threads;
    for (size_t i = 1; i < workers_.size(); ++i) {
      threads.emplace_back([w = workers_[i].get()] { w->ioc.run(); });
    }
    workers_[0]->ioc.run();
    for (auto& t : threads) t.join();
    for (auto& w : workers_) w->ioc.restart();
  }

  bool LeaseLapsed() const { return SteadyNowNs() > lease_until_.load(std::memory_order_relaxed); }

  // Whether the phase may go on: not cancelled, and still under the lease (a lapse is noted:
  // the load stopped early, and the agent says so in its Done).
  bool MayContinue() {
    if (cancel_.load(std::memory_order_relaxed) || stopping_.load(std::memory_order_relaxed)) {
      return false;
    }
    if (!LeaseLapsed()) return true;
    lease_lapsed_.store(true, std::memory_order_relaxed);
    return false;
  }

  // Whether another request may start now, taking its number from the shared counter.
  bool Claim(const Phase& ph, int64_t* n) {
    if (!MayContinue()) return false;
    if (SteadyNowNs() >= ph.end_local_ns) return false;
    *n = next_.fetch_add(1, std::memory_order_relaxed);
    return *n < ph.count;
  }

  // The index of request n's text in config_.requests (the assignment's texts).
  size_t TextIndex(const Phase& ph, int64_t n) const {
    const uint64_t stream = uint64_t{config_.agent_index} * 2 + (ph.warmup ? 1 : 0);
    return common::PickText(config_.seed, stream, static_cast<uint64_t>(n),
                            config_.requests.size());
  }

  // Whether the measured request about to be sent is in the audio checks' sample: every one,
  // or this agent's first sample_per_level of the level (counted here, since open-loop request
  // numbers are the level's, shared by all agents).
  bool Analysed(const Phase& ph) {
    const v1::AudioChecks& c = config_.audio_checks;
    if (!c.enabled() || ph.warmup) return false;
    return c.sample_per_level() <= 0 ||
           analysed_.fetch_add(1, std::memory_order_relaxed) < c.sample_per_level();
  }

  void Flush(Worker& w) {
    if (w.local.empty()) return;
    records_.fetch_add(w.local.size());
    sink_.Push(std::move(w.local));
    w.local.clear();
  }

  void Finished(Worker& w) {
    if (--w.active == 0) w.flush_timer->cancel();
  }

  net::awaitable<void> Flusher(Worker& w, Phase ph) {
    while (w.active > 0) {
      w.flush_timer->expires_after(kFlushInterval);
      co_await w.flush_timer->async_wait(kUse);
      Flush(w);
      if (w.active > 0 && !stopping_.load() && LeaseLapsed()) {
        // Lost the coordinator: this agent's load ends for good.
        lease_lapsed_.store(true);
        Stop();
      } else if (SteadyNowNs() > ph.deadline_local_ns) {
        CancelPhase();  // the phase is over; the next one (if any) still runs
      }
      if (cancel_.load()) {
        // CancelPhase() closed the sockets; coroutines waiting on timers finish as they wake.
        for (auto& vu : w.vus) vu->wait_timer.cancel();
      }
    }
    Flush(w);
  }

  net::awaitable<void> WaitUntil(VirtualUser& vu, int64_t local_ns) {
    if (local_ns <= SteadyNowNs()) co_return;
    vu.wait_timer.expires_at(LocalTimePoint(local_ns));
    co_await vu.wait_timer.async_wait(kUse);
  }

  // Closed loop: one virtual user, back to back (plus think time), until the phase ends.
  net::awaitable<void> VuLoop(Worker& w, VirtualUser& vu, Phase ph, size_t user) {
    const bool conversing = ConversationEnabled(config_.conversation);
    // A conversation opens its own connection, timed as its set-up: none is opened ahead.
    if (!conversing && !vu.connected() && keepalive_ && !cancel_.load()) {
      co_await Connect(vu, nullptr);
    }
    int64_t intended = ph.start_local_ns;
    if (!ph.warmup && config_.ramp_up_s > 0 && config_.concurrency > 0) {
      intended += Ns(config_.ramp_up_s) * static_cast<int64_t>(user) / config_.concurrency;
    }
    co_await WaitUntil(vu, intended);
    intended = std::max(intended, SteadyNowNs());
    int64_t n = 0;
    if (conversing) {
      co_await Conversations(w, vu, ph, user, intended);
      Finished(w);
      co_return;
    }
    while (Claim(ph, &n)) {
      v1::RequestRecord rec;
      rec.set_intended_ns(intended);
      co_await Send(w, vu, ph, n, rec);
      // Closed loop: the next request is due when this one ends (plus think time).
      intended = SteadyNowNs() + Ns(config_.think_time_s);
      if (config_.think_time_s > 0) co_await WaitUntil(vu, intended);
    }
    Finished(w);
  }

  // Conversations (issue 13): the user's requests go in conversations of `turns` turns, each on
  // one connection opened when the conversation begins (its set-up timed apart from the turns:
  // the turn's start_ns follows it), think time between turns, the load's think time between
  // conversations. A turn whose connection was closed (a failure, a barge-in whose protocol
  // interrupts with a close frame, a server that hung up) is followed by a reconnect, counted.
  net::awaitable<void> Conversations(Worker& w, VirtualUser& vu, const Phase& ph, size_t user,
                                     int64_t intended) {
    const v1::Conversation& conv = config_.conversation;
    int64_t n = 0;
    for (;;) {
      vu.Close();  // a new conversation: a new connection
      const uint64_t id = ConversationId(config_.agent_index, user, vu.conversations++);
      bool opened = false;  // a set-up of this conversation happened already
      for (int turn = 0; turn < conv.turns(); ++turn) {
        if (turn > 0) {
          intended = SteadyNowNs() + ThinkTimeNs(conv, config_.seed, id, turn);
          co_await WaitUntil(vu, intended);
        }
        if (!Claim(ph, &n)) co_return;
        v1::RequestRecord rec;
        rec.set_intended_ns(intended);
        rec.set_conversation_id(id);
        rec.set_turn(turn);
        co_await Send(w, vu, ph, n, rec, &opened);
      }
      intended = SteadyNowNs() + Ns(config_.think_time_s);
      if (config_.think_time_s > 0) co_await WaitUntil(vu, intended);
    }
  }

  // Open loop: arrivals on a schedule, each sent on a free pooled connection, whatever the
  // server's pace; what cannot start under max_inflight is dropped and counted. Every thread of
  // every agent draws the level's one schedule and sends its own slice of it, so that together
  // they make exactly the planned process (not a superposition of thinner ones).
  net::awaitable<void> Arrivals(Worker& w, Phase ph) {
    auto kind = ArrivalProcess::ParseKind(config_.arrival);
    const double rate = config_.level_rate > 0 ? config_.level_rate : config_.rate;
    // This thread's slice of this agent's slice of the level's schedule.
    const double span =
        (config_.share_end - config_.share_begin) / static_cast<double>(workers_.size());
    const double begin = config_.share_begin + span * static_cast<double>(w.index);
    const double end = w.index + 1 == workers_.size() ? config_.share_end : begin + span;
    if (rate <= 0) {
      Finished(w);
      co_return;
    }
    ScheduleSlice slice(kind.ok() ? *kind : ArrivalProcess::Kind::kPoisson, rate,
                        config_.burstiness, config_.seed * 7919 + (ph.warmup ? 1 : 0), begin, end);
    net::steady_timer& timer = *w.arrival_timer;
    const int cap = config_.max_inflight > 0 ? config_.max_inflight : INT32_MAX;
    for (ScheduleSlice::Arrival a = slice.Next();
         a.index < ph.count && ph.start_local_ns + a.due_ns < ph.end_local_ns; a = slice.Next()) {
      const int64_t i = a.index;
      const int64_t due = ph.start_local_ns + a.due_ns;
      if (due > SteadyNowNs()) {
        timer.expires_at(LocalTimePoint(due));
        co_await timer.async_wait(kUse);
      }
      if (!MayContinue()) break;
      // Lateness is when the send was decided, before any connection set-up.
      const int64_t decided = SteadyNowNs();
      // One cap for the agent, whatever thread the arrival fell on.
      if (inflight_.fetch_add(1, std::memory_order_relaxed) >= cap) {
        inflight_.fetch_sub(1, std::memory_order_relaxed);
        if (!ph.warmup) ++w.dropped;
        continue;
      }
      if (!ph.warmup && decided - due > kLateNs) ++w.late;
      ++w.active;
      net::co_spawn(w.ioc, OpenRequest(w, ph, i, due), net::detached);
    }
    Finished(w);
  }

  net::awaitable<void> OpenRequest(Worker& w, Phase ph, int64_t n, int64_t intended) {
    VirtualUser* vu = nullptr;
    if (!w.idle.empty()) {
      vu = w.idle.back();
      w.idle.pop_back();
    } else {
      w.vus.push_back(NewUser(w));
      vu = w.vus.back().get();
    }
    v1::RequestRecord rec;
    rec.set_intended_ns(intended);
    co_await Send(w, *vu, ph, n, rec);
    w.idle.push_back(vu);
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    Finished(w);
  }

  // Sends request n of the phase on `vu` and queues its record. Returns the local start time.
  net::awaitable<int64_t> Send(Worker& w, VirtualUser& vu, const Phase& ph, int64_t n,
                               v1::RequestRecord& rec, bool* conversation_opened = nullptr) {
    // Warm-up requests are numbered first, measured ones after them: one id space per agent.
    rec.set_request_id(static_cast<uint64_t>(n + (ph.warmup ? 0 : measured_id_base_)));
    w.ids_used = std::max(w.ids_used, n + 1);
    rec.set_warmup(ph.warmup);
    const size_t text = TextIndex(ph, n);
    rec.set_text_index(static_cast<int32_t>(text));
    common::AudioAnalyser* analyser = Analysed(ph) ? vu.analyser.get() : nullptr;
    if (analyser != nullptr) analyser->Begin();
    co_await Execute(vu, config_.requests[text], rec, ph.warmup ? nullptr : &w.gaps_us, analyser,
                     Paced(w, ph, rec));
    if (conversation_opened != nullptr) {
      // The connection set-up this turn waited for (the conversation's first, or a reconnect:
      // after a closed connection, or a kept one the transport found hung up and reopened).
      if (rec.connect_ns() > 0) {
        rec.set_conversation_setup_ns(rec.connect_ns());
        rec.set_reconnect(*conversation_opened);
        *conversation_opened = true;
      }
    } else if (!keepalive_) {
      vu.Close();
    }
    const int64_t start = rec.start_ns();
    ToTimeline(rec);
    w.local.push_back(std::move(rec));
    co_return start;
  }

  // Paced text (issue 13): the request's schedule seed, whether barge-in interrupts it, and
  // the timeline sample (the first measured request of worker 0).
  struct PacedRequest {
    uint64_t seed = 0;
    bool interrupt = false;
    v1::PacedTimeline* timeline = nullptr;
  };
  PacedRequest Paced(Worker& w, const Phase& ph, v1::RequestRecord& rec) {
    PacedRequest p;
    if (!PacingEnabled(config_.pacing)) return p;
    p.seed = PacingSeed(config_.seed, config_.agent_index, rec.request_id());
    const double into_level = static_cast<double>(SteadyNowNs() - ph.start_local_ns) / 1e9;
    p.interrupt = ShouldInterrupt(config_.pacing, p.seed, into_level);
    if (!ph.warmup && w.index == 0 && !w.timeline_taken) {
      w.timeline_taken = true;
      p.timeline = rec.mutable_timeline();
    }
    return p;
  }

  void ToTimeline(v1::RequestRecord& r) const {
    r.set_intended_ns(timeline_.ToTimeline(r.intended_ns()));
    r.set_start_ns(timeline_.ToTimeline(r.start_ns()));
    r.set_first_byte_ns(timeline_.ToTimeline(r.first_byte_ns()));
    r.set_first_audio_ns(timeline_.ToTimeline(r.first_audio_ns()));
    r.set_end_ns(timeline_.ToTimeline(r.end_ns()));
    if (r.has_analysis()) {
      r.mutable_analysis()->set_audible_ns(timeline_.ToTimeline(r.analysis().audible_ns()));
    }
    // Paced text (issue 13).
    r.set_first_text_ns(timeline_.ToTimeline(r.first_text_ns()));
    r.set_end_of_input_ns(timeline_.ToTimeline(r.end_of_input_ns()));
    r.set_last_audio_ns(timeline_.ToTimeline(r.last_audio_ns()));
    r.set_interrupt_ns(timeline_.ToTimeline(r.interrupt_ns()));
    if (r.has_timeline()) {
      v1::PacedTimeline& t = *r.mutable_timeline();
      for (int64_t& ns : *t.mutable_text_ns()) ns = timeline_.ToTimeline(ns);
      for (int64_t& ns : *t.mutable_audio_ns()) ns = timeline_.ToTimeline(ns);
      t.set_end_of_input_ns(timeline_.ToTimeline(t.end_of_input_ns()));
      t.set_interrupt_ns(timeline_.ToTimeline(t.interrupt_ns()));
    }
  }

  // Opens the connection (TCP, TLS, WebSocket handshake); its time is the record's
  // connect_ns. On failure fills rec (if any) with the error.
  net::awaitable<bool> Connect(VirtualUser& vu, v1::RequestRecord* rec) {
    const int64_t t0 = SteadyNowNs();
    const OpenResult r = co_await vu.conn->Open(endpoints_, Timeout());
    const int64_t t1 = SteadyNowNs();
    if (rec != nullptr) rec->set_connect_ns(rec->connect_ns() + (t1 - t0));
    if (r.error != v1::ERROR_NONE) {
      vu.Close();
      if (rec != nullptr) {
        rec->set_start_ns(t0);
        rec->set_end_ns(t1);
        if (r.http_status != 0) rec->set_http_status(r.http_status);
        rec->set_error(cancel_.load() ? v1::ERROR_CANCELLED : r.error);
        rec->set_error_detail(r.detail);
      }
      co_return false;
    }
    co_return true;
  }

  std::chrono::nanoseconds Timeout() const {
    return std::chrono::nanoseconds(static_cast<int64_t>(config_.timeout_s * 1e9));
  }

  net::awaitable<void> Execute(VirtualUser& vu, const PreparedRequest& req, v1::RequestRecord& rec,
                               common::LogHistogram* gaps_us, common::AudioAnalyser* analyser,
                               PacedRequest paced) {
    rec.set_chars(req.chars);
    rec.set_streamed(config_.streamed || transport_.streamed);
    bool fresh = false;
    if (!vu.connected()) {
      if (!co_await Connect(vu, &rec)) co_return;
      fresh = true;
    }
    // One exchange: the record comes back complete, success or a classified error. A kept
    // connection the server closed while idle is replaced by the transport inside the request's
    // deadline, so nothing is retried here (a retry would hide a server that drops requests).
    ExchangeContext ctx{dialect_, rec, gaps_us, fresh, cancel_, Timeout(), analyser};
    if (PacingEnabled(config_.pacing)) {
      ctx.pacing = &config_.pacing;
      ctx.pace_seed = paced.seed;
      ctx.interrupt = paced.interrupt;
      ctx.timeline = paced.timeline;
    }
    // The ASR sample (plan asr): a measured request's audio is kept while the agent's sample of
    // the level is not full, and goes into the record if it succeeds in time to be one of them.
    const bool sample = gaps_us != nullptr && config_.asr_sample > 0 &&
                        asr_kept_.load(std::memory_order_relaxed) < config_.asr_sample;
    if (sample) {
      if (vu.capture == nullptr) vu.capture = std::make_unique<AudioCapture>();
      vu.capture->Begin();
      ctx.capture = vu.capture.get();
    }
    co_await vu.conn->Exchange(req, ctx);
    if (sample && rec.error() == v1::ERROR_NONE &&
        asr_kept_.fetch_add(1, std::memory_order_relaxed) < config_.asr_sample) {
      vu.capture->MoveInto(rec);
    }
  }

  ShardConfig config_;
  const Dialect& dialect_;
  const TransportSpec& transport_;
  const bool keepalive_;
  RecordSink& sink_;
  TimelineMap timeline_;
  tcp::resolver::results_type endpoints_;
  const common::LevelDeadlines deadlines_;
  std::vector<std::unique_ptr<Worker>> workers_;
  int64_t measured_id_base_ = 0;  // set between the phases, read by the measured one
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> analysed_{0};   // audio checks with a sample: requests picked this phase
  std::atomic<int> inflight_{0};       // open loop, all threads: against max_inflight
  std::atomic<bool> stopping_{false};  // for good (Stop(), or the lease lapsed)
  std::atomic<bool> cancel_{false};    // the current phase is over
  std::atomic<bool> lease_lapsed_{false};
  std::atomic<int64_t> lease_until_{INT64_MAX};
  std::atomic<uint64_t> records_{0};
  std::atomic<int> asr_kept_{0};  // ASR samples taken in the measured phase (all threads)
};

LoadRunner::LoadRunner(ShardConfig config, const Dialect& dialect, RecordSink& sink,
                       TimelineMap timeline)
    : impl_(std::make_unique<Impl>(std::move(config), dialect, sink, timeline)) {}
LoadRunner::~LoadRunner() = default;
int LoadRunner::Warmup() { return impl_->Warmup(); }
PhaseCounters LoadRunner::Run(int64_t start_local_ns) { return impl_->Run(start_local_ns); }
void LoadRunner::ExtendLease(int64_t until_local_ns) { impl_->ExtendLease(until_local_ns); }
bool LoadRunner::lease_lapsed() const { return impl_->lease_lapsed(); }
void LoadRunner::Stop() { impl_->Stop(); }
uint64_t LoadRunner::records() const { return impl_->records(); }

}  // namespace ttsbench::agent
