// The agent's side of one coordinator session: Hello, clock replies, and each assigned level
// run under a lease, with records streamed back in sequence-numbered batches.
#ifndef TTSBENCH_AGENT_AGENT_SESSION_H_
#define TTSBENCH_AGENT_AGENT_SESSION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ttsbench::agent {

struct AgentOptions {
  std::string coordinator;  // HOST:PORT
  std::string id;           // defaults to host-pid
  int threads = 0;          // worker threads; 0 = hardware concurrency
  double connect_timeout_s = 10;
  // Transport security: mutual TLS (all three PEM files) and/or a shared token.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_ca_pem;
  std::string token;
  // This agent's own limits, enforced whatever a plan asks.
  std::vector<std::string> allow_targets;  // empty: loopback only
  int max_concurrency = 0;                 // 0: no limit
  double max_rate = 0;                     // 0: no limit
  // Programs the command target (api: command) may run: canonical paths; empty: none.
  std::vector<std::string> allow_commands;
  std::string path_env;  // PATH, for a plan's program named without a path
};

// Refuses insecure set-ups: without TLS or a token only a loopback coordinator is allowed.
absl::Status CheckTransportSecurity(const AgentOptions& options);

// Connects, serves one session until the coordinator ends it, and returns. An error status
// when the coordinator could not be reached, refused us, or vanished mid-run.
absl::Status RunAgentSession(const AgentOptions& options);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_AGENT_SESSION_H_
