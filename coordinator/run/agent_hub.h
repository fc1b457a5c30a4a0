// The gRPC side of the coordinator: one callback reactor per agent stream, turned into a queue
// of events for the orchestrator and a non-blocking Send for the way back.
#ifndef TTSBENCH_COORDINATOR_AGENT_HUB_H_
#define TTSBENCH_COORDINATOR_AGENT_HUB_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/record_store.h"
#include "coordinator/run/asr.h"
#include "ttsbench/v1/ttsbench.grpc.pb.h"

namespace ttsbench::coordinator {

// What a reactor hands the orchestrator. Record batches arrive already converted to plain
// records (kRecords), so that the orchestrator only appends them.
struct AgentEvent {
  enum class Kind { kMessage, kRecords, kDisconnected };
  Kind kind = Kind::kMessage;
  int conn = 0;          // connection id, unique per stream
  int64_t recv_ns = 0;   // coordinator steady clock when the message was read
  std::string peer;      // for a Hello and a disconnection only
  v1::AgentMessage msg;  // kMessage
  // kRecords: RecordBatch.seq, .level and .records (Record::agent left 0).
  uint64_t batch_seq = 0;
  uint32_t batch_level = 0;
  std::vector<common::Record> records;
  std::vector<AsrSampleAudio> asr_samples;  // kRecords: the ASR check's audio (plan asr)
};

class SessionReactor;

// Thread-safe meeting point of reactors (gRPC threads) and the orchestrator (one thread).
class AgentHub {
 public:
  // Agents must present this token (empty: no token required).
  explicit AgentHub(std::string token = "") : token_(std::move(token)) {}
  bool TokenAccepted(absl::string_view presented) const;
  // Queues a message to a connection; false when the connection is gone.
  bool Send(int conn, v1::CoordinatorMessage msg);
  // Ends a connection's stream once its queued messages are written.
  void Finish(int conn, const grpc::Status& status);
  void FinishAll(const grpc::Status& status);
  // Next event, or nullopt after `timeout`. One consumer thread only.
  std::optional<AgentEvent> Next(std::chrono::milliseconds timeout);
  // Gives back a kRecords event's buffer once its records are stored, for a reactor to reuse:
  // batches then cost no allocation once a few buffers circulate.
  void Recycle(std::vector<common::Record> records);

  // For reactors. Push hands back a recycled records buffer in `spare`, when there is one.
  int Register(SessionReactor* reactor);
  void Unregister(int conn);
  void Push(AgentEvent event, std::vector<common::Record>* spare = nullptr);

 private:
  const std::string token_;
  std::mutex conn_mu_;
  std::map<int, SessionReactor*> conns_;
  int next_conn_ = 1;

  // Reactors append to events_; Next swaps it with the consumer's taken_ and hands those out
  // one by one, so neither side allocates once both vectors have grown.
  std::mutex ev_mu_;
  std::condition_variable ev_cv_;
  std::vector<AgentEvent> events_;
  std::vector<std::vector<common::Record>> spares_;
  std::vector<AgentEvent> taken_;  // consumer thread only
  size_t next_taken_ = 0;
};

class CoordinatorService final : public v1::Coordinator::CallbackService {
 public:
  explicit CoordinatorService(AgentHub* hub) : hub_(hub) {}
  grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* Session(
      grpc::CallbackServerContext* context) override;

 private:
  AgentHub* hub_;
};

// A running gRPC server with the coordinator service.
struct CoordinatorServer {
  std::unique_ptr<AgentHub> hub;
  std::unique_ptr<CoordinatorService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  ~CoordinatorServer();
};

struct ServerSecurity {
  std::string tls_cert_pem;  // with key and CA: TLS requiring and verifying client certificates
  std::string tls_key_pem;
  std::string tls_ca_pem;
  std::string token;  // shared agent token (gRPC metadata x-ttsbench-token)
};

// Listens on `address` (HOST:PORT, port 0 = ephemeral). Without TLS or a token, only a loopback
// address is accepted (PermissionDenied otherwise).
absl::StatusOr<std::unique_ptr<CoordinatorServer>> StartCoordinatorServer(
    const std::string& address, const ServerSecurity& security = {});

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_AGENT_HUB_H_
