#include "agent/client/command_allowlist.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ttsbench::agent {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

absl::StatusOr<std::string> Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return absl::NotFoundError(absl::StrCat("command '", path, "' not found"));
  }
  return std::string(buf);
}

}  // namespace

absl::StatusOr<std::string> ResolveProgram(absl::string_view program, absl::string_view path_env) {
  if (program.empty()) return absl::InvalidArgumentError("command: the program name is empty");
  if (program.find('/') != absl::string_view::npos) {
    const std::string path(program);
    if (!IsExecutableFile(path)) {
      return absl::NotFoundError(absl::StrCat("command '", program, "' is not an executable file"));
    }
    return Canonical(path);
  }
  for (absl::string_view dir : absl::StrSplit(path_env, ':')) {
    // An empty PATH entry means the current directory, which a benchmark agent never searches.
    if (dir.empty()) continue;
    const std::string candidate = absl::StrCat(dir, "/", program);
    if (IsExecutableFile(candidate)) return Canonical(candidate);
  }
  return absl::NotFoundError(absl::StrCat("command '", program, "' not found on PATH"));
}

absl::StatusOr<CommandAllowlist> CommandAllowlist::Parse(const std::vector<std::string>& entries,
                                                         absl::string_view path_env) {
  CommandAllowlist list;
  for (const std::string& e : entries) {
    auto path = ResolveProgram(e, path_env);
    if (!path.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allow-command ", e, ": ", path.status().message()));
    }
    if (std::find(list.programs_.begin(), list.programs_.end(), *path) == list.programs_.end()) {
      list.programs_.push_back(*path);
    }
  }
  return list;
}

absl::StatusOr<std::string> CommandAllowlist::Check(absl::string_view program,
                                                    absl::string_view path_env) const {
  auto path = ResolveProgram(program, path_env);
  if (!path.ok()) return path.status();
  if (std::find(programs_.begin(), programs_.end(), *path) != programs_.end()) return *path;
  const std::string shown =
      *path == program ? std::string(program) : absl::StrCat(program, " (", *path, ")");
  return absl::PermissionDeniedError(
      absl::StrCat("command ", shown, " is not allowed; allowed: ", Describe()));
}

std::string CommandAllowlist::Describe() const {
  if (programs_.empty()) return "nothing (no --allow-command given)";
  return absl::StrJoin(programs_, ", ");
}

}  // namespace ttsbench::agent
