// One benchmark session from a validated plan to files on disk and an exit code.
#ifndef TTSBENCH_COORDINATOR_SESSION_RUNNER_H_
#define TTSBENCH_COORDINATOR_SESSION_RUNNER_H_

#include <atomic>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/slo.h"
#include "coordinator/run/orchestrator.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// DESIGN.md's exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitRunFailed = 2;
inline constexpr int kExitSloFailed = 3;
inline constexpr int kExitRegression = 4;

struct SessionRequest {
  v1::Plan plan;  // validated (ValidatePlan)
  std::string title = "Benchmark Results Summary";
  // Set by SIGINT/SIGTERM: the run stops, agents stop, the partial session is written.
  const std::atomic<bool>* interrupted = nullptr;
  bool progress = false;  // a line per level on stderr
  // Files written into the session folder before the run starts (name, content), e.g. the
  // discovery.json of `comprehensive`.
  std::vector<std::pair<std::string, std::string>> extra_files;
  // api command: the programs local agents may run (given to each as --allow-command), and the
  // PATH to resolve names with. Remote agents decide for themselves; a plan never allows.
  std::vector<std::string> allow_commands;
  std::string path_env;
  // plan asr: the recogniser's command line was typed (--asr-command), the user's own choice;
  // otherwise (a plan file's asr.command) it must be one of allow_commands.
  bool asr_command_typed = false;
};

// The headers that carry the plan's token, read from the environment variable or file the plan
// names. The values go to agents only, never to any output.
absl::StatusOr<std::vector<v1::Header>> ResolveSecretHeaders(const v1::Target& target);

// The session of a finished run, as every mode (and the C++ library) writes it: the plan as run,
// status (completed, degraded, interrupted, failed), each level's statistics with `slos` judged
// and the self-checks' warnings, the verdict. A capacity search's result is the caller's to add.
void FillSession(const v1::Plan& plan, const std::vector<common::Slo>& slos,
                 const std::string& started_at, RunResult& result);

// session.json, summary.csv and requests.csv, then the PNGs and report.html. output.plots and
// output.html record what was written: set before the first write (the usual outcome), and
// the session files are written again only when gnuplot or the report failed. A missing
// gnuplot or a failed report is said on `err`, and is no error.
absl::Status WriteSessionOutputs(const std::string& dir, v1::Session& session,
                                 const std::vector<LevelData>& levels, std::ostream& err);

// Now as a UTC label ("2026-11-30T15:04:19Z"), for started_at and ended_at.
std::string WallClockLabel();
// "<mode>_20261130_150419": a session's name when the plan gives none.
std::string DefaultSessionName(const std::string& mode);

// Prints the console table to `out`, one-line errors to `err`; returns the exit code. With the
// plan's output.json (`--json`) the table goes to `err` too and `out` gets one JSON document,
// the v1::SessionOutcome: the session as in session.json, its folder, the exit code and, when
// the run failed, why (printed on failures too, with every level measured).
int RunSession(const SessionRequest& request, std::ostream& out, std::ostream& err);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_SESSION_RUNNER_H_
