// The session's outputs: summary.csv, requests.csv, session.json and the console table.
#ifndef TTSBENCH_COORDINATOR_REPORT_H_
#define TTSBENCH_COORDINATOR_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/orchestrator.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// Creates `dir` (and parents) and proves it writable, before any load is sent.
absl::Status PrepareOutputDir(const std::string& dir);

// Writes the three files into `dir`, each atomically (temp file + rename).
absl::Status WriteSessionFiles(const std::string& dir, const v1::Session& session,
                               const std::vector<LevelData>& levels);

std::string SummaryCsv(const v1::Session& session);
std::string RequestsCsv(const v1::Session& session, const std::vector<LevelData>& levels);

// The Python benchmark's table ("Conc ASPS RTF RPS CPS TTFA p95 Success") and best lines.
std::string ConsoleTable(const std::string& title, const v1::Session& session);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_REPORT_H_
