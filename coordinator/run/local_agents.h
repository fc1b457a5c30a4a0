// Agent processes the coordinator starts itself when no remote agents are named.
#ifndef TTSBENCH_COORDINATOR_LOCAL_AGENTS_H_
#define TTSBENCH_COORDINATOR_LOCAL_AGENTS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ttsbench::coordinator {

class LocalAgents {
 public:
  LocalAgents() = default;
  LocalAgents(LocalAgents&&) = default;
  LocalAgents& operator=(LocalAgents&&) = default;
  // Waits briefly for each child to exit, then kills what is left: no orphaned load.
  ~LocalAgents();

  // Starts `n` copies of the ttsbench-agent found next to this executable, each allowed to run
  // `allow_commands` (api command; passed as --allow-command).
  static absl::StatusOr<LocalAgents> Spawn(int n, const std::string& coordinator_address,
                                           const std::vector<std::string>& allow_commands = {});

 private:
  std::vector<pid_t> pids_;
};

// Directory of the running executable (for finding sibling binaries).
std::string ExecutableDir();

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_LOCAL_AGENTS_H_
