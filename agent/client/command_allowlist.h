// Which local command lines an agent may run for the command target (api: command): only those
// its own operator lists with --allow-command, never a plan's choice. An entry is a whole
// command line — the program and every argument, placeholders included — because an allowed
// program with free arguments is still a hole (`espeak-ng -w /any/file`, `piper
// --output_file ...`): a plan may only pick one of the listed lines, word for word, the program
// compared by canonical path.
#ifndef TTSBENCH_AGENT_CLIENT_COMMAND_ALLOWLIST_H_
#define TTSBENCH_AGENT_CLIENT_COMMAND_ALLOWLIST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace ttsbench::agent {

// The canonical path (realpath) of the executable `program` names: an absolute or relative
// path as given, a bare name looked up in `path_env` (PATH's value) like execvp does.
// NotFound naming the program when there is no such executable file.
absl::StatusOr<std::string> ResolveProgram(absl::string_view program, absl::string_view path_env);

// `words` as one command line that SplitCommandWords reads back as the same words (each word
// single-quoted when it holds anything but letters, digits and -_./:=,+@{}).
std::string QuoteCommandWords(const std::vector<std::string>& words);

class CommandAllowlist {
 public:
  CommandAllowlist() = default;  // allows nothing
  // Each entry a command line (SplitCommandWords), its program resolved as ResolveProgram does;
  // an entry that does not parse or names no executable file is an error naming it (an
  // operator's typo must not silently allow nothing).
  static absl::StatusOr<CommandAllowlist> Parse(const std::vector<std::string>& entries,
                                                absl::string_view path_env);

  // The canonical path to execute when `argv` is a listed command line (its program resolving
  // to the listed one, every argument the same); otherwise PermissionDenied naming the command
  // line and the list (NotFound when the program does not resolve).
  absl::StatusOr<std::string> Check(const std::vector<std::string>& argv,
                                    absl::string_view path_env) const;
  absl::StatusOr<std::string> Check(const google::protobuf::RepeatedPtrField<std::string>& argv,
                                    absl::string_view path_env) const {
    return Check(std::vector<std::string>(argv.begin(), argv.end()), path_env);
  }

  bool empty() const { return entries_.empty(); }
  // "'/usr/bin/espeak-ng' --stdout -v '{voice}'; ..." or "nothing (no --allow-command given)".
  std::string Describe() const;

 private:
  struct Entry {
    std::string program;             // canonical path
    std::vector<std::string> words;  // the line as listed: program as written, then arguments
  };
  std::vector<Entry> entries_;
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_CLIENT_COMMAND_ALLOWLIST_H_
