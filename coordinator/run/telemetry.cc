#include "coordinator/run/telemetry.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/client/tls.h"
#include "common/clock.h"
#include "common/csv.h"
#include "common/stats.h"
#include "common/url.h"

namespace ttsbench::coordinator {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr double kNsPerS = 1e9;
// A metrics page above this is not telemetry (node_exporter's is ~100 KiB, vLLM's ~50 KiB).
constexpr uint64_t kMaxBody = 16 << 20;
// Series kept per target: a bound on memory when a selector matches far more than meant.
constexpr size_t kMaxSeriesPerTarget = 2000;

}  // namespace

// Metric names as documented by their exporters:
// - DCGM exporter default counters (etc/default-counters.csv,
//   https://docs.nvidia.com/datacenter/dcgm/latest/reference/dcgm-exporter-metrics.html):
//   DCGM_FI_DEV_GPU_UTIL (%), DCGM_FI_DEV_POWER_USAGE (W), DCGM_FI_DEV_FB_USED (MiB),
//   DCGM_FI_DEV_MEM_COPY_UTIL (%).
// - vLLM production metrics (https://docs.vllm.ai/en/stable/usage/metrics/):
//   vllm:num_requests_running, vllm:num_requests_waiting, vllm:gpu_cache_usage_perc (0-1).
// - Triton (https://github.com/triton-inference-server/server docs/user_guide/metrics.md):
//   nv_gpu_utilization (0-1), nv_gpu_power_usage (W), nv_gpu_memory_used_bytes,
//   nv_inference_pending_request_count, nv_inference_request_success (counter).
// - node_exporter: node_cpu_seconds_total{cpu,mode} (counter; summed over cpu: cores busy per
//   mode), node_load1, node_memory_MemAvailable_bytes.
// - ttsbench-synth: the names above from its slot model, plus ttsbench_synth_requests_total.
const std::vector<KnownMetric>& KnownMetrics() {
  static const std::vector<KnownMetric> kTable = {
      {"DCGM_FI_DEV_GPU_UTIL", "gpu_util", "GPU util", "%", 1, false, nullptr},
      {"DCGM_FI_DEV_POWER_USAGE", "power", "GPU power", "W", 1, true, nullptr},
      {"DCGM_FI_DEV_FB_USED", "fb_used", "GPU FB used", "MiB", 1, false, nullptr},
      {"DCGM_FI_DEV_MEM_COPY_UTIL", "mem_util", "GPU mem util", "%", 1, false, nullptr},
      {"nv_gpu_utilization", "gpu_util", "GPU util", "%", 100, false, nullptr},
      {"nv_gpu_power_usage", "power", "GPU power", "W", 1, true, nullptr},
      {"nv_gpu_memory_used_bytes", "fb_used", "GPU mem used", "MiB", 1.0 / 1048576, false, nullptr},
      {"nv_inference_pending_request_count", "waiting", "waiting", "requests", 1, false, nullptr},
      {"nv_inference_request_success", "requests", "requests done", "/s", 1, false, nullptr},
      {"vllm:num_requests_running", "running", "running", "requests", 1, false, nullptr},
      {"vllm:num_requests_waiting", "waiting", "waiting", "requests", 1, false, nullptr},
      {"vllm:gpu_cache_usage_perc", "kv_cache", "KV cache", "%", 100, false, nullptr},
      {"node_cpu_seconds_total", "cpu", "CPU", "cores", 1, false, "cpu"},
      {"node_load1", "load", "load 1m", "", 1, false, nullptr},
      {"node_memory_MemAvailable_bytes", "mem_available", "mem available", "MiB", 1.0 / 1048576,
       false, nullptr},
      {"ttsbench_synth_requests_total", "requests", "requests done", "/s", 1, false, nullptr},
  };
  return kTable;
}

const KnownMetric* FindKnownMetric(absl::string_view metric) {
  for (const KnownMetric& k : KnownMetrics()) {
    if (metric == k.metric) return &k;
  }
  return nullptr;
}

