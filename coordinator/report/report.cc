#include "coordinator/report/report.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/csv.h"
#include "common/json.h"
#include "common/record_store.h"
#include "common/records.h"
#include "common/slo.h"
#include "common/url.h"
#include "coordinator/report/asr_report.h"
#include "coordinator/report/audio_quality.h"
#include "coordinator/report/telemetry_report.h"
#include "coordinator/run/capacity.h"
#include "google/protobuf/util/json_util.h"

namespace ttsbench::coordinator {
namespace {

namespace fs = std::filesystem;

absl::Status Commit(const fs::path& tmp, const fs::path& path) {
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path.string(), ": ", ec.message()));
  return absl::OkStatus();
}

// Like WriteAtomically, for one line per record: `row(level, record, &buffer)` appends a line,
// and the buffer goes to the file every ~1 MB, so ten million rows never sit in memory at once.
template <typename Row>
absl::Status WriteRowsAtomically(const fs::path& path, const std::string& header,
                                 const std::vector<LevelData>& levels, Row row) {
  constexpr size_t kFlushBytes = size_t{1} << 20;
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp.string()));
    std::string buffer = header;
    buffer.reserve(kFlushBytes + 4096);
    for (const LevelData& level : levels) {
      for (const common::Record& r : level.records) {
        row(level, r, &buffer);
        if (buffer.size() >= kFlushBytes) {
          out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
          buffer.clear();
        }
      }
    }
    out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("short write to ", tmp.string()));
  }
  return Commit(tmp, path);
}

// Full precision, no trailing noise: enough digits that recomputation agrees to 1e-9.
std::string Num(double v) { return absl::StrFormat("%.10g", v); }

std::string Seconds(int64_t ns) {
  return ns == 0 ? "" : absl::StrFormat("%.9f", static_cast<double>(ns) / 1e9);
}

std::string ErrorsCell(const v1::LevelStats& l) {
  std::vector<std::string> parts;
  std::map<std::string, uint32_t> sorted(l.errors().begin(), l.errors().end());
  for (const auto& [kind, n] : sorted) parts.push_back(absl::StrCat(kind, ":", n));
  return absl::StrJoin(parts, ";");
}

}  // namespace

absl::Status WriteAtomically(const std::filesystem::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp.string()));
    out << content;
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("short write to ", tmp.string()));
  }
  return Commit(tmp, path);
}

absl::Status PrepareOutputDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create output directory ", dir, ": ", ec.message()));
  }
  const fs::path probe = fs::path(dir) / ".ttsbench-write-test";
  {
    std::ofstream out(probe);
    if (!out || !(out << "ok")) {
      return absl::PermissionDeniedError(absl::StrCat("cannot write to output directory ", dir));
    }
  }
  fs::remove(probe, ec);
  return absl::OkStatus();
}

namespace {

bool OpenLoop(const v1::Session& session) { return session.plan().load().model() == "open"; }

std::string LevelLabel(const v1::Session& session, const v1::LevelStats& l) {
  return OpenLoop(session) ? Num(l.rate()) : absl::StrCat(l.concurrency());
}

// "concurrency 4", and in a multi-series session the series too: "concurrency 4 [voice=fast]".
std::string Where(const v1::Session& session, const v1::LevelStats& l) {
  return absl::StrCat(OpenLoop(session) ? "rate " : "concurrency ", LevelLabel(session, l),
                      l.series().empty() ? "" : absl::StrCat(" [", l.series(), "]"));
}

// An SLO's measured value with the unit its threshold was written in.
std::string SloValue(const v1::SloResult& r) {
  const std::string& m = r.metric();
  const char* unit = absl::StartsWith(m, "ttfa") || absl::StartsWith(m, "latency") ? " ms"
                     : absl::StartsWith(m, "success_rate")                         ? "%"
                                                                                   : "";
  return absl::StrCat(absl::StrFormat("%.4g", r.value()), unit);
}

std::string SloCell(const v1::LevelStats& l) {
  if (l.slo_size() == 0) return "";
  for (const v1::SloResult& r : l.slo()) {
    if (!r.pass()) return "FAIL";
  }
  return "PASS";
}

}  // namespace

// Paced text (issue 13): the summary.csv columns of one level, empty when it had none.
void PacedSummaryFields(const v1::LevelStats& l, common::CsvWriter& csv) {
  auto dist = [&](const v1::Distribution& d) {
    const bool any = d.count() > 0;
    csv.Field(any ? Num(d.p50()) : std::string())
        .Field(any ? Num(d.p95()) : std::string())
        .Field(any ? Num(d.p99()) : std::string());
  };
  dist(l.first_token_to_speech_ms());
  dist(l.last_token_to_last_audio_ms());
  csv.Field(l.pacing_late_ms().count() > 0 ? Num(l.pacing_late_ms().p99()) : std::string());
  csv.Field(l.interrupted());
  dist(l.time_to_silence_ms());
}

