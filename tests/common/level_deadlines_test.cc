#include "common/level_deadlines.h"

#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

LevelShape Closed(int concurrency, double timeout_s) {
  LevelShape s;
  s.concurrency = concurrency;
  s.timeout_s = timeout_s;
  return s;
}

LevelShape Open(double rate, double timeout_s) {
  LevelShape s;
  s.open_loop = true;
  s.rate = rate;
  s.timeout_s = timeout_s;
  return s;
}

TEST(LevelDeadlinesTest, TimeBoundClosedLevelOfAnyLengthOutlastsItsDuration) {
  // The old bound ignored duration: 60 s whatever the level asked for.
  for (double duration : {75.0, 600.0, 3600.0}) {
    LevelShape s = Closed(2, 30);
    s.duration_s = duration;
    const LevelDeadlines d = DeriveLevelDeadlines(s);
    EXPECT_EQ(d.measured_end_s, duration);
    // No request starts after the duration; the last one may take its connect and exchange.
    EXPECT_DOUBLE_EQ(d.measured_limit_s, duration + 60);
    EXPECT_GT(d.done_wait_s, d.measured_limit_s);
    // ...and the coordinator does not wait an unbounded or absurd time either.
    EXPECT_LT(d.done_wait_s, duration + 3 * 60 + kReportSlackS + 1);
  }
}

TEST(LevelDeadlinesTest, TenMinuteAndOneHourOpenLoopLevels) {
  for (double duration : {600.0, 3600.0}) {
    LevelShape s = Open(50, 10);
    s.duration_s = duration;
    const LevelDeadlines d = DeriveLevelDeadlines(s);
    EXPECT_DOUBLE_EQ(d.measured_limit_s, duration + 20);
    EXPECT_DOUBLE_EQ(d.done_wait_s, duration + 20 + kReportSlackS);
  }
  // One hour by count: 180,000 arrivals at 50/s is 3600 s of schedule, plus Poisson wander.
  LevelShape s = Open(50, 10);
  s.iterations = 180'000;
  const LevelDeadlines d = DeriveLevelDeadlines(s);
  EXPECT_GT(d.measured_limit_s, 3600 + 20);
  EXPECT_LT(d.measured_limit_s, 3600 * 1.05 + 20);
  // Constant arrivals do not wander: exactly the schedule plus the last request.
  s.arrival = "constant";
  EXPECT_DOUBLE_EQ(DeriveLevelDeadlines(s).measured_limit_s, 3600 + 20);
  // Burstier gamma arrivals wander more than Poisson.
  LevelShape bursty = Open(50, 10);
  bursty.iterations = 180'000;
  bursty.arrival = "gamma";
  bursty.burstiness = 0.25;
  EXPECT_GT(DeriveLevelDeadlines(bursty).measured_limit_s, d.measured_limit_s);
}

TEST(LevelDeadlinesTest, CountBoundClosedLevelCountsRoundsRampAndThinkTime) {
  LevelShape s = Closed(4, 5);
  s.iterations = 40;  // 10 rounds per user
  s.ramp_up_s = 30;
  s.think_time_s = 2;
  const LevelDeadlines d = DeriveLevelDeadlines(s);
  // Ramp-up, then (10 rounds + one for rounding an agent's share up) x (connect + exchange +
  // think).
  EXPECT_DOUBLE_EQ(d.measured_limit_s, 30 + 11 * (10 + 2));
  EXPECT_EQ(d.measured_end_s, 0);
  // One hour of a count-bound level with think time is not cut short.
  LevelShape hour = Closed(10, 30);
  hour.iterations = 36'000;  // 3600 rounds
  hour.think_time_s = 1;
  EXPECT_GT(DeriveLevelDeadlines(hour).measured_limit_s, 3600);
}

TEST(LevelDeadlinesTest, DurationAndCountTogetherEndWithWhicheverComesFirst) {
  LevelShape s = Closed(2, 1);
  s.iterations = 4;  // 2 rounds: (2 + 1) x 2 s = 6 s
  s.duration_s = 600;
  EXPECT_DOUBLE_EQ(DeriveLevelDeadlines(s).measured_limit_s, 6);
  s.iterations = 100'000;
  EXPECT_DOUBLE_EQ(DeriveLevelDeadlines(s).measured_limit_s, 602);
}

TEST(LevelDeadlinesTest, WarmupByTimeOrCountHasItsOwnBound) {
  LevelShape s = Closed(8, 10);
  s.warmup_s = 120;
  s.duration_s = 30;
  LevelDeadlines d = DeriveLevelDeadlines(s);
  EXPECT_EQ(d.warmup_end_s, 120);
  // Connections first, then two minutes of warm-up, then the last warm-up request.
  EXPECT_DOUBLE_EQ(d.warmup_limit_s, 10 + 120 + 20);
  EXPECT_GT(d.ready_wait_s, d.warmup_limit_s);

  LevelShape counted = Closed(8, 10);
  counted.warmup = 16;  // 2 rounds
  counted.think_time_s = 1;
  EXPECT_DOUBLE_EQ(DeriveLevelDeadlines(counted).warmup_limit_s, 10 + 2 * 21);

  LevelShape none = Open(10, 10);
  EXPECT_EQ(DeriveLevelDeadlines(none).warmup_limit_s, 0);  // open loop opens nothing up front
}

TEST(LevelDeadlinesTest, ExplicitLevelTimeLimitWinsAndBoundsOnlyTheMeasuredPhase) {
  LevelShape s = Closed(2, 30);
  s.duration_s = 3600;
  s.warmup_s = 60;
  s.level_time_limit_s = 90;
  const LevelDeadlines d = DeriveLevelDeadlines(s);
  EXPECT_EQ(d.measured_limit_s, 90);
  EXPECT_DOUBLE_EQ(d.done_wait_s, 90 + 60 + kReportSlackS);
  // The warm-up keeps its own bound: a time limit must not cut it (nor, through it, the level).
  EXPECT_DOUBLE_EQ(d.warmup_limit_s, 30 + 60 + 60);
  // A limit longer than the derived bound is honoured too.
  s.level_time_limit_s = 7200;
  EXPECT_EQ(DeriveLevelDeadlines(s).measured_limit_s, 7200);
}

TEST(LevelDeadlinesTest, ShapeOfLevelReadsThePlan) {
  v1::Load load;
  load.set_model("open");
  load.set_duration_s(75);
  load.set_warmup_s(5);
  load.set_arrival("gamma");
  load.set_burstiness(0.5);
  load.set_level_time_limit_s(0);
  const LevelShape s = ShapeOfLevel(load, 0, 0, 20);
  EXPECT_TRUE(s.open_loop);
  EXPECT_EQ(s.rate, 20);
  EXPECT_EQ(s.arrival, "gamma");
  const LevelDeadlines d = DeriveLevelDeadlines(s);
  EXPECT_DOUBLE_EQ(d.measured_limit_s, 75 + 60);  // timeout 0 means the 30 s default
  EXPECT_EQ(d.warmup_end_s, 5);
}

}  // namespace
}  // namespace ttsbench::common
