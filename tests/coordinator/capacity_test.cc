#include "coordinator/run/capacity.h"

#include <vector>

#include "common/record_store.h"
#include "common/slo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ttsbench::coordinator {
namespace {

// A server whose true capacity is known: every load up to `limit` passes.
CapacityProbe Limit(double limit, std::vector<double>* seen) {
  return [limit, seen](double load) -> absl::StatusOr<v1::CapacityProbeResult> {
    seen->push_back(load);
    v1::CapacityProbeResult r;
    r.set_passed(load <= limit);
    return r;
  };
}

TEST(SearchCapacityTest, FindsTheExactConcurrency) {
  for (int limit : {1, 3, 8, 9, 13, 100, 1000}) {
    std::vector<double> seen;
    auto r = SearchCapacity(v1::CapacitySearch(), /*integer=*/true, Limit(limit, &seen));
    ASSERT_TRUE(r.ok());
    // Within one step of the truth: exact for small values, within 10% for large ones.
    EXPECT_LE(r->found(), limit);
    EXPECT_GE(r->found(), limit * 0.9 - 1) << limit;
    EXPECT_GT(r->first_failing(), r->found());
    EXPECT_EQ(r->probed_size(), static_cast<int>(seen.size()));
    ASSERT_EQ(r->probes_size(), r->probed_size());
    for (int i = 0; i < r->probes_size(); ++i) EXPECT_EQ(r->probes(i).load(), r->probed(i));
  }
}

TEST(SearchCapacityTest, OpenLoopRatesBisectToTheResolution) {
  std::vector<double> seen;
  v1::CapacitySearch search;
  search.set_start(2);
  search.set_resolution_pct(5);
  auto r = SearchCapacity(search, /*integer=*/false, Limit(37.5, &seen));
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->found(), 37.5);
  EXPECT_GE(r->found(), 37.5 * 0.95);
  EXPECT_EQ(r->unit(), "requests/s");
}

TEST(SearchCapacityTest, NothingPassesOrEverythingPasses) {
  std::vector<double> seen;
  auto none = SearchCapacity(v1::CapacitySearch(), true, Limit(0, &seen));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->found(), 0);
  EXPECT_EQ(none->first_failing(), 1);
  v1::CapacitySearch small;
  small.set_max(64);
  auto all = SearchCapacity(small, true, Limit(1e9, &seen));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->found(), 64);
  EXPECT_EQ(all->first_failing(), 0);
}

TEST(SearchCapacityTest, ReplicasNeeded) {
  std::vector<double> seen;
  v1::CapacitySearch search;
  search.set_replicas(2);
  search.set_target_streams(100);
  auto r = SearchCapacity(search, true, Limit(8, &seen));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->found(), 8);
  EXPECT_EQ(r->per_replica(), 4);
  EXPECT_EQ(r->replicas_needed(), 25);
}

TEST(SearchCapacityTest, AProbeErrorStopsTheSearch) {
  auto r = SearchCapacity(v1::CapacitySearch(), true,
                          [](double) -> absl::StatusOr<v1::CapacityProbeResult> {
                            return absl::UnavailableError("agent lost");
                          });
  EXPECT_TRUE(absl::IsUnavailable(r.status()));
}

std::vector<common::Slo> Slos(const std::vector<std::string>& texts) {
  auto slos = common::ParseSlos(texts);
  EXPECT_TRUE(slos.ok()) << slos.status();
  return *slos;
}

TEST(ProbeRequestsTest, ResolvesTheJudgedPercentile) {
  const v1::CapacitySearch search;
  // ~10 requests beyond the percentile: a p99 needs 1000 whatever the load, a p95 200.
  EXPECT_EQ(ProbeRequests(search, Slos({"ttfa_p99=60ms"}), 1, true, 40), 1000);
  EXPECT_EQ(ProbeRequests(search, Slos({"ttfa_p95=60ms"}), 1, true, 40), 200);
  EXPECT_EQ(ProbeRequests(search, Slos({"ttfa_p95=60ms", "latency_p99=1s"}), 1, true, 40), 1000);
  EXPECT_EQ(ProbeRequests(search, Slos({"success_rate=99%"}), 1, true, 40), 1000);
  EXPECT_EQ(ProbeRequests(search, Slos({"rtf_mean=0.5"}), 1, true, 40), 100);
}

TEST(ProbeRequestsTest, EveryUserQueuesSeveralTimes) {
  const v1::CapacitySearch search;
  // 5 requests per user: at 4096 users a p95 probe runs 20480 requests, not 200.
  EXPECT_EQ(ProbeRequests(search, Slos({"ttfa_p95=60ms"}), 4096, true, 40), 5 * 4096);
  EXPECT_EQ(ProbeRequests(search, Slos({"ttfa_p95=60ms"}), 48, true, 40), 240);
  // Open loop has no users: a rate of 4096/s is not 4096 users.
  EXPECT_EQ(ProbeRequests(search, Slos({"ttfa_p95=60ms"}), 4096, false, 40), 200);
}