// Conversations (issue 13): the summary.csv columns of one level, empty when it had none.
void ConversationSummaryFields(const v1::LevelStats& l, common::CsvWriter& csv) {
  if (l.conversation_turns() == 0) {
    for (int k = 0; k < 7; ++k) csv.Field(std::string());
    return;
  }
  const v1::Distribution& d = l.conversation_setup_ms();
  const bool any = d.count() > 0;
  csv.Field(l.conversations())
      .Field(l.conversation_turns())
      .Field(any ? Num(d.p50()) : std::string())
      .Field(any ? Num(d.p95()) : std::string())
      .Field(any ? Num(d.p99()) : std::string())
      .Field(l.reconnects())
      .Field(l.conversations_failed());
}

std::string SummaryCsv(const v1::Session& session) {
  std::string out;
  common::CsvWriter csv(&out);
  // DESIGN.md's columns first, in order; new columns are only ever appended.
  csv.Add({OpenLoop(session) ? "Rate" : "Concurrency", "ASPS", "RTF_Mean", "RTF_Median", "RTF_p95",
           "RPS", "CPS", "TTFA_p50_ms", "TTFA_p95_ms", "TTFA_p99_ms", "Latency_p50_ms",
           "Latency_p95_ms", "Latency_p99_ms", "Success_Rate_%", "Errors", "Attempted",
           "Successful", "T_wall_s", "Audio_s", "Characters", "TTFA_Mean_ms", "RTF_p99",
           "Latency_Mean_ms", "Attempted_RPS", "New_Connections", "Start_Skew_ms", "Goodput_RPS",
           "Gap_p50_ms", "Gap_p95_ms", "Gap_p99_ms", "Gap_Max_ms", "Underrun_p95_ms",
           "Underrun_Max_ms", "Continuity_OK_%", "Sched_Lag_p50_ms", "Sched_Lag_p99_ms",
           "Latency_From_Intended_p50_ms", "Latency_From_Intended_p99_ms", "Dropped", "Late",
           "Achieved_Rate", "Agent_CPU_Max_%", "Series", "SLO", "Cancelled", "TTFA_Audible_p50_ms",
           "TTFA_Audible_p95_ms", "TTFA_Audible_p99_ms", "Leading_Silence_p50_ms",
           // Paced text and barge-in, then conversations (issue 13), empty when the level had
           // none.
           "FTTS_p50_ms", "FTTS_p95_ms", "FTTS_p99_ms", "LTLA_p50_ms", "LTLA_p95_ms", "LTLA_p99_ms",
           "Pacing_Late_p99_ms", "Interrupted", "Time_To_Silence_p50_ms", "Time_To_Silence_p95_ms",
           "Time_To_Silence_p99_ms", "Conversations", "Conversation_Turns",
           "Conversation_Setup_p50_ms", "Conversation_Setup_p95_ms", "Conversation_Setup_p99_ms",
           "Reconnects", "Conversations_Failed"});
  if (session.has_asr()) csv.Add(AsrCsvColumns());  // the ASR check's, when it ran
  TelemetryCostColumns(session, nullptr, csv);      // cost, energy and telemetry (issue 14)
  csv.EndRow();
  for (const v1::LevelStats& l : session.levels()) {
    // A statistic of no request is no number: per-success figures are empty when nothing
    // succeeded, stream figures (gaps, underrun, continuity) when nothing streamed.
    const bool ok = l.successful() > 0;
    const bool streamed = l.underrun_ms().count() > 0;
    const bool audible = l.ttfa_audible_ms().count() > 0;  // audio checks on, something heard
    csv.Field(LevelLabel(session, l))
        .Field(Num(l.asps()))
        .Field(ok ? Num(l.rtf().mean()) : std::string())
        .Field(ok ? Num(l.rtf_median()) : std::string())
        .Field(ok ? Num(l.rtf().p95()) : std::string())
        .Field(Num(l.rps()))
        .Field(Num(l.cps()))
        .Field(ok ? Num(l.ttfa_ms().p50()) : std::string())
        .Field(ok ? Num(l.ttfa_ms().p95()) : std::string())
        .Field(ok ? Num(l.ttfa_ms().p99()) : std::string())
        .Field(ok ? Num(l.latency_ms().p50()) : std::string())
        .Field(ok ? Num(l.latency_ms().p95()) : std::string())
        .Field(ok ? Num(l.latency_ms().p99()) : std::string())
        .Field(Num(l.success_rate_pct()))
        .Field(ErrorsCell(l))
        .Field(l.attempted())
        .Field(l.successful())
        .Field(Num(l.t_wall_s()))
        .Field(Num(l.audio_seconds()))
        .Field(l.characters())
        .Field(ok ? Num(l.ttfa_ms().mean()) : std::string())
        .Field(ok ? Num(l.rtf().p99()) : std::string())
        .Field(ok ? Num(l.latency_ms().mean()) : std::string())
        .Field(Num(l.attempted_rps()))
        .Field(l.new_connections())
        .Field(Num(l.start_skew_ms()))
        .Field(Num(l.goodput_rps()))
        .Field(streamed ? Num(l.gap_ms().p50()) : std::string())
        .Field(streamed ? Num(l.gap_ms().p95()) : std::string())
        .Field(streamed ? Num(l.gap_ms().p99()) : std::string())
        .Field(streamed ? Num(l.gap_ms().max()) : std::string())
        .Field(streamed ? Num(l.underrun_ms().p95()) : std::string())
        .Field(streamed ? Num(l.underrun_ms().max()) : std::string())
        .Field(streamed ? Num(l.continuity_ok_pct()) : std::string())
        .Field(Num(l.sched_lag_ms().p50()))
        .Field(Num(l.sched_lag_ms().p99()))
        .Field(ok ? Num(l.latency_from_intended_ms().p50()) : std::string())
        .Field(ok ? Num(l.latency_from_intended_ms().p99()) : std::string())
        .Field(l.dropped())
        .Field(l.late())
        .Field(Num(l.achieved_rate()))
        .Field(Num(l.max_agent_cpu_pct()))
        .Field(l.series())
        .Field(SloCell(l))
        .Field(l.cancelled())
        .Field(audible ? Num(l.ttfa_audible_ms().p50()) : std::string())
        .Field(audible ? Num(l.ttfa_audible_ms().p95()) : std::string())
        .Field(audible ? Num(l.ttfa_audible_ms().p99()) : std::string())
        .Field(l.leading_silence_ms().count() > 0 ? Num(l.leading_silence_ms().p50())
                                                  : std::string());
    PacedSummaryFields(l, csv);
    ConversationSummaryFields(l, csv);
    if (session.has_asr()) csv.Add(AsrCsvCells(l));
    TelemetryCostColumns(session, &l, csv);
    csv.EndRow();
  }
  return out;
}

