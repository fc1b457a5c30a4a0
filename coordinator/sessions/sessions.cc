#include "coordinator/sessions/sessions.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/csv.h"
#include "common/json.h"
#include "common/record_store.h"
#include "common/records.h"
#include "coordinator/report/report.h"
#include "google/protobuf/util/json_util.h"

namespace ttsbench::coordinator {
namespace {

namespace fs = std::filesystem;

constexpr char kSessionFile[] = "session.json";
constexpr char kRequestsFile[] = "requests.csv";

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path.string()));
  return buf.str();
}

absl::StatusOr<v1::Session> ParseSessionJson(const fs::path& path) {
  auto json = ReadFile(path);
  if (!json.ok()) return json.status();
  v1::Session session;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  if (auto st = google::protobuf::util::JsonStringToMessage(*json, &session, opts); !st.ok()) {
    return absl::DataLossError(
        absl::StrCat(path.string(), ": not a session: ", st.message().as_string()));
  }
  return session;
}

int64_t SecondsToNs(absl::string_view cell) {
  double s = 0;
  if (cell.empty() || !absl::SimpleAtod(cell, &s)) return 0;
  return std::llround(s * 1e9);
}

double ToDouble(absl::string_view cell) {
  double v = 0;
  return absl::SimpleAtod(cell, &v) ? v : 0.0;
}

int64_t ToInt(absl::string_view cell) {
  int64_t v = 0;
  return absl::SimpleAtoi(cell, &v) ? v : 0;
}

v1::ErrorKind ErrorKindFromName(absl::string_view name) {
  for (int k = v1::ErrorKind_MIN; k <= v1::ErrorKind_MAX; ++k) {
    if (!v1::ErrorKind_IsValid(k)) continue;
    const auto kind = static_cast<v1::ErrorKind>(k);
    if (common::ErrorKindName(kind) == name) return kind;
  }
  // A kind this build does not know still counts as a failure.
  return v1::ERROR_PROTOCOL;
}

// One requests.csv row, before it is assigned to a level.
struct Row {
  std::string level;      // the `level` cell as written (concurrency today)
  common::Record record;  // with its agent index
};

