// A parser of the Prometheus text exposition format 0.0.4, for the endpoints the coordinator
// scrapes (vLLM /metrics, Triton :8002/metrics, DCGM exporter, node_exporter, the synth).
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/ ("Text format details").
#ifndef TTSBENCH_COMMON_PROMETHEUS_TEXT_H_
#define TTSBENCH_COMMON_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::common {

enum class PromType { kUntyped, kCounter, kGauge, kHistogram, kSummary };

// One sample line. `type` is its family's `# TYPE` (a histogram's _bucket/_sum/_count lines and
// a summary's _sum/_count lines belong to the family of their base name).
struct PromSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped, in written order
  double value = 0;                                         // NaN and +-Inf included
  std::optional<int64_t> timestamp_ms;
  PromType type = PromType::kUntyped;
};

// Every sample of an exposition, in order. The first line that is not the format is an error
// naming its line number ("line 7: ..."); HELP text and other comments are skipped. A body
// larger than `max_samples` samples is an error too (a misconfigured target, not telemetry).
absl::StatusOr<std::vector<PromSample>> ParsePrometheusText(absl::string_view text,
                                                            size_t max_samples = 1000000);

// The series' identity as written in the format: name{a="x",b="y"} with the labels sorted by
// name and their values escaped (\\ \" \n), or the bare name when it has none.
std::string PromSeriesKey(const PromSample& sample);

// "counter", "gauge", ... as in a TYPE line.
absl::string_view PromTypeName(PromType type);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_PROMETHEUS_TEXT_H_
