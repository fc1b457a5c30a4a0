// Benchmark 5, coordinator ingest (docs/BENCHMARKS.md): how fast the coordinator takes records
// from agents over gRPC on loopback, next to the raw gRPC ceiling for the same bytes, and how long
// the per-level statistics of 10 million records take and how much memory they need.
//
//   ingest_bench [--stats-records N] [--ingest-records N] [--agents A] [--batch B] [--rounds R]
//                [--write-dir DIR] [--smoke]
//
// Stats phase (first, so the process's peak RSS is its own): N realistic records (successes and
// errors of every kind, streamed and not, log-normal latencies) are appended to a level's record
// store, then BuildLevelStats (ComputeLevelStats + the self-checks, what the session runner does
// per level) runs on them; wall time and VmHWM are printed. With --write-dir, the session files
// (summary.csv, requests.csv, session.json) are then written there and timed too.
//
// Ingest phase, R rounds, each: (1) raw ceiling: A agent processes push the records as
// pre-serialized AgentMessage{RecordBatch} bytes through a trivial gRPC stream whose server reads
// and discards them; (2) coordinator: the same agent processes, the same bytes, to the real
// coordinator service (StartCoordinatorServer + Orchestrator, as the session runner uses them):
// Hello, clock probes, Assign/Ready/Start, batches, ShardDone. Rate = records / (last record
// stored (coordinator) or read (raw) - first batch written), all on CLOCK_MONOTONIC, which the
// processes share. Agents are separate processes so each side's CPU time is its own.
#include <fcntl.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/slo.h"
#include "common/version.h"
#include "coordinator/report/report.h"
#include "coordinator/run/agent_hub.h"
#include "coordinator/run/orchestrator.h"
#include "coordinator/run/self_checks.h"
#include "ttsbench/v1/ttsbench.pb.h"

extern char** environ;

