// The session's outputs: summary.csv, requests.csv, session.json and the console table.
#ifndef TTSBENCH_COORDINATOR_REPORT_H_
#define TTSBENCH_COORDINATOR_REPORT_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/run/orchestrator.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// Session.schema_version of the sessions this ttsbench writes (docs/SESSION_SCHEMA.md): bumped
// when a change to the Session message would make an old reader misread session.json.
inline constexpr uint32_t kSessionSchemaVersion = 1;

// Creates `dir` (and parents) and proves it writable, before any load is sent.
absl::Status PrepareOutputDir(const std::string& dir);

// Writes `content` to `path` through a temp file and a rename, so a reader never sees half a
// file and an interrupted write leaves the old one.
absl::Status WriteAtomically(const std::filesystem::path& path, const std::string& content);

// Writes the three files into `dir`, each atomically (temp file + rename).
absl::Status WriteSessionFiles(const std::string& dir, const v1::Session& session,
                               const std::vector<LevelData>& levels);

// A message as session.json spells it (protobuf's JSON mapping: the proto's field names, every
// field printed, indented), ending in a newline. The one writer of session.json and `--json`.
absl::StatusOr<std::string> ProtoJson(const google::protobuf::Message& message);

// session.json's text: `session` with schema_version set to kSessionSchemaVersion.
absl::StatusOr<std::string> SessionJson(const v1::Session& session);

// The name of an exit code (DESIGN.md "Exit codes"): ok, usage_error, run_failed, slo_failed,
// regression, not_evaluated; "exit_N" for any other.
std::string ExitCodeName(int exit_code);

// What `--json` prints: `outcome` with its and its session's schema_version and its result (the
// exit code's name) filled in.
absl::StatusOr<std::string> SessionOutcomeJson(v1::SessionOutcome outcome);

std::string SummaryCsv(const v1::Session& session);
std::string RequestsCsv(const v1::Session& session, const std::vector<LevelData>& levels);

// The Python benchmark's table ("Conc ASPS RTF RPS CPS TTFA p95 Success") and best lines, then
// the errors by kind (ErrorBreakdown) whenever a request failed.
std::string ConsoleTable(const std::string& title, const v1::Session& session);

// Errors of all levels by kind, most frequent first: count, share of attempts, the first
// request's detail, and a hint where the kind and detail point at a known fix. "" if none.
std::string ErrorBreakdown(const v1::Session& session);

// What to do about one kind of error against this plan's target, or "" when nothing is known:
// TLS verify failures (--ca-file / --insecure), plain HTTP to a TLS port (https://), 404
// (ttsbench discover; a full endpoint URL given as --url), 401/403 (the auth flags), a server
// error naming the voice (--voice, discover lists voices), ...
std::string ErrorHint(const v1::ErrorSummary& error, const v1::Plan& plan);

// The one line saying why a run failed its SLOs (the first failed objective and its level, how
// many more failed; for the default success-rate floor, how to change it), or "" if all passed.
std::string SloFailureLine(const v1::Session& session);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_REPORT_H_
