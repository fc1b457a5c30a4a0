// How telemetry, cost and energy are shown: the console's lines, summary.csv's columns,
// telemetry.png and report.html's section (the figures come from coordinator/run/telemetry.h).
#ifndef TTSBENCH_COORDINATOR_REPORT_TELEMETRY_REPORT_H_
#define TTSBENCH_COORDINATOR_REPORT_TELEMETRY_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/csv.h"
#include "coordinator/run/orchestrator.h"
#include "coordinator/run/telemetry.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// summary.csv's columns of cost, energy and each summarised series (header when `level` is
// null): Cost_per_Audio_Hour_USD, Cost_per_M_Chars_USD, Replica_Hours, Energy_J, Audio_s_per_J,
// then "<name> <series> mean|p95|max" per series the session summarised; none at all in a
// session without price, energy or telemetry.
void TelemetryCostColumns(const v1::Session& session, const v1::LevelStats* level,
                          common::CsvWriter& csv);
// The console's lines: each level's telemetry (mean / p95 / max), cost and energy; "" if none.
std::string TelemetryCostConsole(const v1::Session& session);
// telemetry.png: one panel per summarised series (6 at most) from telemetry.csv, on the
// session's timeline with the level starts dotted, `width` wide and as tall as the panels need
// (at least `height`; the terminal is set back to width x height after); data in `work_dir`.
// Returns the gnuplot commands ("" when nothing was summarised) and adds the PNG's name to `pngs`.
absl::StatusOr<std::string> TelemetryPlot(const std::string& csv_path, const v1::Session& session,
                                          const std::vector<LevelData>& levels,
                                          const std::string& work_dir, int width, int height,
                                          std::vector<std::string>* pngs);
// report.html's section: scrape targets, per-level summaries, cost and energy ("" if none).
std::string TelemetryHtml(const v1::Session& session);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_REPORT_TELEMETRY_REPORT_H_
