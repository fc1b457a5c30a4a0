// Starting a local program safely, shared by the command target (agent/client/command_transport)
// and the coordinator's ASR recogniser: posix_spawn of an argv (never a shell), in a process
// group of its own (so a timeout kills it and everything it started), with the signal mask and
// dispositions a fresh process has, its stdin/stdout/stderr on pipes and no other descriptor of
// the caller inherited.
#ifndef TTSBENCH_COMMON_SPAWN_H_
#define TTSBENCH_COMMON_SPAWN_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ttsbench::common {

struct SpawnedProcess {
  pid_t pid = 0;       // also its process group id: kill(-pid, ...) reaches the group
  int stdin_fd = -1;   // write end (O_CLOEXEC); close it to end the program's input
  int stdout_fd = -1;  // read ends (O_CLOEXEC)
  int stderr_fd = -1;
};

// Starts argv[0] (a path: it is not searched on PATH) with `argv`. `argv_buffer` holds the
// char* array across the call, so a caller that spawns often reuses its capacity. Failure:
// Internal with "cannot start PROGRAM: reason" (no process is left behind, no descriptor open).
absl::StatusOr<SpawnedProcess> SpawnInOwnGroup(const std::vector<std::string>& argv,
                                               std::vector<char*>& argv_buffer);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_SPAWN_H_