namespace {

const std::vector<std::string>& RequestsCsvColumns() {
  static const std::vector<std::string>* columns = new std::vector<std::string>{
      "level", "agent", "request_id", "warmup", "intended_s", "start_s", "first_byte_s",
      "first_audio_s", "end_s", "chars", "bytes", "audio_s", "sample_rate", "chunks", "max_gap_ms",
      "underrun_ms", "http_status", "success", "error", "connect_ms", "worst_stall_ms", "series",
      "error_detail",
      // Audio checks (issue 14); empty for requests not analysed.
      "text_index", "audio_decoded", "ttfa_audible_ms", "leading_silence_ms",
      // Paced text and barge-in (issue 13): empty for requests without them.
      "first_text_s", "end_of_input_s", "last_audio_s", "first_token_to_speech_ms",
      "last_token_to_last_audio_ms", "pacing_late_max_ms", "text_pieces", "interrupt_s",
      "time_to_silence_ms", "bytes_after_interrupt",
      // Conversations (issue 13): empty for requests outside one. One name per line from here
      // on, so that a column added later is a one-line append.
      // clang-format off
      "conversation_id",
      "turn",
      "conversation_setup_ms",
      "reconnect",
      // clang-format on
  };
  return *columns;
}

std::string RequestsCsvHeader() {
  std::string out;
  common::CsvWriter(&out).Row(RequestsCsvColumns());
  return out;
}

const std::string& AgentName(const v1::Session& session, uint32_t agent, std::string* scratch) {
  if (agent < static_cast<uint32_t>(session.agents_size())) {
    return session.agents(static_cast<int>(agent)).id();
  }
  *scratch = std::to_string(agent);
  return *scratch;
}

std::string LevelCell(const LevelData& level) {
  return level.rate > 0 ? Num(level.rate) : absl::StrCat(level.concurrency);
}

void AppendRequestRow(const v1::Session& session, const LevelData& level, const common::Record& r,
                      std::string* out) {
  std::string scratch;
  // Audio checks: empty unless this request's audio was analysed (and decoded).
  const v1::AudioAnalysis* a = r.analysis.get();
  const bool heard = a != nullptr && a->decoded();
  common::CsvWriter csv(out);
  csv.Field(LevelCell(level))
      .Field(AgentName(session, r.agent, &scratch))
      .Field(r.request_id)
      .Field(r.warmup ? 1 : 0)
      .Field(Seconds(r.intended_ns))
      .Field(Seconds(r.start_ns))
      .Field(Seconds(r.first_byte_ns))
      .Field(Seconds(r.first_audio_ns))
      .Field(Seconds(r.end_ns))
      .Field(r.chars)
      .Field(r.bytes)
      .Field(Num(r.audio_s))
      .Field(r.sample_rate)
      .Field(r.chunks)
      .Field(Num(r.max_gap_ms))
      .Field(Num(r.underrun_ms))
      .Field(r.http_status)
      .Field(common::Succeeded(r) ? 1 : 0)
      .Field(common::ErrorKindName(r.error))
      .Field(Num(static_cast<double>(r.connect_ns) / 1e6))
      .Field(Num(r.worst_stall_ms))
      .Field(level.series)
      .Field(r.error_detail)
      .Field(r.text_index)
      .Field(a == nullptr ? std::string() : (a->decoded() ? "1" : "0"))
      .Field(heard && a->audible_ns() != 0
                 ? Num(static_cast<double>(a->audible_ns() - r.start_ns) / 1e6)
                 : std::string())
      .Field(heard ? Num(a->leading_silence_ms()) : std::string());
  // Paced text and barge-in (issue 13).
  const common::PacedFields& p = r.paced;
  auto ms = [](int64_t from, int64_t to) {
    return from != 0 && to != 0 ? Num(static_cast<double>(to - from) / 1e6) : std::string();
  };
  const bool paced = p.first_text_ns != 0;
  csv.Field(paced ? Seconds(p.first_text_ns) : std::string())
      .Field(p.end_of_input_ns != 0 ? Seconds(p.end_of_input_ns) : std::string())
      .Field(p.last_audio_ns != 0 && p.any() ? Seconds(p.last_audio_ns) : std::string())
      .Field(ms(p.first_text_ns, r.first_audio_ns))
      .Field(p.interrupt_ns == 0 ? ms(p.end_of_input_ns, p.last_audio_ns) : std::string())
      .Field(paced ? Num(static_cast<double>(p.late_max_ns) / 1e6) : std::string())
      .Field(paced ? absl::StrCat(p.text_pieces) : std::string())
      .Field(p.interrupt_ns != 0 ? Seconds(p.interrupt_ns) : std::string())
      .Field(p.interrupt_ns != 0
                 ? Num(static_cast<double>(std::max<int64_t>(0, p.last_audio_ns - p.interrupt_ns)) /
                       1e6)
                 : std::string())
      .Field(p.interrupt_ns != 0 ? absl::StrCat(p.bytes_after_interrupt) : std::string());
  // Conversations (issue 13).
  const bool turn = p.conversation_id != 0;
  csv.Field(turn ? absl::StrCat(p.conversation_id) : std::string())
      .Field(turn ? absl::StrCat(p.turn) : std::string())
      .Field(turn && p.conversation_setup_ns > 0
                 ? Num(static_cast<double>(p.conversation_setup_ns) / 1e6)
                 : std::string())
      .Field(turn ? (p.reconnect ? "1" : "0") : std::string())
      .EndRow();
}

// One requests.jsonl line: the level, series and agent around the record in protobuf's JSON
// mapping (the record is a typed message; the line around it is not).
void AppendJsonLine(const v1::Session& session, const LevelData& level, const common::Record& r,
                    std::string* out) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string rec, scratch;
  if (!google::protobuf::util::MessageToJsonString(common::ToProto(r), &rec, opts).ok()) return;
  boost::system::error_code ec;
  boost::json::value record = boost::json::parse(rec, ec);
  if (ec) return;
  boost::json::object line;
  if (level.rate > 0) {
    line["level"] = level.rate;
  } else {
    line["level"] = level.concurrency;
  }
  line["series"] = common::JsonText(level.series);
  line["agent"] = common::JsonText(AgentName(session, r.agent, &scratch));
  line["record"] = std::move(record);
  out->append(boost::json::serialize(line));
  out->push_back('\n');
}

}  // namespace

