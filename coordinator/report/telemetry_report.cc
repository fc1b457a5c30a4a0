#include "coordinator/report/telemetry_report.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/report/html_report.h"

namespace ttsbench::coordinator {
namespace {
constexpr double kNsPerS = 1e9;
}  // namespace

namespace {

std::string Num(double v) { return absl::StrFormat("%.6g", v); }

// Every (target, series) any level summarised, in first-seen order, with its display name.
struct SummaryColumn {
  std::string target, series, label;
};
std::vector<SummaryColumn> SummaryColumns(const v1::Session& session) {
  std::vector<SummaryColumn> cols;
  std::set<std::string> targets;
  for (const v1::LevelStats& l : session.levels()) {
    for (const v1::TelemetrySummary& t : l.telemetry()) targets.insert(t.target());
  }
  for (const v1::LevelStats& l : session.levels()) {
    for (const v1::TelemetrySummary& t : l.telemetry()) {
      if (std::any_of(cols.begin(), cols.end(), [&](const SummaryColumn& c) {
            return c.target == t.target() && c.series == t.series();
          })) {
        continue;
      }
      cols.push_back({t.target(), t.series(), t.name()});
    }
  }
  // The friendly name alone where it is unique; else with the series' labels, and the target
  // when there are several.
  std::map<std::string, int> uses;
  for (const SummaryColumn& c : cols) ++uses[c.label];
  for (SummaryColumn& c : cols) {
    if (uses[c.label] < 2) continue;
    if (const size_t brace = c.series.find('{'); brace != std::string::npos) {
      absl::StrAppend(&c.label, c.series.substr(brace));
    }
    if (targets.size() > 1) absl::StrAppend(&c.label, " @", c.target);
  }
  return cols;
}

const v1::TelemetrySummary* Find(const v1::LevelStats& l, const SummaryColumn& c) {
  for (const v1::TelemetrySummary& t : l.telemetry()) {
    if (t.target() == c.target && t.series() == c.series) return &t;
  }
  return nullptr;
}

std::string LevelName(const v1::LevelStats& l) {
  std::string name =
      l.rate() > 0 ? absl::StrFormat("rate %g", l.rate()) : absl::StrCat("conc ", l.concurrency());
  if (!l.series().empty()) name = absl::StrCat(l.series(), " ", name);
  return name;
}

}  // namespace

void TelemetryCostColumns(const v1::Session& session, const v1::LevelStats* level,
                          common::CsvWriter& csv) {
  const std::vector<SummaryColumn> cols = SummaryColumns(session);
  // A session without price, power or telemetry keeps summary.csv as it was.
  const bool energy = std::any_of(session.levels().begin(), session.levels().end(),
                                  [](const v1::LevelStats& l) { return l.energy_j() > 0; });
  if (cols.empty() && !energy && session.plan().cost().per_replica_hour_usd() <= 0) return;
  if (level == nullptr) {
    for (const char* h : {"Cost_per_Audio_Hour_USD", "Cost_per_M_Chars_USD", "Replica_Hours",
                          "Energy_J", "Audio_s_per_J"}) {
      csv.Field(h);
    }
    for (const SummaryColumn& c : cols) {
      for (const char* stat : {"mean", "p95", "max"}) {
        csv.Field(absl::StrCat(c.label, " ", stat));
      }
    }
    return;
  }
  const v1::LevelStats& l = *level;
  const bool priced = session.plan().cost().per_replica_hour_usd() > 0;
  csv.Field(priced && l.cost_per_audio_hour_usd() > 0 ? Num(l.cost_per_audio_hour_usd()) : "")
      .Field(priced && l.cost_per_million_chars_usd() > 0 ? Num(l.cost_per_million_chars_usd())
                                                          : "")
      .Field(priced ? Num(l.replica_hours()) : "")
      .Field(l.energy_j() > 0 ? Num(l.energy_j()) : "")
      .Field(l.audio_s_per_joule() > 0 ? Num(l.audio_s_per_joule()) : "");
  for (const SummaryColumn& c : cols) {
    const v1::TelemetrySummary* t = Find(l, c);
    csv.Field(t != nullptr ? Num(t->mean()) : "")
        .Field(t != nullptr ? Num(t->p95()) : "")
        .Field(t != nullptr ? Num(t->max()) : "");
  }
}

std::string TelemetryCostConsole(const v1::Session& session) {
  std::string out;
  const std::vector<SummaryColumn> cols = SummaryColumns(session);
  if (!cols.empty()) {
    absl::StrAppend(&out, "Telemetry (mean / p95 / max over each level):\n");
    for (const v1::LevelStats& l : session.levels()) {
      std::vector<std::string> parts;
      for (const SummaryColumn& c : cols) {
        const v1::TelemetrySummary* t = Find(l, c);
        if (t == nullptr) continue;
        parts.push_back(absl::StrFormat("%s %.4g/%.4g/%.4g%s%s", c.label, t->mean(), t->p95(),
                                        t->max(), t->unit().empty() ? "" : " ", t->unit()));
      }
      if (parts.empty()) {
        // Said, not skipped: a level shorter than the scrape interval can fall between scrapes.
        absl::StrAppend(
            &out, "  ", LevelName(l),
            absl::StrFormat(": no scrape fell inside the level (%.2f s)\n", l.t_wall_s()));
        continue;
      }
      absl::StrAppend(&out, "  ", LevelName(l), ": ", absl::StrJoin(parts, ", "), "\n");
    }
  }
  const double price = session.plan().cost().per_replica_hour_usd();
  const bool energy = std::any_of(session.levels().begin(), session.levels().end(),
                                  [](const v1::LevelStats& l) { return l.energy_j() > 0; });
  if (price <= 0 && !energy) return out;
  absl::StrAppend(&out, price > 0 ? absl::StrFormat("Cost ($%.2f per replica-hour x %d):\n", price,
                                                    ReplicasOf(session.plan()))
                                  : "Energy:\n");
  for (const v1::LevelStats& l : session.levels()) {
    std::vector<std::string> parts;
    if (price > 0 && l.cost_per_audio_hour_usd() > 0) {
      parts.push_back(absl::StrFormat("$%.4f per audio-hour, $%.4f per million chars",
                                      l.cost_per_audio_hour_usd(), l.cost_per_million_chars_usd()));
    }
    if (l.energy_j() > 0) {
      parts.push_back(
          absl::StrFormat("%.1f J, %.4g audio-s per J", l.energy_j(), l.audio_s_per_joule()));
    } else if (energy) {
      parts.push_back("no energy figure: no power scrape fell inside the level");
    }
    if (parts.empty()) continue;
    absl::StrAppend(&out, "  ", LevelName(l), ": ", absl::StrJoin(parts, "; "), "\n");
  }
  return out;
}

namespace {

std::string GpQuote(absl::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";  // gnuplot: a doubled quote inside single quotes
    else if (c != '\n' && c != '\r')
      out.push_back(c);
  }
  return out + "'";
}

// A rate is what a counter's summary shows (the table's "/s" and "cores" are rates).
bool RateUnit(absl::string_view unit) { return unit == "/s" || unit == "cores"; }

}  // namespace

