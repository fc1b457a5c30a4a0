// The agent's side of one coordinator session: Hello, clock replies, and each assigned level
// run under a lease, with records streamed back in sequence-numbered batches.
#ifndef TTSBENCH_AGENT_AGENT_SESSION_H_
#define TTSBENCH_AGENT_AGENT_SESSION_H_

#include <string>

#include "absl/status/status.h"

namespace ttsbench::agent {

struct AgentOptions {
  std::string coordinator;  // HOST:PORT
  std::string id;           // defaults to host-pid
  int threads = 0;          // worker threads; 0 = hardware concurrency
  double connect_timeout_s = 10;
};

// Connects, serves one session until the coordinator ends it, and returns. An error status
// when the coordinator could not be reached, refused us, or vanished mid-run.
absl::Status RunAgentSession(const AgentOptions& options);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_AGENT_SESSION_H_