std::string RequestsCsv(const v1::Session& session, const std::vector<LevelData>& levels) {
  std::string out = RequestsCsvHeader();
  for (const LevelData& level : levels) {
    for (const common::Record& r : level.records) AppendRequestRow(session, level, r, &out);
  }
  return out;
}

absl::Status WriteSessionFiles(const std::string& dir, const v1::Session& session,
                               const std::vector<LevelData>& levels) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  auto json = SessionJson(session);
  if (!json.ok())
    return absl::InternalError(absl::StrCat("session.json: ", json.status().message()));
  if (auto st = WriteAtomically(fs::path(dir) / "summary.csv", SummaryCsv(session)); !st.ok()) {
    return st;
  }
  if (auto st =
          WriteRowsAtomically(fs::path(dir) / "requests.csv", RequestsCsvHeader(), levels,
                              [&](const LevelData& level, const common::Record& r,
                                  std::string* out) { AppendRequestRow(session, level, r, out); });
      !st.ok()) {
    return st;
  }
  if (session.plan().output().jsonl()) {
    auto row = [&](const LevelData& level, const common::Record& r, std::string* out) {
      AppendJsonLine(session, level, r, out);
    };
    if (auto st = WriteRowsAtomically(fs::path(dir) / "requests.jsonl", "", levels, row);
        !st.ok()) {
      return st;
    }
  }
  if (const std::string audio = AudioQualityCsv(session); !audio.empty()) {
    if (auto st = WriteAtomically(fs::path(dir) / "audio_quality.csv", audio); !st.ok()) return st;
  }
  return WriteAtomically(fs::path(dir) / "session.json", *json);
}

