// Live Prometheus metrics during a run (--metrics-addr): what the progress line shows, for
// dashboards (deploy/grafana/ttsbench-dashboard.json) and alerting while a long run goes on.
#ifndef TTSBENCH_COORDINATOR_LIVE_METRICS_H_
#define TTSBENCH_COORDINATOR_LIVE_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/run/orchestrator.h"

namespace ttsbench::coordinator {

class LiveMetrics {
 public:
  // Serves /metrics on `address` (HOST:PORT). Unavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<LiveMetrics>> Start(const std::string& address,
                                                            const std::string& session);
  ~LiveMetrics();
  void Update(const LevelProgress& progress);
  // The port actually bound (for ":0").
  int port() const;

 private:
  class Impl;
  explicit LiveMetrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_LIVE_METRICS_H_
