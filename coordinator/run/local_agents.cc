#include "coordinator/run/local_agents.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace ttsbench::coordinator {

std::string ExecutableDir() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

absl::StatusOr<LocalAgents> LocalAgents::Spawn(int n, const std::string& coordinator_address,
                                               const std::vector<std::string>& allow_commands) {
  const std::string binary = ExecutableDir() + "/ttsbench-agent";
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot find ", binary));
  }
  // Each agent in its own process group: a terminal's Ctrl-C (SIGINT to the foreground group)
  // reaches only the coordinator, which stops the agents and writes the session marked
  // interrupted, instead of killing the agents under it and reporting them lost.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  LocalAgents agents;
  for (int i = 0; i < n; ++i) {
    std::string id = absl::StrCat("local-", i + 1);
    std::vector<std::string> args = {binary, "--coordinator", coordinator_address, "--id",
                                     id,     "--once"};
    for (const std::string& program : allow_commands) {
      args.push_back("--allow-command");
      args.push_back(program);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (int err = posix_spawn(&pid, binary.c_str(), nullptr, &attr, argv.data(), environ);
        err != 0) {
      posix_spawnattr_destroy(&attr);
      return absl::InternalError(absl::StrCat("cannot start ", binary, ": ", strerror(err)));
    }
    agents.pids_.push_back(pid);
  }
  posix_spawnattr_destroy(&attr);
  return agents;
}

LocalAgents::~LocalAgents() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (pid_t pid : pids_) {
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace ttsbench::coordinator
