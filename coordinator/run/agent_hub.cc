#include "coordinator/run/agent_hub.h"

#include <grpcpp/grpcpp.h>

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/wire.h"

namespace ttsbench::coordinator {
namespace {

// Where a stream's messages are parsed: room for a batch of the agent's 1000 records (~170 kB
// parsed), so that parsing allocates nothing; the arena is reset after each message. Larger
// batches spill into blocks of up to kArenaMaxBlockBytes, freed at the reset.
constexpr size_t kArenaBlockBytes = size_t{256} << 10;
constexpr size_t kArenaMaxBlockBytes = size_t{1} << 20;
// Recycled record buffers kept by the hub at most (the rest are freed).
constexpr size_t kMaxSpareBuffers = 64;

google::protobuf::ArenaOptions ArenaOptionsFor(char* block) {
  google::protobuf::ArenaOptions o;
  o.initial_block = block;
  o.initial_block_size = kArenaBlockBytes;
  o.start_block_size = kArenaBlockBytes;
  o.max_block_size = kArenaMaxBlockBytes;
  return o;
}

}  // namespace

// One agent stream. Never blocks: reads are re-armed from OnReadDone, writes are queued and
// issued one at a time, and `delete this` happens only in OnDone.
class SessionReactor final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  SessionReactor(AgentHub* hub, grpc::CallbackServerContext* context)
      : hub_(hub), peer_(context->peer()) {
    const auto& md = context->client_metadata();
    auto it = md.find(common::kTokenMetadata);
    const absl::string_view presented =
        it == md.end() ? absl::string_view()
                       : absl::string_view(it->second.data(), it->second.size());
    if (!hub_->TokenAccepted(presented)) {
      // Refused before anything is read: the agent learns why, the run never sees it.
      rejected_ = true;
      Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong agent token"));
      return;
    }
    // Only admitted streams get a parsing arena.
    block_ = std::make_unique_for_overwrite<char[]>(kArenaBlockBytes);
    arena_.emplace(ArenaOptionsFor(block_.get()));
    in_ = google::protobuf::Arena::CreateMessage<v1::AgentMessage>(&*arena_);
    conn_ = hub_->Register(this);
    StartRead(in_);
  }

