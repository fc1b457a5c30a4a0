// Audio integrity and consistency under load (plan audio_checks, issue 14): from the agents'
// per-request AudioAnalysis, a verdict per level on what the listener got (silences, clipping,
// formats, truncation, duration per character) and on whether each text still sounds as it did
// at the lowest level, and the cliff: the first level where either turns bad. Definitions in
// docs/DESIGN.md "Audio integrity and consistency".
#ifndef TTSBENCH_COORDINATOR_REPORT_AUDIO_QUALITY_H_
#define TTSBENCH_COORDINATOR_REPORT_AUDIO_QUALITY_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coordinator/run/orchestrator.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// One measured, successful answer whose audio the agent decoded.
struct AnalysedAnswer {
  int32_t text_index = 0;
  int32_t chars = 0;
  int64_t start_ns = 0;
  const v1::AudioAnalysis* analysis = nullptr;  // not owned; decoded() is true
};

// One level's analysed answers, in the session's level order.
struct AudioQualityLevel {
  std::string series;
  int concurrency = 0;
  double rate = 0;
  std::vector<AnalysedAnswer> answers;
};

// The plan's bounds with defaults for what it leaves unset (0), as Session.audio_quality keeps
// them: duration ratio [0.9, 1.1], envelope correlation 0.8, outlier |z| 3.5, 5% of a level,
// clipping 0.001, edge silence 1000 ms, stutter 300 ms.
v1::AudioQuality AudioQualityBounds(const v1::AudioChecks& checks);

// Median and robust scale of a sample: scale = max(1.4826 * MAD, 1% of |median|). The floor keeps
// a sample of identical values (a deterministic server) from making every tiny difference an
// outlier. Both 0 for an empty sample.
struct RobustScale {
  double median = 0;
  double scale = 0;
};
RobustScale RobustScaleOf(std::vector<double> values);

// (x - median) / scale; 0 when x equals the median, +-infinity when the scale is 0 and it does not.
double RobustZ(double x, const RobustScale& s);

// Correlation of two RMS envelopes (dBFS per window), `b` compared with the reference `a`:
// values are clamped to [-100, 0] dBFS; when the window lengths differ, `b` is read on `a`'s
// grid (window i of `a` takes the window of `b` holding its centre); both are aligned at their
// first window and compared over the common length. Pearson's r, except where it is undefined:
// an envelope whose standard deviation over that length is below 0.5 dB is flat, and two flat
// envelopes correlate 1 when their means lie within 3 dB (else 0), a flat and a varying one 0.
// nullopt when the common length is under 3 windows.
std::optional<double> EnvelopeCorrelation(std::span<const float> a, double a_window_ms,
                                          std::span<const float> b, double b_window_ms);

// Fills session->levels(i).audio_integrity() and audio_consistency() for each `levels[i]`
// (parallel to session->levels()) and session->audio_quality(): bounds and the cliff per series.
void JudgeAudioQuality(const v1::AudioChecks& checks, const std::vector<AudioQualityLevel>& levels,
                       v1::Session* session);

// The judge's input from the records the coordinator kept: measured, successful, decoded answers.
std::vector<AudioQualityLevel> AudioQualityInput(const std::vector<LevelData>& levels);

// When the plan's audio checks are on: AudioQualityInput + JudgeAudioQuality. The session's
// levels must already be built, parallel to `levels`.
void ApplyAudioQuality(const v1::Plan& plan, const std::vector<LevelData>& levels,
                       v1::Session* session);

// audio_quality.csv: one row per level (DESIGN.md lists the columns); "" without audio checks.
std::string AudioQualityCsv(const v1::Session& session);

// Console lines under the level table: per level the verdicts, then the cliff(s) or "no cliff";
// "" without audio checks.
std::string AudioQualityConsole(const v1::Session& session);

// report.html's section (heading, table, cliff line), HTML-escaped; "" without audio checks.
std::string AudioQualityHtml(const v1::Session& session);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_REPORT_AUDIO_QUALITY_H_