bool SeriesSelected(const std::vector<std::string>& selectors, const common::PromSample& sample) {
  const bool detail = std::any_of(sample.labels.begin(), sample.labels.end(), [](const auto& l) {
    return l.first == "le" || l.first == "quantile";
  });
  if (selectors.empty()) return !detail && FindKnownMetric(sample.name) != nullptr;
  const KnownMetric* known = FindKnownMetric(sample.name);
  for (const std::string& s : selectors) {
    if (s == sample.name) return true;
    if (detail) continue;
    if (known != nullptr && s == known->key) return true;
    if (!s.empty() && s.back() == '*' &&
        absl::StartsWith(sample.name, absl::string_view(s).substr(0, s.size() - 1))) {
      return true;
    }
  }
  return false;
}

size_t StoreScrape(const std::string& target, int64_t t_ns,
                   const std::vector<std::string>& selectors,
                   const std::vector<common::PromSample>& samples,
                   std::vector<TelemetrySeries>& series, size_t max_series) {
  // This scrape's values by series key, `sum_over` labels summed away first.
  std::map<std::string, std::pair<double, const common::PromSample*>> values;
  for (const common::PromSample& s : samples) {
    if (!SeriesSelected(selectors, s)) continue;
    const KnownMetric* known = FindKnownMetric(s.name);
    std::string key;
    if (known != nullptr && known->sum_over != nullptr) {
      common::PromSample reduced = s;
      std::erase_if(reduced.labels, [&](const auto& l) { return l.first == known->sum_over; });
      key = common::PromSeriesKey(reduced);
    } else {
      key = common::PromSeriesKey(s);
    }
    auto [it, added] = values.try_emplace(std::move(key), 0.0, &s);
    it->second.first += s.value;
  }
  size_t of_target = 0;
  std::map<std::string, size_t, std::less<>> index;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].target != target) continue;
    ++of_target;
    index.emplace(series[i].key, i);
  }
  size_t added = 0;
  for (const auto& [key, entry] : values) {
    auto it = index.find(key);
    size_t at;
    if (it != index.end()) {
      at = it->second;
    } else {
      if (of_target + added >= max_series) continue;
      TelemetrySeries s;
      s.target = target;
      s.key = key;
      s.metric = entry.second->name;
      s.counter = entry.second->type == common::PromType::kCounter ||
                  (entry.second->type == common::PromType::kUntyped &&
                   absl::EndsWith(entry.second->name, "_total"));
      series.push_back(std::move(s));
      at = series.size() - 1;
      ++added;
    }
    series[at].t_ns.push_back(t_ns);
    series[at].value.push_back(entry.first);
  }
  return added;
}

std::vector<v1::TelemetrySummary> SummariseWindow(const std::vector<TelemetrySeries>& series,
                                                  int64_t t0_ns, int64_t t1_ns) {
  std::vector<v1::TelemetrySummary> out;
  std::vector<double> values;
  for (const TelemetrySeries& s : series) {
    values.clear();
    for (size_t i = 0; i < s.t_ns.size(); ++i) {
      if (s.t_ns[i] < t0_ns || s.t_ns[i] > t1_ns) continue;
      if (!s.counter) {
        if (std::isfinite(s.value[i])) values.push_back(s.value[i]);
        continue;
      }
      // A counter's rate since its previous scrape; a reset (restart) gives no rate.
      if (i == 0 || s.t_ns[i] <= s.t_ns[i - 1] || s.value[i] < s.value[i - 1]) continue;
      const double rate = (s.value[i] - s.value[i - 1]) /
                          (static_cast<double>(s.t_ns[i] - s.t_ns[i - 1]) / kNsPerS);
      if (std::isfinite(rate)) values.push_back(rate);
    }
    if (values.empty()) continue;
    const KnownMetric* known = FindKnownMetric(s.metric);
    const double scale = known != nullptr ? known->scale : 1;
    for (double& v : values) v *= scale;
    const common::Summary sum = common::Summarize(values);
    v1::TelemetrySummary& t = out.emplace_back();
    t.set_target(s.target);
    t.set_series(s.key);
    t.set_name(known != nullptr ? known->friendly : s.metric);
    t.set_unit(known != nullptr ? known->unit : (s.counter ? "/s" : ""));
    t.set_mean(sum.mean);
    t.set_max(sum.max);
    t.set_p95(sum.p95);
    t.set_samples(static_cast<uint32_t>(sum.count));
  }
  return out;
}

