#include "common/metrics.h"

#include <random>
#include <string>
#include <vector>

#include "common/stats.h"
#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

constexpr int64_t kS = 1'000'000'000;

v1::RequestRecord Ok(double start, double first_audio, double end, double audio_s, int chars) {
  v1::RequestRecord r;
  r.set_start_ns(static_cast<int64_t>(start * kS));
  r.set_first_byte_ns(static_cast<int64_t>(first_audio * kS));
  r.set_first_audio_ns(static_cast<int64_t>(first_audio * kS));
  r.set_end_ns(static_cast<int64_t>(end * kS));
  r.set_audio_s(audio_s);
  r.set_chars(chars);
  return r;
}

v1::RequestRecord Failed(double start, double end, v1::ErrorKind kind) {
  v1::RequestRecord r;
  r.set_start_ns(static_cast<int64_t>(start * kS));
  r.set_end_ns(static_cast<int64_t>(end * kS));
  r.set_error(kind);
  r.set_chars(99);
  return r;
}

// Hand-computed: two successes, one late timeout that widens the window, one warm-up.
TEST(ComputeLevelStatsTest, MatchesHandComputedValues) {
  std::vector<v1::RequestRecord> rs;
  rs.push_back(Ok(1.0, 1.1, 1.5, 2.0, 30));
  rs.push_back(Ok(1.2, 1.25, 2.0, 3.0, 40));
  rs.push_back(Failed(1.3, 3.0, v1::ERROR_TIMEOUT));
  v1::RequestRecord warm = Ok(0.5, 0.6, 0.9, 10.0, 500);
  warm.set_warmup(true);
  rs.push_back(warm);

  const v1::LevelStats st = ComputeLevelStats(4, rs);
  EXPECT_EQ(st.concurrency(), 4);
  EXPECT_EQ(st.attempted(), 3u);
  EXPECT_EQ(st.successful(), 2u);
  EXPECT_EQ(st.failed(), 1u);
  EXPECT_EQ(st.warmup_excluded(), 1u);
  EXPECT_DOUBLE_EQ(st.t_wall_s(), 2.0);  // 3.0 (the failure's end) - 1.0
  EXPECT_DOUBLE_EQ(st.asps(), 2.5);      // (2 + 3) / 2
  EXPECT_DOUBLE_EQ(st.rps(), 1.0);
  EXPECT_DOUBLE_EQ(st.attempted_rps(), 1.5);
  EXPECT_DOUBLE_EQ(st.cps(), 35.0);  // (30 + 40) / 2; the failure's characters do not count
  EXPECT_NEAR(st.success_rate_pct(), 200.0 / 3, 1e-9);
  EXPECT_NEAR(st.latency_ms().mean(), 650, 1e-6);
  EXPECT_NEAR(st.latency_ms().p50(), 650, 1e-6);
  EXPECT_NEAR(st.latency_ms().p95(), 785, 1e-6);  // 500 + 0.95 * 300
  EXPECT_NEAR(st.rtf().mean(), (0.25 + 0.8 / 3) / 2, 1e-9);
  EXPECT_NEAR(st.rtf_median(), (0.25 + 0.8 / 3) / 2, 1e-9);
  EXPECT_NEAR(st.ttfa_ms().p50(), 75, 1e-6);
  EXPECT_NEAR(st.ttfa_ms().p99(), 50 + 0.99 * 50, 1e-6);
  ASSERT_EQ(st.errors().size(), 1u);
  EXPECT_EQ(st.errors().at("timeout"), 1u);
}

TEST(ComputeLevelStatsTest, StreamedTtfaIsFirstAudioNotEnd) {
  std::vector<v1::RequestRecord> rs = {Ok(0.0, 0.03, 2.0, 4.0, 50)};
  const v1::LevelStats st = ComputeLevelStats(1, rs);
  EXPECT_NEAR(st.ttfa_ms().p50(), 30, 1e-6);
  EXPECT_NEAR(st.latency_ms().p50(), 2000, 1e-6);
  EXPECT_DOUBLE_EQ(st.rtf().mean(), 0.5);
}

TEST(ComputeLevelStatsTest, AllFailedLevelHasZeroThroughputAndNoNans) {
  std::vector<v1::RequestRecord> rs = {Failed(0, 1, v1::ERROR_CONNECT),
                                       Failed(0.5, 1, v1::ERROR_HTTP_5XX)};
  const v1::LevelStats st = ComputeLevelStats(2, rs);
  EXPECT_EQ(st.successful(), 0u);
  EXPECT_DOUBLE_EQ(st.asps(), 0);
  EXPECT_DOUBLE_EQ(st.success_rate_pct(), 0);
  EXPECT_EQ(st.latency_ms().count(), 0u);
  EXPECT_EQ(st.errors().at("connect"), 1u);
  EXPECT_EQ(st.errors().at("http_5xx"), 1u);
}

