#include "agent/agent_session.h"

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/allowlist.h"
#include "agent/client/command_allowlist.h"
#include "agent/client/dialect.h"
#include "agent/client/text_pacing.h"
#include "agent/load_runner.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "common/url.h"
#include "common/version.h"
#include "common/wire.h"
#include "ttsbench/v1/ttsbench.grpc.pb.h"

namespace ttsbench::agent {
namespace {

using common::SteadyNowNs;
using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::CoordinatorMessage>;

constexpr size_t kMaxBatchRecords = 1000;
constexpr size_t kMaxBatchAudio = size_t{16} << 20;  // ASR sample bytes in one batch
// Heartbeats say "alive" to the coordinator, which loses an agent unheard for a whole lease (1 s
// at least): four a second leave room for scheduling jitter. CPU use is measured over a second.
constexpr auto kHeartbeatEvery = std::chrono::milliseconds(250);
constexpr int64_t kCpuWindowNs = 1'000'000'000;

// Serialises every write to the stream on one thread; clock replies jump the queue and get
// their send timestamp (t2) just before they are written.
class Outbox {
 public:
  explicit Outbox(Stream* stream) : stream_(stream), writer_([this] { WriteLoop(); }) {}
  ~Outbox() { Close(); }

  void Send(v1::AgentMessage msg, bool urgent = false) {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (urgent) {
      queue_.push_front(std::move(msg));
    } else {
      queue_.push_back(std::move(msg));
    }
    cv_.notify_one();
  }

  // Drains what is queued, then stops the writer.
  void Close() {
    {
      std::lock_guard lock(mu_);
      if (closed_ && !writer_.joinable()) return;
      closed_ = true;
      cv_.notify_one();
    }
    if (writer_.joinable()) writer_.join();
  }

  bool broken() const {
    std::lock_guard lock(mu_);
    return broken_;
  }

 private:
  void WriteLoop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return closed_ || !queue_.empty(); });
      if (queue_.empty()) return;
      v1::AgentMessage msg = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      if (msg.has_clock_reply()) msg.mutable_clock_reply()->set_t2_ns(SteadyNowNs());
      const bool ok = stream_->Write(msg);
      lock.lock();
      if (!ok) {
        broken_ = true;
        queue_.clear();
        return;
      }
    }
  }

  Stream* stream_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::AgentMessage> queue_;
  bool closed_ = false;
  bool broken_ = false;
  std::thread writer_;
};

// Turns finished records into sequence-numbered batches of at most kMaxBatchRecords.
class BatchSink final : public RecordSink {
 public:
  explicit BatchSink(Outbox& outbox) : outbox_(outbox) {}
  void SetLevel(uint32_t level) { level_.store(level); }
  void Push(std::vector<v1::RequestRecord>&& records) override {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < records.size();) {
      v1::AgentMessage msg;
      v1::RecordBatch* batch = msg.mutable_records();
      batch->set_seq(++seq_);
      batch->set_level(level_.load());
      const size_t end = std::min(records.size(), i + kMaxBatchRecords);
      batch->mutable_records()->Reserve(static_cast<int>(end - i));
      // ASR samples (up to 4 MiB of audio each) end a batch early, so that a message stays
      // well inside the coordinator's 64 MiB receive limit.
      size_t audio = 0;
      for (; i < end && (audio == 0 || audio + records[i].asr_audio().size() <= kMaxBatchAudio);
           ++i) {
        audio += records[i].asr_audio().size();
        *batch->add_records() = std::move(records[i]);
      }
      outbox_.Send(std::move(msg));
    }
  }
  uint64_t last_seq() const {
    std::lock_guard lock(mu_);
    return seq_;
  }

 private:
  Outbox& outbox_;
  std::atomic<uint32_t> level_{0};
  mutable std::mutex mu_;
  uint64_t seq_ = 0;
};

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

class Session {
 public:
  Session(const AgentOptions& options, TargetAllowlist allowlist, CommandAllowlist commands,
          Stream* stream)
      : options_(options),
        allowlist_(std::move(allowlist)),
        commands_(std::move(commands)),
        stream_(stream),
        outbox_(stream),
        sink_(outbox_) {}

