// One benchmark session from a validated plan to files on disk and an exit code.
#ifndef TTSBENCH_COORDINATOR_SESSION_RUNNER_H_
#define TTSBENCH_COORDINATOR_SESSION_RUNNER_H_

#include <ostream>
#include <string>
#include <vector>

#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// DESIGN.md's exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitRunFailed = 2;
inline constexpr int kExitSloFailed = 3;
inline constexpr int kExitRegression = 4;

struct SessionRequest {
  v1::Plan plan;
  std::vector<v1::Header> secret_headers;
  std::string title = "Benchmark Results Summary";
  int expect_agents = 0;  // remote agents to wait for; 0 = spawn plan.agents.spawn locally
};

// Prints the console table to `out`, one-line errors to `err`; returns the exit code.
int RunSession(const SessionRequest& request, std::ostream& out, std::ostream& err);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_SESSION_RUNNER_H_
