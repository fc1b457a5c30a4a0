#include "coordinator/report/plots.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/record_store.h"
#include "common/records.h"
#include "common/stats.h"
#include "common/status_macros.h"
#include "coordinator/report/telemetry_report.h"
#include "coordinator/sessions/sessions.h"

extern char** environ;

namespace ttsbench::coordinator {
namespace {

namespace fs = std::filesystem;

constexpr char kScriptName[] = "plots.gp";
constexpr char kLogName[] = "gnuplot.log";

// A gnuplot single-quoted string: only '' is special inside. Control characters would end the
// script line, so they become spaces.
std::string GpString(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string Num(double v) { return absl::StrFormat("%.9g", v); }

// One level as the plots see it.
struct PlotLevel {
  const v1::LevelStats* stats = nullptr;
  const LevelData* data = nullptr;  // null when no records were given for it
  double x = 0;                     // concurrency, or rate in open loop
  int series = 0;                   // index into the series list
  std::string label;
};

enum class Measure { kTtfa, kTtfaAudible, kRtf };

// One value per measured successful request of the level, sorted: TTFA (ms), TTFA-audible (ms;
// requests whose audio was analysed and heard, plan audio_checks) or RTF.
std::vector<double> Collect(const LevelData* data, Measure measure) {
  std::vector<double> out;
  if (data == nullptr) return out;
  for (const common::Record& r : data->records) {
    if (r.warmup || !common::Succeeded(r) || r.end_ns < r.start_ns) continue;
    if (measure == Measure::kTtfaAudible) {
      const v1::AudioAnalysis* a = r.analysis.get();
      if (a != nullptr && a->decoded() && a->audible_ns() >= r.start_ns && a->audible_ns() > 0) {
        out.push_back(static_cast<double>(a->audible_ns() - r.start_ns) / 1e6);
      }
    } else if (measure == Measure::kTtfa) {
      if (r.first_audio_ns >= r.start_ns && r.first_audio_ns > 0) {
        out.push_back(static_cast<double>(r.first_audio_ns - r.start_ns) / 1e6);
      }
    } else if (r.audio_s > 0) {
      out.push_back(static_cast<double>(r.end_ns - r.start_ns) / 1e9 / r.audio_s);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A sorted sample as a CDF block of `dat` (x, fraction at or below), at most ~1000 points: the
// file stays small, the curve looks the same.
void AppendCdf(const std::vector<double>& v, std::string* dat) {
  const size_t n = v.size();
  const size_t points = std::min<size_t>(n, 1000);
  for (size_t k = 0; k < points; ++k) {
    const size_t idx = points == 1 ? 0 : k * (n - 1) / (points - 1);
    absl::StrAppend(dat, Num(v[idx]), " ",
                    Num(static_cast<double>(idx + 1) / static_cast<double>(n)), "\n");
  }
  *dat += "\n\n";
}

absl::Status WriteText(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !(out << content) || !out.flush()) {
    return absl::PermissionDeniedError(absl::StrCat("cannot write ", path.string()));
  }
  return absl::OkStatus();
}

std::string TerminalBlock(const PlotOptions& o) {
  // pngcairo draws antialiased text; libgd's png is the fallback some builds only have.
  return absl::StrFormat(
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
      "  set terminal pngcairo size %d,%d font 'sans,10' noenhanced\n"
      "} else {\n"
      "  set terminal png size %d,%d noenhanced\n"
      "}\n"
      "set encoding utf8\n",
      o.width, o.height, o.width, o.height);
}

std::string Begin(const std::string& png, const std::string& title) {
  return absl::StrCat("reset\nset output ", GpString(png), "\nset title ", GpString(title),
                      "\nset grid\nset key outside right top\nset datafile missing '?'\n");
}

// Everything one script needs; data files go next to the script.
class PlotBuilder {
 public:
  PlotBuilder(const v1::Session& session, const std::vector<LevelData>& levels) {
    std::vector<bool> used(levels.size(), false);
    const bool parallel = levels.size() == static_cast<size_t>(session.levels_size());
    if (session.has_audio_quality()) audio_ = &session.audio_quality();
    open_loop_ = session.levels_size() > 0;
    for (const v1::LevelStats& l : session.levels()) open_loop_ &= l.rate() > 0;
    for (int i = 0; i < session.levels_size(); ++i) {
      const v1::LevelStats& l = session.levels(i);
      PlotLevel p;
      p.stats = &l;
      if (parallel) {
        p.data = &levels[static_cast<size_t>(i)];
      } else {
        for (size_t k = 0; k < levels.size(); ++k) {
          if (!used[k] && levels[k].concurrency == l.concurrency() && levels[k].rate == l.rate() &&
              levels[k].series == l.series()) {
            used[k] = true;
            p.data = &levels[k];
            break;
          }
        }
      }
      p.x = open_loop_ ? l.rate() : static_cast<double>(l.concurrency());
      auto [it, inserted] = series_index_.emplace(l.series(), static_cast<int>(series_.size()));
      if (inserted) series_.push_back(l.series());
      p.series = it->second;
      p.label = LevelLabel(l);
      levels_.push_back(p);
    }
  }

  // Writes data files into `work` and returns the gnuplot script; `pngs` gets the file names.
  absl::StatusOr<std::string> Build(const fs::path& work, const PlotOptions& options,
                                    std::vector<std::string>* pngs) {
    std::string script = TerminalBlock(options);
    if (levels_.empty()) return script;
    const std::string xlabel = open_loop_ ? "offered rate (requests/s)" : "concurrency";
    const std::string logx = absl::StrCat(LogX(), XTics());

    // levels.dat: one block per series (gnuplot `index`), sorted by load.
    std::string dat;
    for (size_t s = 0; s < series_.size(); ++s) {
      std::vector<const PlotLevel*> rows;
      for (const PlotLevel& p : levels_) {
        if (p.series == static_cast<int>(s)) rows.push_back(&p);
      }
      std::stable_sort(rows.begin(), rows.end(),
                       [](const PlotLevel* a, const PlotLevel* b) { return a->x < b->x; });
      absl::StrAppend(&dat, "# x asps rps lat_p50 lat_p95 lat_p99 ttfa_p50 ttfa_p95 ttfa_p99\n");
      for (const PlotLevel* p : rows) {
        const v1::LevelStats& l = *p->stats;
        absl::StrAppend(&dat, Num(p->x), " ", Num(l.asps()), " ", Num(l.rps()), " ",
                        Num(l.latency_ms().p50()), " ", Num(l.latency_ms().p95()), " ",
                        Num(l.latency_ms().p99()), " ", Num(l.ttfa_ms().p50()), " ",
                        Num(l.ttfa_ms().p95()), " ", Num(l.ttfa_ms().p99()), "\n");
      }
      dat += "\n\n";
    }
    RETURN_IF_ERROR(WriteText(work / "levels.dat", dat));

    // Throughput.
    absl::StrAppend(&script, Begin("throughput.png", absl::StrCat("Throughput vs ", xlabel)),
                    "set xlabel ", GpString(xlabel),
                    "\nset ylabel 'ASPS (audio seconds per second)'\n"
                    "set y2label 'RPS (successful requests per second)'\n"
                    "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n",
                    logx, "plot ");
    for (size_t s = 0; s < series_.size(); ++s) {
      const std::string lc = absl::StrCat(" lc ", s + 1);
      absl::StrAppend(&script, s ? ", \\\n  " : "", "'levels.dat' index ", s,
                      " using 1:2 with linespoints lw 2 pt 7", lc, " title ",
                      GpString(SeriesTitle("ASPS", s)), ", 'levels.dat' index ", s,
                      " using 1:3 axes x1y2 with linespoints lw 1 dt 2 pt 6", lc, " title ",
                      GpString(SeriesTitle("RPS", s)));
    }
    absl::StrAppend(&script, "\nunset output\n");
    pngs->push_back("throughput.png");

    // Latency and TTFA, two panels of equal width and one key right of both: colour names the
    // series, dash and point the percentile. Below each panel the key overlapped the axis
    // label; a full key beside each panel (series x percentile) squeezed the panels.
    const double width = options.width, height = options.height;
    size_t label_chars = 3;
    if (series_.size() > 1) {
      for (size_t s = 0; s < series_.size(); ++s) {
        label_chars = std::max(label_chars, SeriesName(s).size());
      }
    }
    const double key_w =
        std::clamp((8.0 * static_cast<double>(label_chars) + 110) / width, 0.14, 0.4);
    const double top = 1 - 60 / height;
    absl::StrAppend(&script, Begin("latency.png", ""), "set multiplot layout 1,2 title ",
                    GpString(absl::StrCat("Latency and time to first audio vs ", xlabel)),
                    absl::StrFormat(" margins 0.08,%.4f,%.4f,%.4f spacing 0.09,0\n", 1 - key_w,
                                    60 / height, top),
                    absl::StrFormat("set key at screen %.4f,%.4f left top vertical Left reverse\n",
                                    1 - key_w + 0.02, top),
                    "set xlabel ", GpString(xlabel), "\nset yrange [0:*]\n", logx);
    for (const auto& [title, col] :
         {std::pair<std::string, int>{"latency (ms)", 4}, {"TTFA (ms)", 7}}) {
      absl::StrAppend(&script, "set title ", GpString(title), "\nset ylabel ", GpString(title),
                      "\nplot ");
      for (size_t s = 0; s < series_.size(); ++s) {
        for (int k = 0; k < 3; ++k) {
          absl::StrAppend(&script, s || k ? ", \\\n  " : "", "'levels.dat' index ", s,
                          " using 1:", col + k, " with linespoints lw 2 dt ", k + 1, " pt ", 7 + k,
                          " lc ", s + 1, " notitle");
        }
      }
      // The key's entries: NaN draws nothing but its sample.
      if (series_.size() > 1) {
        for (size_t s = 0; s < series_.size(); ++s) {
          absl::StrAppend(&script, ", \\\n  NaN with lines lw 2 lc ", s + 1, " title ",
                          GpString(SeriesName(s)));
        }
      }
      const char* names[] = {"p50", "p95", "p99"};
      for (int k = 0; k < 3; ++k) {
        absl::StrAppend(&script, ", \\\n  NaN with linespoints lw 2 dt ", k + 1, " pt ", 7 + k,
                        series_.size() > 1 ? " lc rgb 'black'" : " lc 1", " title ",
                        GpString(names[k]));
      }
      script += "\nunset key\n";  // the left panel drew it for both
    }
    absl::StrAppend(&script, "unset multiplot\nunset output\n");
    pngs->push_back("latency.png");

    RETURN_IF_ERROR(TtfaCdf(work, &script, pngs));
    RETURN_IF_ERROR(Rtf(work, &script, pngs));
    RETURN_IF_ERROR(Timeline(work, &script, pngs));
    RETURN_IF_ERROR(PacedPlots(work, &script, pngs));
    RETURN_IF_ERROR(ConversationPlot(work, &script, pngs));
    if (series_.size() > 1) RETURN_IF_ERROR(BySeries(work, xlabel, &script, pngs));
    RETURN_IF_ERROR(AudioQuality(work, xlabel, logx, &script, pngs));
    return script;
  }

 private:
  std::string SeriesName(size_t s) const { return series_[s].empty() ? "(default)" : series_[s]; }

  std::string SeriesTitle(const std::string& what, size_t s) const {
    return series_.size() > 1 ? absl::StrCat(what, " ", SeriesName(s)) : what;
  }

  // Concurrency is a count of users: ticks at the levels that ran, never at 1.5 or 2.5. Rates
  // may be fractional and are left to gnuplot.
  std::string XTics() const {
    if (open_loop_) return "";
    std::set<int> at;
    for (const PlotLevel& p : levels_) at.insert(static_cast<int>(p.x));
    std::string tics = absl::StrCat("set xtics (", absl::StrJoin(at, ", "), ")\n");
    // On a log axis gnuplot ends the range at the last level and, by rounding, drops its tick.
    if (!LogX().empty()) {
      absl::StrAppend(
          &tics, absl::StrFormat("set xrange [%g:%g]\n", *at.begin() / 1.1, *at.rbegin() * 1.1));
    }
    return tics;
  }

  std::string LogX() const {
    double lo = 0, hi = 0;
    for (const PlotLevel& p : levels_) {
      if (p.x <= 0) return "";
      lo = lo == 0 ? p.x : std::min(lo, p.x);
      hi = std::max(hi, p.x);
    }
    if (hi / lo < 8) return "";
    return open_loop_ ? "set logscale x 10\n" : "set logscale x 2\n";
  }

  // Conversations (issue 13): conversation_turns.png, first-token-to-speech (TTFA when the text
  // is not paced) p50 and p95 of the successful turns by turn index, one pair of lines per level:
  // whether later turns on a kept connection answer as fast as the first.
  absl::Status ConversationPlot(const fs::path& work, std::string* script,
                                std::vector<std::string>* pngs) {
    std::string dat, plot;
    int block = 0, turns = 0;
    bool paced = false;
    for (const PlotLevel& p : levels_) {
      if (p.data == nullptr) continue;
      const common::RecordStore& store = p.data->records;
      std::map<int, std::vector<double>> by_turn;
      for (const auto& [index, f] : store.paced()) {
        if (f.conversation_id == 0) continue;
        const common::Record r = store[index];
        if (r.warmup || !common::Succeeded(r) || r.first_audio_ns == 0) continue;
        paced |= f.first_text_ns != 0;
        const int64_t from = f.first_text_ns != 0 ? f.first_text_ns : r.start_ns;
        by_turn[f.turn].push_back(static_cast<double>(r.first_audio_ns - from) / 1e6);
      }
      if (by_turn.empty()) continue;
      for (auto& [turn, v] : by_turn) {
        turns = std::max(turns, turn + 1);
        std::sort(v.begin(), v.end());
        // The turn as requests.csv numbers it (0: the conversation's first), percentiles as
        // every other figure computes them.
        absl::StrAppend(&dat, turn, " ", Num(common::PercentileSorted(v, 0.5)), " ",
                        Num(common::PercentileSorted(v, 0.95)), "\n");
      }
      dat += "\n\n";
      absl::StrAppend(&plot, block ? ", \\\n  " : "", "'conversation_turns.dat' index ", block,
                      " using 1:2 with linespoints lw 2 pt 7 lc ", block % 8 + 1, " title ",
                      GpString(p.label + " p50"), ", \\\n  'conversation_turns.dat' index ", block,
                      " using 1:3 with linespoints lw 1 dt 2 pt 6 lc ", block % 8 + 1, " title ",
                      GpString(p.label + " p95"));
      ++block;
    }
    if (block == 0) return absl::OkStatus();
    RETURN_IF_ERROR(WriteText(work / "conversation_turns.dat", dat));
    absl::StrAppend(
        script,
        Begin("conversation_turns.png",
              paced ? "Conversations: first token to speech by turn (connection set-up excluded)"
                    : "Conversations: TTFA by turn (connection set-up excluded)"),
        "set xlabel 'turn (requests.csv turn; 0 is the conversation''s first)'\nset ylabel '",
        paced ? "first text piece sent -> first audio (ms)" : "TTFA (ms)",
        "'\nset xtics 1\nset yrange [0:*]\nset xrange [-0.5:", turns - 1, ".5]\nplot ", plot,
        "\nunset output\n");
    pngs->push_back("conversation_turns.png");
    return absl::OkStatus();
  }

  // Paced text (issue 13): ftts_cdf.png, the CDF of first-token-to-speech per level, and
  // paced_timeline.png, one request's text pieces sent against its audio received (the sample
  // of the most loaded level that has one).
  absl::Status PacedPlots(const fs::path& work, std::string* script,
                          std::vector<std::string>* pngs) {
    std::string dat, plot;
    int block = 0;
    const common::RecordStore* sample = nullptr;
    std::string sample_label;
    for (const PlotLevel& p : levels_) {
      if (p.data == nullptr) continue;
      const common::RecordStore& store = p.data->records;
      if (store.sample_timeline() != nullptr) {
        sample = &store;
        sample_label = p.label;
      }
      std::vector<double> v;
      for (const auto& [index, f] : store.paced()) {
        const common::Record r = store[index];
        if (r.warmup || !common::Succeeded(r) || f.first_text_ns == 0 || r.first_audio_ns == 0) {
          continue;
        }
        v.push_back(static_cast<double>(r.first_audio_ns - f.first_text_ns) / 1e6);
      }
      if (v.empty()) continue;
      std::sort(v.begin(), v.end());
      AppendCdf(v, &dat);
      absl::StrAppend(&plot, block ? ", \\\n  " : "", "'ftts_cdf.dat' index ", block,
                      " using 1:2 with steps lw 2 lc ", block % 8 + 1, " dt ", block / 8 % 5 + 1,
                      " title ", GpString(p.label));
      ++block;
    }
    if (block > 0) {
      RETURN_IF_ERROR(WriteText(work / "ftts_cdf.dat", dat));
      absl::StrAppend(script,
                      Begin("ftts_cdf.png", "First token to speech (paced text): CDF per level"),
                      "set xlabel 'first text piece sent -> first audio (ms)'\n"
                      "set ylabel 'fraction of successful requests'\n"
                      "set yrange [0:1]\nset xrange [0:*]\nplot ",
                      plot, "\nunset output\n");
      pngs->push_back("ftts_cdf.png");
    }
    if (sample == nullptr) return absl::OkStatus();
    const v1::PacedTimeline& t = *sample->sample_timeline();
    const int64_t t0 = t.text_ns(0);
    auto ms = [t0](int64_t ns) { return Num(static_cast<double>(ns - t0) / 1e6); };
    std::string tl = "# text: ms_since_first_piece cumulative_chars\n";
    int chars = 0;
    for (int i = 0; i < t.text_ns_size(); ++i) {
      chars += i < t.text_chars_size() ? t.text_chars(i) : 0;
      absl::StrAppend(&tl, ms(t.text_ns(i)), " ", chars, "\n");
    }
    absl::StrAppend(&tl, "\n\n# audio: ms_since_first_piece cumulative_audio_s\n");
    double audio = 0;
    for (int i = 0; i < t.audio_ns_size(); ++i) {
      audio += i < t.audio_s_size() ? t.audio_s(i) : 0;
      absl::StrAppend(&tl, ms(t.audio_ns(i)), " ", Num(audio), "\n");
    }
    if (t.audio_ns_size() == 0) absl::StrAppend(&tl, "0 0\n");
    // The x range holds the marks too (an interrupt may come after the last piece and audio).
    int64_t last = t.text_ns(t.text_ns_size() - 1);
    for (int64_t ns : {t.end_of_input_ns(), t.interrupt_ns()}) last = std::max(last, ns);
    if (t.audio_ns_size() > 0) last = std::max(last, t.audio_ns(t.audio_ns_size() - 1));
    RETURN_IF_ERROR(WriteText(work / "paced_timeline.dat", tl));
    std::string marks = absl::StrCat(
        "set xrange [0:", Num(std::max(1.0, static_cast<double>(last - t0) / 1e6 * 1.05)), "]\n");
    if (t.end_of_input_ns() != 0) {
      absl::StrAppend(&marks, "set arrow from ", ms(t.end_of_input_ns()), ", graph 0 to ",
                      ms(t.end_of_input_ns()),
                      ", graph 1 nohead dt 3 lc rgb 'gray40'\nset label 'end of input' at ",
                      ms(t.end_of_input_ns()), ", graph 0.95 offset 0.5,0\n");
    }
    if (t.interrupt_ns() != 0) {
      absl::StrAppend(&marks, "set arrow from ", ms(t.interrupt_ns()), ", graph 0 to ",
                      ms(t.interrupt_ns()),
                      ", graph 1 nohead dt 2 lc rgb 'red'\nset label 'interrupt' at ",
                      ms(t.interrupt_ns()), ", graph 0.85 offset 0.5,0\n");
    }
    absl::StrAppend(
        script,
        Begin("paced_timeline.png",
              absl::StrCat("One paced request (", sample_label, "): text sent vs audio received")),
        "set xlabel 'ms since the first text piece was sent'\n"
        "set ylabel 'characters sent'\nset y2label 'audio received (s)'\n"
        "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n",
        marks,
        "plot 'paced_timeline.dat' index 0 using 1:2 with steps lw 2 lc 1 title 'text sent', "
        "\\\n  'paced_timeline.dat' index 1 using 1:2 axes x1y2 with steps lw 2 lc 2 title "
        "'audio received'\nunset output\n");
    pngs->push_back("paced_timeline.png");
    return absl::OkStatus();
  }

  absl::Status TtfaCdf(const fs::path& work, std::string* script, std::vector<std::string>* pngs) {
    std::string dat, plot;
    int block = 0;
    int curve = 0;
    for (const PlotLevel& p : levels_) {
      const std::vector<double> v = Collect(p.data, Measure::kTtfa);
      if (v.empty()) continue;
      // gnuplot cycles 8 colours: past them, lines differ by dash pattern as well.
      AppendCdf(v, &dat);
      absl::StrAppend(&plot, block ? ", \\\n  " : "", "'ttfa_cdf.dat' index ", block,
                      " using 1:2 with steps lw 2 lc ", curve % 8 + 1, " dt ", curve / 8 % 5 + 1,
                      " title ", GpString(p.label));
      ++block;
      // Audio checks (issue 14): the first sound heard, dashed in the level's colour.
      const std::vector<double> heard = Collect(p.data, Measure::kTtfaAudible);
      if (!heard.empty()) {
        AppendCdf(heard, &dat);
        absl::StrAppend(&plot, ", \\\n  'ttfa_cdf.dat' index ", block,
                        " using 1:2 with steps lw 2 lc ", curve % 8 + 1, " dt 2 title ",
                        GpString(absl::StrCat(p.label, " audible")));
        ++block;
      }
      ++curve;
    }
    if (block == 0) return absl::OkStatus();
    RETURN_IF_ERROR(WriteText(work / "ttfa_cdf.dat", dat));
    absl::StrAppend(script, Begin("ttfa_cdf.png", "Time to first audio: CDF per level"),
                    "set xlabel 'TTFA (ms)'\nset ylabel 'fraction of successful requests'\n"
                    "set yrange [0:1]\nset xrange [0:*]\nplot ",
                    plot, "\nunset output\n");
    pngs->push_back("ttfa_cdf.png");
    return absl::OkStatus();
  }

  absl::Status Rtf(const fs::path& work, std::string* script, std::vector<std::string>* pngs) {
    std::string dat = "# idx p5 p25 p50 p75 p95 p99 mean\n";
    std::vector<std::string> tics;
    double top = 0;
    for (const PlotLevel& p : levels_) {
      const std::vector<double> v = Collect(p.data, Measure::kRtf);
      if (v.empty()) continue;
      double sum = 0;
      for (double x : v) sum += x;
      const int idx = static_cast<int>(tics.size());
      absl::StrAppend(&dat, idx);
      for (double q : {0.05, 0.25, 0.50, 0.75, 0.95, 0.99}) {
        absl::StrAppend(&dat, " ", Num(common::PercentileSorted(v, q)));
      }
      absl::StrAppend(&dat, " ", Num(sum / static_cast<double>(v.size())), "\n");
      top = std::max(top, common::PercentileSorted(v, 0.99));
      tics.push_back(absl::StrCat(GpString(p.label), " ", idx));
    }
    if (tics.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(WriteText(work / "rtf.dat", dat));
    absl::StrAppend(
        script,
        Begin("rtf.png",
              "Real-time factor per level (box p25-p75, whiskers p5-p95; below 1 is "
              "faster than real time)"),
        "set ylabel 'RTF (latency / audio duration)'\nset yrange [0:*]\n",
        absl::StrFormat("set xrange [-0.6:%f]\n", static_cast<double>(tics.size()) - 0.4),
        "set xtics (", absl::StrJoin(tics, ", "), ")", tics.size() > 6 ? " rotate by -30" : "",
        "\nset boxwidth 0.5\nset style fill solid 0.25 border\n",
        // The real-time line only when the data come near it; otherwise it flattens the boxes.
        top > 0.5 ? "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "
                    "'red'\n"
                  : "",
        "plot 'rtf.dat' using 1:3:2:6:5 with candlesticks whiskerbars lc 1 title 'p5 / p25 / "
        "p75 / p95', \\\n"
        "  'rtf.dat' using 1:4:4:4:4 with candlesticks lc 1 lw 2 title 'median', \\\n"
        "  'rtf.dat' using 1:7 with points pt 2 lc 7 title 'p99', \\\n"
        "  'rtf.dat' using 1:8 with points pt 7 lc 3 title 'mean'\n"
        "unset output\n");
    pngs->push_back("rtf.png");
    return absl::OkStatus();
  }

  absl::Status Timeline(const fs::path& work, std::string* script, std::vector<std::string>* pngs) {
    int64_t t0 = INT64_MAX, t1 = INT64_MIN;
    std::vector<std::pair<int64_t, std::string>> starts;  // first start of each level
    for (const PlotLevel& p : levels_) {
      if (p.data == nullptr) continue;
      int64_t first = INT64_MAX;
      for (const common::Record& r : p.data->records) {
        if (r.start_ns <= 0 || r.end_ns < r.start_ns) continue;
        first = std::min(first, r.start_ns);
        t1 = std::max(t1, r.end_ns);
      }
      if (first == INT64_MAX) continue;
      t0 = std::min(t0, first);
      starts.emplace_back(first, p.label);
    }
    if (starts.empty() || t1 <= t0) return absl::OkStatus();
    // ~400 bins, none shorter than 10 ms (a few scheduler ticks).
    const double span_s = static_cast<double>(t1 - t0) / 1e9;
    const double width_s = std::max(span_s / 400.0, 0.01);
    const size_t bins = static_cast<size_t>(std::ceil(span_s / width_s));
    const double width_ns = width_s * 1e9;
    std::vector<double> partial(bins + 1, 0), diff(bins + 1, 0), done(bins, 0), failed(bins, 0);
    auto bin_of = [&](int64_t t) {
      return std::min(bins - 1, static_cast<size_t>(static_cast<double>(t - t0) / width_ns));
    };
    bool any_failure = false;
    for (const PlotLevel& p : levels_) {
      if (p.data == nullptr) continue;
      for (const common::Record& r : p.data->records) {
        if (r.start_ns <= 0 || r.end_ns < r.start_ns) continue;
        const size_t bs = bin_of(r.start_ns), be = bin_of(r.end_ns);
        const double s = static_cast<double>(r.start_ns - t0);
        const double e = static_cast<double>(r.end_ns - t0);
        // Time-weighted in-flight count: partial bins at the ends, whole bins in between
        // through a difference array, so a long request costs O(1).
        if (bs == be) {
          partial[bs] += (e - s) / width_ns;
        } else {
          partial[bs] += (static_cast<double>(bs + 1) * width_ns - s) / width_ns;
          partial[be] += (e - static_cast<double>(be) * width_ns) / width_ns;
          diff[bs + 1] += 1;
          diff[be] -= 1;
        }
        if (common::Succeeded(r)) {
          done[be] += 1;
        } else {
          failed[be] += 1;
          any_failure = true;
        }
      }
    }
    // Completions per second over a centred window of about 0.2 s: per 20 ms bin a
    // server doing 100 requests/s completes 0, 1 or 2, which plots as noise, not a rate.
    const size_t half = static_cast<size_t>(std::lround(0.1 / width_s));
    auto windowed = [&](const std::vector<double>& per_bin) {
      std::vector<double> prefix(bins + 1, 0), rate(bins, 0);
      for (size_t b = 0; b < bins; ++b) prefix[b + 1] = prefix[b] + per_bin[b];
      for (size_t b = 0; b < bins; ++b) {
        const size_t lo = b >= half ? b - half : 0, hi = std::min(bins, b + half + 1);
        rate[b] = (prefix[hi] - prefix[lo]) / (static_cast<double>(hi - lo) * width_s);
      }
      return rate;
    };
    const std::vector<double> done_rate = windowed(done), failed_rate = windowed(failed);
    std::string dat = "# t_s in_flight completions_per_s failures_per_s\n";
    double running = 0;
    const double base_s = static_cast<double>(t0) / 1e9;
    for (size_t b = 0; b < bins; ++b) {
      running += diff[b];
      absl::StrAppend(&dat, Num(base_s + static_cast<double>(b) * width_s), " ",
                      Num(running + partial[b]), " ", Num(done_rate[b]), " ", Num(failed_rate[b]),
                      "\n");
    }
    // Closes the last step.
    absl::StrAppend(&dat, Num(base_s + static_cast<double>(bins) * width_s), " ",
                    Num(running + partial[bins - 1]), " ", Num(done_rate[bins - 1]), " ",
                    Num(failed_rate[bins - 1]), "\n");
    RETURN_IF_ERROR(WriteText(work / "timeline.dat", dat));
    absl::StrAppend(script, Begin("timeline.png", "Load over the session (all agents merged)"),
                    "set xlabel 'session time (s)'\nset ylabel 'requests in flight (mean per "
                    "bin)'\nset y2label 'completions per second'\nset ytics nomirror\n"
                    "set y2tics\nset yrange [0:*]\nset y2range [0:*]\n"
                    "set offsets graph 0, graph 0, graph 0.08, 0\n");
    for (const auto& [at, label] : starts) {
      const std::string x = Num(static_cast<double>(at) / 1e9);
      absl::StrAppend(script, "set arrow from ", x, ", graph 0 to ", x,
                      ", graph 1 nohead dt 3 lc rgb 'gray50'\nset label ", GpString(label), " at ",
                      x, ", graph 0.98 right rotate by 90 offset character 1,0\n");
    }
    absl::StrAppend(
        script,
        "plot 'timeline.dat' using 1:2 with steps lw 2 lc 1 title 'in flight', \\\n"
        "  'timeline.dat' using 1:3 axes x1y2 with lines lc 2 title 'completions/s (0.2 s window)'",
        any_failure ? ", \\\n  'timeline.dat' using 1:4 axes x1y2 with steps lc 7 title "
                      "'failures/s'"
                    : "",
        "\nunset output\n");
    pngs->push_back("timeline.png");
    return absl::OkStatus();
  }

  // audio_quality.png (audio checks): against each text's answer at the lowest level, the
  // duration ratio and the RMS-envelope correlation per level, median and worst, with the bounds.
  absl::Status AudioQuality(const fs::path& work, const std::string& xlabel,
                            const std::string& logx, std::string* script,
                            std::vector<std::string>* pngs) {
    if (audio_ == nullptr) return absl::OkStatus();
    // Nothing compared (nothing decoded, or no text said twice): no plot rather than gnuplot's
    // "x range is invalid" and a blank PNG.
    if (std::none_of(levels_.begin(), levels_.end(), [](const PlotLevel& p) {
          return p.stats->audio_consistency().compared() > 0;
        })) {
      return absl::OkStatus();
    }
    std::string dat;
    // Ranges that hold the data and the bounds (gnuplot's autoscale collapses on a flat 1).
    double ratio_top = std::max(1.2, audio_->max_duration_ratio() + 0.1);
    double corr_bottom = std::min(0.0, audio_->min_envelope_correlation() - 0.1);
    for (const PlotLevel& p : levels_) {
      const v1::AudioConsistency& c = p.stats->audio_consistency();
      if (c.compared() > 0) ratio_top = std::max(ratio_top, c.duration_ratio_max() * 1.1);
      if (c.envelope_compared() > 0) corr_bottom = std::min(corr_bottom, c.envelope_corr_min());
    }
    for (size_t s = 0; s < series_.size(); ++s) {
      std::vector<const PlotLevel*> rows;
      for (const PlotLevel& p : levels_) {
        if (p.series == static_cast<int>(s)) rows.push_back(&p);
      }
      std::stable_sort(rows.begin(), rows.end(),
                       [](const PlotLevel* a, const PlotLevel* b) { return a->x < b->x; });
      dat += "# x ratio_median ratio_min corr_median corr_min\n";
      for (const PlotLevel* p : rows) {
        const v1::AudioConsistency& c = p->stats->audio_consistency();
        const bool env = c.envelope_compared() > 0;
        absl::StrAppend(&dat, Num(p->x), " ",
                        c.compared() > 0 ? Num(c.duration_ratio_median()) : "?", " ",
                        c.compared() > 0 ? Num(c.duration_ratio_min()) : "?", " ",
                        env ? Num(c.envelope_corr_median()) : "?", " ",
                        env ? Num(c.envelope_corr_min()) : "?", "\n");
      }
      dat += "\n\n";
    }
    RETURN_IF_ERROR(WriteText(work / "audio_quality.dat", dat));
    absl::StrAppend(script, Begin("audio_quality.png", ""), "set multiplot layout 1,2 title ",
                    GpString(absl::StrCat("Audio against the lowest level's, vs ", xlabel)),
                    "\nset xlabel ", GpString(xlabel), "\n", logx);
    const std::pair<const char*, int> panels[] = {{"duration ratio", 2},
                                                  {"envelope correlation", 4}};
    for (const auto& [title, col] : panels) {
      const bool ratio = col == 2;
      absl::StrAppend(script, "set title ", GpString(title), "\nset ylabel ", GpString(title),
                      "\nset yrange [", ratio ? "0" : Num(corr_bottom - 0.05), ":",
                      ratio ? Num(ratio_top) : "1.05", "]\nunset arrow\n");
      for (double bound :
           ratio ? std::vector<double>{audio_->min_duration_ratio(), audio_->max_duration_ratio()}
                 : std::vector<double>{audio_->min_envelope_correlation()}) {
        absl::StrAppend(script, "set arrow from graph 0, first ", Num(bound), " to graph 1, first ",
                        Num(bound), " nohead dt 3 lc rgb 'red'\n");
      }
      script->append("plot ");
      for (size_t s = 0; s < series_.size(); ++s) {
        absl::StrAppend(script, s ? ", \\\n  " : "", "'audio_quality.dat' index ", s,
                        " using 1:", col, " with linespoints lw 2 pt 7 lc ", s + 1, " title ",
                        GpString(SeriesTitle("median", s)), ", 'audio_quality.dat' index ", s,
                        " using 1:", col + 1, " with linespoints lw 1 dt 2 pt 6 lc ", s + 1,
                        " title ", GpString(SeriesTitle(ratio ? "min" : "worst", s)));
      }
      script->append("\n");
    }
    absl::StrAppend(script, "unset multiplot\nunset output\n");
    pngs->push_back("audio_quality.png");
    return absl::OkStatus();
  }

  absl::Status BySeries(const fs::path& work, const std::string& xlabel, std::string* script,
                        std::vector<std::string>* pngs) {
    std::map<double, std::vector<std::string>> rows;  // x -> ASPS per series ('?' = missing)
    for (const PlotLevel& p : levels_) {
      auto& row = rows[p.x];
      row.resize(series_.size(), "?");
      row[static_cast<size_t>(p.series)] = Num(p.stats->asps());
    }
    std::string dat = "# x asps_per_series...\n";
    for (const auto& [x, row] : rows)
      absl::StrAppend(&dat, Num(x), " ", absl::StrJoin(row, " "), "\n");
    RETURN_IF_ERROR(WriteText(work / "series.dat", dat));
    absl::StrAppend(script, Begin("asps_by_series.png", "ASPS by series"),
                    "set style data histograms\nset style histogram clustered gap 1\n"
                    "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
                    "set xlabel ",
                    GpString(xlabel), "\nset ylabel 'ASPS (audio seconds per second)'\nplot ");
    for (size_t s = 0; s < series_.size(); ++s) {
      absl::StrAppend(script, s ? ", \\\n  " : "", "'series.dat' using ", s + 2,
                      s ? "" : ":xtic(1)", " title ",
                      GpString(series_[s].empty() ? "(default)" : series_[s]));
    }
    absl::StrAppend(script, "\nunset output\n");
    pngs->push_back("asps_by_series.png");
    return absl::OkStatus();
  }

  std::vector<PlotLevel> levels_;
  std::vector<std::string> series_;
  std::map<std::string, int> series_index_;
  bool open_loop_ = false;
  const v1::AudioQuality* audio_ = nullptr;  // audio checks on: their bounds
};

std::string LastLines(const std::string& text, size_t n) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<ptrdiff_t>(n));
  return absl::StrJoin(lines, " | ");
}

// Runs `gnuplot plots.gp` inside `work` with stdout and stderr in gnuplot.log: no shell, no user
// text on the command line. Killed after options.timeout_s.
absl::Status RunGnuplot(const PlotOptions& options, const fs::path& work) {
  std::string program = options.gnuplot;
  // The child starts in `work`, so a relative path with a directory part must be made absolute.
  if (program.find('/') != std::string::npos) program = fs::absolute(program).string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, work.c_str());
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, kLogName, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The caller may block signals for its own handling thread; gnuplot should not inherit that.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::string arg0 = program, arg1 = kScriptName;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, program.c_str(), &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc == ENOENT || rc == EACCES || rc == ENOTDIR) {
    return absl::UnavailableError("gnuplot not found: plots skipped");
  }
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("cannot start gnuplot: ", std::strerror(rc)));
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
  int status = 0;
  bool timed_out = false;
  for (;;) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      status = 0;  // reaped elsewhere (ECHILD): judge by the files it left
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string log;
  {
    std::ifstream in(work / kLogName);
    std::ostringstream buf;
    buf << in.rdbuf();
    log = buf.str();
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrFormat("gnuplot killed after %.0f s: plots incomplete", options.timeout_s));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return absl::UnavailableError("gnuplot not found: plots skipped");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed: ", LastLines(log, 3)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WritePlots(const std::string& dir, const v1::Session& session,
                        const std::vector<LevelData>& levels, std::vector<std::string>* written,
                        const PlotOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  // Scratch space inside the session folder: same file system, so PNGs move by rename.
  std::string tmpl = (fs::path(dir) / ".plots-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create a scratch folder in ", dir, ": ", std::strerror(errno)));
  }
  const fs::path work = tmpl;
  absl::Status status = [&]() -> absl::Status {
    PlotBuilder builder(session, levels);
    std::vector<std::string> pngs;
    auto script = builder.Build(work, options, &pngs);
    if (!script.ok()) return script.status();
    if (!session.telemetry_file().empty()) {  // issue 14: scraped series on the timeline
      auto tel = TelemetryPlot((fs::path(dir) / session.telemetry_file()).string(), session, levels,
                               work.string(), options.width, options.height, &pngs);
      if (!tel.ok()) return tel.status();
      absl::StrAppend(&*script, *tel);
    }
    if (pngs.empty()) return absl::OkStatus();
    if (auto st = WriteText(work / kScriptName, *script); !st.ok()) return st;
    absl::Status ran = RunGnuplot(options, work);
    // Whatever was drawn before a failure is still worth keeping.
    for (const std::string& png : pngs) {
      const fs::path from = work / png;
      if (!fs::exists(from, ec) || fs::file_size(from, ec) == 0) continue;
      const fs::path to = fs::path(dir) / png;
      fs::rename(from, to, ec);
      if (!ec && written != nullptr) written->push_back(to.string());
    }
    return ran;
  }();
  fs::remove_all(work, ec);
  return status;
}

}  // namespace ttsbench::coordinator
