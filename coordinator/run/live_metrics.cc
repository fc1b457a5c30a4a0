#include "coordinator/run/live_metrics.h"

#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <exception>

#include "absl/strings/str_cat.h"

namespace ttsbench::coordinator {

class LiveMetrics::Impl {
 public:
  Impl(const std::string& address, const std::string& session)
      : exposer_(address),
        registry_(std::make_shared<prometheus::Registry>()),
        done_(prometheus::BuildGauge()
                  .Name("ttsbench_level_requests_done")
                  .Help("Measured requests finished in the current level")
                  .Register(*registry_)),
        errors_(prometheus::BuildGauge()
                    .Name("ttsbench_level_request_errors")
                    .Help("Measured requests of the current level that failed")
                    .Register(*registry_)),
        rps_(prometheus::BuildGauge()
                 .Name("ttsbench_level_requests_per_second")
                 .Help("Finished requests per second since the level started")
                 .Register(*registry_)),
        planned_(prometheus::BuildGauge()
                     .Name("ttsbench_level_requests_planned")
                     .Help("Measured requests planned for the level (0: bound by time)")
                     .Register(*registry_)),
        elapsed_(prometheus::BuildGauge()
                     .Name("ttsbench_level_elapsed_seconds")
                     .Help("Seconds since the level started")
                     .Register(*registry_)),
        session_(session) {
    exposer_.RegisterCollectable(registry_);
  }

  void Update(const LevelProgress& p) {
    const std::map<std::string, std::string> labels = {{"session", session_}, {"level", p.level}};
    done_.Add(labels).Set(static_cast<double>(p.done));
    errors_.Add(labels).Set(static_cast<double>(p.errors));
    rps_.Add(labels).Set(p.elapsed_s > 0 ? static_cast<double>(p.done) / p.elapsed_s : 0);
    planned_.Add(labels).Set(static_cast<double>(p.planned));
    elapsed_.Add(labels).Set(p.elapsed_s);
  }

  int port() const {
    auto ports = exposer_.GetListeningPorts();
    return ports.empty() ? 0 : ports.front();
  }

 private:
  prometheus::Exposer exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& done_;
  prometheus::Family<prometheus::Gauge>& errors_;
  prometheus::Family<prometheus::Gauge>& rps_;
  prometheus::Family<prometheus::Gauge>& planned_;
  prometheus::Family<prometheus::Gauge>& elapsed_;
  std::string session_;
};

absl::StatusOr<std::unique_ptr<LiveMetrics>> LiveMetrics::Start(const std::string& address,
                                                                const std::string& session) {
  try {
    return std::unique_ptr<LiveMetrics>(new LiveMetrics(std::make_unique<Impl>(address, session)));
  } catch (const std::exception& e) {
    // civetweb reports a port it cannot bind by throwing.
    return absl::UnavailableError(absl::StrCat("--metrics-addr ", address, ": ", e.what()));
  }
}

LiveMetrics::LiveMetrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LiveMetrics::~LiveMetrics() = default;
void LiveMetrics::Update(const LevelProgress& progress) { impl_->Update(progress); }
int LiveMetrics::port() const { return impl_->port(); }

}  // namespace ttsbench::coordinator