absl::StatusOr<std::vector<Row>> ParseRequestsCsv(const std::string& csv,
                                                  const v1::Session& session) {
  common::CsvReader reader(csv);
  std::vector<std::string> cells;
  absl::StatusOr<bool> more = reader.Next(&cells);
  if (!more.ok())
    return absl::DataLossError(absl::StrCat("requests.csv ", more.status().message()));
  if (!*more) return std::vector<Row>{};
  std::map<std::string, int> col;
  for (size_t i = 0; i < cells.size(); ++i) col[cells[i]] = static_cast<int>(i);
  for (const char* required : {"level", "start_s", "end_s"}) {
    if (!col.contains(required)) {
      return absl::DataLossError(absl::StrCat("requests.csv: no column ", required));
    }
  }
  std::map<std::string, uint32_t> agent_index;
  for (int i = 0; i < session.agents_size(); ++i) {
    agent_index.emplace(session.agents(i).id(), static_cast<uint32_t>(i));
  }
  std::vector<Row> rows;
  while (true) {
    more = reader.Next(&cells);
    if (!more.ok()) {
      return absl::DataLossError(absl::StrCat("requests.csv ", more.status().message()));
    }
    if (!*more) break;
    auto cell = [&](const char* name) -> absl::string_view {
      auto it = col.find(name);
      if (it == col.end() || it->second >= static_cast<int>(cells.size())) return {};
      return cells[static_cast<size_t>(it->second)];
    };
    // Cells past the end read as empty (a column the writer announced but left out), but a row
    // without its level and times is damage, not an older format.
    for (const char* required : {"level", "start_s", "end_s"}) {
      if (col[required] >= static_cast<int>(cells.size())) {
        return absl::DataLossError(absl::StrCat("requests.csv line ", reader.line(), ": ",
                                                cells.size(), " cells, no ", required));
      }
    }
    Row row;
    row.level = std::string(cell("level"));
    common::Record& r = row.record;
    r.request_id = static_cast<uint64_t>(ToInt(cell("request_id")));
    r.warmup = cell("warmup") == "1";
    r.intended_ns = SecondsToNs(cell("intended_s"));
    r.start_ns = SecondsToNs(cell("start_s"));
    r.first_byte_ns = SecondsToNs(cell("first_byte_s"));
    r.first_audio_ns = SecondsToNs(cell("first_audio_s"));
    r.end_ns = SecondsToNs(cell("end_s"));
    r.chars = static_cast<int32_t>(ToInt(cell("chars")));
    r.bytes = ToInt(cell("bytes"));
    r.audio_s = ToDouble(cell("audio_s"));
    r.sample_rate = static_cast<int32_t>(ToInt(cell("sample_rate")));
    r.chunks = static_cast<int32_t>(ToInt(cell("chunks")));
    r.max_gap_ms = ToDouble(cell("max_gap_ms"));
    r.underrun_ms = ToDouble(cell("underrun_ms"));
    r.http_status = static_cast<int32_t>(ToInt(cell("http_status")));
    r.connect_ns = std::llround(ToDouble(cell("connect_ms")) * 1e6);
    r.worst_stall_ms = ToDouble(cell("worst_stall_ms"));
    const absl::string_view error = cell("error");
    if (!error.empty()) {
      r.error = ErrorKindFromName(error);
    } else if (col.contains("success") && cell("success") == "0") {
      r.error = v1::ERROR_PROTOCOL;
    }
    const std::string agent(cell("agent"));
    if (auto it = agent_index.find(agent); it != agent_index.end()) {
      r.agent = it->second;
    } else {
      int64_t index = 0;
      r.agent = absl::SimpleAtoi(agent, &index) && index >= 0 ? static_cast<uint32_t>(index) : 0;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string LevelKeyCell(const v1::LevelStats& l) {
  return l.rate() > 0 ? absl::StrFormat("%.10g", l.rate()) : absl::StrCat(l.concurrency());
}

// requests.csv names a row's level by its concurrency (or rate) only, so levels sharing one
// (several series) are told apart by order and count: rows are written level by level, and
// level i has attempted + warmup_excluded records.
void AssignRows(std::vector<Row>& rows, LoadedSession& loaded) {
  const v1::Session& s = loaded.session;
  const size_t n = static_cast<size_t>(s.levels_size());
  auto put = [&](size_t level, Row& row) { loaded.levels[level].records.Append(row.record); };
  // 1. Slices by expected count, each slice carrying a single `level` value.
  size_t expected_total = 0;
  for (const auto& l : s.levels()) expected_total += l.attempted() + l.warmup_excluded();
  if (expected_total == rows.size()) {
    bool homogeneous = true;
    size_t at = 0;
    for (size_t i = 0; i < n && homogeneous; ++i) {
      const size_t count = s.levels(static_cast<int>(i)).attempted() +
                           s.levels(static_cast<int>(i)).warmup_excluded();
      for (size_t k = at; k < at + count; ++k) homogeneous &= rows[k].level == rows[at].level;
      at += count;
    }
    if (homogeneous) {
      at = 0;
      for (size_t i = 0; i < n; ++i) {
        const size_t count = s.levels(static_cast<int>(i)).attempted() +
                             s.levels(static_cast<int>(i)).warmup_excluded();
        for (size_t k = at; k < at + count; ++k) put(i, rows[k]);
        at += count;
      }
      return;
    }
  }
  // 2. As many runs of equal `level` cells as levels: run i is level i.
  std::vector<std::pair<size_t, size_t>> runs;  // [begin, end)
  for (size_t k = 0; k < rows.size(); ++k) {
    if (runs.empty() || rows[k].level != rows[runs.back().first].level) runs.push_back({k, k});
    runs.back().second = k + 1;
  }
  if (runs.size() == n) {
    for (size_t i = 0; i < n; ++i) {
      for (size_t k = runs[i].first; k < runs[i].second; ++k) put(i, rows[k]);
    }
    return;
  }
  // 3. By value: the first level whose concurrency (or rate) matches.
  loaded.notes.push_back(
      "requests.csv rows matched to levels by concurrency only; levels sharing a concurrency may "
      "be merged");
  size_t dropped = 0;
  for (Row& row : rows) {
    size_t i = 0;
    while (i < n && LevelKeyCell(s.levels(static_cast<int>(i))) != row.level) ++i;
    if (i == n) {
      ++dropped;
      continue;
    }
    put(i, row);
  }
  if (dropped > 0) {
    loaded.notes.push_back(
        absl::StrCat(dropped, " requests.csv rows belong to no level of session.json"));
  }
}

// Resolves `name` to a direct sub-folder of `output_dir`; symlinks followed.
absl::StatusOr<fs::path> ResolveInside(const std::string& output_dir, const std::string& name) {
  std::error_code ec;
  const fs::path root = fs::canonical(output_dir, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("no output directory ", output_dir));
  if (name.empty()) return absl::InvalidArgumentError("no session name given");
  fs::path candidate = fs::path(name);
  if (candidate.is_relative()) {
    // A bare name is under the output dir; a relative path such as "out/s1" is taken as given.
    candidate = candidate.has_parent_path() && fs::exists(candidate, ec) ? fs::absolute(candidate)
                                                                         : root / candidate;
  }
  const fs::path resolved = fs::weakly_canonical(candidate, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", name));
  const fs::path relative = resolved.lexically_relative(root);
  if (relative.empty() || relative == "." || *relative.begin() == "..") {
    return absl::PermissionDeniedError(absl::StrCat(
        "refusing: ", resolved.string(), " is not a session folder inside ", root.string()));
  }
  if (!fs::is_directory(resolved, ec)) {
    return absl::NotFoundError(absl::StrCat("no session ", name, " in ", root.string()));
  }
  if (!fs::is_regular_file(resolved / kSessionFile, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing: ", resolved.string(), " has no session.json, not a session"));
  }
  return resolved;
}

SessionInfo Summarize(const fs::path& dir, const std::string& name, const v1::Session& s) {
  SessionInfo info;
  info.name = name;
  info.dir = dir.string();
  info.started_at = s.started_at();
  info.ended_at = s.ended_at();
  info.target_url = RedactUrl(s.plan().target().url());
  info.mode = s.mode().empty() ? s.plan().mode() : s.mode();
  info.status = s.status();
  info.levels = s.levels_size();
  uint64_t attempted = 0, successful = 0;
  const v1::LevelStats* best = nullptr;
  for (const v1::LevelStats& l : s.levels()) {
    attempted += l.attempted();
    successful += l.successful();
    // In a capacity search the probes past the capacity failed their SLOs on purpose: the best
    // figure is among the probes that met them.
    const bool met = std::all_of(l.slo().begin(), l.slo().end(),
                                 [](const v1::SloResult& r) { return r.pass(); });
    if (s.has_capacity() && !met) continue;
    if (l.successful() > 0 && (best == nullptr || l.asps() > best->asps())) best = &l;
  }
  if (best != nullptr) {
    info.best_asps = best->asps();
    info.best_level = LevelLabel(*best);
    info.ttfa_p95_ms = best->ttfa_ms().p95();
  }
  info.success_rate_pct =
      attempted > 0 ? 100.0 * static_cast<double>(successful) / static_cast<double>(attempted) : 0;
  return info;
}

}  // namespace

std::string LevelLabel(const v1::LevelStats& level) {
  std::string load = level.rate() > 0 ? absl::StrFormat("rate=%g/s", level.rate())
                                      : absl::StrCat("c=", level.concurrency());
  return level.series().empty() ? load : absl::StrCat(level.series(), " ", load);
}

std::string RedactUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t host = scheme + 3;
  const size_t path = url.find_first_of("/?#", host);
  const size_t at = url.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at == std::string::npos || at < host) return url;
  const size_t colon = url.find(':', host);
  if (colon == std::string::npos || colon > at) return url;  // user name only: not a secret
  return absl::StrCat(url.substr(0, colon + 1), "***", url.substr(at));
}

absl::StatusOr<LoadedSession> LoadSession(const std::string& dir) {
  LoadedSession loaded;
  loaded.dir = dir;
  auto session = ParseSessionJson(fs::path(dir) / kSessionFile);
  if (!session.ok()) return session.status();
  // Unknown keys of a newer v1 are skipped, but a newer layout would be misread: refuse it.
  if (session->schema_version() > kSessionSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat((fs::path(dir) / kSessionFile).string(), ": schema_version ",
                     session->schema_version(), " is newer than this ttsbench reads (",
                     kSessionSchemaVersion, "); read it with a newer ttsbench"));
  }
  loaded.session = std::move(*session);
  for (const v1::LevelStats& l : loaded.session.levels()) {
    LevelData data;
    data.concurrency = l.concurrency();
    data.rate = l.rate();
    data.series = l.series();
    data.dropped = l.dropped();
    data.late = l.late();
    data.start_skew_ms = l.start_skew_ms();
    data.max_agent_cpu_pct = l.max_agent_cpu_pct();
    loaded.levels.push_back(std::move(data));
  }
  const fs::path requests = fs::path(dir) / kRequestsFile;
  std::error_code ec;
  if (!fs::exists(requests, ec)) {
    loaded.notes.push_back(absl::StrCat(dir, ": no requests.csv; per-request data unavailable"));
    return loaded;
  }
  auto csv = ReadFile(requests);
  if (!csv.ok()) return csv.status();
  auto rows = ParseRequestsCsv(*csv, loaded.session);
  if (!rows.ok()) {
    return absl::DataLossError(absl::StrCat(dir, ": ", rows.status().message()));
  }
  AssignRows(*rows, loaded);
  loaded.has_requests = true;
  return loaded;
}

absl::StatusOr<std::vector<SessionInfo>> ListSessions(const std::string& output_dir) {
  std::error_code ec;
  if (!fs::is_directory(output_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("no output directory ", output_dir));
  }
  std::vector<SessionInfo> out;
  fs::recursive_directory_iterator it(output_dir, fs::directory_options::skip_permission_denied,
                                      ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot list ", output_dir));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot list ", output_dir));
    const fs::directory_entry& entry = *it;
    if (!entry.is_directory(ec)) continue;
    const fs::path json = entry.path() / kSessionFile;
    if (!fs::is_regular_file(json, ec)) {
      if (it.depth() + 1 >= kMaxSessionDepth) it.disable_recursion_pending();
      continue;
    }
    it.disable_recursion_pending();  // a session's own folders hold no sessions
    // The name `show`, `compare` and `delete` take: the path below output_dir.
    const std::string name = entry.path().lexically_relative(output_dir).generic_string();
    auto session = ParseSessionJson(json);
    if (session.ok()) {
      out.push_back(Summarize(entry.path(), name, *session));
    } else {
      SessionInfo info;
      info.name = name;
      info.dir = entry.path().string();
      info.status = "unreadable";
      info.error = std::string(session.status().message());
      out.push_back(std::move(info));
    }
  }
  // ISO-8601 UTC labels sort as text; the name breaks ties.
  std::sort(out.begin(), out.end(), [](const SessionInfo& a, const SessionInfo& b) {
    return std::tie(a.started_at, a.name) < std::tie(b.started_at, b.name);
  });
  return out;
}

