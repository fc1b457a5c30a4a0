#include "common/slo.h"

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
  for (const char* bad :
       {"ttfa_p95", "ttfa_p95=300", "nope=1", "success_rate=150%", "rtf_p95=-1", "asps=fast"}) {
    auto s = ParseSlo(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.status().message().find(bad), std::string::npos) << s.status();
  }
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
