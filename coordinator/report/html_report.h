// report.html: one self-contained page per session (inline CSS, plots as data: URIs, no
// scripts, nothing fetched from anywhere), so it can be mailed or attached to a CI run as is.
#ifndef TTSBENCH_COORDINATOR_HTML_REPORT_H_
#define TTSBENCH_COORDINATOR_HTML_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// The page: plan as run (values of header fields that look like credentials and URL passwords
// redacted), environment and agents, every level with every summary.csv metric, streaming and
// open-loop details, SLO verdicts, warnings, and the PNGs in `pngs` (paths; relative ones are
// looked up under `dir` too) embedded as base64. Every string from the session is HTML-escaped.
absl::StatusOr<std::string> RenderHtmlReport(const std::string& dir, const v1::Session& session,
                                             const std::vector<std::string>& pngs);

// Writes RenderHtmlReport() to `dir`/report.html (temp file + rename).
absl::Status WriteHtmlReport(const std::string& dir, const v1::Session& session,
                             const std::vector<std::string>& pngs);

// &, <, >, " and ' as entities.
std::string HtmlEscape(const std::string& s);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_HTML_REPORT_H_