namespace {

// Value of a piecewise-linear series at t, holding the first and last points beyond its ends.
double ValueAt(const TelemetrySeries& s, int64_t t) {
  const auto it = std::lower_bound(s.t_ns.begin(), s.t_ns.end(), t);
  if (it == s.t_ns.begin()) return s.value.front();
  if (it == s.t_ns.end()) return s.value.back();
  const size_t i = static_cast<size_t>(it - s.t_ns.begin());
  if (s.t_ns[i] == t) return s.value[i];
  const double f =
      static_cast<double>(t - s.t_ns[i - 1]) / static_cast<double>(s.t_ns[i] - s.t_ns[i - 1]);
  return s.value[i - 1] + f * (s.value[i] - s.value[i - 1]);
}

}  // namespace

double EnergyJoules(const std::vector<TelemetrySeries>& series, int64_t t0_ns, int64_t t1_ns,
                    int64_t reach_ns) {
  if (t1_ns <= t0_ns) return 0;
  double joules = 0;
  bool any = false;
  for (const TelemetrySeries& s : series) {
    const KnownMetric* known = FindKnownMetric(s.metric);
    if (known == nullptr || !known->power || s.t_ns.empty()) continue;
    // A series with no point near the window says nothing about it (a GPU not exported then).
    if (s.t_ns.back() < t0_ns - reach_ns || s.t_ns.front() > t1_ns + reach_ns) continue;
    // Near the window but no point inside it: the level fell between two scrapes, and a value
    // read outside it (the idle draw between levels) would stand for the whole level. Unknown,
    // and a sum missing one GPU would be low: no energy for the level at all.
    const auto inside = std::lower_bound(s.t_ns.begin(), s.t_ns.end(), t0_ns);
    if (inside == s.t_ns.end() || *inside > t1_ns) return 0;
    any = true;
    // Trapezoids between the window's ends and every point inside it; at the edges the value is
    // interpolated between the first (last) inside point and the nearest outside one, or that
    // inside point held when there is none.
    int64_t prev_t = t0_ns;
    double prev_v = ValueAt(s, t0_ns);
    for (size_t i = 0; i < s.t_ns.size(); ++i) {
      if (s.t_ns[i] <= t0_ns || s.t_ns[i] >= t1_ns) continue;
      joules += (prev_v + s.value[i]) / 2 * static_cast<double>(s.t_ns[i] - prev_t) / kNsPerS;
      prev_t = s.t_ns[i];
      prev_v = s.value[i];
    }
    const double end_v = ValueAt(s, t1_ns);
    joules += (prev_v + end_v) / 2 * static_cast<double>(t1_ns - prev_t) / kNsPerS;
  }
  return any ? joules : 0;
}

bool HasPowerSeries(const std::vector<TelemetrySeries>& series) {
  return std::any_of(series.begin(), series.end(), [](const TelemetrySeries& s) {
    const KnownMetric* known = FindKnownMetric(s.metric);
    return known != nullptr && known->power && !s.t_ns.empty();
  });
}

std::string TelemetryCsv(const std::vector<TelemetrySeries>& series, int64_t epoch_ns) {
  std::vector<std::tuple<int64_t, size_t, size_t>> rows;  // time, series, point
  for (size_t s = 0; s < series.size(); ++s) {
    for (size_t i = 0; i < series[s].t_ns.size(); ++i) rows.emplace_back(series[s].t_ns[i], s, i);
  }
  std::sort(rows.begin(), rows.end());
  std::string out;
  common::CsvWriter w(&out);
  w.Row({"t_s", "target", "series", "value"});
  for (const auto& [t, s, i] : rows) {
    w.Field(absl::StrFormat("%.3f", static_cast<double>(t - epoch_ns) / kNsPerS))
        .Field(series[s].target)
        .Field(series[s].key)
        .Field(absl::StrFormat("%.17g", series[s].value[i]))
        .EndRow();
  }
  return out;
}

