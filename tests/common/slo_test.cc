#include "common/slo.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

TEST(ParseSloTest, UnitsAndDirections) {
  auto s = ParseSlo("ttfa_p95=300ms");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->metric, "ttfa_p95");
  EXPECT_DOUBLE_EQ(s->threshold, 300);
  EXPECT_TRUE(s->upper_bound);
  s = ParseSlo("latency_p99=1.5s");
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->threshold, 1500);
  s = ParseSlo("success_rate=99%");
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->threshold, 99);
  EXPECT_FALSE(s->upper_bound);
  s = ParseSlo("rtf_p95=0.5");
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->threshold, 0.5);
}

TEST(ParseSloTest, RejectsWithTheReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"ttfa_p95", "'ttfa_p95' is not NAME=VALUE"},
      {"ttfa_p95=300", "ttfa_p95 needs a unit, ms or s"},
      {"nope=1", "unknown metric 'nope' (one of ttfa_p50,"},
      {"success_rate=150%", "success_rate must be <= 100%"},
      {"success_rate=0.99", "success_rate is a percentage (e.g. success_rate=99%)"},
      {"rtf_p95=-1", "'-1' is not a threshold"},
      {"rtf_p95=0.5ms", "rtf_p95 takes a plain number, got unit 'ms'"},
      {"asps=fast", "'fast' is not a threshold"},
  };
  for (const auto& [text, why] : cases) {
    auto s = ParseSlo(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_NE(s.status().message().find(why), std::string::npos) << s.status();
  }
}

TEST(ParseSloTest, MeansAndTheMedianRtfAreObjectivesToo) {
  for (const char* text : {"ttfa_mean=200ms", "latency_mean=1s", "rtf_p50=0.3"}) {
    EXPECT_TRUE(ParseSlo(text).ok()) << text;
  }
  v1::LevelStats l;
  l.set_successful(1);
  l.mutable_latency_ms()->set_mean(900);
  l.mutable_rtf()->set_p50(0.4);
  EXPECT_TRUE(EvaluateSlo(*ParseSlo("latency_mean=1s"), l).pass());
  EXPECT_FALSE(EvaluateSlo(*ParseSlo("rtf_p50=0.3"), l).pass());
}

TEST(ParseSlosTest, RefusesOneMetricTwiceAndSaysWhichEntry) {
  size_t bad = 99;
  auto slos = ParseSlos({"ttfa_p95=1s", "rtf_p95=0.5", "TTFA_P95=2s"}, &bad);
  ASSERT_FALSE(slos.ok());
  EXPECT_EQ(bad, 2u);
  EXPECT_EQ(slos.status().message(), "slo[2]: ttfa_p95 is already set by slo[0]");
  slos = ParseSlos({"ttfa_p95=1s", "ttfa_p95"}, &bad);
  EXPECT_EQ(bad, 1u);
  EXPECT_EQ(ParseSlos({"ttfa_p95=1s", "ttfa_p99=2s"})->size(), 2u);
}

TEST(EvaluateSloTest, PassAndFailOnBothSides) {
  v1::LevelStats l;
  l.set_successful(10);
  l.mutable_ttfa_ms()->set_p95(250);
  l.set_success_rate_pct(98.5);
  EXPECT_TRUE(EvaluateSlo(*ParseSlo("ttfa_p95=300ms"), l).pass());
  EXPECT_FALSE(EvaluateSlo(*ParseSlo("ttfa_p95=200ms"), l).pass());
  EXPECT_FALSE(EvaluateSlo(*ParseSlo("success_rate=99%"), l).pass());
  const v1::SloResult r = EvaluateSlo(*ParseSlo("success_rate=98%"), l);
  EXPECT_TRUE(r.pass());
  EXPECT_DOUBLE_EQ(r.value(), 98.5);
  l.set_successful(0);
  EXPECT_FALSE(EvaluateSlo(*ParseSlo("ttfa_p95=300ms"), l).pass());
}

TEST(EvaluateSloTest, ASuccessRateIsJudgedEvenWhenNothingSucceeded) {
  v1::LevelStats l;
  l.set_attempted(8);
  l.set_successful(0);
  l.set_success_rate_pct(0);
  EXPECT_FALSE(EvaluateSlo(*ParseSlo("success_rate=50%"), l).pass());
  // The way to turn the default floor off must hold for a run where everything failed.
  EXPECT_TRUE(EvaluateSlo(*ParseSlo("success_rate=0%"), l).pass());
}

TEST(WithDefaultSlosTest, AddsTheSuccessFloorUnlessASuccessRateIsSet) {
  const std::vector<Slo> none = WithDefaultSlos({});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].metric, "success_rate");
  EXPECT_DOUBLE_EQ(none[0].threshold, 50);
  EXPECT_FALSE(none[0].upper_bound);
  EXPECT_EQ(none[0].text, "success_rate=50% (default)");

  const std::vector<Slo> latency = WithDefaultSlos({*ParseSlo("ttfa_p95=300ms")});
  ASSERT_EQ(latency.size(), 2u);
  EXPECT_EQ(latency[0].text, "ttfa_p95=300ms");
  EXPECT_EQ(latency[1].text, "success_rate=50% (default)");

  for (const char* own : {"success_rate=99%", "success_rate=0%"}) {
    const std::vector<Slo> replaced = WithDefaultSlos({*ParseSlo(own)});
    ASSERT_EQ(replaced.size(), 1u) << own;
    EXPECT_EQ(replaced[0].text, own);
  }
  // The floor is per level only: goodput's per-request bounds do not change.
  const RequestSloBounds b = RequestBoundsOf(none);
  EXPECT_TRUE(std::isinf(b.ttfa_ms));
  EXPECT_FALSE(b.has_rtf);
}

TEST(RequestMeetsSlosTest, LatencyTypeObjectivesApplyPerRequest) {
  v1::RequestRecord r;
  r.set_start_ns(0);
  r.set_first_audio_ns(100'000'000);
  r.set_end_ns(1'000'000'000);
  r.set_audio_s(4);
  auto slos = *ParseSlos({"ttfa_p95=150ms", "rtf_p95=0.3", "success_rate=99%"});
  EXPECT_TRUE(RequestMeetsSlos(slos, r));
  slos = *ParseSlos({"ttfa_p95=50ms"});
  EXPECT_FALSE(RequestMeetsSlos(slos, r));
  slos = *ParseSlos({"rtf_p95=0.2"});
  EXPECT_FALSE(RequestMeetsSlos(slos, r));
}

}  // namespace
}  // namespace ttsbench::common