absl::StatusOr<std::string> TelemetryPlot(const std::string& csv_path, const v1::Session& session,
                                          const std::vector<LevelData>& levels,
                                          const std::string& work_dir, int width, int height,
                                          std::vector<std::string>* pngs) {
  constexpr size_t kMaxPanels = 6;
  std::vector<SummaryColumn> cols = SummaryColumns(session);
  if (cols.empty()) return std::string();
  if (cols.size() > kMaxPanels) cols.resize(kMaxPanels);
  std::ifstream in(csv_path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  auto rows = common::ParseCsv(text.str());
  if (!in || !rows.ok()) return absl::InternalError(absl::StrCat("cannot read ", csv_path));
  // Each panel's points; counters become the rate between consecutive points.
  std::vector<std::string> units(cols.size());
  for (size_t c = 0; c < cols.size(); ++c) {
    for (const v1::LevelStats& l : session.levels()) {
      if (const v1::TelemetrySummary* t = Find(l, cols[c]); t != nullptr) units[c] = t->unit();
    }
  }
  std::string dat;
  for (size_t c = 0; c < cols.size(); ++c) {
    const size_t brace = cols[c].series.find('{');
    const KnownMetric* known = FindKnownMetric(cols[c].series.substr(0, brace));
    const double scale = known != nullptr ? known->scale : 1;
    absl::StrAppend(&dat, "# ", cols[c].label, "\n");
    double prev_t = 0, prev_v = 0;
    bool have_prev = false;
    for (size_t r = 1; r < rows->size(); ++r) {
      const std::vector<std::string>& row = (*rows)[r];
      if (row.size() != 4 || row[1] != cols[c].target || row[2] != cols[c].series) continue;
      double t = 0, v = 0;
      if (!absl::SimpleAtod(row[0], &t) || !absl::SimpleAtod(row[3], &v)) continue;
      if (!RateUnit(units[c])) {
        absl::StrAppend(&dat, Num(t), " ", Num(v * scale), "\n");
        continue;
      }
      if (have_prev && t > prev_t && v >= prev_v) {
        absl::StrAppend(&dat, Num(t), " ", Num((v - prev_v) / (t - prev_t) * scale), "\n");
      }
      prev_t = t;
      prev_v = v;
      have_prev = true;
    }
    dat += "\n\n";
  }
  const std::string dat_path = (std::filesystem::path(work_dir) / "telemetry.dat").string();
  std::ofstream out(dat_path, std::ios::binary | std::ios::trunc);
  out << dat;
  if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", dat_path));
  // A panel per series needs height: the terminal grows for this plot and is set back after.
  auto terminal = [width](int h) {
    return absl::StrFormat(
        "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
        "  set terminal pngcairo size %d,%d font 'sans,10' noenhanced\n"
        "} else {\n  set terminal png size %d,%d noenhanced\n}\n",
        width, h, width, h);
  };
  std::string script = absl::StrCat(
      terminal(std::max(height, 170 * static_cast<int>(cols.size()) + 60)),
      "reset\nset output 'telemetry.png'\nset grid\nset datafile missing '?'\n",
      "set multiplot layout ", cols.size(),
      ",1 title 'Server telemetry over the session (dotted: level starts)'\nset lmargin 12\n");
  // Level starts, as on timeline.png.
  for (const LevelData& level : levels) {
    int64_t t0 = 0, t1 = 0;
    if (!LevelWindow(level, &t0, &t1)) continue;
    const std::string x = Num(static_cast<double>(t0) / kNsPerS);
    absl::StrAppend(&script, "set arrow from ", x, ", graph 0 to ", x,
                    ", graph 1 nohead dt 3 lc rgb 'gray50'\n");
  }
  constexpr const char* kColors[] = {"'#1f77b4'", "'#d62728'", "'#2ca02c'",
                                     "'#ff7f0e'", "'#9467bd'", "'#8c564b'"};
  for (size_t c = 0; c < cols.size(); ++c) {
    if (c + 1 == cols.size()) absl::StrAppend(&script, "set xlabel 'session time (s)'\n");
    absl::StrAppend(&script, "set title ", GpQuote(cols[c].label), "\nset ylabel ",
                    GpQuote(units[c]), "\nplot 'telemetry.dat' index ", c,
                    " using 1:2 with lines lw 2 lc rgb ", kColors[c % 6], " notitle\n");
  }
  absl::StrAppend(&script, "unset multiplot\nunset output\n", terminal(height));
  pngs->push_back("telemetry.png");
  return script;
}

std::string TelemetryHtml(const v1::Session& session) {
  const std::vector<SummaryColumn> cols = SummaryColumns(session);
  const bool priced = session.plan().cost().per_replica_hour_usd() > 0;
  const bool energy = std::any_of(session.levels().begin(), session.levels().end(),
                                  [](const v1::LevelStats& l) { return l.energy_j() > 0; });
  if (cols.empty() && !priced && !energy && session.telemetry_targets_size() == 0) return "";
  auto esc = [](const std::string& t) { return HtmlEscape(t); };
  std::string out = "<h2>Server telemetry, cost and energy</h2>\n";
  if (session.telemetry_targets_size() > 0) {
    absl::StrAppend(&out,
                    "<div class=\"scroll\"><table><tr><th class=\"l\">scrape target</th>"
                    "<th>scrapes</th><th>failed</th><th>timed out</th><th>series</th>"
                    "<th class=\"l\">first error</th></tr>\n");
    for (const v1::TelemetryTarget& t : session.telemetry_targets()) {
      absl::StrAppend(&out, "<tr><td class=\"l\">", esc(t.url()), "</td><td>", t.scrapes(),
                      "</td><td>", t.failed(), "</td><td>", t.timeouts(), "</td><td>", t.series(),
                      "</td><td class=\"l\">", esc(t.first_error()), "</td></tr>\n");
    }
    absl::StrAppend(&out, "</table></div>\n");
  }
  absl::StrAppend(&out,
                  "<p class=\"muted\">Per level: mean / p95 / max of each series over the "
                  "level's window (first request start to last request end)",
                  priced ? absl::StrFormat("; cost at $%.2f per replica-hour x %d replicas",
                                           session.plan().cost().per_replica_hour_usd(),
                                           ReplicasOf(session.plan()))
                         : "",
                  ".</p>\n<div class=\"scroll\"><table><tr><th class=\"l\">level</th>");
  for (const SummaryColumn& c : cols) absl::StrAppend(&out, "<th>", esc(c.label), "</th>");
  if (priced) absl::StrAppend(&out, "<th>$ per audio-hour</th><th>$ per million chars</th>");
  if (energy) absl::StrAppend(&out, "<th>energy (J)</th><th>audio-s per J</th>");
  absl::StrAppend(&out, "</tr>\n");
  for (const v1::LevelStats& l : session.levels()) {
    absl::StrAppend(&out, "<tr><td class=\"l\">", esc(LevelName(l)), "</td>");
    for (const SummaryColumn& c : cols) {
      const v1::TelemetrySummary* t = Find(l, c);
      absl::StrAppend(&out, "<td>",
                      t == nullptr ? "-"
                                   : esc(absl::StrFormat("%.4g / %.4g / %.4g %s", t->mean(),
                                                         t->p95(), t->max(), t->unit())),
                      "</td>");
    }
    if (priced) {
      absl::StrAppend(&out, "<td>", absl::StrFormat("%.4f", l.cost_per_audio_hour_usd()),
                      "</td><td>", absl::StrFormat("%.4f", l.cost_per_million_chars_usd()),
                      "</td>");
    }
    if (energy && l.energy_j() <= 0) {
      absl::StrAppend(&out, "<td>-</td><td>-</td>");  // no power scrape inside the level
    } else if (energy) {
      absl::StrAppend(&out, "<td>", absl::StrFormat("%.1f", l.energy_j()), "</td><td>",
                      absl::StrFormat("%.4g", l.audio_s_per_joule()), "</td>");
    }
    absl::StrAppend(&out, "</tr>\n");
  }
  absl::StrAppend(&out, "</table></div>\n");
  return out;
}

}  // namespace ttsbench::coordinator
