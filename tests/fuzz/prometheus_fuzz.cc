// libFuzzer target for the Prometheus text parser (telemetry scrapes read whatever a target
// sends): any bytes give samples or a one-line error, never a crash, hang or sanitizer report;
// every sample's series key parses back to the same name and labels.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/prometheus_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto samples = ttsbench::common::ParsePrometheusText(text, 10000);
  if (!samples.ok()) {
    if (samples.status().message().find("line ") != 0) std::abort();  // names its line
    return 0;
  }
  for (const ttsbench::common::PromSample& s : *samples) {
    // The key is itself a sample line's name and labels: with a value it parses back whole.
    const std::string line = ttsbench::common::PromSeriesKey(s) + " 1\n";
    auto again = ttsbench::common::ParsePrometheusText(line);
    if (!again.ok() || again->size() != 1 || (*again)[0].name != s.name ||
        (*again)[0].labels.size() != s.labels.size()) {
      std::abort();
    }
  }
  return 0;
}