std::string SessionListJson(const std::vector<SessionInfo>& sessions) {
  boost::json::array list;
  for (const SessionInfo& s : sessions) {
    boost::json::object o;
    o["name"] = common::JsonText(s.name);
    o["dir"] = common::JsonText(s.dir);
    o["started_at"] = common::JsonText(s.started_at);
    o["ended_at"] = common::JsonText(s.ended_at);
    o["target_url"] = common::JsonText(s.target_url);
    o["mode"] = common::JsonText(s.mode);
    o["status"] = common::JsonText(s.status);
    o["levels"] = s.levels;
    o["best_asps"] = common::JsonNumber(s.best_asps);
    o["best_level"] = common::JsonText(s.best_level);
    o["ttfa_p95_ms"] = common::JsonNumber(s.ttfa_p95_ms);
    o["success_rate_pct"] = common::JsonNumber(s.success_rate_pct);
    if (!s.error.empty()) o["error"] = common::JsonText(s.error);
    list.push_back(std::move(o));
  }
  return common::PrettyJson(list);
}

std::string FormatSessionList(const std::vector<SessionInfo>& sessions) {
  if (sessions.empty()) return "No sessions.\n";
  // Columns as wide as their widest cell: names, modes (comprehensive) and series-prefixed
  // levels vary in length, and a fixed width shifts every later column of a long row.
  size_t name_w = 7, started_w = 7, mode_w = 4, status_w = 6, at_w = 2;
  for (const SessionInfo& s : sessions) {
    name_w = std::max(name_w, s.name.size());
    started_w = std::max(started_w, s.started_at.size());
    mode_w = std::max(mode_w, s.mode.size());
    status_w = std::max(status_w, s.status.size());
    at_w = std::max(at_w, s.best_level.size());
  }
  auto pad = [](const std::string& text, size_t width) {
    return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
  };
  std::string out = absl::StrCat(pad("Session", name_w), " ", pad("Started", started_w), " ",
                                 pad("Mode", mode_w), " ", pad("Status", status_w), " ",
                                 absl::StrFormat("%9s", "Best ASPS"), " ", pad("at", at_w), " ",
                                 absl::StrFormat("%9s %8s", "TTFA p95", "Success"), "  Target\n");
  for (const SessionInfo& s : sessions) {
    absl::StrAppend(&out, pad(s.name, name_w), " ", pad(s.started_at, started_w), " ",
                    pad(s.mode, mode_w), " ", pad(s.status, status_w), " ");
    if (s.status == "unreadable") {
      absl::StrAppend(&out, " ", s.error, "\n");
      continue;
    }
    absl::StrAppend(&out, absl::StrFormat("%9.3f", s.best_asps), " ", pad(s.best_level, at_w), " ",
                    absl::StrFormat("%7.1fms %7.1f%%", s.ttfa_p95_ms, s.success_rate_pct), "  ",
                    s.target_url, "\n");
  }
  return out;
}