  // The records path: the batch is parsed into the arena, converted to plain records in a
  // recycled buffer, and the arena reset; nothing is allocated, logged or locked per record.
  void OnReadDone(bool ok) override {
    if (!ok) {
      PushDisconnect();
      RequestFinish(grpc::Status::OK);
      return;
    }
    AgentEvent ev;
    ev.recv_ns = common::SteadyNowNs();
    ev.conn = conn_;
    if (in_->has_records()) {
      const v1::RecordBatch& batch = in_->records();
      ev.kind = AgentEvent::Kind::kRecords;
      ev.batch_seq = batch.seq();
      ev.batch_level = batch.level();
      ev.records = std::move(spare_);
      ev.records.clear();
      ev.records.reserve(static_cast<size_t>(batch.records_size()));
      for (const v1::RequestRecord& r : batch.records()) {
        ev.records.push_back(common::FromProto(r));
        if (r.has_asr_format()) TakeAsrSample(r, &ev.asr_samples);  // plan asr only
      }
    } else {
      if (in_->has_hello()) ev.peer = peer_;
      ev.msg = *in_;  // off the arena: the orchestrator keeps some (Hello, ShardDone)
    }
    hub_->Push(std::move(ev), &spare_);
    arena_->Reset();
    in_ = google::protobuf::Arena::CreateMessage<v1::AgentMessage>(&*arena_);
    StartRead(in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    out_.pop_front();
    if (!ok) out_.clear();
    if (!out_.empty()) {
      StartWrite(&out_.front());
      return;
    }
    writing_ = false;
    if (finish_pending_) {
      finish_pending_ = false;
      Finish(finish_status_);
    }
  }

  void OnDone() override {
    if (!rejected_) {
      hub_->Unregister(conn_);
      PushDisconnect();
    }
    delete this;
  }

  bool Enqueue(v1::CoordinatorMessage msg) {
    std::lock_guard lock(mu_);
    if (finishing_) return false;
    out_.push_back(std::move(msg));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
    return true;
  }

  void RequestFinish(const grpc::Status& status) {
    std::lock_guard lock(mu_);
    if (finishing_) return;
    finishing_ = true;
    if (writing_) {
      finish_pending_ = true;
      finish_status_ = status;
    } else {
      Finish(status);
    }
  }

 private:
  void PushDisconnect() {
    if (disconnect_pushed_.exchange(true)) return;
    AgentEvent ev;
    ev.kind = AgentEvent::Kind::kDisconnected;
    ev.conn = conn_;
    ev.recv_ns = common::SteadyNowNs();
    ev.peer = peer_;
    hub_->Push(std::move(ev));
  }

  AgentHub* hub_;
  std::string peer_;
  int conn_ = 0;
  bool rejected_ = false;
  std::unique_ptr<char[]> block_;
  std::optional<google::protobuf::Arena> arena_;  // uses block_
  v1::AgentMessage* in_ = nullptr;                // on arena_
  std::vector<common::Record> spare_;
  std::atomic<bool> disconnect_pushed_{false};

  std::mutex mu_;
  std::deque<v1::CoordinatorMessage> out_;
  bool writing_ = false;
  bool finishing_ = false;
  bool finish_pending_ = false;
  grpc::Status finish_status_;
};

bool AgentHub::TokenAccepted(absl::string_view presented) const {
  if (token_.empty()) return true;
  // Constant time in the token's length: no timing hint about how much of a guess was right.
  unsigned char diff = presented.size() == token_.size() ? 0 : 1;
  for (size_t i = 0; i < token_.size(); ++i) {
    diff |= static_cast<unsigned char>(token_[i] ^ (i < presented.size() ? presented[i] : 0));
  }
  return diff == 0;
}

bool AgentHub::Send(int conn, v1::CoordinatorMessage msg) {
  std::lock_guard lock(conn_mu_);
  auto it = conns_.find(conn);
  return it != conns_.end() && it->second->Enqueue(std::move(msg));
}

void AgentHub::Finish(int conn, const grpc::Status& status) {
  std::lock_guard lock(conn_mu_);
  auto it = conns_.find(conn);
  if (it != conns_.end()) it->second->RequestFinish(status);
}

void AgentHub::FinishAll(const grpc::Status& status) {
  std::lock_guard lock(conn_mu_);
  for (auto& [id, reactor] : conns_) reactor->RequestFinish(status);
}

std::optional<AgentEvent> AgentHub::Next(std::chrono::milliseconds timeout) {
  if (next_taken_ == taken_.size()) {
    taken_.clear();
    next_taken_ = 0;
    std::unique_lock lock(ev_mu_);
    if (!ev_cv_.wait_for(lock, timeout, [this] { return !events_.empty(); })) return std::nullopt;
    taken_.swap(events_);
  }
  return std::move(taken_[next_taken_++]);
}

void AgentHub::Recycle(std::vector<common::Record> records) {
  std::lock_guard lock(ev_mu_);
  if (spares_.size() < kMaxSpareBuffers) spares_.push_back(std::move(records));
}

int AgentHub::Register(SessionReactor* reactor) {
  std::lock_guard lock(conn_mu_);
  const int id = next_conn_++;
  conns_[id] = reactor;
  return id;
}

void AgentHub::Unregister(int conn) {
  std::lock_guard lock(conn_mu_);
  conns_.erase(conn);
}

void AgentHub::Push(AgentEvent event, std::vector<common::Record>* spare) {
  std::lock_guard lock(ev_mu_);
  events_.push_back(std::move(event));
  if (spare != nullptr && spare->capacity() == 0 && !spares_.empty()) {
    *spare = std::move(spares_.back());
    spares_.pop_back();
  }
  ev_cv_.notify_one();
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* CoordinatorService::Session(
    grpc::CallbackServerContext* context) {
  return new SessionReactor(hub_, context);
}

CoordinatorServer::~CoordinatorServer() {
  if (hub) hub->FinishAll(grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator exiting"));
  if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> StartCoordinatorServer(
    const std::string& address, const ServerSecurity& security) {
  const bool tls = !security.tls_ca_pem.empty();
  const absl::string_view host = absl::string_view(address).substr(0, address.rfind(':'));
  const bool loopback =
      host == "localhost" || absl::StartsWith(host, "127.") || host == "[::1]" || host == "::1";
  if (!tls && security.token.empty() && !loopback) {
    return absl::PermissionDeniedError(absl::StrCat(
        "agents.listen ", address,
        " is not a loopback address: set agents.tls_cert/tls_key/tls_ca (mutual TLS) or "
        "agents.token_file"));
  }
  auto cs = std::make_unique<CoordinatorServer>();
  cs->hub = std::make_unique<AgentHub>(security.token);
  cs->service = std::make_unique<CoordinatorService>(cs->hub.get());
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (tls) {
    grpc::SslServerCredentialsOptions ssl(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = security.tls_ca_pem;
    ssl.pem_key_cert_pairs.push_back({security.tls_key_pem, security.tls_cert_pem});
    creds = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, creds, &cs->port);
  builder.RegisterService(cs->service.get());
  builder.SetMaxReceiveMessageSize(64 << 20);
  cs->server = builder.BuildAndStart();
  if (cs->server == nullptr || cs->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  return cs;
}

}  // namespace ttsbench::coordinator
