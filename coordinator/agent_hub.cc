#include "coordinator/agent_hub.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/clock.h"

namespace ttsbench::coordinator {

// One agent stream. Never blocks: reads are re-armed from OnReadDone, writes are queued and
// issued one at a time, and `delete this` happens only in OnDone.
class SessionReactor final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  SessionReactor(AgentHub* hub, std::string peer) : hub_(hub), peer_(std::move(peer)) {
    conn_ = hub_->Register(this);
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      PushDisconnect();
      RequestFinish(grpc::Status::OK);
      return;
    }
    AgentEvent ev;
    ev.recv_ns = common::SteadyNowNs();
    ev.conn = conn_;
    ev.peer = peer_;
    ev.msg = std::move(in_);
    hub_->Push(std::move(ev));
    in_.Clear();
    StartRead(&in_);
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
    hub_->Unregister(conn_);
    PushDisconnect();
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
  v1::AgentMessage in_;
  std::atomic<bool> disconnect_pushed_{false};

  std::mutex mu_;
  std::deque<v1::CoordinatorMessage> out_;
  bool writing_ = false;
  bool finishing_ = false;
  bool finish_pending_ = false;
  grpc::Status finish_status_;
};

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
  std::unique_lock lock(ev_mu_);
  if (!ev_cv_.wait_for(lock, timeout, [this] { return !events_.empty(); })) return std::nullopt;
  AgentEvent ev = std::move(events_.front());
  events_.pop_front();
  return ev;
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

void AgentHub::Push(AgentEvent event) {
  std::lock_guard lock(ev_mu_);
  events_.push_back(std::move(event));
  ev_cv_.notify_one();
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* CoordinatorService::Session(
    grpc::CallbackServerContext* context) {
  return new SessionReactor(hub_, context->peer());
}

CoordinatorServer::~CoordinatorServer() {
  if (hub) hub->FinishAll(grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator exiting"));
  if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> StartCoordinatorServer(
    const std::string& address) {
  auto cs = std::make_unique<CoordinatorServer>();
  cs->hub = std::make_unique<AgentHub>();
  cs->service = std::make_unique<CoordinatorService>(cs->hub.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &cs->port);
  builder.RegisterService(cs->service.get());
  builder.SetMaxReceiveMessageSize(64 << 20);
  cs->server = builder.BuildAndStart();
  if (cs->server == nullptr || cs->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  return cs;
}

}  // namespace ttsbench::coordinator