absl::StatusOr<std::string> ProtoJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  if (auto st = google::protobuf::util::MessageToJsonString(message, &json, opts); !st.ok()) {
    return absl::InternalError(st.message().as_string());
  }
  // add_whitespace ends the text without a newline; a file or a pipe reads better with one.
  if (json.empty() || json.back() != '\n') json += '\n';
  return json;
}

absl::StatusOr<std::string> SessionJson(const v1::Session& session) {
  if (session.schema_version() == kSessionSchemaVersion) return ProtoJson(session);
  v1::Session stamped = session;
  stamped.set_schema_version(kSessionSchemaVersion);
  return ProtoJson(stamped);
}

std::string ExitCodeName(int exit_code) {
  switch (exit_code) {
    case 0:
      return "ok";
    case 1:
      return "usage_error";
    case 2:
      return "run_failed";
    case 3:
      return "slo_failed";
    case 4:
      return "regression";
    case 5:
      return "not_evaluated";
    default:
      return absl::StrCat("exit_", exit_code);
  }
}

absl::StatusOr<std::string> SessionOutcomeJson(v1::SessionOutcome outcome) {
  outcome.set_schema_version(kSessionSchemaVersion);
  outcome.set_result(ExitCodeName(outcome.exit_code()));
  if (outcome.has_session()) outcome.mutable_session()->set_schema_version(kSessionSchemaVersion);
  return ProtoJson(outcome);
}

namespace {

// Endpoint paths of the dialects (and their common spellings): a --url ending in one of them is
// a full endpoint URL, not the base URL the dialect appends its path to.
constexpr absl::string_view kEndpointSuffixes[] = {
    "/v1/audio/speech", "/audio/speech", "/audio/ws",       "/synthesize",     "/tts/synthesize",
    "/tts/stream",      "/api/tts",      "/text-to-speech", "/v1/audio/voices"};

std::string BaseUrlOf(const common::Url& url, absl::string_view without_suffix) {
  return absl::StrCat(url.scheme, "://", url.host, ":", url.port, without_suffix);
}

}  // namespace

