#include "coordinator/report/asr_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/report/html_report.h"

namespace ttsbench::coordinator {
namespace {

std::string Level(const v1::Session& s, const v1::LevelStats& l) {
  const bool open = s.plan().load().model() == "open";
  return absl::StrCat(
      open ? absl::StrFormat("rate %g", l.rate()) : absl::StrCat("concurrency ", l.concurrency()),
      l.series().empty() ? "" : absl::StrCat(" [", l.series(), "]"));
}

std::string Pct(double ratio) { return absl::StrFormat("%.1f%%", ratio * 100); }

// The WER change against the baseline, in percentage points.
std::string Delta(double delta) { return absl::StrFormat("%+.1f pts", delta * 100); }

}  // namespace

std::string AsrConsoleLines(const v1::Session& s) {
  if (!s.has_asr()) return "";
  const v1::AsrSummary& a = s.asr();
  std::string out =
      absl::StrFormat("ASR check (%s; %d sample(s)/level; recogniser CPU %.2f s, wall %.1f s):\n",
                      a.command(), a.sample_per_level(), a.cpu_s(), a.wall_s());
  for (const v1::LevelStats& l : s.levels()) {
    const v1::AsrLevel& r = l.asr();
    if (r.recognised() == 0) {
      absl::StrAppend(&out, absl::StrFormat("  %-24s no transcript (%d sample(s), %d failed)\n",
                                            Level(s, l), r.samples(), r.failed()));
      continue;
    }
    absl::StrAppend(
        &out,
        absl::StrFormat("  %-24s WER %s (median %s), CER %s, WER vs lowest level %s, "
                        "%d/%d recognised\n",
                        Level(s, l), Pct(r.wer_mean()), Pct(r.wer_median()), Pct(r.cer_mean()),
                        Delta(r.wer_delta()), r.recognised(), r.samples()));
  }
  return out;
}

const std::vector<std::string>& AsrCsvColumns() {
  static const std::vector<std::string> columns = {"ASR_Samples", "ASR_Recognised", "WER_Mean",
                                                   "WER_Median",  "CER_Mean",       "CER_Median",
                                                   "WER_Delta",   "CER_Delta",      "ASR_CPU_s"};
  return columns;
}

std::vector<std::string> AsrCsvCells(const v1::LevelStats& l) {
  const v1::AsrLevel& r = l.asr();
  if (!l.has_asr()) return std::vector<std::string>(AsrCsvColumns().size());
  auto num = [&r](double v) {
    return r.recognised() > 0 ? absl::StrFormat("%.6g", v) : std::string();
  };
  return {absl::StrCat(r.samples()),
          absl::StrCat(r.recognised()),
          num(r.wer_mean()),
          num(r.wer_median()),
          num(r.cer_mean()),
          num(r.cer_median()),
          num(r.wer_delta()),
          num(r.cer_delta()),
          absl::StrFormat("%.3f", r.cpu_s())};
}

std::string AsrHtmlSection(const v1::Session& s) {
  if (!s.has_asr()) return "";
  const v1::AsrSummary& a = s.asr();
  std::string out = absl::StrCat(
      "<h2>ASR check</h2>\n<p>Recogniser <code>", HtmlEscape(a.command()), "</code> on ",
      a.sample_per_level(), " sample(s) per level (", HtmlEscape(a.audio()), "); CPU ",
      absl::StrFormat("%.2f", a.cpu_s()),
      " s. WER and CER after normalisation: ", HtmlEscape(a.normalisation()),
      ". A weak recogniser on a synthetic voice has a high WER everywhere: read the change "
      "against the lowest level, not the absolute figure.</p>\n",
      "<div class=\"scroll\"><table>\n<tr><th class=\"l\">Level</th><th>Samples</th>"
      "<th>Recognised</th><th>WER mean</th><th>WER median</th><th>CER mean</th>"
      "<th>CER median</th><th>WER vs lowest</th><th>CPU s</th></tr>\n");
  for (const v1::LevelStats& l : s.levels()) {
    const v1::AsrLevel& r = l.asr();
    const bool ok = r.recognised() > 0;
    auto cell = [](const std::string& v) { return absl::StrCat("<td>", HtmlEscape(v), "</td>"); };
    absl::StrAppend(&out, "<tr><td class=\"l\">", HtmlEscape(Level(s, l)), "</td>",
                    cell(absl::StrCat(r.samples())), cell(absl::StrCat(r.recognised())),
                    cell(ok ? Pct(r.wer_mean()) : "-"), cell(ok ? Pct(r.wer_median()) : "-"),
                    cell(ok ? Pct(r.cer_mean()) : "-"), cell(ok ? Pct(r.cer_median()) : "-"),
                    cell(ok ? Delta(r.wer_delta()) : "-"), cell(absl::StrFormat("%.2f", r.cpu_s())),
                    "</tr>\n");
  }
  absl::StrAppend(&out,
                  "</table></div>\n<details><summary>Transcripts</summary>\n"
                  "<div class=\"scroll\"><table>\n<tr><th class=\"l\">Level</th>"
                  "<th>Request</th><th>WER</th><th class=\"l\">Reference</th>"
                  "<th class=\"l\">Recognised</th></tr>\n");
  for (const v1::LevelStats& l : s.levels()) {
    for (const v1::AsrResult& r : l.asr().results()) {
      absl::StrAppend(&out, "<tr><td class=\"l\">", HtmlEscape(Level(s, l)), "</td><td>",
                      r.request_id(), "</td><td>", r.error().empty() ? Pct(r.wer()) : "-",
                      "</td><td class=\"l\">", HtmlEscape(r.reference()), "</td><td class=\"l\">",
                      HtmlEscape(r.error().empty() ? r.hypothesis() : "(" + r.error() + ")"),
                      "</td></tr>\n");
    }
  }
  absl::StrAppend(&out, "</table></div>\n</details>\n");
  return out;
}

}  // namespace ttsbench::coordinator
