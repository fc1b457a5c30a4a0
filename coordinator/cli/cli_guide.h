// Guidance for a mistyped command line: the list of modes, did-you-mean for modes and flags,
// and one duration grammar for every time flag. Used by `ttsbench`'s main before CLI11 parses.
#ifndef TTSBENCH_COORDINATOR_CLI_GUIDE_H_
#define TTSBENCH_COORDINATOR_CLI_GUIDE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace CLI {
class App;
}  // namespace CLI

namespace ttsbench::coordinator {

// "modes: demo  server  ..." with each mode's one-line description, for `ttsbench` alone and
// for an unknown mode.
std::string ModeList(const CLI::App& app);

// Checks `args` (argv without the program name) against `app` before CLI11 sees them, so that
// a typo gets a did-you-mean instead of CLI11's generic message:
//   an unknown mode     -> "unknown mode 'sever' (did you mean 'server'?)"
//   an unknown --flag   -> "server: unknown flag '--concurency' (did you mean '--concurrency'?)"
// Returns OK when nothing is wrong that CLI11 would not explain as well.
absl::Status CheckCommandLine(const CLI::App& app, const std::vector<std::string>& args);

// CLI11 lists unexpected arguments last-first; this restores the order they were typed in.
std::vector<std::string> InTypedOrder(std::vector<std::string> extras,
                                      const std::vector<std::string>& args);

// Every duration flag's grammar: "30s", "250ms", "2m", "1h30m", or a bare number of seconds.
// `flag` names the flag in the error. Negative durations are refused.
absl::StatusOr<double> ParseDurationFlag(const std::string& flag, const std::string& text);

// Groups the options of a load-running mode in --help (target, load, streaming, auth and TLS,
// output, fleet) by their long names; options it does not know stay in CLI11's default group.
void GroupLoadOptions(CLI::App& cmd);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_CLI_GUIDE_H_