std::string ErrorHint(const v1::ErrorSummary& error, const v1::Plan& plan) {
  const v1::Target& target = plan.target();
  auto url = common::ParseUrl(target.url());
  const std::string detail = absl::AsciiStrToLower(error.first_detail());
  const absl::string_view kind = error.kind();
  const int status = error.first_http_status();
  if (kind == "grpc_status") {
    // api: riva. The status name leads error_detail ("UNAUTHENTICATED (16): ...").
    if (absl::StartsWith(detail, "unauthenticated") ||
        absl::StartsWith(detail, "permission_denied")) {
      return target.auth_token_env().empty() && target.auth_token_file().empty()
                 ? "the server wants credentials: --auth-token-env NAME (sent as authorization: "
                   "Bearer) and, for NVIDIA's hosted endpoints, --function-id-env NAME"
                 : "the server refused the API key: check its value (sent as authorization: "
                   "Bearer)";
    }
    if (absl::StartsWith(detail, "not_found") || absl::StartsWith(detail, "invalid_argument")) {
      return "check --voice, --language and --sample-rate against the server's models (`ttsbench "
             "discover --url grpc://HOST:PORT` lists its voices), and the function id";
    }
    return "";
  }
  if (kind == "tls") {
    if (absl::StrContains(detail, "certificate verify failed")) {
      return "the server's certificate is not trusted here: give its CA with --ca-file FILE, or "
             "skip verification with --insecure (test servers only)";
    }
    if (absl::StrContains(detail, "wrong version number") ||
        absl::StrContains(detail, "packet length too long")) {
      return "the server answered TLS with plain bytes: it does not speak TLS on this port; use "
             "http:// instead of https://";
    }
    return "";
  }
  const bool plain_http = url.ok() && !url->tls();
  if (plain_http && (absl::StrContains(detail, "tls bytes") ||
                     (kind == "read" && absl::StrContains(detail, "without answering")) ||
                     (status == 400 && absl::StrContains(detail, "https")))) {
    return absl::StrCat(
        absl::StrContains(detail, "tls bytes") ? "the port speaks TLS" : "if the port speaks TLS",
        ": use https:// (--url https://", url->host, ":", url->port, url->base_path, ")");
  }
  // 501 Not Implemented: a web server that is no TTS API at all (python -m http.server answers
  // POST so); 404/405: a path or method this server does not serve.
  if (status == 404 || status == 405 || status == 501) {
    if (!url.ok()) {
      return "the server has no such endpoint: `ttsbench discover --url BASE` finds its TTS "
             "endpoints and the command to benchmark them";
    }
    for (const absl::string_view suffix : kEndpointSuffixes) {
      if (!absl::EndsWith(url->base_path, suffix)) continue;
      const std::string base = BaseUrlOf(
          *url, absl::string_view(url->base_path).substr(0, url->base_path.size() - suffix.size()));
      return absl::StrCat("--url ", target.url(),
                          " looks like a full endpoint URL; --url takes the base URL (", base,
                          ") and the API's path (", suffix, ") is added: `ttsbench discover --url ",
                          base, "`");
    }
    return absl::StrCat("the server has no such endpoint: `ttsbench discover --url ",
                        BaseUrlOf(*url, ""),
                        "` finds its TTS endpoints and the command to benchmark them");
  }
  if (status == 401 || status == 403) {
    const bool sent = !target.auth_token_env().empty() || !target.auth_token_file().empty();
    return absl::StrCat(
        sent ? "the server refused the token: check its value and the header that carries it"
             : "the server wants credentials and none were sent",
        " (--auth-token-env VAR or --auth-token-file FILE; --auth-header NAME, e.g. X-API-Key; "
        "--auth-scheme)");
  }
  if ((kind == "http_5xx" || kind == "http_4xx") && absl::StrContains(detail, "voice")) {
    return absl::StrCat("the server's error mentions the voice: check --voice (now '",
                        target.voice(), "'); `ttsbench discover --url ",
                        url.ok() ? BaseUrlOf(*url, "") : "BASE", "` lists the server's voices");
  }
  if (kind == "connect") return "is the server up, at this host and port?";
  if (kind == "timeout") {
    return "no complete answer within --timeout: raise it, or lower the load";
  }
  return "";
}

std::string ErrorBreakdown(const v1::Session& session) {
  // Counts summed over the levels; a kind's detail is that of the first level that has one.
  std::vector<v1::ErrorSummary> kinds;
  uint64_t attempted = 0;
  for (const v1::LevelStats& l : session.levels()) {
    attempted += l.attempted();
    for (const v1::ErrorSummary& e : l.error_summary()) {
      auto it = std::find_if(kinds.begin(), kinds.end(),
                             [&](const v1::ErrorSummary& k) { return k.kind() == e.kind(); });
      if (it == kinds.end()) {
        kinds.push_back(e);
        continue;
      }
      it->set_count(it->count() + e.count());
      if (it->first_detail().empty()) {
        it->set_first_detail(e.first_detail());
        it->set_first_http_status(e.first_http_status());
      }
    }
  }
  if (kinds.empty()) return "";
  std::stable_sort(
      kinds.begin(), kinds.end(),
      [](const v1::ErrorSummary& a, const v1::ErrorSummary& b) { return a.count() > b.count(); });
  std::string out = "Errors by kind (count, share of attempts, first detail):\n";
  for (const v1::ErrorSummary& e : kinds) {
    const double pct = attempted > 0 ? 100.0 * e.count() / static_cast<double>(attempted) : 0;
    absl::StrAppend(&out, absl::StrFormat("  %-13s %7d %6.1f%%  %s\n", e.kind(), e.count(), pct,
                                          e.first_detail().empty() ? "-" : e.first_detail()));
    const std::string hint = ErrorHint(e, session.plan());
    if (!hint.empty()) absl::StrAppend(&out, "    hint: ", hint, "\n");
  }
  return out;
}