  absl::Status Serve() {
    v1::AgentMessage hello;
    v1::Hello* h = hello.mutable_hello();
    h->set_agent_id(options_.id);
    h->set_version(common::kVersion);
    h->set_cores(static_cast<int>(std::thread::hardware_concurrency()));
    h->add_capabilities("http1");
    h->add_capabilities("api:openai");
    h->add_capabilities("api:torch-inference");
    h->add_capabilities("api:riva");  // gRPC (agent/client/riva_transport)
    if (!commands_.empty()) h->add_capabilities("api:command");
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    h->set_host(host);
    outbox_.Send(std::move(hello));
    std::thread heartbeat([this] { HeartbeatLoop(); });

    std::string refusal;
    v1::CoordinatorMessage msg;
    while (stream_->Read(&msg)) {
      switch (msg.msg_case()) {
        case v1::CoordinatorMessage::kClockProbe: {
          const int64_t t1 = SteadyNowNs();
          v1::AgentMessage reply;
          reply.mutable_clock_reply()->set_seq(msg.clock_probe().seq());
          reply.mutable_clock_reply()->set_t0_ns(msg.clock_probe().t0_ns());
          reply.mutable_clock_reply()->set_t1_ns(t1);
          outbox_.Send(std::move(reply), /*urgent=*/true);
          break;
        }
        case v1::CoordinatorMessage::kWelcome:
          agent_index_ = msg.welcome().agent_index();
          break;
        case v1::CoordinatorMessage::kAssign:
          JoinLevel();
          {
            std::lock_guard lock(mu_);
            start_.reset();
          }
          level_thread_ = std::thread([this, assign = msg.assign()] { RunLevel(assign); });
          break;
        case v1::CoordinatorMessage::kStart: {
          std::lock_guard lock(mu_);
          start_ = msg.start();
          cv_.notify_all();
          break;
        }
        case v1::CoordinatorMessage::kLease: {
          std::lock_guard lock(mu_);
          if (runner_ != nullptr)
            runner_->ExtendLease(timeline_.ToLocal(msg.lease().valid_until_ns()));
          break;
        }
        case v1::CoordinatorMessage::kStop:
          refusal = msg.stop().reason();
          StopLevel();
          break;
        default:
          break;
      }
    }
    // The coordinator ended the session or vanished: no further load either way.
    StopLevel();
    JoinLevel();
    {
      std::lock_guard lock(mu_);
      done_ = true;
      cv_.notify_all();
    }
    heartbeat.join();
    outbox_.Close();
    const grpc::Status status = stream_->Finish();
    if (!status.ok()) {
      return common::FromGrpcStatus(status);
    }
    if (!refusal.empty() && refusal != "session complete") {
      return absl::AbortedError(absl::StrCat("coordinator stopped the session: ", refusal));
    }
    return absl::OkStatus();
  }

 private:
  void SendError(const std::string& message) {
    v1::AgentMessage m;
    m.mutable_error()->set_message(message);
    outbox_.Send(std::move(m));
  }