bool LevelWindow(const LevelData& level, int64_t* t0_ns, int64_t* t1_ns) {
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  level.records.ForEach([&](const common::RecordStore::Chunk& c, size_t i) {
    if (c.warmup(i) || c.error[i] == v1::ERROR_CANCELLED) return;
    lo = std::min(lo, c.start_ns[i]);
    hi = std::max(hi, c.end_ns[i]);
  });
  if (lo > hi) return false;
  *t0_ns = lo;
  *t1_ns = hi;
  return true;
}

// ------------------------------------------------------------------------------------ scraper

class TelemetryScraper::Impl {
 public:
  struct Target {
    common::Url url;
    std::string display;  // scheme://host:port/path, no user info
    std::string path;
    // Guarded by mu_.
    uint32_t scrapes = 0, failed = 0, timeouts = 0;
    std::string first_error;
    int64_t in_flight_since_ns = 0;  // a scrape is waiting for its answer (0: none)
  };

  Impl(const v1::Telemetry& plan, std::vector<Target> targets,
       std::unique_ptr<net::ssl::context> tls, bool insecure)
      : selectors_(plan.series().begin(), plan.series().end()),
        interval_(std::chrono::nanoseconds(
            static_cast<int64_t>((plan.interval_s() > 0 ? plan.interval_s() : 1.0) * kNsPerS))),
        timeout_(std::chrono::nanoseconds(static_cast<int64_t>(
            (plan.timeout_s() > 0 ? plan.timeout_s()
                                  : (plan.interval_s() > 0 ? plan.interval_s() : 1.0)) *
            kNsPerS))),
        targets_(std::move(targets)),
        tls_(std::move(tls)),
        insecure_(insecure) {}

  void Run() {
    for (size_t i = 0; i < targets_.size(); ++i) {
      net::co_spawn(ioc_, Loop(i), net::detached);
    }
    thread_ = std::thread([this] { ioc_.run(); });
  }

  void Stop() {
    if (!thread_.joinable()) return;
    ioc_.stop();
    thread_.join();
    // A scrape still waiting when the run ends failed once it has waited its interval, its
    // timeout or a second, whichever is least: a hung target is counted even when its interval
    // and timeout are longer than the run. One sent just before the end is not.
    const int64_t now = common::SteadyNowNs();
    const int64_t grace =
        std::min<int64_t>({interval_.count(), timeout_.count(), static_cast<int64_t>(kNsPerS)});
    std::lock_guard<std::mutex> lock(mu_);
    for (Target& t : targets_) {
      if (t.in_flight_since_ns == 0 || now - t.in_flight_since_ns < grace) continue;
      ++t.scrapes;
      ++t.failed;
      if (t.first_error.empty()) {
        t.first_error = absl::StrFormat("no answer in %.1f s, by the end of the run",
                                        static_cast<double>(now - t.in_flight_since_ns) / kNsPerS);
      }
    }
  }