std::string SloFailureLine(const v1::Session& session) {
  const v1::SloResult* first = nullptr;
  const v1::LevelStats* where = nullptr;
  int failed = 0;
  for (const v1::LevelStats& l : session.levels()) {
    for (const v1::SloResult& r : l.slo()) {
      if (r.pass()) continue;
      if (failed++ == 0) {
        first = &r;
        where = &l;
      }
    }
  }
  if (first == nullptr) return "";
  std::string line = absl::StrFormat("SLO failed: %s at %s %s: %s %.4g%s", first->slo(),
                                     OpenLoop(session) ? "rate" : "concurrency",
                                     LevelLabel(session, *where), first->metric(), first->value(),
                                     first->metric() == "success_rate" ? "%" : "");
  if (absl::EndsWith(first->slo(), common::kDefaultSloSuffix)) {
    absl::StrAppend(&line, where->successful() == 0 ? " (every request failed" : " (",
                    where->successful() == 0 ? "; " : "",
                    "the default floor when no success_rate SLO is set; --slo success_rate=X% "
                    "sets another, success_rate=0% turns it off)");
  }
  if (failed > 1) absl::StrAppend(&line, "; ", failed - 1, " more failed");
  return line;
}

// Paced text and barge-in (issue 13): first-token-to-speech (FTTS), last-token-to-last-audio
// (LTLA), the sender's lateness and time-to-silence per level; nothing when no level had them.
std::string PacedTable(const v1::Session& session) {
  bool any = false;
  for (const v1::LevelStats& l : session.levels()) {
    any |= l.first_token_to_speech_ms().count() > 0 || l.interrupted() > 0;
  }
  if (!any) return "";
  std::string out = absl::StrCat(
      "Paced text (ms)\n",
      absl::StrFormat("%-5s%-23s%-23s%-10s%s\n", OpenLoop(session) ? "Rate" : "Conc",
                      "FTTS p50/p95/p99", "LTLA p50/p95/p99", "Late p99", "Silence p50/p99 (n)"));
  auto three = [](const v1::Distribution& d) {
    return d.count() > 0 ? absl::StrFormat("%.0f/%.0f/%.0f", d.p50(), d.p95(), d.p99())
                         : std::string("-");
  };
  for (const v1::LevelStats& l : session.levels()) {
    const v1::Distribution& s = l.time_to_silence_ms();
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "%-4s %-23s%-23s%-10s%s\n", LevelLabel(session, l), three(l.first_token_to_speech_ms()),
            three(l.last_token_to_last_audio_ms()),
            l.pacing_late_ms().count() > 0 ? absl::StrFormat("%.1f", l.pacing_late_ms().p99())
                                           : std::string("-"),
            s.count() > 0 ? absl::StrFormat("%.0f/%.0f (%u)", s.p50(), s.p99(), l.interrupted())
                          : std::string("-")));
  }
  return out;
}

// Conversations (issue 13): per level the conversations and their turns, the connection set-up
// (counted once per conversation, plus reconnects; outside every turn's TTFA), reconnects and
// conversations with a failed turn; nothing when no level had them.
std::string ConversationTable(const v1::Session& session) {
  bool any = false;
  for (const v1::LevelStats& l : session.levels()) any |= l.conversation_turns() > 0;
  if (!any) return "";
  std::string out = absl::StrCat(
      "Conversations\n",
      absl::StrFormat("%-5s%-8s%-8s%-24s%-12s%s\n", OpenLoop(session) ? "Rate" : "Conc", "Conv",
                      "Turns", "Setup p50/p95/p99 ms", "Reconnects", "Failed"));
  for (const v1::LevelStats& l : session.levels()) {
    const v1::Distribution& d = l.conversation_setup_ms();
    absl::StrAppend(&out, absl::StrFormat("%-4s %-8u%-8u%-24s%-12u%u\n", LevelLabel(session, l),
                                          l.conversations(), l.conversation_turns(),
                                          d.count() > 0 ? absl::StrFormat("%.1f/%.1f/%.1f", d.p50(),
                                                                          d.p95(), d.p99())
                                                        : std::string("-"),
                                          l.reconnects(), l.conversations_failed()));
  }
  return out;
}

