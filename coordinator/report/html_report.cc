#include "coordinator/report/html_report.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/cli/plan_file.h"
#include "coordinator/report/asr_report.h"
#include "coordinator/report/audio_quality.h"
#include "coordinator/report/report.h"
#include "coordinator/report/telemetry_report.h"
#include "coordinator/sessions/sessions.h"

namespace ttsbench::coordinator {
namespace {

namespace fs = std::filesystem;

// Kept short and legible in any browser; no fonts or images fetched.
constexpr char kCss[] = R"css(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1400px;padding:0 16px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}
.muted{color:#666}.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;
font-weight:600}.ok{background:#dff3e3;color:#17612b}.bad{background:#fbe1e1;color:#9b1c1c}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f4f5f7;position:sticky;top:0}td.l,th.l{text-align:left}
tr:nth-child(even) td{background:#fafafa}
pre{background:#f6f8fa;padding:10px;border-radius:6px;overflow-x:auto;font-size:12px}
figure{margin:12px 0 24px}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:13px}dl{display:grid;grid-template-columns:max-content auto;
gap:2px 14px;margin:0}dt{color:#666}dd{margin:0}
)css";

std::string Fmt(double v, int decimals) { return absl::StrFormat("%.*f", decimals, v); }

// Header names whose values are credentials in every API we know of.
bool LooksSecret(const std::string& header_name) {
  const std::string n = absl::AsciiStrToLower(header_name);
  for (const char* word : {"auth", "token", "key", "secret", "password", "cookie", "session"}) {
    if (absl::StrContains(n, word)) return true;
  }
  return false;
}

std::string PlanYaml(const v1::Plan& plan) {
  // The plan names secrets (env var names, files) and never holds them; headers and URLs are
  // redacted all the same in case a user put a credential where a name was expected.
  v1::Plan copy = plan;
  copy.mutable_target()->set_url(RedactUrl(copy.target().url()));
  if (copy.has_telemetry()) {
    for (std::string& u : *copy.mutable_telemetry()->mutable_scrape()) u = RedactUrl(u);
  }
  for (v1::Header& h : *copy.mutable_target()->mutable_headers()) {
    if (LooksSecret(h.name())) h.set_value("<redacted>");
  }
  // The emitter of `--print-plan`, so the plan shown can be saved and run again as it is.
  return PlanToYaml(copy);
}

std::string Cell(const std::string& text, bool left = false) {
  return absl::StrCat(left ? "<td class=\"l\">" : "<td>", HtmlEscape(text), "</td>");
}

std::string HeaderRow(const std::vector<std::string>& names,
                      const std::vector<std::string>& more = {}) {
  std::string out = "<tr>";
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "<th class=\"l\">" : "<th>", HtmlEscape(names[i]), "</th>");
  }
  for (const std::string& name : more) absl::StrAppend(&out, "<th>", HtmlEscape(name), "</th>");
  return out + "</tr>\n";
}

// Paced text and barge-in (issue 13): first-token-to-speech, last-token-to-last-audio, the
// pieces' lateness and time-to-silence per level; "" when no level was paced or interrupted.
std::string PacedHtml(const v1::Session& s) {
  bool any = false;
  for (const v1::LevelStats& l : s.levels()) {
    any |= l.first_token_to_speech_ms().count() > 0 || l.interrupted() > 0;
  }
  if (!any) return "";
  std::string out = absl::StrCat(
      "<h2>Paced text and barge-in</h2>\n<p>Text fed over the connection like an LLM's tokens "
      "(plan <code>pacing</code>). First-token-to-speech: first text piece sent &rarr; first "
      "audio; last-token-to-last-audio: end of input sent &rarr; last audio (not for interrupted "
      "requests); late: the worst piece's lateness against its schedule; time-to-silence: "
      "interrupt sent &rarr; last audio byte.</p>\n<div class=\"scroll\"><table>\n",
      HeaderRow({"Level", "FTTS p50 ms", "FTTS p95 ms", "FTTS p99 ms", "LTLA p50 ms", "LTLA p95 ms",
                 "LTLA p99 ms", "Late p99 ms", "Interrupted", "Time-to-silence p50 ms", "p95 ms",
                 "p99 ms", "Bytes after interrupt p95"}));
  auto three = [](const v1::Distribution& d) {
    return d.count() > 0
               ? absl::StrCat(Cell(Fmt(d.p50(), 1)), Cell(Fmt(d.p95(), 1)), Cell(Fmt(d.p99(), 1)))
               : absl::StrCat(Cell("-"), Cell("-"), Cell("-"));
  };
  for (const v1::LevelStats& l : s.levels()) {
    absl::StrAppend(
        &out, "<tr>", Cell(LevelLabel(l), true), three(l.first_token_to_speech_ms()),
        three(l.last_token_to_last_audio_ms()),
        Cell(l.pacing_late_ms().count() > 0 ? Fmt(l.pacing_late_ms().p99(), 1) : "-"),
        Cell(absl::StrCat(l.interrupted())), three(l.time_to_silence_ms()),
        Cell(l.bytes_after_interrupt().count() > 0 ? Fmt(l.bytes_after_interrupt().p95(), 0) : "-"),
        "</tr>\n");
  }
  return out + "</table></div>\n";
}

// Conversations (issue 13): conversations begun, turns, connection set-up (once per
// conversation, and at each reconnect) and reconnects per level; "" without conversations.
std::string ConversationHtml(const v1::Session& s) {
  bool any = false;
  for (const v1::LevelStats& l : s.levels()) any |= l.conversation_turns() > 0;
  if (!any) return "";
  std::string out = absl::StrCat(
      "<h2>Conversations</h2>\n<p>Each virtual user keeps one connection for a conversation's "
      "turns (plan <code>conversation</code>). Connection set-up is timed before the turn's "
      "start, so it is in no turn's TTFA or first-token-to-speech; it is counted once per "
      "conversation, and again at each reconnect.</p>\n<div class=\"scroll\"><table>\n",
      HeaderRow({"Level", "Conversations", "Turns", "Set-up p50 ms", "Set-up p95 ms",
                 "Set-up p99 ms", "Reconnects", "Conversations failed"}));
  for (const v1::LevelStats& l : s.levels()) {
    const v1::Distribution& d = l.conversation_setup_ms();
    absl::StrAppend(&out, "<tr>", Cell(LevelLabel(l), true), Cell(absl::StrCat(l.conversations())),
                    Cell(absl::StrCat(l.conversation_turns())),
                    d.count() > 0 ? absl::StrCat(Cell(Fmt(d.p50(), 2)), Cell(Fmt(d.p95(), 2)),
                                                 Cell(Fmt(d.p99(), 2)))
                                  : absl::StrCat(Cell("-"), Cell("-"), Cell("-")),
                    Cell(absl::StrCat(l.reconnects())),
                    Cell(absl::StrCat(l.conversations_failed())), "</tr>\n");
  }
  return out + "</table></div>\n";
}

std::string ErrorsText(const v1::LevelStats& l) {
  std::map<std::string, uint32_t> sorted(l.errors().begin(), l.errors().end());
  std::vector<std::string> parts;
  for (const auto& [kind, n] : sorted) parts.push_back(absl::StrCat(kind, ":", n));
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

std::string LevelsTable(const v1::Session& s) {
  std::vector<std::string> audible;
  for (const v1::LevelStats& l : s.levels()) {
    if (l.ttfa_audible_ms().count() > 0) {
      audible = {"TTFA-audible p50 ms", "TTFA-audible p95 ms", "TTFA-audible p99 ms",
                 "Leading silence p50 ms"};
    }
  }
  std::string out = "<div class=\"scroll\"><table>\n";
  absl::StrAppend(&out, HeaderRow({"Level",
                                   "ASPS",
                                   "RTF mean",
                                   "RTF median",
                                   "RTF p95",
                                   "RTF p99",
                                   "RPS",
                                   "Attempted RPS",
                                   "CPS",
                                   "TTFA p50 ms",
                                   "TTFA p95 ms",
                                   "TTFA p99 ms",
                                   "TTFA mean ms",
                                   "Latency p50 ms",
                                   "Latency p95 ms",
                                   "Latency p99 ms",
                                   "Latency mean ms",
                                   "Success %",
                                   "Errors",
                                   "Attempted",
                                   "Successful",
                                   "Warm-up excl.",
                                   "T_wall s",
                                   "Audio s",
                                   "Characters",
                                   "New conn.",
                                   "Start skew ms"},
                                  // Audio checks (issue 14): TTFA-audible beside TTFA.
                                  audible));
  for (const v1::LevelStats& l : s.levels()) {
    const v1::Distribution& a = l.ttfa_audible_ms();
    const std::string audible_cells =
        audible.empty() ? std::string()
        : a.count() > 0
            ? absl::StrCat(Cell(Fmt(a.p50(), 1)), Cell(Fmt(a.p95(), 1)), Cell(Fmt(a.p99(), 1)),
                           Cell(Fmt(l.leading_silence_ms().p50(), 1)))
            : absl::StrCat(Cell("-"), Cell("-"), Cell("-"), Cell("-"));
    absl::StrAppend(&out, "<tr>", Cell(LevelLabel(l), true), Cell(Fmt(l.asps(), 3)),
                    Cell(Fmt(l.rtf().mean(), 4)), Cell(Fmt(l.rtf_median(), 4)),
                    Cell(Fmt(l.rtf().p95(), 4)), Cell(Fmt(l.rtf().p99(), 4)), Cell(Fmt(l.rps(), 2)),
                    Cell(Fmt(l.attempted_rps(), 2)), Cell(Fmt(l.cps(), 0)),
                    Cell(Fmt(l.ttfa_ms().p50(), 1)), Cell(Fmt(l.ttfa_ms().p95(), 1)),
                    Cell(Fmt(l.ttfa_ms().p99(), 1)), Cell(Fmt(l.ttfa_ms().mean(), 1)),
                    Cell(Fmt(l.latency_ms().p50(), 1)), Cell(Fmt(l.latency_ms().p95(), 1)),
                    Cell(Fmt(l.latency_ms().p99(), 1)), Cell(Fmt(l.latency_ms().mean(), 1)),
                    Cell(Fmt(l.success_rate_pct(), 2)), Cell(ErrorsText(l), true),
                    Cell(absl::StrCat(l.attempted())), Cell(absl::StrCat(l.successful())),
                    Cell(absl::StrCat(l.warmup_excluded())), Cell(Fmt(l.t_wall_s(), 3)),
                    Cell(Fmt(l.audio_seconds(), 2)), Cell(absl::StrCat(l.characters())),
                    Cell(absl::StrCat(l.new_connections())), Cell(Fmt(l.start_skew_ms(), 2)),
                    audible_cells, "</tr>\n");
  }
  return out + "</table></div>\n";
}

std::string DetailsTable(const v1::Session& s) {
  std::string out = "<div class=\"scroll\"><table>\n";
  absl::StrAppend(
      &out, HeaderRow({"Level", "Gap p50 ms", "Gap p95 ms", "Gap p99 ms", "Gap max ms",
                       "Underrun p95 ms", "Continuity OK %", "Goodput rps", "Sched. lag p99 ms",
                       "Lat. from intended p99 ms", "Offered rate", "Achieved rate", "Dropped",
                       "Late", "Connect p95 ms", "Max agent CPU %", "Degraded"}));
  for (const v1::LevelStats& l : s.levels()) {
    // Stream figures of a level that streamed nothing are no numbers.
    const bool streamed = l.underrun_ms().count() > 0;
    auto stream_cell = [&](double v, int digits) { return Cell(streamed ? Fmt(v, digits) : "-"); };
    absl::StrAppend(
        &out, "<tr>", Cell(LevelLabel(l), true), stream_cell(l.gap_ms().p50(), 1),
        stream_cell(l.gap_ms().p95(), 1), stream_cell(l.gap_ms().p99(), 1),
        stream_cell(l.gap_ms().max(), 1), stream_cell(l.underrun_ms().p95(), 1),
        stream_cell(l.continuity_ok_pct(), 2), Cell(Fmt(l.goodput_rps(), 2)),
        Cell(Fmt(l.sched_lag_ms().p99(), 2)), Cell(Fmt(l.latency_from_intended_ms().p99(), 1)),
        Cell(l.rate() > 0 ? Fmt(l.rate(), 2) : "-"),
        Cell(l.rate() > 0 ? Fmt(l.achieved_rate(), 2) : "-"), Cell(absl::StrCat(l.dropped())),
        Cell(absl::StrCat(l.late())), Cell(Fmt(l.connect_ms().p95(), 2)),
        Cell(Fmt(l.max_agent_cpu_pct(), 0)), Cell(l.degraded() ? "yes" : "no"), "</tr>\n");
  }
  return out + "</table></div>\n";
}

std::string SloSection(const v1::Session& s) {
  std::string rows;
  int failed = 0;
  for (const v1::LevelStats& l : s.levels()) {
    for (const v1::SloResult& r : l.slo()) {
      if (!r.pass()) ++failed;
      absl::StrAppend(&rows, "<tr>", Cell(LevelLabel(l), true), Cell(r.slo(), true),
                      Cell(r.metric(), true), Cell(absl::StrFormat("%g", r.threshold())),
                      Cell(absl::StrFormat("%.4g", r.value())),
                      r.pass() ? "<td><span class=\"badge ok\">pass</span></td>"
                               : "<td><span class=\"badge bad\">FAIL</span></td>",
                      "</tr>\n");
    }
  }
  if (rows.empty()) {
    return s.plan().slo_size() > 0
               ? "<p class=\"muted\">SLOs were set but no level has a verdict.</p>\n"
               : "<p class=\"muted\">No SLO thresholds in the plan.</p>\n";
  }
  return absl::StrCat("<p>Overall: ",
                      failed == 0
                          ? "<span class=\"badge ok\">all met</span>"
                          : absl::StrCat("<span class=\"badge bad\">", failed, " failed</span>"),
                      "</p>\n<div class=\"scroll\"><table>\n",
                      HeaderRow({"Level", "SLO", "Metric", "Threshold", "Value", "Verdict"}), rows,
                      "</table></div>\n");
}

std::string Caption(const std::string& file) {
  static const std::map<std::string, std::string> kCaptions = {
      {"throughput.png", "ASPS (solid, left axis) and RPS (dashed, right axis) per level."},
      {"latency.png", "Latency and time to first audio: p50, p95 and p99 per level."},
      {"ttfa_cdf.png",
       "Distribution of time to first audio per level, from every request; with audio checks, "
       "TTFA-audible (the first sound heard) dashed in the same colour."},
      {"ftts_cdf.png", "Distribution of first-token-to-speech per level (paced text)."},
      {"conversation_turns.png",
       "Conversations: first-token-to-speech (TTFA without paced text) p50 and p95 by turn, per "
       "level; connection set-up is in none of them."},
      {"paced_timeline.png",
       "One paced request: characters of text sent and seconds of audio received against time, "
       "the end of input and the interrupt marked."},
      {"rtf.png", "Real-time factor per level: box p25-p75, whiskers p5-p95, median, p99, mean."},
      {"timeline.png",
       "Requests in flight and completions per second over the session; dotted lines mark the "
       "start of each level."},
      {"asps_by_series.png", "ASPS per level, one bar per series."},
      {"audio_quality.png",
       "Audio against each text's answer at the lowest level: duration ratio and RMS-envelope "
       "correlation per level (median solid, worst dashed), bounds dotted."},
      {"telemetry.png", "Scraped server telemetry over the session, one panel per series."},
  };
  auto it = kCaptions.find(file);
  return it == kCaptions.end() ? file : absl::StrCat(file, ": ", it->second);
}

absl::StatusOr<std::string> ReadPng(const std::string& dir, const std::string& path) {
  fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec) && p.is_relative()) p = fs::path(dir) / p;
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("plot ", path, " not found"));
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string bytes = buf.str();
  // Only PNGs: an SVG could carry scripts or external references into the page.
  if (!absl::StartsWith(bytes, "\x89PNG\r\n\x1a\n")) {
    return absl::InvalidArgumentError(absl::StrCat("plot ", path, " is not a PNG"));
  }
  return bytes;
}

}  // namespace