absl::StatusOr<ClaimedSession> ClaimSessionDir(const std::string& output_dir,
                                               const std::string& name, bool overwrite) {
  // Every caller (the CLI's plans, the C++ library) gets the same rule: a session is one folder
  // inside output_dir, never a path out of it.
  if (name.empty() || name.find_first_of("/\\") != std::string::npos || name == "." ||
      name == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "session name '", name, "' must be a plain folder name (no '/', not '.' or '..')"));
  }
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create output directory ", output_dir, ": ", ec.message()));
  }
  constexpr int kMaxSuffix = 10000;
  for (int n = 1; n <= kMaxSuffix; ++n) {
    ClaimedSession claim;
    claim.name = n == 1 ? name : absl::StrCat(name, "-", n);
    const fs::path dir = fs::path(output_dir) / claim.name;
    claim.dir = dir.string();
    if (n > 1) {
      claim.notice = absl::StrCat("session '", name, "' exists; writing ", claim.name,
                                  " (--overwrite or output.overwrite: true replaces it)");
    }
    // create_directory is atomic: two runs started at once never take the same folder.
    if (fs::create_directory(dir, ec)) return claim;
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create session directory ", claim.dir, ": ", ec.message()));
    }
    if (!fs::is_directory(dir, ec)) continue;  // a file of that name
    if (fs::is_empty(dir, ec) && !ec) return claim;
    if (n == 1 && overwrite) {
      if (!fs::is_regular_file(dir / kSessionFile, ec)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "refusing to overwrite ", claim.dir, ": not a session folder (no session.json)"));
      }
      fs::remove_all(dir, ec);
      if (!ec) fs::create_directory(dir, ec);
      if (ec) {
        return absl::PermissionDeniedError(
            absl::StrCat("cannot replace ", claim.dir, ": ", ec.message()));
      }
      return claim;
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat("no free session name ", name, "-2 .. ", name,
                                                   "-", kMaxSuffix, " in ", output_dir));
}

