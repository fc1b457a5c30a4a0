#include "coordinator/run/telemetry.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/csv.h"
#include "gtest/gtest.h"
#include "synth/synth_server.h"
#include "synth/tls_cert.h"

namespace ttsbench::coordinator {
namespace {

constexpr int64_t kS = 1'000'000'000;

common::PromSample Sample(const std::string& name,
                          std::vector<std::pair<std::string, std::string>> labels, double value,
                          common::PromType type = common::PromType::kGauge) {
  common::PromSample s;
  s.name = name;
  s.labels = std::move(labels);
  s.value = value;
  s.type = type;
  return s;
}

TelemetrySeries Series(const std::string& metric, std::vector<int64_t> t, std::vector<double> v,
                       bool counter = false) {
  TelemetrySeries s;
  s.target = "http://h:1/metrics";
  s.key = metric;
  s.metric = metric;
  s.counter = counter;
  s.t_ns = std::move(t);
  s.value = std::move(v);
  return s;
}

TEST(TelemetryTest, KnownNamesAreSelectedByDefaultAndBucketsOnlyByName) {
  const std::vector<std::string> none;
  EXPECT_TRUE(SeriesSelected(none, Sample("DCGM_FI_DEV_GPU_UTIL", {{"gpu", "0"}}, 1)));
  EXPECT_TRUE(SeriesSelected(none, Sample("vllm:num_requests_waiting", {}, 1)));
  EXPECT_FALSE(SeriesSelected(none, Sample("go_goroutines", {}, 1)));
  const std::vector<std::string> some = {"power", "vllm:*", "my_hist_bucket"};
  EXPECT_TRUE(SeriesSelected(some, Sample("nv_gpu_power_usage", {{"gpu_uuid", "x"}}, 1)));
  EXPECT_FALSE(SeriesSelected(some, Sample("DCGM_FI_DEV_GPU_UTIL", {}, 1)));
  EXPECT_TRUE(SeriesSelected(some, Sample("vllm:gpu_cache_usage_perc", {}, 1)));
  EXPECT_FALSE(
      SeriesSelected(some, Sample("vllm:e2e_request_latency_seconds_bucket", {{"le", "0.5"}}, 1)));
  EXPECT_TRUE(SeriesSelected(some, Sample("my_hist_bucket", {{"le", "0.5"}}, 1)));
  EXPECT_TRUE(SeriesSelected({"*"}, Sample("go_goroutines", {}, 1)));
}

TEST(TelemetryTest, StoreScrapeSumsNodeCpuOverCpusAndBoundsSeries) {
  std::vector<TelemetrySeries> series;
  const auto counter = common::PromType::kCounter;
  std::vector<common::PromSample> scrape = {
      Sample("node_cpu_seconds_total", {{"cpu", "0"}, {"mode", "user"}}, 10, counter),
      Sample("node_cpu_seconds_total", {{"cpu", "1"}, {"mode", "user"}}, 5, counter),
      Sample("node_cpu_seconds_total", {{"cpu", "0"}, {"mode", "idle"}}, 100, counter),
      Sample("DCGM_FI_DEV_POWER_USAGE", {{"gpu", "0"}}, 100),
      Sample("go_goroutines", {}, 7),
  };
  EXPECT_EQ(StoreScrape("t", 1 * kS, {}, scrape, series, 100), 3u);
  ASSERT_EQ(series.size(), 3u);
  const TelemetrySeries* user = nullptr;
  for (const auto& s : series) {
    if (s.key == "node_cpu_seconds_total{mode=\"user\"}") user = &s;
  }
  ASSERT_NE(user, nullptr);
  EXPECT_TRUE(user->counter);
  EXPECT_EQ(user->value, std::vector<double>{15});
  // A second scrape appends to the same series; a bound of 3 adds no new ones.
  scrape.push_back(Sample("DCGM_FI_DEV_POWER_USAGE", {{"gpu", "1"}}, 50));
  EXPECT_EQ(StoreScrape("t", 2 * kS, {}, scrape, series, 3), 0u);
  EXPECT_EQ(series.size(), 3u);
  EXPECT_EQ(user->t_ns.size(), 2u);
}

TEST(TelemetryTest, SummariesOverTheWindowWithCounterRatesAndScale) {
  std::vector<TelemetrySeries> series = {
      // Triton utilisation 0-1 -> %; points at 0..5 s, window [1 s, 4 s] holds 1, 2, 3, 4.
      Series("nv_gpu_utilization", {0, 1 * kS, 2 * kS, 3 * kS, 4 * kS, 5 * kS},
             {0.0, 0.1, 0.2, 0.3, 0.4, 0.9}),
      // 10 requests/s, then a reset (restart) that gives no rate.
      Series("nv_inference_request_success", {0, 1 * kS, 2 * kS, 3 * kS, 4 * kS},
             {0, 10, 20, 5, 15}, /*counter=*/true),
  };
  auto sums = SummariseWindow(series, 1 * kS, 4 * kS);
  ASSERT_EQ(sums.size(), 2u);
  EXPECT_EQ(sums[0].name(), "GPU util");
  EXPECT_EQ(sums[0].unit(), "%");
  EXPECT_EQ(sums[0].samples(), 4u);
  EXPECT_NEAR(sums[0].mean(), 25, 1e-9);  // (10 + 20 + 30 + 40) / 4
  EXPECT_NEAR(sums[0].max(), 40, 1e-9);
  EXPECT_NEAR(sums[0].p95(), 38.5, 1e-9);  // linear: 30 + 0.85 * 10
  EXPECT_EQ(sums[1].unit(), "/s");
  EXPECT_EQ(sums[1].samples(), 3u);  // rates ending at 1, 2 and 4 s; 3 s is a reset
  EXPECT_NEAR(sums[1].mean(), 10, 1e-9);
  // A window with no point summarises nothing.
  EXPECT_TRUE(SummariseWindow(series, 10 * kS, 11 * kS).empty());
}

TEST(TelemetryTest, EnergyIsTheIntegralOfPowerByHand) {
  // 100 W at 0 s rising linearly to 200 W at 2 s, then flat; a second GPU at 50 W.
  std::vector<TelemetrySeries> series = {
      Series("DCGM_FI_DEV_POWER_USAGE", {0, 2 * kS, 4 * kS}, {100, 200, 200}),
      Series("nv_gpu_power_usage", {1 * kS}, {50}),
      Series("DCGM_FI_DEV_GPU_UTIL", {0, 4 * kS}, {100, 100}),  // not power
  };
  // Window [1 s, 3 s]: GPU 0: 150->200 over 1 s (175 J) + 200 W for 1 s (200 J) = 375 J;
  // GPU 1 held at 50 W: 100 J.
  EXPECT_NEAR(EnergyJoules(series, 1 * kS, 3 * kS, 2 * kS), 475, 1e-9);
  // Beyond the last point the value is held: [4 s, 5 s] = 200 J (GPU 1's only point, at 1 s,
  // is not within 2 s of the window, so that GPU is left out).
  EXPECT_NEAR(EnergyJoules(series, 4 * kS, 5 * kS, 2 * kS), 200, 1e-9);
  // Within a 3 s reach GPU 1 counts, but it has no point inside the window: its value there is
  // unknown, and the sum without it would be low, so the level has no energy figure.
  EXPECT_EQ(EnergyJoules(series, 4 * kS, 5 * kS, 3 * kS), 0);
  // Far from every point: nothing known.
  EXPECT_EQ(EnergyJoules(series, 100 * kS, 101 * kS, 2 * kS), 0);
}

TEST(TelemetryTest, EnergyNeedsAPowerScrapeInsideTheLevel) {
  // Scrapes every second: idle 60 W between levels, 220 W while one ran around 1 s.
  const std::vector<TelemetrySeries> series = {
      Series("DCGM_FI_DEV_POWER_USAGE", {0, 1 * kS, 2 * kS}, {60, 220, 60}),
  };
  // A 0.6 s level between the scrapes at 1 s and 2 s: the idle draw read around it is not the
  // level's (it once gave 60 W levels that drew 220 W), so nothing.
  EXPECT_EQ(EnergyJoules(series, 1200'000'000, 1800'000'000, 2 * kS), 0);
  // The 1 s scrape inside [0.5 s, 1.5 s]: the edges interpolated towards the outside scrapes,
  // 140 W at both; (140 + 220) / 2 W x 0.5 s twice = 180 J.
  EXPECT_NEAR(EnergyJoules(series, 500'000'000, 1500'000'000, 2 * kS), 180, 1e-9);
  EXPECT_TRUE(HasPowerSeries(series));
  EXPECT_FALSE(HasPowerSeries({Series("DCGM_FI_DEV_GPU_UTIL", {0}, {1})}));
}

TEST(TelemetryTest, CsvIsOnTheSessionTimelineInTimeOrder) {
  std::vector<TelemetrySeries> series = {
      Series("DCGM_FI_DEV_POWER_USAGE", {5 * kS, 7 * kS}, {100, 200}),
      Series("vllm:num_requests_running", {6 * kS}, {3}),
  };
  series[1].key = "vllm:num_requests_running{model_name=\"a,b\"}";
  auto rows = common::ParseCsv(TelemetryCsv(series, 4 * kS));
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[0], (std::vector<std::string>{"t_s", "target", "series", "value"}));
  EXPECT_EQ((*rows)[1][0], "1.000");
  EXPECT_EQ((*rows)[2][0], "2.000");
  EXPECT_EQ((*rows)[2][2], "vllm:num_requests_running{model_name=\"a,b\"}");
  EXPECT_EQ((*rows)[3][3], "200");
}

TEST(CostTest, PerAudioHourAndPerMillionCharactersByHand) {
  v1::Plan plan;
  plan.mutable_cost()->set_per_replica_hour_usd(2.5);
  plan.mutable_cost()->set_replicas(2);
  v1::LevelStats l;
  l.set_t_wall_s(36);  // 0.01 h
  l.set_asps(5);       // 180 audio-s in 36 s
  l.set_cps(1000);     // 36,000 characters
  ApplyCost(plan, l);
  EXPECT_NEAR(l.replica_hours(), 0.02, 1e-12);  // 2 x 36 / 3600
  // $0.05 for the level; 180 audio-s = 0.05 audio-h -> $1 per audio-hour.
  EXPECT_NEAR(l.cost_per_audio_hour_usd(), 1.0, 1e-12);
  // $0.05 for 36,000 characters -> $1.3889 per million.
  EXPECT_NEAR(l.cost_per_million_chars_usd(), 0.05 / 0.036, 1e-12);
  // No price, no figures.
  v1::LevelStats free;
  free.set_asps(5);
  ApplyCost(v1::Plan(), free);
  EXPECT_EQ(free.cost_per_audio_hour_usd(), 0);
}

TEST(CostTest, CapacityMonthlyCostOfTheReplicasNeeded) {
  v1::Plan plan;
  plan.mutable_cost()->set_per_replica_hour_usd(1.2);
  v1::Session session;
  for (int c : {1, 2, 4}) {
    v1::LevelStats& l = *session.add_levels();
    l.set_concurrency(c);
    l.set_cost_per_audio_hour_usd(10.0 / c);
    l.set_cost_per_million_chars_usd(100.0 / c);
  }
  v1::CapacityResult cap;
  cap.set_found(2);
  cap.set_replicas_needed(5);
  ApplyCapacityCost(plan, session, cap);
  EXPECT_NEAR(cap.monthly_cost_usd(), 5 * 1.2 * 730, 1e-9);
  EXPECT_EQ(cap.cost_per_audio_hour_usd(), 5);
  EXPECT_EQ(cap.cost_per_million_chars_usd(), 50);
  // Without --target-streams: the plan's replicas (capacity.replicas), else one.
  v1::CapacityResult one;
  one.set_found(4);
  ApplyCapacityCost(plan, session, one);
  EXPECT_NEAR(one.monthly_cost_usd(), 1.2 * 730, 1e-9);
  plan.mutable_capacity()->set_replicas(3);
  ApplyCapacityCost(plan, session, one);
  EXPECT_NEAR(one.monthly_cost_usd(), 3 * 1.2 * 730, 1e-9);
}

// A loopback peer on its own thread: `garbage` answers every request with 200 and a body that
// is not Prometheus text; otherwise it listens and never accepts (the kernel completes the
// connection, nothing ever answers: a hung exporter).
class Peer {
 public:
  explicit Peer(bool garbage) : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    if (!garbage) return;
    thread_ = std::thread([this] {
      while (true) {
        boost::asio::ip::tcp::socket s(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(s, ec);
        if (ec || stop_) return;
        boost::asio::streambuf buf;
        boost::asio::read_until(s, buf, "\r\n\r\n", ec);
        const std::string body = "<html><body>metrics moved</body></html>\n";
        const std::string res = absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(),
                                             "\r\nConnection: close\r\n\r\n", body);
        boost::asio::write(s, boost::asio::buffer(res), ec);
      }
    });
  }
  ~Peer() {
    stop_ = true;
    if (thread_.joinable()) {
      // Wake the blocking accept with one last connection.
      boost::asio::ip::tcp::socket s(ioc_);
      boost::system::error_code ec;
      s.connect(acceptor_.local_endpoint(), ec);
      thread_.join();
    }
  }
  std::string Url() const {
    return absl::StrCat("http://127.0.0.1:", acceptor_.local_endpoint().port(), "/metrics");
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

TEST(TelemetryScraperTest, ScrapesTheSynthAndWarnsOfHungAndGarbageTargets) {
  synth::SynthOptions so;
  so.model.slots = 3;
  so.idle_watts = 70;
  auto synth = synth::SynthServer::Start(so);
  ASSERT_TRUE(synth.ok()) << synth.status();
  Peer hung(false), garbage(true);
  v1::Telemetry plan;
  plan.add_scrape(absl::StrCat("http://127.0.0.1:", (*synth)->port()));  // path: /metrics
  plan.add_scrape(hung.Url());
  plan.add_scrape(garbage.Url());
  plan.set_interval_s(0.1);
  plan.set_timeout_s(0.3);
  const int64_t t0 = common::SteadyNowNs();
  auto scraper = TelemetryScraper::Start(plan, "", false);
  ASSERT_TRUE(scraper.ok()) << scraper.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const auto stop_at = std::chrono::steady_clock::now();
  (*scraper)->Stop();
  // Stopping abandons the hung scrape at once rather than waiting for its timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, std::chrono::milliseconds(250));
  const int64_t t1 = common::SteadyNowNs();

  auto targets = (*scraper)->Targets();
  ASSERT_EQ(targets.size(), 3u);
  EXPECT_GE(targets[0].scrapes(), 5u);
  EXPECT_EQ(targets[0].failed(), 0u);
  // Known names: running, waiting, power, GPU util, requests done (not ttsbench_synth_slots).
  EXPECT_EQ(targets[0].series(), 5u);
  // The hung target: each scrape times out after 0.3 s, so 3-4 in a second, all failed.
  // (The last one, still waiting at Stop, counts as failed but not as timed out.)
  EXPECT_GE(targets[1].scrapes(), 3u);
  EXPECT_LE(targets[1].scrapes(), 5u);
  EXPECT_EQ(targets[1].failed(), targets[1].scrapes());
  EXPECT_GE(targets[1].timeouts() + 1, targets[1].failed());
  EXPECT_GE(targets[1].timeouts(), 2u);
  EXPECT_GE(targets[2].scrapes(), 5u);
  EXPECT_EQ(targets[2].failed(), targets[2].scrapes());
  EXPECT_TRUE(absl::StrContains(targets[2].first_error(), "not Prometheus text: line 1"))
      << targets[2].first_error();
  auto warnings = (*scraper)->Warnings();
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_TRUE(absl::StrContains(warnings[0], hung.Url())) << warnings[0];
  EXPECT_TRUE(absl::StrContains(warnings[0], "timed out")) << warnings[0];

  auto series = (*scraper)->TakeSeries();
  auto sums = SummariseWindow(series, t0, t1);
  bool power = false, running = false;
  for (const auto& s : sums) {
    if (s.name() == "GPU power") {
      power = true;
      EXPECT_EQ(s.mean(), 70);  // idle: no slot busy
    }
    if (s.name() == "running") {
      running = true;
      EXPECT_EQ(s.max(), 0);
    }
  }
  EXPECT_TRUE(power);
  EXPECT_TRUE(running);
  EXPECT_NEAR(EnergyJoules(series, t0, t1, kS), 70.0 * static_cast<double>(t1 - t0) / kS, 1e-6);
}

TEST(TelemetryScraperTest, WarnsWhenNoScrapedSeriesMatchesTheFilter) {
  synth::SynthOptions so;
  auto synth = synth::SynthServer::Start(so);
  ASSERT_TRUE(synth.ok()) << synth.status();
  v1::Telemetry plan;
  plan.add_scrape(absl::StrCat("http://127.0.0.1:", (*synth)->port()));
  plan.add_series("nonexistent_metric");
  plan.set_interval_s(0.1);
  auto scraper = TelemetryScraper::Start(plan, "", false);
  ASSERT_TRUE(scraper.ok()) << scraper.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  (*scraper)->Stop();
  ASSERT_EQ((*scraper)->Targets().size(), 1u);
  EXPECT_GE((*scraper)->Targets()[0].scrapes(), 2u);
  EXPECT_EQ((*scraper)->Targets()[0].series(), 0u);
  auto warnings = (*scraper)->Warnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(
      absl::StrContains(warnings[0], "no series matched --scrape-series 'nonexistent_metric'"))
      << warnings[0];
}

TEST(TelemetryScraperTest, AHungTargetIsWarnedOfWhenTheRunIsShorterThanItsInterval) {
  Peer hung(false);
  v1::Telemetry plan;
  plan.add_scrape(hung.Url());
  plan.set_interval_s(5);  // timeout: the interval, longer than the run
  {
    // Waiting over a second at the end: a failed scrape.
    auto scraper = TelemetryScraper::Start(plan, "", false);
    ASSERT_TRUE(scraper.ok()) << scraper.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    (*scraper)->Stop();
    auto targets = (*scraper)->Targets();
    ASSERT_EQ(targets.size(), 1u);
    EXPECT_EQ(targets[0].scrapes(), 1u);
    EXPECT_EQ(targets[0].failed(), 1u);
    auto warnings = (*scraper)->Warnings();
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_TRUE(absl::StrContains(warnings[0], "1 of 1 scrapes failed")) << warnings[0];
    EXPECT_TRUE(absl::StrContains(warnings[0], "by the end of the run")) << warnings[0];
  }
  {
    // Stopped sooner: not counted as failed, but no scrape completed, and that is said.
    auto scraper = TelemetryScraper::Start(plan, "", false);
    ASSERT_TRUE(scraper.ok()) << scraper.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (*scraper)->Stop();
    EXPECT_EQ((*scraper)->Targets()[0].scrapes(), 0u);
    auto warnings = (*scraper)->Warnings();
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_TRUE(absl::StrContains(warnings[0], "no scrape completed during the run"))
        << warnings[0];
  }
}

TEST(TelemetryScraperTest, ScrapesHttpsVerifiedWithTheCaFileAndRefusesAnUntrustedOne) {
  auto cert = synth::MakeSelfSignedCertificate({"127.0.0.1"});
  ASSERT_TRUE(cert.ok()) << cert.status();
  synth::SynthOptions so;
  so.tls_cert_pem = cert->cert;
  so.tls_key_pem = cert->key;
  auto synth = synth::SynthServer::Start(so);
  ASSERT_TRUE(synth.ok()) << synth.status();
  const std::string ca = ::testing::TempDir() + "/telemetry_test_ca.pem";
  {
    std::ofstream f(ca);
    f << cert->cert;
  }
  v1::Telemetry plan;
  plan.add_scrape(absl::StrCat("https://127.0.0.1:", (*synth)->port(), "/metrics"));
  plan.set_interval_s(0.1);
  for (const bool trusted : {true, false}) {
    auto scraper = TelemetryScraper::Start(plan, trusted ? ca : "", false);
    ASSERT_TRUE(scraper.ok()) << scraper.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    (*scraper)->Stop();
    const auto targets = (*scraper)->Targets();
    ASSERT_EQ(targets.size(), 1u);
    EXPECT_GE(targets[0].scrapes(), 2u);
    if (trusted) {
      EXPECT_EQ(targets[0].failed(), 0u) << targets[0].first_error();
      EXPECT_EQ(targets[0].series(), 5u);
    } else {
      EXPECT_EQ(targets[0].failed(), targets[0].scrapes());
      EXPECT_TRUE(absl::StrContains(targets[0].first_error(), "certificate verify failed"))
          << targets[0].first_error();
    }
  }
}

TEST(TelemetryScraperTest, BadUrlIsAnErrorNamingIt) {
  v1::Telemetry plan;
  plan.add_scrape("gpu-host:9400");
  auto scraper = TelemetryScraper::Start(plan, "", false);
  ASSERT_FALSE(scraper.ok());
  EXPECT_TRUE(
      absl::StrContains(scraper.status().message(), "--scrape: invalid URL 'gpu-host:9400'"))
      << scraper.status();
}

}  // namespace
}  // namespace ttsbench::coordinator