  void RunLevel(const v1::Assign& assigned) {
    v1::Assign assign = assigned;
    common::Url no_url;
    const bool command = assign.target().api() == "command";
    auto url =
        command ? absl::StatusOr<common::Url>(no_url) : common::ParseUrl(assign.target().url());
    if (!url.ok()) return SendError(std::string(url.status().message()));
    // The agent's own limits come first: a plan cannot widen them.
    if (command) {
      // Refused before any process starts; the program run is the allowed canonical path.
      v1::CommandTemplate& cmd = *assign.mutable_target()->mutable_command();
      if (cmd.argv().empty()) return SendError("api command: the plan names no program");
      auto program = commands_.Check(cmd.argv(), options_.path_env);
      if (!program.ok())
        return SendError(absl::StrCat(options_.id, ": ", program.status().message()));
      cmd.set_argv(0, *program);
    } else if (auto st = allowlist_.Check(url->host, url->port); !st.ok()) {
      return SendError(absl::StrCat(options_.id, ": ", st.message()));
    }
    if (options_.max_concurrency > 0 && assign.concurrency() > options_.max_concurrency) {
      return SendError(absl::StrCat(options_.id, ": concurrency ", assign.concurrency(),
                                    " exceeds this agent's --max-concurrency ",
                                    options_.max_concurrency));
    }
    if (options_.max_rate > 0 && assign.rate() > options_.max_rate) {
      return SendError(absl::StrCat(options_.id, ": rate ", assign.rate(),
                                    "/s exceeds this agent's --max-rate ", options_.max_rate));
    }
    std::vector<v1::Header> secrets(assign.secret_headers().begin(), assign.secret_headers().end());
    auto dialect = MakeDialect(assign.target(), *url, std::move(secrets));
    if (!dialect.ok()) return SendError(std::string(dialect.status().message()));
    const v1::Load& load = assign.load();
    ShardConfig cfg;
    cfg.url = *url;
    cfg.open_loop = load.model() == "open";
    cfg.concurrency = assign.concurrency();
    cfg.rate = assign.rate();
    cfg.arrival = load.arrival().empty() ? "poisson" : load.arrival();
    cfg.burstiness = load.burstiness() > 0 ? load.burstiness() : 1.0;
    cfg.max_inflight = assign.max_inflight();
    cfg.iterations = assign.iterations();
    cfg.warmup = assign.warmup();
    if (cfg.open_loop && assign.level_rate() > 0) {
      // The level's one schedule: counts are the level's, this agent sends its slice.
      cfg.level_rate = assign.level_rate();
      cfg.share_begin = assign.arrival_share_begin();
      cfg.share_end = assign.arrival_share_end();
      cfg.iterations = load.iterations();
      cfg.warmup = load.warmup();
    }
    cfg.duration_s = load.duration_s();
    cfg.warmup_s = load.warmup_s();
    cfg.ramp_up_s = load.ramp_up_s();
    cfg.think_time_s = load.think_time_s();
    cfg.keepalive = load.connections() != "per_request";
    cfg.time_limit_s = load.level_time_limit_s();
    cfg.timeout_s = assign.target().timeout_s() > 0 ? assign.target().timeout_s() : 30;
    cfg.streamed = assign.target().streaming();
    cfg.threads = options_.threads > 0 ? options_.threads
                                       : static_cast<int>(std::thread::hardware_concurrency());
    cfg.seed = assign.seed();
    cfg.agent_index = agent_index_;
    cfg.audio_checks = assign.audio_checks();
    cfg.asr_sample = assign.asr_sample();
    // Paced text (issue 13): each text cut into pieces sent over time.
    cfg.pacing = assign.pacing();
    cfg.conversation = assign.conversation();  // conversations (issue 13)
    auto prepared = PrepareTexts(**dialect, assign.texts(), cfg.pacing);
    if (!prepared.ok()) return SendError(std::string(prepared.status().message()));
    cfg.requests = std::move(*prepared);
    if (cfg.requests.empty()) return SendError("assignment has no texts");
    const TimelineMap timeline{assign.epoch_ns(), assign.clock_offset_ns()};
    sink_.SetLevel(assign.level());
    auto runner = std::make_unique<LoadRunner>(std::move(cfg), **dialect, sink_, timeline);
    {
      std::lock_guard lock(mu_);
      timeline_ = timeline;
      runner_ = runner.get();
      if (stopped_) runner->Stop();
    }
    const int connections = runner->Warmup();
    v1::AgentMessage ready;
    ready.mutable_ready()->set_level(assign.level());
    ready.mutable_ready()->set_connections(connections);
    outbox_.Send(std::move(ready));

    v1::Start start;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopped_ || (start_ && start_->level() == assign.level()); });
      if (!stopped_) start = *start_;
    }
    int64_t started_local = 0;
    PhaseCounters counters;
    if (start.at_ns() != 0) {
      runner->ExtendLease(timeline.ToLocal(start.valid_until_ns()));
      started_local = std::max(timeline.ToLocal(start.at_ns()), SteadyNowNs());
      counters = runner->Run(timeline.ToLocal(start.at_ns()));
    }
    {
      std::lock_guard lock(mu_);
      runner_ = nullptr;
    }
    v1::AgentMessage done;
    done.mutable_done()->set_level(assign.level());
    done.mutable_done()->set_records(runner->records());
    done.mutable_done()->set_batches(sink_.last_seq());
    done.mutable_done()->set_started_ns(timeline.ToTimeline(started_local));
    done.mutable_done()->set_dropped(counters.dropped);
    done.mutable_done()->set_late(counters.late);
    done.mutable_done()->set_lease_lapsed(runner->lease_lapsed());
    *done.mutable_done()->mutable_gaps_us() = std::move(counters.gaps_us);
    outbox_.Send(std::move(done));
  }

  void StopLevel() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    if (runner_ != nullptr) runner_->Stop();
    cv_.notify_all();
  }

  void JoinLevel() {
    if (level_thread_.joinable()) level_thread_.join();
  }

  void HeartbeatLoop() {
    double last_cpu = ProcessCpuSeconds();
    int64_t last_ns = SteadyNowNs();
    std::unique_lock lock(mu_);
    double cpu_percent = 0;
    while (!cv_.wait_for(lock, kHeartbeatEvery, [this] { return done_; })) {
      const int64_t now = SteadyNowNs();
      if (now - last_ns >= kCpuWindowNs) {
        // Share of the machine's cores this process used over the last second or so; the
        // coordinator adds up the agents of one host.
        const double cpu = ProcessCpuSeconds();
        const double cores = std::max(1u, std::thread::hardware_concurrency());
        cpu_percent = 100.0 * (cpu - last_cpu) / (static_cast<double>(now - last_ns) / 1e9) / cores;
        last_cpu = cpu;
        last_ns = now;
      }
      v1::AgentMessage hb;
      hb.mutable_heartbeat()->set_cpu_percent(cpu_percent);
      outbox_.Send(std::move(hb), /*urgent=*/true);
    }
  }

  const AgentOptions& options_;
  TargetAllowlist allowlist_;
  CommandAllowlist commands_;
  Stream* stream_;
  Outbox outbox_;
  BatchSink sink_;
  uint32_t agent_index_ = 0;
  std::thread level_thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<v1::Start> start_;
  LoadRunner* runner_ = nullptr;
  TimelineMap timeline_;
  bool stopped_ = false;
  bool done_ = false;
};