TEST(ProbeRequestsTest, HonoursMinRequestsAndThePlansIterations) {
  v1::CapacitySearch search;
  search.set_min_requests(5000);
  EXPECT_EQ(ProbeRequests(search, Slos({"ttfa_p99=60ms"}), 8, true, 40), 5000);
  EXPECT_EQ(ProbeRequests(v1::CapacitySearch(), Slos({"ttfa_p99=60ms"}), 8, true, 3000), 3000);
}

// A level of `n` measured successful requests with TTFA i + shift_ms ms for request i (1..n).
common::RecordStore Ramp(int n, int shift_ms = 0) {
  common::RecordStore records;
  for (int i = 1; i <= n; ++i) {
    v1::RequestRecord r;
    r.set_start_ns(1'000'000'000);
    r.set_first_audio_ns(r.start_ns() + (i + shift_ms) * 1'000'000LL);
    r.set_end_ns(r.first_audio_ns() + 1'000'000);
    r.set_audio_s(1);
    records.Append(r, 0);
  }
  return records;
}

TEST(JudgeProbeTest, GivesThePercentileItsOrderStatisticInterval) {
  const auto slos = Slos({"ttfa_p99=995ms", "success_rate=99%"});
  v1::LevelStats stats;
  stats.set_attempted(1000);
  stats.set_successful(1000);
  stats.set_success_rate_pct(100);
  stats.mutable_ttfa_ms()->set_p99(990.01);
  for (const common::Slo& s : slos) *stats.add_slo() = common::EvaluateSlo(s, stats);
  const v1::CapacityProbeResult p = JudgeProbe(48, 1000, stats, Ramp(1000), slos);
  EXPECT_TRUE(p.passed());
  EXPECT_EQ(p.load(), 48);
  EXPECT_EQ(p.planned_requests(), 1000);
  ASSERT_EQ(p.slo_size(), 2);
  const v1::SloEstimate& ttfa = p.slo(0);
  EXPECT_DOUBLE_EQ(ttfa.value(), 990.01);
  EXPECT_EQ(ttfa.samples(), 1000);
  EXPECT_DOUBLE_EQ(ttfa.confidence(), 0.95);
  // Binomial(1000, 0.99) puts 95% of its mass within ranks ~984..996.
  EXPECT_GE(ttfa.ci_low(), 980);
  EXPECT_LE(ttfa.ci_low(), 986);
  EXPECT_GE(ttfa.ci_high(), 995);
  EXPECT_LE(ttfa.ci_high(), 999);
  EXPECT_EQ(p.slo(1).confidence(), 0);  // a rate: no order-statistic interval
}

TEST(JudgeProbeTest, AFailedSloOrNoSuccessFailsTheProbe) {
  const auto slos = Slos({"ttfa_p99=500ms"});
  v1::LevelStats stats;
  stats.set_attempted(1000);
  stats.set_successful(1000);
  stats.mutable_ttfa_ms()->set_p99(990);
  *stats.add_slo() = common::EvaluateSlo(slos[0], stats);
  EXPECT_FALSE(JudgeProbe(64, 1000, stats, Ramp(1000), slos).passed());
  v1::LevelStats none;
  none.set_attempted(10);
  EXPECT_FALSE(JudgeProbe(64, 1000, none, common::RecordStore(), {}).passed());
}

TEST(CapacitySummaryTest, ShowsTheIntervalsAtTheCapacityAndAtTheFirstFailure) {
  const auto slos = Slos({"ttfa_p99=995ms"});
  v1::CapacitySearch search;
  search.set_resolution_pct(1);  // bisect to the unit
  auto r =
      SearchCapacity(search, true, [&](double load) -> absl::StatusOr<v1::CapacityProbeResult> {
        v1::LevelStats stats;
        stats.set_attempted(1000);
        stats.set_successful(1000);
        stats.mutable_ttfa_ms()->set_p99(load <= 48 ? 990 : 1000);
        *stats.add_slo() = common::EvaluateSlo(slos[0], stats);
        return JudgeProbe(load, 1000, stats, Ramp(1000, load <= 48 ? 0 : 10), slos);
      });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->found(), 48);
  EXPECT_EQ(r->first_failing(), 49);
  const std::string text = CapacitySummary(*r, search);
  EXPECT_THAT(text,
              ::testing::HasSubstr("Capacity: 48 (concurrency) meets every SLO; 49 does not"));
  EXPECT_THAT(text, ::testing::HasSubstr("ttfa_p99=995ms at 48: 990ms, 95% CI [983ms, 997ms]"));
  EXPECT_THAT(text, ::testing::HasSubstr("ttfa_p99=995ms at 49: 1000ms, 95% CI [993ms, 1007ms]"));
  EXPECT_THAT(text, ::testing::HasSubstr("from 1000 requests: FAIL"));
  EXPECT_THAT(text, ::testing::HasSubstr("(1000 measured requests each)"));
  // Both intervals hold the 995 ms limit: the verdicts stand, flagged as a coin toss.
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "requests: pass (inconclusive: the interval holds the limit; a rerun may "
                        "differ)"));
  EXPECT_THAT(text, ::testing::HasSubstr("requests: FAIL (inconclusive"));
}

}  // namespace
}  // namespace ttsbench::coordinator