TEST(ComputeLevelStatsTest, ErrorSummaryCountsKindsWithTheirFirstDetail) {
  auto failed = [](double start, v1::ErrorKind kind, int status, const std::string& detail) {
    v1::RequestRecord r = Failed(start, start + 0.1, kind);
    r.set_http_status(status);
    r.set_error_detail(detail);
    return r;
  };
  std::vector<v1::RequestRecord> rs = {
      Ok(0, 0.05, 0.1, 1.0, 10),
      failed(0.3, v1::ERROR_HTTP_5XX, 500, "500 Internal Server Error: later"),
      failed(0.2, v1::ERROR_HTTP_5XX, 503, "503 Busy: first"),
      failed(0.4, v1::ERROR_HTTP_5XX, 500, "500 Internal Server Error: last"),
      failed(0.1, v1::ERROR_TLS, 0, "certificate verify failed: self-signed certificate"),
  };
  v1::RequestRecord warm = failed(0.0, v1::ERROR_READ, 0, "warm-up only");
  warm.set_warmup(true);
  rs.push_back(warm);
  const v1::LevelStats st = ComputeLevelStats(1, rs);
  ASSERT_EQ(st.error_summary_size(), 2);
  // Most frequent first; each kind's detail is its earliest-started request's.
  EXPECT_EQ(st.error_summary(0).kind(), "http_5xx");
  EXPECT_EQ(st.error_summary(0).count(), 3u);
  EXPECT_EQ(st.error_summary(0).first_detail(), "503 Busy: first");
  EXPECT_EQ(st.error_summary(0).first_http_status(), 503);
  EXPECT_EQ(st.error_summary(1).kind(), "tls");
  EXPECT_EQ(st.error_summary(1).count(), 1u);
  EXPECT_EQ(st.error_summary(1).first_detail(),
            "certificate verify failed: self-signed certificate");
  EXPECT_EQ(ComputeLevelStats(1, std::vector<v1::RequestRecord>{rs[0]}).error_summary_size(), 0);
}