  std::vector<TelemetrySeries> TakeSeries() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(series_);
  }

  std::vector<v1::TelemetryTarget> Targets() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<v1::TelemetryTarget> out;
    for (const Target& t : targets_) {
      v1::TelemetryTarget& o = out.emplace_back();
      o.set_url(t.display);
      o.set_scrapes(t.scrapes);
      o.set_failed(t.failed);
      o.set_timeouts(t.timeouts);
      o.set_first_error(t.first_error);
      o.set_series(static_cast<uint32_t>(std::count_if(
          series_.begin(), series_.end(), [&](const auto& s) { return s.target == t.display; })));
    }
    return out;
  }

  std::vector<std::string> Warnings() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const Target& t : targets_) {
      if (t.scrapes == 0) {
        // Nothing came back, and nothing failed for long enough to count: still no telemetry.
        out.push_back(absl::StrCat("telemetry: ", t.display,
                                   ": no scrape completed during the run (",
                                   t.first_error.empty() ? "none answered" : t.first_error, ")"));
        continue;
      }
      if (t.failed > 0) {
        out.push_back(absl::StrCat(
            "telemetry: ", t.display, ": ", t.failed, " of ", t.scrapes, " scrapes failed",
            t.timeouts > 0 ? absl::StrCat(" (", t.timeouts, " timed out)") : "",
            "; first: ", t.first_error));
      }
      // Answered, but the filter kept nothing: no telemetry.csv, no summaries.
      const bool kept = std::any_of(series_.begin(), series_.end(),
                                    [&](const auto& s) { return s.target == t.display; });
      if (t.failed < t.scrapes && !kept) {
        out.push_back(absl::StrCat(
            "telemetry: ", t.display, ": ", t.scrapes - t.failed,
            " scrapes answered but no series matched ",
            selectors_.empty()
                ? "the known names (--scrape-series to choose others)"
                : absl::StrCat("--scrape-series '", absl::StrJoin(selectors_, ","), "'")));
      }
    }
    return out;
  }

  ~Impl() { Stop(); }

 private:
  struct Outcome {
    std::string error;  // empty: ok
    bool timeout = false;
    std::string body;
    int64_t t_ns = 0;
  };

  template <typename Stream>
  net::awaitable<Outcome> Exchange(Stream& stream, const Target& t,
                                   std::chrono::steady_clock::time_point deadline) {
    Outcome o;
    http::request<http::empty_body> req{http::verb::get, t.path, 11};
    req.set(http::field::host, t.url.host);
    req.set(http::field::user_agent, "ttsbench-telemetry");
    req.set(http::field::accept, "text/plain;version=0.0.4");
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [wec, wn] = co_await http::async_write(stream, req, kUseTuple);
    if (wec) {
      o.error = absl::StrCat("write: ", wec.message());
      o.timeout = wec == beast::error::timeout;
      co_return o;
    }
    o.t_ns = common::SteadyNowNs();
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBody);
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kUseTuple);
    if (rec) {
      o.error = rec == beast::error::timeout ? "no answer before the timeout"
                                             : absl::StrCat("read: ", rec.message());
      o.timeout = rec == beast::error::timeout;
      co_return o;
    }
    const auto& res = parser.get();
    if (res.result_int() != 200) {
      o.error = absl::StrCat("HTTP ", res.result_int());
      co_return o;
    }
    o.body = res.body();
    co_return o;
  }

  net::awaitable<Outcome> ScrapeOnce(const Target& t) {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    Outcome o;
    auto ex = co_await net::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [ec, endpoints] =
        co_await resolver.async_resolve(t.url.host, std::to_string(t.url.port), kUseTuple);
    if (ec) {
      o.error = absl::StrCat("cannot resolve ", t.url.host, ": ", ec.message());
      co_return o;
    }
    if (!t.url.tls()) {
      beast::tcp_stream stream(ex);
      stream.expires_at(deadline);
      auto [cec, ep] = co_await stream.async_connect(endpoints, kUseTuple);
      if (cec) {
        o.error = absl::StrCat("connect: ", cec.message());
        o.timeout = cec == beast::error::timeout;
        co_return o;
      }
      co_return co_await Exchange(stream, t, deadline);
    }
    beast::ssl_stream<beast::tcp_stream> stream(ex, *tls_);
    agent::TlsOptions tls_options{true, t.url.host, "", insecure_};
    if (!agent::PrepareTlsConnection(stream.native_handle(), tls_options)) {
      o.error = "TLS set-up failed";
      co_return o;
    }
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(endpoints, kUseTuple);
    if (cec) {
      o.error = absl::StrCat("connect: ", cec.message());
      o.timeout = cec == beast::error::timeout;
      co_return o;
    }
    auto [hec] = co_await stream.async_handshake(net::ssl::stream_base::client, kUseTuple);
    if (hec) {
      o.error = absl::StrCat("TLS: ", agent::TlsHandshakeDetail(stream.native_handle(), hec));
      o.timeout = hec == beast::error::timeout;
      co_return o;
    }
    co_return co_await Exchange(stream, t, deadline);
  }

  net::awaitable<void> Loop(size_t index) {
    Target& t = targets_[index];
    net::steady_timer timer(co_await net::this_coro::executor);
    auto next = std::chrono::steady_clock::now();
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        t.in_flight_since_ns = common::SteadyNowNs();
      }
      Outcome o = co_await ScrapeOnce(t);
      std::vector<common::PromSample> samples;
      if (o.error.empty()) {
        auto parsed = common::ParsePrometheusText(o.body);
        if (parsed.ok()) {
          samples = std::move(*parsed);
        } else {
          o.error = absl::StrCat("not Prometheus text: ", parsed.status().message());
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        t.in_flight_since_ns = 0;
        ++t.scrapes;
        if (!o.error.empty()) {
          ++t.failed;
          t.timeouts += o.timeout;
          if (t.first_error.empty()) {
            t.first_error = o.timeout ? absl::StrCat("timed out after ", timeout_.count() / 1e9,
                                                     " s (", o.error, ")")
                                      : o.error;
          }
        } else {
          StoreScrape(t.display, o.t_ns, selectors_, samples, series_, kMaxSeriesPerTarget);
        }
      }
      // The next tick on the interval's grid: a slow scrape skips ticks, never bunches them.
      const auto now = std::chrono::steady_clock::now();
      next += interval_;
      if (next < now) next += ((now - next) / interval_ + 1) * interval_;
      timer.expires_at(next);
      co_await timer.async_wait(kUseTuple);
    }
  }

  const std::vector<std::string> selectors_;
  const std::chrono::nanoseconds interval_;
  const std::chrono::nanoseconds timeout_;
  mutable std::mutex mu_;
  std::vector<Target> targets_;
  std::vector<TelemetrySeries> series_;  // guarded by mu_
  std::unique_ptr<net::ssl::context> tls_;
  bool insecure_;
  // Last: destroyed first, so abandoned coroutines go before the state they refer to.
  net::io_context ioc_;
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<TelemetryScraper>> TelemetryScraper::Start(
    const v1::Telemetry& plan, const std::string& ca_file, bool insecure) {
  std::vector<Impl::Target> targets;
  bool any_tls = false;
  for (const std::string& text : plan.scrape()) {
    auto url = common::ParseUrl(text);
    if (!url.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--scrape: ", url.status().message()));
    }
    Impl::Target& t = targets.emplace_back();
    t.url = *url;
    t.path = url->base_path.empty() ? "/metrics" : url->base_path;
    const bool ipv6 = absl::StrContains(url->host, ':');
    t.display = absl::StrCat(url->scheme, "://", ipv6 ? "[" : "", url->host, ipv6 ? "]" : "", ":",
                             url->port, t.path);
    any_tls |= url->tls();
  }
  std::unique_ptr<net::ssl::context> tls;
  if (any_tls) {
    agent::TlsOptions options{true, "", ca_file, insecure};
    auto ctx = agent::MakeClientTlsContext(options);
    if (!ctx.ok()) return ctx.status();
    tls = std::move(*ctx);
  }
  auto impl = std::make_unique<Impl>(plan, std::move(targets), std::move(tls), insecure);
  impl->Run();
  return std::unique_ptr<TelemetryScraper>(new TelemetryScraper(std::move(impl)));
}

