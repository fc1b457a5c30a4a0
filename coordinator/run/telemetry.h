// Server and GPU telemetry: the coordinator scrapes Prometheus text endpoints (--scrape, plan
// `telemetry:`) on its own thread for the whole run, keeps the chosen series on its steady
// clock, and summarises them per level (mean, max, p95; energy from power series). Also the
// cost figures of plan `cost:`. docs/DESIGN.md "Telemetry" and "Cost and energy".
#ifndef TTSBENCH_COORDINATOR_RUN_TELEMETRY_H_
#define TTSBENCH_COORDINATOR_RUN_TELEMETRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/prometheus_text.h"
#include "coordinator/run/orchestrator.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// A metric whose meaning is known: its friendly name and unit, the factor from the exposed unit
// (Triton's utilisation is 0-1: x100 for %), and whether it is a power draw in W (energy).
struct KnownMetric {
  const char* metric;    // as exposed
  const char* key;       // selector: gpu_util, power, fb_used, running, waiting, ...
  const char* friendly;  // "GPU util"
  const char* unit;      // "%", "W", "MiB", "requests", "/s", "cores"
  double scale;
  bool power;
  const char* sum_over;  // a label summed away before storing ("cpu" for node_cpu), or nullptr
};

// The known-names table, or nullptr.
const KnownMetric* FindKnownMetric(absl::string_view metric);
const std::vector<KnownMetric>& KnownMetrics();

// Whether the plan's `telemetry.series` selectors choose this sample's metric (empty: the known
// names). Histogram buckets and summary quantiles only when named exactly.
bool SeriesSelected(const std::vector<std::string>& selectors, const common::PromSample& sample);

// One stored series of one target: points on the coordinator's steady clock (ns).
struct TelemetrySeries {
  std::string target;  // display URL (no user info)
  std::string key;     // name{labels} (common::PromSeriesKey)
  std::string metric;
  bool counter = false;
  std::vector<int64_t> t_ns;
  std::vector<double> value;
};

// The samples of one scrape at `t_ns` merged into `series` (keyed by target and series key;
// `sum_over` labels of known metrics summed away). Returns how many series it added.
size_t StoreScrape(const std::string& target, int64_t t_ns,
                   const std::vector<std::string>& selectors,
                   const std::vector<common::PromSample>& samples,
                   std::vector<TelemetrySeries>& series, size_t max_series);

// Per-series summaries over [t0_ns, t1_ns] (points inside the window; counters as the rate
// between consecutive points whose later point is inside), scaled to the friendly unit.
std::vector<v1::TelemetrySummary> SummariseWindow(const std::vector<TelemetrySeries>& series,
                                                  int64_t t0_ns, int64_t t1_ns);

// Joules: the integral over [t0_ns, t1_ns] of every power series (piecewise linear between
// points, the nearest point held beyond the first and last), summed. Series with no point
// within `reach_ns` of the window are left out; 0 (unknown) when none is left, or when one of
// them has no point inside the window (the level fell between scrapes: a value read outside,
// e.g. the idle draw between levels, is not the level's).
double EnergyJoules(const std::vector<TelemetrySeries>& series, int64_t t0_ns, int64_t t1_ns,
                    int64_t reach_ns);
// Whether any power series (W) has a point.
bool HasPowerSeries(const std::vector<TelemetrySeries>& series);

// telemetry.csv: t_s (seconds on the session timeline: steady - epoch_ns), target, series,
// value (as exposed), rows in time order.
std::string TelemetryCsv(const std::vector<TelemetrySeries>& series, int64_t epoch_ns);

// The window of a level on the session timeline (ns from the epoch): [min(start), max(end)] of
// its measured, not cancelled requests (T_wall's span). False when it has none.
bool LevelWindow(const LevelData& level, int64_t* t0_ns, int64_t* t1_ns);

// Scrapes every target every interval on its own thread and io_context until Stop().
class TelemetryScraper {
 public:
  // Validates the URLs (InvalidArgument naming the one that is wrong) and starts scraping.
  // `ca_file`/`insecure` as for the TTS target (https targets).
  static absl::StatusOr<std::unique_ptr<TelemetryScraper>> Start(const v1::Telemetry& plan,
                                                                 const std::string& ca_file,
                                                                 bool insecure);
  ~TelemetryScraper();
  // Stops at once (in-flight scrapes abandoned) and joins the thread. Idempotent.
  void Stop();
  // After Stop(): the stored series, per-target counts and one warning per failing target.
  std::vector<TelemetrySeries> TakeSeries();
  std::vector<v1::TelemetryTarget> Targets() const;
  std::vector<std::string> Warnings() const;

 private:
  class Impl;
  explicit TelemetryScraper(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Fills the telemetry of `session` from what `scraper` stored (per-level summaries, energy and
// audio-seconds per joule, telemetry_targets, warnings) and writes telemetry.csv into `dir`
// when there is any sample. `levels` are the session's levels, in order.
absl::Status AddTelemetry(TelemetryScraper& scraper, const v1::Telemetry& plan,
                          const std::vector<LevelData>& levels, int64_t epoch_ns,
                          const std::string& dir, v1::Session& session);

// Cost of `level` (plan.cost): replica-hours = replicas x T_wall / 3600; cost per audio-hour =
// replicas x price / ASPS; per million characters = replicas x price x 1e6 / (3600 x CPS).
// Replicas: cost.replicas, else capacity.replicas, else 1. Nothing without a price.
void ApplyCost(const v1::Plan& plan, v1::LevelStats& level);
int ReplicasOf(const v1::Plan& plan);
// The capacity search's cost: the level found's figures, and monthly cost (730 h) of
// replicas_needed (or the plan's replicas).
void ApplyCapacityCost(const v1::Plan& plan, const v1::Session& session,
                       v1::CapacityResult& capacity);

inline constexpr double kHoursPerMonth = 730;

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_RUN_TELEMETRY_H_
