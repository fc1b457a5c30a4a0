// Sessions on disk: loading one back (session.json + requests.csv), and the index of an output
// directory behind `ttsbench sessions list|show|delete`.
#ifndef TTSBENCH_COORDINATOR_SESSIONS_H_
#define TTSBENCH_COORDINATOR_SESSIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/run/orchestrator.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// A session folder read back: enough to re-plot, re-report or compare it.
struct LoadedSession {
  std::string dir;
  v1::Session session;
  // Parallel to session.levels(): level i's records (warm-up included, flagged) with the index of
  // the agent that made each. Rate and series of level i are in session.levels(i).
  std::vector<LevelData> levels;
  bool has_requests = false;       // requests.csv was found and parsed
  std::vector<std::string> notes;  // what could not be restored exactly, for the console
};

// Parses `dir`/session.json (unknown fields ignored, so newer sessions still load) and
// `dir`/requests.csv (columns found by name; times back from seconds to ns). A missing
// requests.csv is not an error: levels then hold no records and a note says so.
absl::StatusOr<LoadedSession> LoadSession(const std::string& dir);

// One line of `ttsbench sessions list`.
struct SessionInfo {
  std::string name;  // folder name
  std::string dir;
  std::string started_at;
  std::string ended_at;
  std::string target_url;  // password of any user-info redacted
  std::string mode;
  std::string status;  // completed | failed | interrupted | unreadable
  int levels = 0;
  double best_asps = 0;
  std::string best_level;       // LevelLabel() of the best-ASPS level
  double ttfa_p95_ms = 0;       // at the best-ASPS level
  double success_rate_pct = 0;  // over every measured request of the session
  std::string error;            // why session.json could not be read (status "unreadable")
};

// Every folder under `output_dir` holding a session.json, oldest first, found up to
// kMaxSessionDepth folders deep (a plan whose output_dir is ttsbench-results/nightly is listed
// as nightly/NAME); a session folder is not searched further. A session.json that does not
// parse is listed as "unreadable" rather than hiding the folder.
inline constexpr int kMaxSessionDepth = 4;
absl::StatusOr<std::vector<SessionInfo>> ListSessions(const std::string& output_dir);

// The folder a new session named `name` is written to, created empty. A name whose folder
// exists and is not empty is never silently reused: without `overwrite` the first free
// `name-2`, `name-3`, ... is taken and `notice` says so; with it, an existing session folder
// (one holding session.json) is emptied, and any other non-empty folder is refused.
struct ClaimedSession {
  std::string name;    // the folder name, `name` or `name-N`
  std::string dir;     // output_dir/name
  std::string notice;  // "session 'x' exists; writing x-2 ...", empty when `name` was free
};
absl::StatusOr<ClaimedSession> ClaimSessionDir(const std::string& output_dir,
                                               const std::string& name, bool overwrite);

// The list as a console table.
std::string FormatSessionList(const std::vector<SessionInfo>& sessions);

// The list as a JSON array, one object per session with SessionInfo's fields under their names
// (`sessions list --json`); `error` only on an unreadable session.
std::string SessionListJson(const std::vector<SessionInfo>& sessions);

// `name` is a folder name under `output_dir` or the path of any session folder. Returns the
// session's header, agents, per-level table, SLO verdicts, warnings and files, as text.
absl::StatusOr<std::string> ShowSession(const std::string& output_dir, const std::string& name);

// Removes the session folder `name` (as `sessions list` names it) from `output_dir`. Refuses
// anything that does not resolve (symlinks followed) to a folder inside `output_dir` containing
// session.json, so a typo or a crafted name can never remove anything else.
absl::Status DeleteSession(const std::string& output_dir, const std::string& name);

// `name_or_path` is either a session folder (has session.json) or a name under `output_dir`.
absl::StatusOr<std::string> ResolveSessionDir(const std::string& output_dir,
                                              const std::string& name_or_path);

// "c=4", "rate=2.5/s", prefixed by the series when there is one: "voice=a c=4".
std::string LevelLabel(const v1::LevelStats& level);

// The URL with the password of any user-info replaced by "***".
std::string RedactUrl(const std::string& url);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_SESSIONS_H_
