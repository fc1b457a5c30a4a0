// PNG plots of a session, drawn by gnuplot run as a child process (never through a shell).
#ifndef TTSBENCH_COORDINATOR_PLOTS_H_
#define TTSBENCH_COORDINATOR_PLOTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/run/orchestrator.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

struct PlotOptions {
  std::string gnuplot = "gnuplot";  // program name (searched in PATH) or path
  double timeout_s = 30;            // gnuplot is killed after this
  int width = 1000;
  int height = 600;
};

// Writes into `dir`, one PNG each when there is data for it:
//   throughput.png      ASPS (left axis) and RPS (right axis) vs concurrency, or vs offered rate
//                       in open loop; one line pair per series
//   latency.png         latency and TTFA p50/p95/p99 vs load, two panels
//   ttfa_cdf.png        empirical CDF of TTFA per level, from the raw records
//   rtf.png             RTF distribution per level: box p25-p75, whiskers p5-p95, median, p99, mean
//   timeline.png        requests in flight and completions/s over the session, all agents merged
//   asps_by_series.png  ASPS per level, one bar per series (only with more than one series)
//   audio_quality.png   with audio checks: duration ratio and RMS-envelope correlation against
//                       each text's answer at the lowest level, median and worst per level
//   ftts_cdf.png        paced text: CDF of first-token-to-speech per level
//   paced_timeline.png  paced text: one request's text pieces sent vs audio received over time
//   conversation_turns.png  conversations: FTTS (TTFA unpaced) p50/p95 by turn index per level
// `levels` are parallel to session.levels() (matched by series and load when the sizes differ).
// `written` receives the full paths of the PNGs produced. When the gnuplot program cannot be
// started the status is Unavailable with the message "gnuplot not found: plots skipped", meant to
// be printed as a one-line notice; the session's other files do not depend on plots.
absl::Status WritePlots(const std::string& dir, const v1::Session& session,
                        const std::vector<LevelData>& levels, std::vector<std::string>* written,
                        const PlotOptions& options = {});

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_PLOTS_H_
