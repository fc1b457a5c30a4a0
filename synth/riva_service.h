// The synthetic server's NVIDIA Riva service: RivaSpeechSynthesis (Synthesize, SynthesizeOnline,
// GetRivaSynthesisConfig) over gRPC on a port of its own, TLS when given a certificate, with the
// synthetic server's latency model (its own parallel slots, FIFO queueing, the streamed-chunk
// schedule) and its tone as LINEAR_PCM or OGGOPUS audio. So tests and users can drive
// `--api riva` without NVIDIA.
#ifndef TTSBENCH_SYNTH_RIVA_SERVICE_H_
#define TTSBENCH_SYNTH_RIVA_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "synth/latency_model.h"

namespace ttsbench::synth {

struct RivaOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t port = 0;  // 0 = ephemeral; read the result from port()
  LatencyModel model;
  // Fraction of requests answered with status INTERNAL (deterministic under model.seed).
  double error_rate = 0;
  // PEM certificate chain and key: the port then speaks TLS only (gRPC has no sniffing).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // When set, every call must carry `authorization: Bearer <api_key>` (else UNAUTHENTICATED)
  // and `function-id: <function_id>` (else NOT_FOUND), as a hosted endpoint would.
  std::string api_key;
  std::string function_id;
};

struct RivaStats {
  uint64_t calls = 0;  // Synthesize and SynthesizeOnline calls received
  uint64_t unauthenticated = 0;
  uint64_t errors_injected = 0;
  uint64_t cancelled = 0;  // calls the client cancelled (or whose deadline passed) mid-answer
};

class RivaServer {
 public:
  // InvalidArgument for bad options; Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<RivaServer>> Start(const RivaOptions& options);
  RivaServer(const RivaServer&) = delete;
  RivaServer& operator=(const RivaServer&) = delete;
  ~RivaServer();  // calls Stop()

  uint16_t port() const;
  RivaStats stats() const;
  // Cancels calls in flight and joins the threads. Idempotent.
  void Stop();

 private:
  class Impl;
  explicit RivaServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ttsbench::synth

#endif  // TTSBENCH_SYNTH_RIVA_SERVICE_H_
