// Which local programs an agent may run for the command target (api: command): only those its
// own operator lists with --allow-command, compared by canonical path, never a plan's choice.
#ifndef TTSBENCH_AGENT_CLIENT_COMMAND_ALLOWLIST_H_
#define TTSBENCH_AGENT_CLIENT_COMMAND_ALLOWLIST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::agent {

// The canonical path (realpath) of the executable `program` names: an absolute or relative
// path as given, a bare name looked up in `path_env` (PATH's value) like execvp does.
// NotFound naming the program when there is no such executable file.
absl::StatusOr<std::string> ResolveProgram(absl::string_view program, absl::string_view path_env);

class CommandAllowlist {
 public:
  CommandAllowlist() = default;  // allows nothing
  // Each entry resolved as ResolveProgram does; an entry that is no executable file is an error
  // naming it (an operator's typo must not silently allow nothing).
  static absl::StatusOr<CommandAllowlist> Parse(const std::vector<std::string>& entries,
                                                absl::string_view path_env);

  // The canonical path to execute when `program` resolves to a listed program; otherwise
  // PermissionDenied naming the program and the list (NotFound when it does not resolve).
  absl::StatusOr<std::string> Check(absl::string_view program, absl::string_view path_env) const;

  bool empty() const { return programs_.empty(); }
  // "/usr/bin/espeak-ng, /usr/bin/piper" or "nothing (no --allow-command given)".
  std::string Describe() const;

 private:
  std::vector<std::string> programs_;  // canonical paths
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_CLIENT_COMMAND_ALLOWLIST_H_