std::string ConsoleTable(const std::string& title, const v1::Session& session) {
  const std::string rule(80, '=');
  // Audio checks on: TTFA-audible p50/p95 (ms) after Success.
  const bool audible = session.plan().audio_checks().enabled();
  std::string out =
      absl::StrCat("\n", title, "\n", rule, "\n",
                   absl::StrFormat("%-5s%-9s%-9s%-9s%-9s%-11s%s%s\n",
                                   OpenLoop(session) ? "Rate" : "Conc", "ASPS", "RTF", "RPS", "CPS",
                                   "TTFA p95", "Success", audible ? "   Audible p50/p95" : ""),
                   std::string(80, '-'), "\n");
  const v1::LevelStats* best_asps = nullptr;
  const v1::LevelStats* best_rtf = nullptr;
  const v1::LevelStats* best_rps = nullptr;
  const v1::LevelStats* best_ttfa = nullptr;
  std::string series = session.levels_size() > 0 ? session.levels(0).series() : "";
  for (const v1::LevelStats& l : session.levels()) {
    // Multi-series sessions (voices, comprehensive): a sub-heading whenever the series changes.
    if (!l.series().empty() && (&l == &session.levels(0) || l.series() != series)) {
      absl::StrAppend(&out, "[", l.series(), "]\n");
    }
    series = l.series();
    // RTF and TTFA of no success are no numbers: "-" rather than a perfect-looking 0.
    const bool ok = l.successful() > 0;
    absl::StrAppend(
        &out,
        absl::StrFormat("%-4s %-9.3f%-9s%-9.1f%-9.0f%-11s%-8.1f%%", LevelLabel(session, l),
                        l.asps(), ok ? absl::StrFormat("%.3f", l.rtf().mean()) : "-", l.rps(),
                        l.cps(), ok ? absl::StrFormat("%.1f", l.ttfa_ms().p95()) : "-",
                        l.success_rate_pct()),
        !audible ? ""
        : l.ttfa_audible_ms().count() > 0
            ? absl::StrFormat(" %.1f/%.1f", l.ttfa_audible_ms().p50(), l.ttfa_audible_ms().p95())
            : " -",
        "\n");
    if (l.successful() == 0) continue;
    // A capacity search's probes past the capacity failed their SLOs on purpose: the best
    // figures are among the probes that met them.
    if (session.has_capacity() && !std::all_of(l.slo().begin(), l.slo().end(),
                                               [](const v1::SloResult& r) { return r.pass(); })) {
      continue;
    }
    if (!best_asps || l.asps() >= best_asps->asps()) best_asps = &l;
    if (!best_rtf || l.rtf().mean() <= best_rtf->rtf().mean()) best_rtf = &l;
    if (!best_rps || l.rps() >= best_rps->rps()) best_rps = &l;
    if (!best_ttfa || l.ttfa_ms().p95() <= best_ttfa->ttfa_ms().p95()) best_ttfa = &l;
  }
  absl::StrAppend(&out, rule, "\n");
  if (best_asps != nullptr) {
    absl::StrAppend(
        &out, "Best Performance:\n",
        absl::StrFormat("  Highest ASPS: %.3f at %s\n", best_asps->asps(),
                        Where(session, *best_asps)),
        absl::StrFormat("  Lowest RTF: %.3f at %s\n", best_rtf->rtf().mean(),
                        Where(session, *best_rtf)),
        absl::StrFormat("  Highest RPS: %.1f at %s\n", best_rps->rps(), Where(session, *best_rps)),
        absl::StrFormat("  Lowest TTFA p95: %.1fms at %s\n", best_ttfa->ttfa_ms().p95(),
                        Where(session, *best_ttfa)));
  } else {
    absl::StrAppend(&out, "No successful requests.\n");
  }
  absl::StrAppend(&out, PacedTable(session));
  absl::StrAppend(&out, ConversationTable(session));
  absl::StrAppend(&out, ErrorBreakdown(session), AudioQualityConsole(session));
  absl::StrAppend(&out, TelemetryCostConsole(session));  // issue 14
  if (session.has_capacity()) {
    absl::StrAppend(&out, CapacitySummary(session.capacity(), session.plan().capacity()));
  }
  bool any_slo = false;
  for (const v1::LevelStats& l : session.levels()) {
    for (const v1::SloResult& r : l.slo()) {
      if (!any_slo) absl::StrAppend(&out, "SLOs:\n");
      any_slo = true;
      absl::StrAppend(&out, absl::StrFormat("  %s %-22s at %s: %s\n", r.pass() ? "PASS" : "FAIL",
                                            r.slo(), Where(session, l), SloValue(r)));
    }
  }
  absl::StrAppend(&out, AsrConsoleLines(session));  // "" without an ASR check
  for (const std::string& w : session.warnings()) absl::StrAppend(&out, "warning: ", w, "\n");
  return out;
}

}  // namespace ttsbench::coordinator
