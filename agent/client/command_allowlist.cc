#include "agent/client/command_allowlist.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "agent/client/dialect.h"

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

std::string QuoteCommandWords(const std::vector<std::string>& words) {
  std::vector<std::string> quoted;
  for (const std::string& w : words) {
    const bool plain = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
             absl::StrContains("-_./:=,+@{}", c);
    });
    quoted.push_back(plain ? w : absl::StrCat("'", absl::StrReplaceAll(w, {{"'", "'\\''"}}), "'"));
  }
  return absl::StrJoin(quoted, " ");
}

absl::StatusOr<CommandAllowlist> CommandAllowlist::Parse(const std::vector<std::string>& entries,
                                                         absl::string_view path_env) {
  CommandAllowlist list;
  for (const std::string& e : entries) {
    auto words = SplitCommandWords(e);
    if (!words.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allow-command ", e, ": ", words.status().message()));
    }
    auto path = ResolveProgram(words->front(), path_env);
    if (!path.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allow-command ", e, ": ", path.status().message()));
    }
    list.entries_.push_back(Entry{*path, *std::move(words)});
  }
  return list;
}

absl::StatusOr<std::string> CommandAllowlist::Check(const std::vector<std::string>& argv,
                                                    absl::string_view path_env) const {
  if (argv.empty()) return absl::InvalidArgumentError("command: the program name is empty");
  auto path = ResolveProgram(argv[0], path_env);
  if (!path.ok()) return path.status();
  for (const Entry& e : entries_) {
    if (e.program == *path &&
        std::equal(argv.begin() + 1, argv.end(), e.words.begin() + 1, e.words.end())) {
      return *path;
    }
  }
  const std::string line = QuoteCommandWords(argv);
  const std::string shown = *path == argv[0] ? line : absl::StrCat(line, " (", *path, ")");
  return absl::PermissionDeniedError(
      absl::StrCat("command ", shown, " is not allowed; allowed: ", Describe()));
}

std::string CommandAllowlist::Describe() const {
  if (entries_.empty()) return "nothing (no --allow-command given)";
  std::vector<std::string> lines;
  for (const Entry& e : entries_) {
    std::vector<std::string> words = e.words;
    words[0] = e.program;
    lines.push_back(QuoteCommandWords(words));
  }
  return absl::StrJoin(lines, "; ");
}

}  // namespace ttsbench::agent