TelemetryScraper::TelemetryScraper(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TelemetryScraper::~TelemetryScraper() = default;
void TelemetryScraper::Stop() { impl_->Stop(); }
std::vector<TelemetrySeries> TelemetryScraper::TakeSeries() { return impl_->TakeSeries(); }
std::vector<v1::TelemetryTarget> TelemetryScraper::Targets() const { return impl_->Targets(); }
std::vector<std::string> TelemetryScraper::Warnings() const { return impl_->Warnings(); }

absl::Status AddTelemetry(TelemetryScraper& scraper, const v1::Telemetry& plan,
                          const std::vector<LevelData>& levels, int64_t epoch_ns,
                          const std::string& dir, v1::Session& session) {
  scraper.Stop();
  for (v1::TelemetryTarget& t : scraper.Targets()) *session.add_telemetry_targets() = std::move(t);
  for (std::string& w : scraper.Warnings()) session.add_warnings(std::move(w));
  const std::vector<TelemetrySeries> series = scraper.TakeSeries();
  const double interval_s = plan.interval_s() > 0 ? plan.interval_s() : 1.0;
  const int64_t reach_ns = static_cast<int64_t>(2 * interval_s * kNsPerS);
  const bool power = HasPowerSeries(series);
  std::vector<std::string> no_energy;  // levels with power scraped but none inside them
  for (size_t i = 0; i < levels.size() && i < static_cast<size_t>(session.levels_size()); ++i) {
    int64_t t0 = 0, t1 = 0;
    if (!LevelWindow(levels[i], &t0, &t1)) continue;
    v1::LevelStats& stats = *session.mutable_levels(static_cast<int>(i));
    for (v1::TelemetrySummary& s : SummariseWindow(series, t0 + epoch_ns, t1 + epoch_ns)) {
      *stats.add_telemetry() = std::move(s);
    }
    const double joules = EnergyJoules(series, t0 + epoch_ns, t1 + epoch_ns, reach_ns);
    stats.set_energy_j(joules);
    stats.set_audio_s_per_joule(joules > 0 ? stats.audio_seconds() / joules : 0);
    if (joules <= 0 && power) {
      no_energy.push_back(absl::StrFormat("%s (%.2f s)", LevelName(levels[i]),
                                          static_cast<double>(t1 - t0) / kNsPerS));
    }
  }
  if (!no_energy.empty()) {
    session.add_warnings(absl::StrFormat(
        "energy: no power scrape fell inside %s: no energy figure there (scrape interval %g s); "
        "use a shorter --scrape-interval or longer levels",
        absl::StrJoin(no_energy, ", "), interval_s));
  }
  if (series.empty()) return absl::OkStatus();
  const std::string path = (std::filesystem::path(dir) / "telemetry.csv").string();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << TelemetryCsv(series, epoch_ns);
  if (!f.flush()) return absl::InternalError(absl::StrCat(path, ": cannot write"));
  session.set_telemetry_file("telemetry.csv");
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------------ cost

int ReplicasOf(const v1::Plan& plan) {
  if (plan.cost().replicas() > 0) return plan.cost().replicas();
  if (plan.capacity().replicas() > 0) return plan.capacity().replicas();
  return 1;
}

void ApplyCost(const v1::Plan& plan, v1::LevelStats& level) {
  const double price = plan.cost().per_replica_hour_usd();
  if (price <= 0) return;
  const double replicas = ReplicasOf(plan);
  level.set_replica_hours(replicas * level.t_wall_s() / 3600);
  if (level.asps() > 0) level.set_cost_per_audio_hour_usd(replicas * price / level.asps());
  if (level.cps() > 0) {
    level.set_cost_per_million_chars_usd(replicas * price * 1e6 / (3600 * level.cps()));
  }
}

void ApplyCapacityCost(const v1::Plan& plan, const v1::Session& session,
                       v1::CapacityResult& capacity) {
  const double price = plan.cost().per_replica_hour_usd();
  if (price <= 0 || capacity.found() <= 0) return;
  capacity.set_cost_per_replica_hour_usd(price);
  // The last probe at the load found (bisection may probe it once only, but be sure).
  for (int i = session.levels_size() - 1; i >= 0; --i) {
    const v1::LevelStats& l = session.levels(i);
    const double load = l.rate() > 0 ? l.rate() : l.concurrency();
    if (std::fabs(load - capacity.found()) > 1e-9) continue;
    capacity.set_cost_per_audio_hour_usd(l.cost_per_audio_hour_usd());
    capacity.set_cost_per_million_chars_usd(l.cost_per_million_chars_usd());
    break;
  }
  const int replicas =
      capacity.replicas_needed() > 0 ? capacity.replicas_needed() : ReplicasOf(plan);
  capacity.set_monthly_cost_usd(replicas * price * kHoursPerMonth);
}

}  // namespace ttsbench::coordinator