std::string HtmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

absl::StatusOr<std::string> RenderHtmlReport(const std::string& dir, const v1::Session& s,
                                             const std::vector<std::string>& pngs) {
  const std::string name = s.name().empty() ? fs::path(dir).filename().string() : s.name();
  const bool good = s.status() == "completed";
  std::string out =
      absl::StrCat("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
                   "<title>ttsbench: ", HtmlEscape(name), "</title>\n<style>", kCss,
                   "</style>\n</head>\n<body>\n", "<h1>ttsbench session ", HtmlEscape(name),
                   " <span class=\"badge ", good ? "ok" : "bad", "\">",
                   HtmlEscape(s.status().empty() ? "unknown" : s.status()), "</span></h1>\n");
  if (!s.plan().description().empty()) {
    absl::StrAppend(&out, "<p>", HtmlEscape(s.plan().description()), "</p>\n");
  }
  const std::string mode = s.mode().empty() ? s.plan().mode() : s.mode();
  absl::StrAppend(&out, "<p class=\"muted\">", HtmlEscape(mode), " &middot; target ",
                  HtmlEscape(RedactUrl(s.plan().target().url())), " &middot; ", s.levels_size(),
                  " level(s)</p>\n");

  // Headline: the best-ASPS level, the figure users size deployments by.
  const v1::LevelStats* best = nullptr;
  for (const v1::LevelStats& l : s.levels()) {
    if (l.successful() > 0 && (best == nullptr || l.asps() > best->asps())) best = &l;
  }
  if (best != nullptr) {
    absl::StrAppend(&out, "<p>Best ASPS <b>", Fmt(best->asps(), 3), "</b> at ",
                    HtmlEscape(LevelLabel(*best)), " (RTF mean ", Fmt(best->rtf().mean(), 4),
                    ", TTFA p95 ", Fmt(best->ttfa_ms().p95(), 1), " ms, success ",
                    Fmt(best->success_rate_pct(), 2), "%)</p>\n");
  }

  absl::StrAppend(&out, "<h2>Environment</h2>\n<dl>\n");
  const std::pair<const char*, std::string> env[] = {
      {"ttsbench version", s.version()}, {"started", s.started_at()},
      {"ended", s.ended_at()},           {"percentiles", s.percentile_method()},
      {"timeline", s.timeline()},        {"agents", absl::StrCat(s.agents_size())},
  };
  for (const auto& [k, v] : env) {
    absl::StrAppend(&out, "<dt>", k, "</dt><dd>", HtmlEscape(v), "</dd>\n");
  }
  absl::StrAppend(&out, "</dl>\n");
  if (s.agents_size() > 0) {
    absl::StrAppend(&out, "<div class=\"scroll\"><table>\n",
                    HeaderRow({"Agent", "Host", "Cores", "Version", "Clock offset ms",
                               "Uncertainty ms", "Probes"}));
    for (const v1::AgentInfo& a : s.agents()) {
      absl::StrAppend(&out, "<tr>", Cell(a.id(), true), Cell(a.host(), true),
                      Cell(absl::StrCat(a.cores())), Cell(a.version(), true),
                      Cell(Fmt(a.clock_offset_ms(), 3)), Cell(Fmt(a.clock_uncertainty_ms(), 3)),
                      Cell(absl::StrCat(a.clock_samples())), "</tr>\n");
    }
    absl::StrAppend(&out, "</table></div>\n");
  }

  absl::StrAppend(&out, "<h2>Levels</h2>\n", LevelsTable(s),
                  "<h2>Streaming and open-loop details</h2>\n", DetailsTable(s), PacedHtml(s),
                  ConversationHtml(s), TelemetryHtml(s), "<h2>SLO verdicts</h2>\n", SloSection(s),
                  AudioQualityHtml(s), AsrHtmlSection(s), "<h2>Warnings</h2>\n");
  if (s.warnings_size() == 0) {
    absl::StrAppend(&out, "<p class=\"muted\">None.</p>\n");
  } else {
    absl::StrAppend(&out, "<ul>\n");
    for (const std::string& w : s.warnings())
      absl::StrAppend(&out, "<li>", HtmlEscape(w), "</li>\n");
    absl::StrAppend(&out, "</ul>\n");
  }

  absl::StrAppend(&out, "<h2>Plots</h2>\n");
  if (pngs.empty()) absl::StrAppend(&out, "<p class=\"muted\">No plots.</p>\n");
  for (const std::string& png : pngs) {
    const std::string file = fs::path(png).filename().string();
    auto bytes = ReadPng(dir, png);
    if (!bytes.ok()) {
      absl::StrAppend(&out, "<p class=\"muted\">",
                      HtmlEscape(std::string(bytes.status().message())), "</p>\n");
      continue;
    }
    absl::StrAppend(&out, "<figure><img alt=\"", HtmlEscape(file),
                    "\" src=\"data:image/png;base64,", absl::Base64Escape(*bytes),
                    "\"><figcaption>", HtmlEscape(Caption(file)), "</figcaption></figure>\n");
  }

  absl::StrAppend(&out, "<h2>Plan as run</h2>\n<pre>", HtmlEscape(PlanYaml(s.plan())), "</pre>\n",
                  "<p class=\"muted\">Files in this folder: session.json, summary.csv, "
                  "requests.csv (one row per request).</p>\n</body>\n</html>\n");
  return out;
}

absl::Status WriteHtmlReport(const std::string& dir, const v1::Session& session,
                             const std::vector<std::string>& pngs) {
  auto html = RenderHtmlReport(dir, session, pngs);
  if (!html.ok()) return html.status();
  return WriteAtomically(fs::path(dir) / "report.html", *html);
}

}  // namespace ttsbench::coordinator