namespace ttsbench::bench {
namespace {

using common::SteadyNowNs;
constexpr char kMethod[] = "/ttsbench.v1.Coordinator/Session";
// The real agent's batch size (kMaxBatchRecords in agent/agent_session.cc).
constexpr size_t kAgentBatchRecords = 1000;

struct Options {
  size_t stats_records = 10'000'000;
  size_t ingest_records = 4'000'000;  // per round, across all agents
  int agents = 2;
  size_t batch = 0;  // 0: the agent's kMaxBatchRecords
  int rounds = 3;
  std::string write_dir;  // stats phase: also write the session files here
  // Child (agent) process.
  std::string agent_addr;
  std::string role;  // raw | coordinator
  std::string agent_id;
};

// ---------------------------------------------------------------- records

// A record as an agent would send it: a mix of successes and every error kind, streamed and
// not, log-normal latencies, spread over ten minutes of timeline.
v1::RequestRecord MakeRecord(std::mt19937_64& rng, uint64_t id) {
  std::uniform_real_distribution<double> u(0, 1);
  std::lognormal_distribution<double> latency_s(std::log(0.8), 0.5);
  v1::RequestRecord r;
  r.set_request_id(id);
  r.set_warmup(u(rng) < 0.01);
  const int64_t intended = 1'000'000'000 + static_cast<int64_t>(u(rng) * 600e9);
  const int64_t start = intended + static_cast<int64_t>(u(rng) * 2e6);
  const int64_t lat = static_cast<int64_t>(latency_s(rng) * 1e9);
  r.set_intended_ns(intended);
  r.set_start_ns(start);
  if (u(rng) < 0.05) r.set_connect_ns(static_cast<int64_t>(200'000 + u(rng) * 3e6));
  r.set_chars(static_cast<int32_t>(20 + u(rng) * 400));
  r.set_http_status(200);
  const double p = u(rng);
  if (p < 0.04) {
    // Failures: every kind, with what a failing request has measured.
    r.set_error(static_cast<v1::ErrorKind>(1 + static_cast<int>(u(rng) * 12)));
    r.set_http_status(r.error() == v1::ERROR_HTTP_5XX   ? 503
                      : r.error() == v1::ERROR_HTTP_429 ? 429
                      : r.error() == v1::ERROR_HTTP_4XX ? 400
                                                        : 0);
    r.set_end_ns(start + lat / 4);
    return r;
  }
  const bool streamed = u(rng) < 0.5;
  const double audio_s = static_cast<double>(r.chars()) / 15.0;
  const int64_t ttfa = streamed ? static_cast<int64_t>(static_cast<double>(lat) * 0.2) : lat;
  r.set_streamed(streamed);
  r.set_first_byte_ns(start + ttfa - 40'000);
  r.set_first_audio_ns(start + ttfa);
  r.set_end_ns(start + lat);
  r.set_audio_s(audio_s);
  r.set_bytes(static_cast<int64_t>(audio_s * 48'000) + 44);
  r.set_sample_rate(24'000);
  r.set_chunks(streamed ? 1 + static_cast<int32_t>(audio_s * 10) : 1);
  if (streamed) {
    r.set_max_gap_ms(u(rng) * 150);
    r.set_underrun_ms(u(rng) < 0.1 ? u(rng) * 300 : 0);
    r.set_worst_stall_ms(r.underrun_ms() * 0.7);
  }
  return r;
}

int64_t VmHwmKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

double CpuSeconds(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---------------------------------------------------------------- stats phase

// What the targets are judged on.
struct Figures {
  double stats_s = -1;
  int64_t stats_peak_bytes = -1;
  double ingest_rate = -1;
};

int RunStats(const Options& o, Figures* figures) {
  const int64_t t0 = SteadyNowNs();
  coordinator::LevelData level;
  level.concurrency = 256;
  {
    std::mt19937_64 rng(42);
    for (size_t i = 0; i < o.stats_records; ++i) {
      level.records.Append(MakeRecord(rng, i), static_cast<uint32_t>(i % 4));
    }
  }
  const int64_t t1 = SteadyNowNs();
  v1::Plan plan;
  plan.mutable_load()->add_concurrency(level.concurrency);
  std::vector<common::Slo> slos;
  for (const char* text : {"ttfa_p95=1500ms", "latency_p99=5000ms", "rtf_p95=0.5"}) {
    slos.push_back(*common::ParseSlo(text));
  }
  std::vector<std::string> warnings;
  const double cpu0 = CpuSeconds(RUSAGE_SELF);
  const int64_t t2 = SteadyNowNs();
  const v1::LevelStats st =
      coordinator::BuildLevelStats(level, plan, slos, coordinator::CheckBounds{}, &warnings);
  const int64_t t3 = SteadyNowNs();
  const double cpu1 = CpuSeconds(RUSAGE_SELF);
  const int64_t hwm = VmHwmKiB();
  figures->stats_s = static_cast<double>(t3 - t2) / 1e9;
  figures->stats_peak_bytes = hwm * 1024;
  std::printf(
      "stats: records=%zu store_bytes=%zu (%.1f B/record) generate_s=%.2f stats_s=%.3f "
      "stats_cpu_s=%.3f peak_rss_mib=%.1f peak_rss_bytes=%lld\n",
      level.records.size(), level.records.MemoryBytes(),
      static_cast<double>(level.records.MemoryBytes()) /
          static_cast<double>(std::max<size_t>(1, level.records.size())),
      static_cast<double>(t1 - t0) / 1e9, static_cast<double>(t3 - t2) / 1e9, cpu1 - cpu0,
      static_cast<double>(hwm) / 1024.0, static_cast<long long>(hwm) * 1024);
  std::printf(
      "stats: attempted=%u successful=%u errors=%zu latency_p50_ms=%.3f latency_p99_ms=%.3f "
      "ttfa_p95_ms=%.3f rtf_p95=%.4f goodput_rps=%.1f\n",
      st.attempted(), st.successful(), st.errors().size(), st.latency_ms().p50(),
      st.latency_ms().p99(), st.ttfa_ms().p95(), st.rtf().p95(), st.goodput_rps());
  if (!o.write_dir.empty()) {
    v1::Session session;
    session.set_name("ingest-bench");
    for (int a = 0; a < 4; ++a) session.add_agents()->set_id(absl::StrCat("agent-", a));
    *session.add_levels() = st;
    std::vector<coordinator::LevelData> levels;
    levels.push_back(std::move(level));
    const int64_t w0 = SteadyNowNs();
    const absl::Status written = coordinator::WriteSessionFiles(o.write_dir, session, levels);
    const int64_t w1 = SteadyNowNs();
    std::printf("report: write_s=%.2f peak_rss_mib=%.1f %s\n", static_cast<double>(w1 - w0) / 1e9,
                static_cast<double>(VmHwmKiB()) / 1024.0, written.ToString().c_str());
    if (!written.ok()) return 1;
  }
  // Every generated record is counted once: attempted, warm-up, or cancelled by the tool.
  return st.attempted() + st.warmup_excluded() + st.cancelled() == o.stats_records ? 0 : 1;
}

// ---------------------------------------------------------------- fake agent (child process)

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// AgentMessage{records: RecordBatch{seq, level, records}} as two slices: a small header with
// the sequence number and a shared, pre-serialized run of records (field 3 of RecordBatch).
class BatchBytes {
 public:
  BatchBytes(size_t batch, int variants, uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int v = 0; v < variants; ++v) {
      v1::RecordBatch b;
      for (size_t i = 0; i < batch; ++i) *b.add_records() = MakeRecord(rng, i);
      const std::string bytes = b.SerializeAsString();
      payload_.emplace_back(bytes.data(), bytes.size());
      bytes_ += bytes.size();
    }
    bytes_ /= payload_.size();
  }

  grpc::ByteBuffer Message(uint64_t seq, uint32_t level) const {
    const grpc::Slice& payload = payload_[seq % payload_.size()];
    std::string inner;
    inner.push_back(0x08);
    PutVarint(&inner, seq);
    inner.push_back(0x10);
    PutVarint(&inner, level);
    std::string header;
    header.push_back(0x22);  // AgentMessage.records, length-delimited
    PutVarint(&header, inner.size() + payload.size());
    header += inner;
    grpc::Slice slices[2] = {grpc::Slice(header), payload};
    return grpc::ByteBuffer(slices, 2);
  }

  size_t payload_bytes() const { return bytes_; }

 private:
  std::vector<grpc::Slice> payload_;
  size_t bytes_ = 0;
};

template <typename M>
grpc::ByteBuffer Serialize(const M& m) {
  grpc::ByteBuffer out;
  bool own = false;
  grpc::GenericSerialize<grpc::ProtoBufferWriter, M>(m, &out, &own);
  return out;
}

// Plays an agent: answers the handshake (coordinator role), then writes every batch back to
// back, one write in flight, as the real agent's outbox does.
class FakeAgent final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  FakeAgent(const Options& o, const BatchBytes& bytes, size_t batches, size_t batch)
      : o_(o), bytes_(bytes), batches_(batches), batch_(batch) {}

  void Run(grpc::GenericStub& stub) {
    stub.PrepareBidiStreamingCall(&ctx_, kMethod, grpc::StubOptions(), this);
    if (o_.role == "raw") {
      blasting_ = true;
    } else {
      v1::AgentMessage hello;
      hello.mutable_hello()->set_agent_id(o_.agent_id);
      hello.mutable_hello()->set_version(common::kVersion);
      hello.mutable_hello()->set_cores(1);
      control_.push_back(Serialize(hello));
    }
    StartRead(&in_);
    {
      std::lock_guard lock(mu_);
      WriteNextLocked();
    }
    StartCall();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

  int64_t first_write_ns() const { return first_write_ns_; }
  int64_t last_write_ns() const { return last_write_ns_; }
  bool ok() const { return status_.ok() && sent_ == batches_; }
  std::string error() const { return status_.error_message(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    v1::CoordinatorMessage m;
    if (!grpc::SerializationTraits<v1::CoordinatorMessage>::Deserialize(&in_, &m).ok()) return;
    {
      std::lock_guard lock(mu_);
      if (m.has_clock_probe()) {
        v1::AgentMessage r;
        const int64_t now = SteadyNowNs();
        r.mutable_clock_reply()->set_seq(m.clock_probe().seq());
        r.mutable_clock_reply()->set_t0_ns(m.clock_probe().t0_ns());
        r.mutable_clock_reply()->set_t1_ns(now);
        r.mutable_clock_reply()->set_t2_ns(now);
        control_.push_front(Serialize(r));
      } else if (m.has_assign()) {
        level_ = m.assign().level();
        v1::AgentMessage r;
        r.mutable_ready()->set_level(level_);
        control_.push_back(Serialize(r));
      } else if (m.has_start()) {
        blasting_ = true;
      }
      WriteNextLocked();
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) return;
    if (sent_ == batches_ && last_write_ns_ == 0) last_write_ns_ = SteadyNowNs();
    WriteNextLocked();
  }

  void OnWritesDoneDone(bool) override {}

  void OnDone(const grpc::Status& s) override {
    std::lock_guard lock(mu_);
    status_ = s;
    done_ = true;
    cv_.notify_all();
  }

 private:
  void WriteNextLocked() {
    if (writing_) return;
    if (!control_.empty()) {
      out_ = std::move(control_.front());
      control_.pop_front();
    } else if (blasting_ && sent_ < batches_) {
      if (sent_ == 0) first_write_ns_ = SteadyNowNs();
      out_ = bytes_.Message(++sent_, level_);
    } else if (blasting_ && !finished_) {
      finished_ = true;
      if (o_.role == "raw") {
        StartWritesDone();
        return;
      }
      v1::AgentMessage d;
      d.mutable_done()->set_level(level_);
      d.mutable_done()->set_records(batches_ * batch_);
      d.mutable_done()->set_batches(batches_);
      out_ = Serialize(d);
    } else {
      return;
    }
    writing_ = true;
    StartWrite(&out_);
  }

  const Options& o_;
  const BatchBytes& bytes_;
  const size_t batches_;
  const size_t batch_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<grpc::ByteBuffer> control_;
  bool writing_ = false;
  bool blasting_ = false;
  bool finished_ = false;
  bool done_ = false;
  uint32_t level_ = 0;
  size_t sent_ = 0;
  int64_t first_write_ns_ = 0;
  int64_t last_write_ns_ = 0;
  grpc::Status status_;
};

int RunAgent(const Options& o) {
  const size_t batches = (o.ingest_records + o.batch - 1) / o.batch;
  const BatchBytes bytes(o.batch, 8, std::hash<std::string>()(o.agent_id));
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  args.SetMaxReceiveMessageSize(-1);
  // One connection per agent, as real agents (one process each) have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(o.agent_addr, grpc::InsecureChannelCredentials(), args);
  grpc::GenericStub stub(channel);
  FakeAgent agent(o, bytes, batches, o.batch);
  agent.Run(stub);
  // What the parent reads: first write, last write, payload bytes per batch.
  std::printf("%lld %lld %zu %d\n", static_cast<long long>(agent.first_write_ns()),
              static_cast<long long>(agent.last_write_ns()), bytes.payload_bytes(),
              agent.ok() ? 1 : 0);
  if (!agent.ok())
    std::fprintf(stderr, "agent %s: %s\n", o.agent_id.c_str(), agent.error().c_str());
  return agent.ok() ? 0 : 1;
}

// ---------------------------------------------------------------- parent: agents and servers

struct Child {
  pid_t pid = -1;
  int out_fd = -1;
};

Child Spawn(const std::string& self, const Options& o, const std::string& addr,
            const std::string& role, int index, size_t records) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<std::string> args = {self,
                                   "--agent",
                                   addr,
                                   "--role",
                                   role,
                                   "--id",
                                   absl::StrCat("bench-agent-", index),
                                   "--ingest-records",
                                   absl::StrCat(records),
                                   "--batch",
                                   absl::StrCat(o.batch)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child c;
  if (posix_spawn(&c.pid, self.c_str(), &fa, nullptr, argv.data(), environ) != 0) c.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  c.out_fd = fds[0];
  return c;
}

struct AgentReport {
  bool ok = true;
  int64_t first_write_ns = INT64_MAX;
  size_t payload_bytes = 0;
  double cpu_s = 0;
};

AgentReport Reap(std::vector<Child>& children) {
  AgentReport r;
  for (Child& c : children) {
    if (c.pid < 0) {
      r.ok = false;
      continue;
    }
    std::string text;
    char buf[256];
    ssize_t n;
    while ((n = read(c.out_fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
    close(c.out_fd);
    int status = 0;
    rusage ru{};
    wait4(c.pid, &status, 0, &ru);
    r.cpu_s += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    long long first = 0, last = 0;
    size_t bytes = 0;
    int ok = 0;
    if (std::sscanf(text.c_str(), "%lld %lld %zu %d", &first, &last, &bytes, &ok) != 4 || !ok ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      r.ok = false;
    }
    r.first_write_ns = std::min<int64_t>(r.first_write_ns, first);
    r.payload_bytes = bytes;
  }
  return r;
}

// A trivial service: reads every message of every stream and drops it.
class DiscardService final : public grpc::CallbackGenericService {
 public:
  explicit DiscardService(size_t expected) : expected_(expected) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new Reactor(this);
  }
  int64_t last_read_ns() const { return last_read_ns_.load(); }
  size_t messages() const { return messages_.load(); }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Reactor(DiscardService* s) : s_(s) { StartRead(&in_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      in_.Clear();
      if (s_->messages_.fetch_add(1) + 1 == s_->expected_) s_->last_read_ns_ = SteadyNowNs();
      StartRead(&in_);
    }
    void OnDone() override { delete this; }

   private:
    DiscardService* s_;
    grpc::ByteBuffer in_;
  };

  const size_t expected_;
  std::atomic<size_t> messages_{0};
  std::atomic<int64_t> last_read_ns_{0};
};

struct RoundResult {
  bool ok = false;
  double seconds = 0;
  double rate = 0;
  double server_cpu_s = 0;
  double agents_cpu_s = 0;
  size_t payload_bytes = 0;
};

RoundResult RawRound(const std::string& self, const Options& o) {
  RoundResult r;
  const size_t per_agent = o.ingest_records / static_cast<size_t>(o.agents);
  const size_t batches = (per_agent + o.batch - 1) / o.batch;
  DiscardService service(batches * static_cast<size_t>(o.agents));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);
  auto server = builder.BuildAndStart();
  if (server == nullptr) return r;
  const double cpu0 = CpuSeconds(RUSAGE_SELF);
  std::vector<Child> children;
  for (int i = 0; i < o.agents; ++i) {
    children.push_back(Spawn(self, o, absl::StrCat("127.0.0.1:", port), "raw", i, per_agent));
  }
  const AgentReport agents = Reap(children);
  const double cpu1 = CpuSeconds(RUSAGE_SELF);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  const size_t records = batches * o.batch * static_cast<size_t>(o.agents);
  r.ok = agents.ok && service.last_read_ns() > 0;
  r.seconds = static_cast<double>(service.last_read_ns() - agents.first_write_ns) / 1e9;
  r.rate = static_cast<double>(records) / r.seconds;
  r.server_cpu_s = cpu1 - cpu0;
  r.agents_cpu_s = agents.cpu_s;
  r.payload_bytes = agents.payload_bytes;
  return r;
}

RoundResult CoordinatorRound(const std::string& self, const Options& o) {
  RoundResult r;
  const size_t per_agent = o.ingest_records / static_cast<size_t>(o.agents);
  const size_t batches = (per_agent + o.batch - 1) / o.batch;
  const size_t records = batches * o.batch * static_cast<size_t>(o.agents);
  auto server = coordinator::StartCoordinatorServer("127.0.0.1:0");
  if (!server.ok()) return r;
  coordinator::RunOptions ro;
  ro.plan.mutable_target()->set_url("http://127.0.0.1:9");
  ro.plan.mutable_target()->set_api("openai");
  ro.plan.mutable_target()->set_timeout_s(5);
  ro.plan.mutable_load()->add_concurrency(o.agents);
  ro.plan.mutable_load()->set_iterations(static_cast<int32_t>(records));
  ro.texts = {"hello"};
  ro.expect_agents = o.agents;
  ro.agent_timeout_s = 30;
  ro.start_delay_s = 0.01;
  const double cpu0 = CpuSeconds(RUSAGE_SELF);
  std::vector<Child> children;
  for (int i = 0; i < o.agents; ++i) {
    children.push_back(
        Spawn(self, o, absl::StrCat("127.0.0.1:", (*server)->port), "coordinator", i, per_agent));
  }
  coordinator::Orchestrator orchestrator(*(*server)->hub, ro);
  absl::Status st = orchestrator.Admit();
  coordinator::LevelSpec spec;
  spec.concurrency = o.agents;
  if (st.ok()) st = orchestrator.RunLevel(spec);
  const int64_t stored_ns = SteadyNowNs();
  const size_t stored = orchestrator.levels().empty() ? 0 : orchestrator.levels()[0].records.size();
  const double cpu1 = CpuSeconds(RUSAGE_SELF);
  coordinator::RunResult result = orchestrator.Finish(st);
  const AgentReport agents = Reap(children);
  if (!st.ok()) std::fprintf(stderr, "coordinator round: %s\n", st.ToString().c_str());
  for (const std::string& w : result.session.warnings())
    std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (stored != records) std::fprintf(stderr, "stored %zu of %zu records\n", stored, records);
  r.ok = st.ok() && agents.ok && stored == records && result.session.warnings_size() == 0;
  r.seconds = static_cast<double>(stored_ns - agents.first_write_ns) / 1e9;
  r.rate = static_cast<double>(stored) / r.seconds;
  r.server_cpu_s = cpu1 - cpu0;
  r.agents_cpu_s = agents.cpu_s;
  r.payload_bytes = agents.payload_bytes;
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int RunIngest(const std::string& self, const Options& o, Figures* figures) {
  std::vector<double> raw_rates, coord_rates, coord_cpu, raw_cpu;
  bool ok = true;
  const size_t records = (o.ingest_records / static_cast<size_t>(o.agents) + o.batch - 1) /
                         o.batch * o.batch * static_cast<size_t>(o.agents);
  for (int round = 1; round <= o.rounds; ++round) {
    const RoundResult raw = RawRound(self, o);
    const RoundResult coord = CoordinatorRound(self, o);
    ok &= raw.ok && coord.ok;
    std::printf(
        "ingest round %d: records=%zu agents=%d batch=%zu batch_bytes=%zu | raw grpc %.0f rec/s "
        "(%.3f s, server cpu %.2f s, agents cpu %.2f s) | coordinator %.0f rec/s (%.3f s, "
        "coordinator cpu %.2f s, agents cpu %.2f s) | ratio %.2f%s\n",
        round, records, o.agents, o.batch, coord.payload_bytes, raw.rate, raw.seconds,
        raw.server_cpu_s, raw.agents_cpu_s, coord.rate, coord.seconds, coord.server_cpu_s,
        coord.agents_cpu_s, coord.rate / raw.rate, raw.ok && coord.ok ? "" : " FAILED");
    std::fflush(stdout);
    raw_rates.push_back(raw.rate);
    coord_rates.push_back(coord.rate);
    coord_cpu.push_back(coord.server_cpu_s / static_cast<double>(records) * 1e6);
    raw_cpu.push_back(raw.server_cpu_s / static_cast<double>(records) * 1e6);
  }
  const double raw = Median(raw_rates), coord = Median(coord_rates);
  std::printf(
      "ingest: median of %d rounds: coordinator %.0f rec/s, raw grpc ceiling %.0f rec/s, ratio "
      "%.2f; server cpu per million records: coordinator %.2f s, raw %.2f s\n",
      o.rounds, coord, raw, coord / raw, Median(coord_cpu), Median(raw_cpu));
  figures->ingest_rate = coord;
  return ok ? 0 : 1;
}

bool ParseSize(const char* s, size_t* out) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) return false;
  *out = static_cast<size_t>(v);
  return true;
}

}  // namespace
}  // namespace ttsbench::bench

int main(int argc, char** argv) {
  using ttsbench::bench::Options;
  Options o;
  bool skip_stats = false, skip_ingest = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    size_t n = 0;
    if (a == "--smoke") {
      o.stats_records = 100'000;
      o.ingest_records = 40'000;
      o.rounds = 1;
    } else if (a == "--stats-records" && has_value && ttsbench::bench::ParseSize(argv[++i], &n)) {
      o.stats_records = n;
    } else if (a == "--ingest-records" && has_value && ttsbench::bench::ParseSize(argv[++i], &n)) {
      o.ingest_records = n;
    } else if (a == "--agents" && has_value && ttsbench::bench::ParseSize(argv[++i], &n) && n > 0) {
      o.agents = static_cast<int>(n);
    } else if (a == "--batch" && has_value && ttsbench::bench::ParseSize(argv[++i], &n) && n > 0) {
      o.batch = n;
    } else if (a == "--rounds" && has_value && ttsbench::bench::ParseSize(argv[++i], &n) && n > 0) {
      o.rounds = static_cast<int>(n);
    } else if (a == "--write-dir" && has_value) {
      o.write_dir = argv[++i];
    } else if (a == "--skip-stats") {
      skip_stats = true;
    } else if (a == "--skip-ingest") {
      skip_ingest = true;
    } else if (a == "--agent" && has_value) {
      o.agent_addr = argv[++i];
    } else if (a == "--role" && has_value) {
      o.role = argv[++i];
    } else if (a == "--id" && has_value) {
      o.agent_id = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: %s [--smoke] [--stats-records N] [--ingest-records N] [--agents A] "
                   "[--batch B] [--rounds R] [--write-dir DIR] [--skip-stats] [--skip-ingest]\n",
                   argv[0]);
      return 1;
    }
  }
  if (o.batch == 0) o.batch = ttsbench::bench::kAgentBatchRecords;
  if (!o.agent_addr.empty()) return ttsbench::bench::RunAgent(o);
  int rc = 0;
  ttsbench::bench::Figures f;
  if (!skip_stats) rc |= ttsbench::bench::RunStats(o, &f);
  std::fflush(stdout);
  if (!skip_ingest) rc |= ttsbench::bench::RunIngest("/proc/self/exe", o, &f);
  // The targets, judged only at full size (the smoke form is too small to mean anything).
  auto verdict = [](bool pass) { return pass ? "PASS" : "FAIL"; };
  if (!skip_stats && o.stats_records >= 10'000'000) {
    std::printf(
        "target: statistics for %zu records in <= 10 s: %.2f s %s; peak RSS <= 1.5 GB: %.2f GB "
        "%s\n",
        o.stats_records, f.stats_s, verdict(f.stats_s <= 10),
        static_cast<double>(f.stats_peak_bytes) / 1e9,
        verdict(f.stats_peak_bytes <= 1'500'000'000));
  }
  if (!skip_ingest && o.ingest_records >= 1'000'000) {
    std::printf("target: ingest >= 1,000,000 records/s: %.0f records/s %s\n", f.ingest_rate,
                verdict(f.ingest_rate >= 1e6));
  }
  return rc;
}