absl::StatusOr<std::string> ResolveSessionDir(const std::string& output_dir,
                                              const std::string& name_or_path) {
  std::error_code ec;
  if (fs::is_regular_file(fs::path(name_or_path) / kSessionFile, ec)) return name_or_path;
  const fs::path under = fs::path(output_dir) / name_or_path;
  if (fs::is_regular_file(under / kSessionFile, ec)) return under.string();
  return absl::NotFoundError(absl::StrCat("no session ", name_or_path, " (looked for ",
                                          name_or_path, "/session.json and ", under.string(),
                                          "/session.json)"));
}

absl::StatusOr<std::string> ShowSession(const std::string& output_dir, const std::string& name) {
  // Reading is harmless, so any session folder will do (unlike DeleteSession).
  auto resolved = ResolveSessionDir(output_dir, name);
  if (!resolved.ok()) return resolved.status();
  const fs::path dir(*resolved);
  auto parsed = ParseSessionJson(dir / kSessionFile);
  if (!parsed.ok()) return parsed.status();
  const v1::Session& s = *parsed;
  std::string out = absl::StrCat(
      "Session:  ", s.name().empty() ? dir.filename().string() : s.name(), "\n",
      "Folder:   ", dir.string(), "\n", "Status:   ", s.status(), "\n",
      "Mode:     ", s.mode().empty() ? s.plan().mode() : s.mode(), "\n",
      "Target:   ", RedactUrl(s.plan().target().url()), " (api ", s.plan().target().api(),
      ", voice ", s.plan().target().voice(), ", format ", s.plan().target().format(),
      s.plan().target().streaming() ? ", streaming" : "", ")\n", "Started:  ", s.started_at(), "\n",
      "Ended:    ", s.ended_at(), "\n", "Version:  ", s.version(), "\n");
  if (!s.plan().description().empty()) {
    absl::StrAppend(&out, "About:    ", s.plan().description(), "\n");
  }
  absl::StrAppend(&out, "Agents:   ", s.agents_size(), "\n");
  for (const v1::AgentInfo& a : s.agents()) {
    absl::StrAppend(&out, absl::StrFormat("  %-20s host %-16s cores %-3d clock offset %+.3f ms "
                                          "(+/- %.3f ms)\n",
                                          a.id(), a.host(), a.cores(), a.clock_offset_ms(),
                                          a.clock_uncertainty_ms()));
  }
  absl::StrAppend(&out, "\n",
                  absl::StrFormat("%-22s %9s %8s %8s %9s %9s %9s %9s %8s\n", "Level", "ASPS", "RTF",
                                  "RPS", "TTFA p50", "TTFA p95", "Lat p50", "Lat p95", "Success"));
  for (const v1::LevelStats& l : s.levels()) {
    absl::StrAppend(
        &out,
        absl::StrFormat("%-22s %9.3f %8.4f %8.2f %9.1f %9.1f %9.1f %9.1f %7.1f%%\n", LevelLabel(l),
                        l.asps(), l.rtf().mean(), l.rps(), l.ttfa_ms().p50(), l.ttfa_ms().p95(),
                        l.latency_ms().p50(), l.latency_ms().p95(), l.success_rate_pct()));
  }
  if (s.has_capacity()) {
    const v1::CapacityResult& c = s.capacity();
    absl::StrAppend(
        &out, "\nCapacity: ",
        c.found() > 0 ? absl::StrFormat("%g (%s) meets every SLO", c.found(), c.unit())
                      : std::string("no probe met every SLO"),
        c.first_failing() > 0 ? absl::StrFormat("; %g does not", c.first_failing()) : std::string(),
        "\n");
  }
  bool any_slo = false;
  for (const v1::LevelStats& l : s.levels()) {
    for (const v1::SloResult& r : l.slo()) {
      // A capacity search fails probes on purpose: its SLO rows are per probe, not a verdict.
      if (!any_slo) {
        absl::StrAppend(&out, "\nSLOs (",
                        s.has_capacity() ? "per probe"
                        : s.slo_passed() ? "passed"
                                         : "FAILED",
                        "):\n");
      }
      any_slo = true;
      absl::StrAppend(&out, absl::StrFormat("  %-22s %-24s value %.4g  %s\n", LevelLabel(l),
                                            r.slo(), r.value(), r.pass() ? "pass" : "FAIL"));
    }
  }
  if (s.warnings_size() > 0) absl::StrAppend(&out, "\nWarnings:\n");
  for (const std::string& w : s.warnings()) absl::StrAppend(&out, "  ", w, "\n");
  std::vector<std::string> files;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  absl::StrAppend(&out, "\nFiles: ", absl::StrJoin(files, " "), "\n");
  return out;
}

absl::Status DeleteSession(const std::string& output_dir, const std::string& name) {
  auto dir = ResolveInside(output_dir, name);
  if (!dir.ok()) return dir.status();
  std::error_code ec;
  fs::remove_all(*dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot delete ", dir->string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace ttsbench::coordinator
