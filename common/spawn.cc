#include "common/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace ttsbench::common {
namespace {

void CloseFds(std::initializer_list<int> fds) {
  for (const int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace

absl::StatusOr<SpawnedProcess> SpawnInOwnGroup(const std::vector<std::string>& argv,
                                               std::vector<char*>& argv_buffer) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    const std::string why = absl::StrCat("cannot create pipes: ", strerror(errno));
    CloseFds({in[0], in[1], out[0], out[1], err[0], err[1]});
    return absl::InternalError(why);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // nothing of the caller leaks in
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group, so a timeout kills it and everything it started; signals as a
  // fresh process has them (the caller may ignore SIGPIPE, the program must not).
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t mask;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&attr, &mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (const int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) {
    sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigdefault(&attr, &defaults);
  argv_buffer.clear();
  for (const std::string& a : argv) argv_buffer.push_back(const_cast<char*>(a.c_str()));
  argv_buffer.push_back(nullptr);
  pid_t pid = 0;
  const int rc = argv.empty() ? EINVAL
                              : ::posix_spawn(&pid, argv_buffer[0], &actions, &attr,
                                              argv_buffer.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  CloseFds({in[0], out[1], err[1]});
  if (rc != 0) {
    CloseFds({in[1], out[0], err[0]});
    return absl::InternalError(
        absl::StrCat("cannot start ", argv.empty() ? "" : argv[0], ": ", strerror(rc)));
  }
  return SpawnedProcess{pid, in[1], out[0], err[0]};
}

}  // namespace ttsbench::common