bool IsLoopbackHost(absl::string_view host) {
  return host == "localhost" || absl::StartsWith(host, "127.") || host == "::1" || host == "[::1]";
}

}  // namespace

absl::Status CheckTransportSecurity(const AgentOptions& options) {
  const bool tls = !options.tls_ca_pem.empty();
  if (tls && (options.tls_cert_pem.empty() || options.tls_key_pem.empty())) {
    return absl::InvalidArgumentError("--tls-ca needs --tls-cert and --tls-key (mutual TLS)");
  }
  const absl::string_view address = options.coordinator;
  const absl::string_view host = address.substr(0, address.rfind(':'));
  if (!tls && options.token.empty() && !IsLoopbackHost(host)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "refusing to dial ", options.coordinator,
        " without --tls-ca/--tls-cert/--tls-key or --token-file: only a loopback coordinator "
        "may be used unauthenticated"));
  }
  return absl::OkStatus();
}

namespace {

absl::Status RunAgentSessionImpl(const AgentOptions& options) {
  RETURN_IF_ERROR(CheckTransportSecurity(options));
  auto allowlist = TargetAllowlist::Parse(options.allow_targets);
  if (!allowlist.ok()) return allowlist.status();
  auto commands = CommandAllowlist::Parse(options.allow_commands, options.path_env);
  if (!commands.ok()) return commands.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!options.tls_ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_ca_pem;
    ssl.pem_private_key = options.tls_key_pem;
    ssl.pem_cert_chain = options.tls_cert_pem;
    creds = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateCustomChannel(options.coordinator, creds, args);
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(options.connect_timeout_s * 1000));
  if (!channel->WaitForConnected(deadline)) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach the coordinator at ", options.coordinator));
  }
  auto stub = v1::Coordinator::NewStub(channel);
  grpc::ClientContext ctx;
  if (!options.token.empty()) ctx.AddMetadata(common::kTokenMetadata, options.token);
  std::unique_ptr<Stream> stream = stub->Session(&ctx);
  Session session(options, std::move(*allowlist), std::move(*commands), stream.get());
  return session.Serve();
}

}  // namespace

absl::Status RunAgentSession(const AgentOptions& options) { return RunAgentSessionImpl(options); }

}  // namespace ttsbench::agent
