#include "coordinator/run/asr.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "common/csv.h"
#include "common/spawn.h"
#include "common/stats.h"
#include "common/wer.h"
#include "coordinator/report/report.h"
#include "coordinator/run/asr_audio.h"
#include "coordinator/run/orchestrator.h"

namespace ttsbench::coordinator {
namespace {

namespace fs = std::filesystem;

// stdout of the recogniser read at most (a transcript is a few hundred bytes).
constexpr size_t kMaxTranscript = size_t{64} << 10;
// After this many timeouts in a row the recogniser is not run on the remaining samples: a
// recogniser that hangs costs the run at most this many timeouts.
constexpr int kMaxTimeoutsInARow = 2;

// ---------------------------------------------------------------- the recogniser

double CpuSeconds(const rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// What the program's stderr said last (one line, printable, 200 bytes at most).
std::string LastLine(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, absl::ByAnyChar("\r\n"));
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    absl::string_view line = absl::StripAsciiWhitespace(*it);
    if (line.empty()) continue;
    std::string out(line.substr(0, 200));
    for (char& c : out) {
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    return out;
  }
  return "";
}

// ---------------------------------------------------------------- the check

std::string LevelTitle(const LevelData& level) {
  return level.series.empty() ? LevelName(level)
                              : absl::StrCat(level.series, " ", LevelName(level));
}

double Load(const v1::LevelStats& l) { return l.rate() > 0 ? l.rate() : l.concurrency(); }

// "concurrency 4" / "rate 20" (and the series), of a level's statistics.
std::string StatsTitle(const v1::Session& s, const v1::LevelStats& l) {
  return absl::StrCat(l.series(), l.series().empty() ? "" : " ",
                      s.plan().load().model() == "open"
                          ? absl::StrFormat("rate %g", l.rate())
                          : absl::StrCat("concurrency ", l.concurrency()));
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (const double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : common::PercentileSorted(v, 0.5);
}

}  // namespace

void TakeAsrSample(const v1::RequestRecord& rec, std::vector<AsrSampleAudio>* out) {
  if (!rec.has_asr_format()) return;
  AsrSampleAudio s;
  s.request_id = rec.request_id();
  s.text_index = rec.text_index();
  s.audio = rec.asr_audio();
  s.format = rec.asr_format();
  out->push_back(std::move(s));
}

absl::StatusOr<AsrWav> MakeAsrWav(const AsrSampleAudio& sample, int sample_rate) {
  AsrAudioDescription d;
  d.format = sample.format.format();
  d.sample_rate = sample.format.sample_rate();
  d.channels = sample.format.channels();
  return ConvertToAsrWav(sample.audio, d, sample_rate);
}

RecogniserRun RunRecogniser(const std::vector<std::string>& argv, const std::string& wav_path,
                            std::chrono::milliseconds timeout) {
  RecogniserRun run;
  std::vector<std::string> args;
  for (const std::string& a : argv) args.push_back(absl::StrReplaceAll(a, {{"{wav}", wav_path}}));
  std::vector<char*> buffer;
  const int64_t deadline = common::SteadyNowNs() + timeout.count() * 1'000'000;
  auto child = common::SpawnInOwnGroup(args, buffer);
  if (!child.ok()) {
    run.error = std::string(child.status().message());
    return run;
  }
  ::close(child->stdin_fd);  // no input: the WAV path is its argument
  std::string out, err;
  bool timed_out = false;
  pollfd fds[2] = {{child->stdout_fd, POLLIN, 0}, {child->stderr_fd, POLLIN, 0}};
  char buf[4096];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const int64_t left_ms = (deadline - common::SteadyNowNs()) / 1'000'000;
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    const int ready = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        ::close(fds[i].fd);
        fds[i].fd = -1;
        continue;
      }
      std::string& to = i == 0 ? out : err;
      // Kept up to the bound; the rest is read and dropped, so the program never blocks.
      to.append(buf, std::min(static_cast<size_t>(n),
                              kMaxTranscript - std::min(kMaxTranscript, to.size())));
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  // Both pipes closed (or the time is up): wait for the exit within what is left.
  int status = 0;
  rusage ru{};
  pid_t reaped = 0;
  while (!timed_out) {
    reaped = ::wait4(child->pid, &status, WNOHANG, &ru);
    if (reaped != 0) break;
    if (common::SteadyNowNs() >= deadline) {
      timed_out = true;
      break;
    }
    ::usleep(5000);
  }
  // Its whole group goes: what it started and left behind, or everything past the timeout.
  ::kill(-child->pid, SIGKILL);
  if (reaped == 0) reaped = ::wait4(child->pid, &status, 0, &ru);
  run.cpu_s = reaped > 0 ? CpuSeconds(ru) : 0;
  if (timed_out) {
    run.error = absl::StrFormat("timed out after %g s (killed)",
                                static_cast<double>(timeout.count()) / 1000.0);
    return run;
  }
  if (reaped <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    run.error = WIFSIGNALED(status) ? absl::StrCat("killed by signal ", WTERMSIG(status))
                                    : absl::StrCat("exit ", WEXITSTATUS(status));
    if (const std::string line = LastLine(err); !line.empty())
      absl::StrAppend(&run.error, ": ", line);
    return run;
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(out, absl::ByAnyChar("\r\n"), absl::SkipWhitespace());
  for (absl::string_view& l : lines) l = absl::StripAsciiWhitespace(l);
  run.text = absl::StrJoin(lines, " ");
  run.ok = true;
  return run;
}

void RunAsrCheck(const v1::AsrCheck& plan, const std::vector<std::string>& argv,
                 const std::vector<std::string>& texts, const std::string& dir,
                 const std::vector<LevelData>& levels, v1::Session& session, std::ostream& err) {
  const int rate = plan.sample_rate();
  v1::AsrSummary& summary = *session.mutable_asr();
  summary.set_command(plan.command());
  summary.set_sample_per_level(plan.sample_per_level());
  summary.set_normalisation(std::string(common::kWerNormalisation));
  summary.set_audio(rate > 0 ? absl::StrCat(rate, " Hz mono 16-bit WAV")
                             : "mono 16-bit WAV at the audio's own rate");
  const fs::path wav_dir = fs::path(dir) / "asr";
  std::error_code ec;
  fs::create_directories(wav_dir, ec);
  std::string csv_text;
  common::CsvWriter csv(&csv_text);
  csv.Row({"level", "series", "load", "agent", "request_id", "text_index", "wer", "cer", "audio_s",
           "cpu_s", "capped", "error", "reference", "hypothesis", "wav"});
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(plan.timeout_s() * 1000));
  int timeouts_in_a_row = 0;
  const int64_t all_began = common::SteadyNowNs();
  for (size_t li = 0; li < levels.size() && static_cast<int>(li) < session.levels_size(); ++li) {
    const LevelData& level = levels[li];
    v1::AsrLevel& stats = *session.mutable_levels(static_cast<int>(li))->mutable_asr();
    const int64_t began = common::SteadyNowNs();
    std::vector<double> wers, cers;
    std::string first_failure;
    uint32_t failures = 0;
    if (!level.asr_samples.empty()) {
      err << "ttsbench: asr: " << LevelTitle(level) << ": " << level.asr_samples.size()
          << " sample(s)\n";
    }
    for (const AsrSampleAudio& sample : level.asr_samples) {
      v1::AsrResult& r = *stats.add_results();
      r.set_request_id(sample.request_id);
      r.set_agent(sample.agent);
      r.set_text_index(sample.text_index);
      r.set_capped(sample.format.capped());
      if (sample.text_index >= 0 && static_cast<size_t>(sample.text_index) < texts.size()) {
        r.set_reference(texts[static_cast<size_t>(sample.text_index)]);
      }
      auto wav = MakeAsrWav(sample, rate);
      if (!wav.ok()) {
        r.set_error(std::string(wav.status().message()));
      } else if (timeouts_in_a_row >= kMaxTimeoutsInARow) {
        r.set_error("skipped: the recogniser timed out on the samples before");
      } else {
        r.set_audio_s(wav->audio_s);
        const std::string name =
            absl::StrFormat("L%02d_a%d_r%d.wav", li + 1, sample.agent, sample.request_id);
        const fs::path path = wav_dir / name;
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f << wav->bytes;
        if (!f.flush()) {
          r.set_error(absl::StrCat("cannot write ", path.string()));
        } else {
          r.set_wav(absl::StrCat("asr/", name));
          RecogniserRun run = RunRecogniser(argv, path.string(), timeout);
          r.set_cpu_s(run.cpu_s);
          stats.set_cpu_s(stats.cpu_s() + run.cpu_s);
          timeouts_in_a_row = absl::StartsWith(run.error, "timed out") ? timeouts_in_a_row + 1 : 0;
          if (run.ok) {
            r.set_hypothesis(run.text);
            const common::ErrorRates rates = common::ComputeErrorRates(r.reference(), run.text);
            if (rates.ref_words == 0) {
              r.set_error("the reference text has no words");
            } else {
              r.set_wer(rates.wer);
              r.set_cer(rates.cer);
              wers.push_back(rates.wer);
              cers.push_back(rates.cer);
            }
          } else {
            r.set_error(run.error);
          }
        }
      }
      if (!r.error().empty()) {
        ++failures;
        if (first_failure.empty()) {
          first_failure = absl::StrCat("request ", r.request_id(), ": ", r.error());
        }
      }
      csv.Field(static_cast<uint64_t>(li + 1))
          .Field(level.series)
          .Field(absl::StrCat(level.rate > 0 ? level.rate : level.concurrency))
          .Field(r.agent())
          .Field(r.request_id())
          .Field(r.text_index())
          .Field(r.error().empty() ? absl::StrFormat("%.6g", r.wer()) : "")
          .Field(r.error().empty() ? absl::StrFormat("%.6g", r.cer()) : "")
          .Field(absl::StrFormat("%.3f", r.audio_s()))
          .Field(absl::StrFormat("%.3f", r.cpu_s()))
          .Field(r.capped() ? "true" : "false")
          .Field(r.error())
          .Field(r.reference())
          .Field(r.hypothesis())
          .Field(r.wav())
          .EndRow();
    }
    stats.set_samples(static_cast<uint32_t>(level.asr_samples.size()));
    stats.set_recognised(static_cast<uint32_t>(wers.size()));
    stats.set_failed(failures);
    if (!wers.empty()) {
      stats.set_wer_mean(Mean(wers));
      stats.set_wer_median(Median(wers));
      stats.set_cer_mean(Mean(cers));
      stats.set_cer_median(Median(cers));
    }
    stats.set_wall_s(static_cast<double>(common::SteadyNowNs() - began) / 1e9);
    summary.set_samples(summary.samples() + stats.samples());
    summary.set_recognised(summary.recognised() + stats.recognised());
    summary.set_failed(summary.failed() + stats.failed());
    summary.set_cpu_s(summary.cpu_s() + stats.cpu_s());
    if (failures > 0) {
      session.add_warnings(absl::StrCat("asr: ", LevelTitle(level), ": no transcript for ",
                                        failures, " of ", stats.samples(),
                                        " sample(s) (first: ", first_failure, ")"));
    }
    if (plan.sample_per_level() > 0 &&
        level.asr_samples.size() < static_cast<size_t>(plan.sample_per_level())) {
      session.add_warnings(absl::StrCat("asr: ", LevelTitle(level), ": ", level.asr_samples.size(),
                                        " of ", plan.sample_per_level(),
                                        " sample(s) (fewer successful requests)"));
    }
  }
  summary.set_wall_s(static_cast<double>(common::SteadyNowNs() - all_began) / 1e9);
  FillAsrBaselines(session);
  if (auto st = WriteAtomically(fs::path(dir) / "asr.csv", csv_text); !st.ok()) {
    session.add_warnings(absl::StrCat("asr: ", st.message()));
  }
}

void FillAsrBaselines(v1::Session& session) {
  // The lowest load of each series with recognised samples.
  std::map<std::string, int> lowest;  // series -> index into levels
  for (int i = 0; i < session.levels_size(); ++i) {
    const v1::LevelStats& l = session.levels(i);
    if (l.asr().recognised() == 0) continue;
    auto [it, inserted] = lowest.emplace(l.series(), i);
    if (!inserted && Load(l) < Load(session.levels(it->second))) it->second = i;
  }
  // Each series' baseline: its lowest level's WER and CER per text (a mean when the text was
  // sampled more than once).
  struct PerText {
    double wer = 0, cer = 0;
    int n = 0;
  };
  std::map<std::string, std::map<int32_t, PerText>> base_texts;
  std::map<std::string, v1::LevelStats> base;
  for (const auto& [series, i] : lowest) {
    base[series] = session.levels(i);
    for (const v1::AsrResult& r : session.levels(i).asr().results()) {
      if (!r.error().empty()) continue;
      PerText& t = base_texts[series][r.text_index()];
      t.wer += r.wer();
      t.cer += r.cer();
      ++t.n;
    }
  }
  for (int i = 0; i < session.levels_size(); ++i) {
    v1::LevelStats& l = *session.mutable_levels(i);
    if (l.asr().recognised() == 0) continue;
    const v1::LevelStats& b = base[l.series()];
    const std::map<int32_t, PerText>& texts = base_texts[l.series()];
    v1::AsrLevel& a = *l.mutable_asr();
    a.set_baseline_load(Load(b));
    if (i == lowest[l.series()]) continue;  // the baseline itself: 0
    // Matched by text: a deterministic engine gives the same audio, so the same transcript,
    // for the same text at every level, and its change is exactly 0.
    double wer = 0, cer = 0;
    int matched = 0;
    for (const v1::AsrResult& r : a.results()) {
      auto it = texts.find(r.text_index());
      if (!r.error().empty() || it == texts.end()) continue;
      wer += r.wer() - it->second.wer / it->second.n;
      cer += r.cer() - it->second.cer / it->second.n;
      ++matched;
    }
    if (matched > 0) {
      a.set_wer_delta(wer / matched);
      a.set_cer_delta(cer / matched);
      continue;
    }
    a.set_wer_delta(a.wer_mean() - b.asr().wer_mean());
    a.set_cer_delta(a.cer_mean() - b.asr().cer_mean());
    session.add_warnings(absl::StrCat(
        "asr: ", StatsTitle(session, l), ": no sampled text in common with the lowest level (",
        StatsTitle(session, b), "): its WER change compares different texts"));
  }
}

}  // namespace ttsbench::coordinator