TEST(ComputeLevelStatsTest, CancelledRequestsAreCountedApartFromEveryRate) {
  // Two successes, one timeout, and two requests the tool cancelled at the level's end (one of
  // them ending late): the server answered 2 of the 3 requests it was given time for.
  std::vector<v1::RequestRecord> rs = {
      Ok(1.0, 1.1, 1.5, 2.0, 30), Ok(1.2, 1.25, 2.0, 3.0, 40), Failed(1.3, 3.0, v1::ERROR_TIMEOUT),
      Failed(0.5, 4.0, v1::ERROR_CANCELLED), Failed(2.5, 2.6, v1::ERROR_CANCELLED)};
  const v1::LevelStats st = ComputeLevelStats(4, rs);
  EXPECT_EQ(st.cancelled(), 2u);
  EXPECT_EQ(st.attempted(), 3u);
  EXPECT_EQ(st.failed(), 1u);
  EXPECT_NEAR(st.success_rate_pct(), 200.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(st.t_wall_s(), 2.0);  // 1.0 .. 3.0: the cancelled requests do not stretch it
  ASSERT_EQ(st.errors().size(), 1u);
  EXPECT_EQ(st.errors().at("timeout"), 1u);
}

TEST(ComputeLevelStatsTest, SuccessWithoutStampedAudioHasTheLatencyAsTtfa) {
  // No first-audio stamp (0 on the timeline) and one stamped before its start: neither may
  // yield a negative TTFA; the audio was in hand at the end at the latest.
  v1::RequestRecord unstamped = Ok(5.0, 0, 5.4, 1.0, 10);
  unstamped.set_first_audio_ns(0);
  v1::RequestRecord early = Ok(6.0, 5.0, 6.2, 1.0, 10);
  const v1::LevelStats st = ComputeLevelStats(1, std::vector<v1::RequestRecord>{unstamped, early});
  EXPECT_EQ(st.ttfa_ms().count(), 2u);
  EXPECT_NEAR(st.ttfa_ms().p50(), 300, 1e-6);  // mean of 400 and 200
  EXPECT_NEAR(st.ttfa_ms().max(), 400, 1e-6);
  EXPECT_GE(st.ttfa_ms().mean(), 0);
}

TEST(ComputeLevelStatsTest, EmptyLevel) {
  const v1::LevelStats st = ComputeLevelStats(8, std::span<const v1::RequestRecord>());
  EXPECT_EQ(st.attempted(), 0u);
  EXPECT_DOUBLE_EQ(st.t_wall_s(), 0);
}

TEST(ComputeLevelStatsTest, CountsNewConnections) {
  std::vector<v1::RequestRecord> rs = {Ok(0, 0.1, 1, 1, 10), Ok(1, 1.1, 2, 1, 10)};
  rs[0].set_connect_ns(2'000'000);
  const v1::LevelStats st = ComputeLevelStats(1, rs);
  EXPECT_EQ(st.new_connections(), 1u);
  EXPECT_DOUBLE_EQ(st.connect_ms().p50(), 2.0);
}

// A request due at 1.000 s whose new TLS connection took 30 ms was sent on time: its lag is the
// generator's (1 ms), not the connection's; a reused connection's lag is start - intended.
TEST(ComputeLevelStatsTest, SchedulingLagLeavesOutConnectionSetUp) {
  std::vector<v1::RequestRecord> rs = {Ok(1.031, 1.1, 1.5, 1, 10), Ok(2.004, 2.1, 2.5, 1, 10)};
  rs[0].set_intended_ns(1 * kS);
  rs[0].set_connect_ns(30'000'000);
  rs[1].set_intended_ns(2 * kS);
  const v1::LevelStats st = ComputeLevelStats(1, rs);
  EXPECT_NEAR(st.sched_lag_ms().p50(), 2.5, 1e-6);
  EXPECT_NEAR(st.sched_lag_ms().max(), 4.0, 1e-6);
  EXPECT_NEAR(st.latency_from_intended_ms().max(), 500.0, 1e-6);  // set-up included there
}

// Percentiles come from selection, not a sort: they must equal the sorted definition exactly,
// for every size (interpolation at both ends, n = 1, 2, ...) and with ties.
TEST(ComputeLevelStatsTest, SelectedPercentilesEqualSortedOnes) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> lat(0, 1);
  for (size_t n : {1u, 2u, 3u, 4u, 7u, 20u, 101u, 1000u, 40000u}) {
    std::vector<v1::RequestRecord> rs;
    std::vector<double> latency_ms, ttfa_ms;
    for (size_t i = 0; i < n; ++i) {
      // Every third latency repeats the previous one: ties around the ranks.
      const double l = i % 3 == 2
                           ? static_cast<double>(rs.back().end_ns() - rs.back().start_ns()) / kS
                           : lat(rng);
      v1::RequestRecord r = Ok(1.0, 1.0 + l / 4, 1.0 + l, 1.0, 10);
      latency_ms.push_back(static_cast<double>(r.end_ns() - r.start_ns()) / 1e6);
      ttfa_ms.push_back(static_cast<double>(r.first_audio_ns() - r.start_ns()) / 1e6);
      rs.push_back(r);
    }
    const v1::LevelStats st = ComputeLevelStats(1, rs);
    const Summary want = Summarize(latency_ms);
    EXPECT_EQ(st.latency_ms().p50(), want.p50) << n;
    EXPECT_EQ(st.latency_ms().p95(), want.p95) << n;
    EXPECT_EQ(st.latency_ms().p99(), want.p99) << n;
    EXPECT_EQ(st.latency_ms().max(), want.max) << n;
    EXPECT_NEAR(st.latency_ms().mean(), want.mean, 1e-9 * want.mean) << n;
    EXPECT_EQ(st.latency_ms().count(), n);
    const Summary want_ttfa = Summarize(ttfa_ms);
    EXPECT_EQ(st.ttfa_ms().p50(), want_ttfa.p50) << n;
    EXPECT_EQ(st.ttfa_ms().p99(), want_ttfa.p99) << n;
  }
}

TEST(ComputeLevelStatsTest, StoreAndProtoInputsAgree) {
  std::vector<v1::RequestRecord> rs = {Ok(0, 0.1, 1, 1, 10), Ok(1, 1.1, 2.5, 2, 10),
                                       Failed(0.5, 3, v1::ERROR_TIMEOUT)};
  RecordStore store;
  for (const v1::RequestRecord& r : rs) store.Append(r, 0);
  LevelOptions o;
  o.slos = {*ParseSlo("latency_p95=1200ms")};
  const v1::LevelStats a = ComputeLevelStats(2, rs, o);
  const v1::LevelStats b = ComputeLevelStats(2, store, o);
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  EXPECT_DOUBLE_EQ(b.goodput_rps(), 1.0 / 3.0);
  EXPECT_EQ(b.errors().at("timeout"), 1u);
}

}  // namespace
}  // namespace ttsbench::common
