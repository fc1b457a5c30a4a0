// The audio integrity and consistency judge (coordinator/report/audio_quality): every formula
// against values worked out by hand, and the cliff on levels built in the test.
#include "coordinator/report/audio_quality.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <vector>

#include "common/csv.h"

namespace ttsbench::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::optional<double> Corr(std::vector<float> a, std::vector<float> b, double wa = 50,
                           double wb = 50) {
  return EnvelopeCorrelation(a, wa, b, wb);
}

TEST(RobustScaleTest, MedianAndScaledMadOfAnOddSample) {
  // median 3; |x - 3| = {2, 1, 0, 1, 97}, median 1; scale 1.4826.
  const RobustScale s = RobustScaleOf({1, 2, 3, 4, 100});
  EXPECT_DOUBLE_EQ(s.median, 3);
  EXPECT_DOUBLE_EQ(s.scale, 1.4826);
  EXPECT_DOUBLE_EQ(RobustZ(100, s), 97 / 1.4826);
  EXPECT_DOUBLE_EQ(RobustZ(4, s), 1 / 1.4826);
  EXPECT_DOUBLE_EQ(RobustZ(3, s), 0);
}

TEST(RobustScaleTest, EvenSampleUsesTheInterpolatedMedian) {
  // median (2 + 3) / 2 = 2.5; deviations {1.5, 0.5, 0.5, 1.5}, median 1.
  const RobustScale s = RobustScaleOf({4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_DOUBLE_EQ(s.scale, 1.4826);
}

TEST(RobustScaleTest, IdenticalValuesGetAOnePercentFloor) {
  // MAD 0: the scale is 1% of the median, so 10.5 is 5 scales away and 10.2 two.
  const RobustScale s = RobustScaleOf({10, 10, 10});
  EXPECT_DOUBLE_EQ(s.scale, 0.1);
  EXPECT_NEAR(RobustZ(10.5, s), 5.0, 1e-12);
  EXPECT_NEAR(RobustZ(9.8, s), -2.0, 1e-12);
}

TEST(RobustScaleTest, ZeroScaleMakesAnyDifferenceInfinite) {
  const RobustScale s = RobustScaleOf({0, 0});
  EXPECT_EQ(s.scale, 0);
  EXPECT_EQ(RobustZ(0, s), 0);
  EXPECT_EQ(RobustZ(1, s), std::numeric_limits<double>::infinity());
  EXPECT_EQ(RobustZ(-1, s), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(RobustScaleOf({}).median, 0);
}

TEST(EnvelopeCorrelationTest, PearsonOfHandWorkedSeries) {
  // Deviations {15, 5, -5, -15} and {15, -5, 5, -15}: sxy 400, sxx = syy = 500, r = 0.8.
  EXPECT_NEAR(*Corr({-10, -20, -30, -40}, {-10, -30, -20, -40}), 0.8, 1e-9);
  // A level offset changes nothing; reversed order is -1.
  EXPECT_NEAR(*Corr({-10, -20, -30, -20}, {-12, -22, -32, -22}), 1.0, 1e-9);
  EXPECT_NEAR(*Corr({-10, -20, -30}, {-30, -20, -10}), -1.0, 1e-9);
}

TEST(EnvelopeCorrelationTest, ComparesOverTheCommonLength) {
  EXPECT_NEAR(*Corr({-10, -20, -30, -40, -50, -60}, {-10, -30, -20, -40}), 0.8, 1e-9);
  EXPECT_NEAR(*Corr({-10, -30, -20, -40}, {-10, -20, -30, -40, -50, -60}), 0.8, 1e-9);
}

TEST(EnvelopeCorrelationTest, OtherWindowLengthIsReadOnTheReferenceGrid) {
  // 100 ms windows against 50 ms ones: window i's centre (i + 0.5) * 100 ms lies in 50 ms window
  // 2i + 1, so b's odd windows {-10, -30, -20, -40} are compared: r = 0.8 as above.
  EXPECT_NEAR(*Corr({-10, -20, -30, -40}, {0, -10, 0, -30, 0, -20, 0, -40}, 100, 50), 0.8, 1e-9);
}

TEST(EnvelopeCorrelationTest, ValuesAreClampedToMinus100Dbfs) {
  // a becomes {-100, -50, -20, -50}: deviations {-45, 5, 35, 5} and b's {-45, 15, 25, 5} (both
  // means -55): sxy 3000, sxx 3300, syy 2900, r = 3000 / sqrt(3300 * 2900).
  EXPECT_NEAR(*Corr({-150, -50, -20, -50}, {-100, -40, -30, -50}), 3000 / std::sqrt(3300.0 * 2900),
              1e-9);
  EXPECT_NEAR(*Corr({-1e30f, -50, -20, -50}, {-100, -40, -30, -50}),
              3000 / std::sqrt(3300.0 * 2900), 1e-9);
}

TEST(EnvelopeCorrelationTest, FlatEnvelopesAreJudgedByTheirLevel) {
  // A steady tone: Pearson is undefined, the same level is the same envelope.
  EXPECT_EQ(*Corr({-13.5, -13.5, -13.5, -13.5}, {-13.5, -13.5, -13.6}), 1.0);
  EXPECT_EQ(*Corr({-13.5, -13.5, -13.5}, {-16, -16, -16}), 1.0);  // 2.5 dB apart
  EXPECT_EQ(*Corr({-13.5, -13.5, -13.5}, {-20, -20, -20}), 0.0);  // 6.5 dB apart
  EXPECT_EQ(*Corr({-13.5, -13.5, -13.5}, {-10, -20, -30}), 0.0);  // flat against varying
  EXPECT_EQ(*Corr({-10, -20, -30}, {-13.5, -13.5, -13.5}), 0.0);
}

TEST(EnvelopeCorrelationTest, FewerThanThreeCommonWindowsIsNotCompared) {
  EXPECT_FALSE(Corr({-10, -20}, {-10, -20, -30}).has_value());
  EXPECT_FALSE(Corr({-10, -20, -30}, {}).has_value());
}

TEST(AudioQualityBoundsTest, DefaultsFillWhatThePlanLeavesUnset) {
  v1::AudioChecks checks;
  checks.set_min_envelope_correlation(0.6);
  const v1::AudioQuality b = AudioQualityBounds(checks);
  EXPECT_EQ(b.min_duration_ratio(), 0.9);
  EXPECT_EQ(b.max_duration_ratio(), 1.1);
  EXPECT_EQ(b.min_envelope_correlation(), 0.6);
  EXPECT_EQ(b.outlier_z(), 3.5);
  EXPECT_EQ(b.max_flagged_pct(), 5);
  EXPECT_EQ(b.max_clipped_fraction(), 0.001);
  EXPECT_EQ(b.max_edge_silence_ms(), 1000);
  EXPECT_EQ(b.stutter_ms(), 300);
}

// Levels of analysed answers built by hand; the analyses live as long as the fixture.
class JudgeTest : public ::testing::Test {
 protected:
  JudgeTest() { levels_.reserve(16); }  // Level() hands out references into it

  AudioQualityLevel& Level(int concurrency, const std::string& series = "") {
    levels_.push_back({series, concurrency, 0, {}});
    session_.add_levels()->set_concurrency(concurrency);
    session_.mutable_levels(session_.levels_size() - 1)->set_series(series);
    return levels_.back();
  }

  // An answer of `chars` characters and `seconds` of audio with a varying envelope that is
  // `seconds` long at 50 ms windows.
  v1::AudioAnalysis& Add(AudioQualityLevel& level, int32_t text, int32_t chars, double seconds,
                         int64_t start_ns = 0) {
    v1::AudioAnalysis& a = analyses_.emplace_back();
    a.set_decoded(true);
    a.set_decoded_s(seconds);
    a.set_sample_rate(24000);
    a.set_declared_sample_rate(24000);
    a.set_channels(1);
    a.set_envelope_window_ms(50);
    const int windows = static_cast<int>(std::lround(seconds * 20));
    for (int i = 0; i < windows; ++i) a.add_envelope_db(-20.0f - static_cast<float>((i * 7) % 13));
    level.answers.push_back({text, chars, start_ns, &a});
    return a;
  }

  void Judge() {
    // The answers' vectors are final now: the judge keeps pointers into them.
    JudgeAudioQuality(checks_, levels_, &session_);
  }

  const v1::LevelStats& Stats(int i) { return session_.levels(i); }

  v1::AudioChecks checks_;
  std::deque<v1::AudioAnalysis> analyses_;
  std::vector<AudioQualityLevel> levels_;
  v1::Session session_;
};

TEST_F(JudgeTest, TruncationAboveALevelIsTheCliff) {
  for (int c : {1, 2, 4, 8}) {
    AudioQualityLevel& l = Level(c);
    for (int k = 0; k < 4; ++k) {
      // 60 ms of audio per character; above 4 the server keeps half of it.
      const double keep = c > 4 ? 0.5 : 1.0;
      Add(l, 0, 10, 0.6 * keep, k);
      Add(l, 1, 20, 1.2 * keep, k);
    }
  }
  Judge();
  for (int i : {0, 1, 2}) {
    EXPECT_TRUE(Stats(i).audio_integrity().ok()) << i;
    EXPECT_TRUE(Stats(i).audio_consistency().ok()) << i;
  }
  // The lowest level compares its later answers with each text's first: 6 of 8.
  EXPECT_EQ(Stats(0).audio_consistency().compared(), 6u);
  EXPECT_EQ(Stats(1).audio_consistency().compared(), 8u);
  EXPECT_DOUBLE_EQ(Stats(1).audio_consistency().duration_ratio_median(), 1.0);
  EXPECT_DOUBLE_EQ(Stats(1).audio_consistency().envelope_corr_min(), 1.0);

  const v1::AudioConsistency& c = Stats(3).audio_consistency();
  EXPECT_EQ(c.compared(), 8u);
  EXPECT_DOUBLE_EQ(c.duration_ratio_median(), 0.5);
  EXPECT_DOUBLE_EQ(c.duration_ratio_min(), 0.5);
  EXPECT_EQ(c.inconsistent(), 8u);
  EXPECT_DOUBLE_EQ(c.inconsistent_pct(), 100);
  EXPECT_FALSE(c.ok());
  // The envelope of the first half is the reference's first half: correlation 1.
  EXPECT_EQ(c.envelope_compared(), 8u);
  EXPECT_NEAR(c.envelope_corr_median(), 1.0, 1e-9);

  // ms per character 30 against the lowest level's 60 (scale: 1% of 60 = 0.6): z = -50.
  const v1::AudioIntegrity& g = Stats(3).audio_integrity();
  EXPECT_DOUBLE_EQ(g.ms_per_char().p50(), 30);
  EXPECT_DOUBLE_EQ(g.median_ratio(), 0.5);
  EXPECT_NEAR(g.median_shift_z(), -50, 1e-9);
  EXPECT_EQ(g.outliers_lowest(), 8u);
  EXPECT_EQ(g.outliers_own(), 0u);
  EXPECT_EQ(g.flagged(), 8u);
  EXPECT_FALSE(g.ok());

  const v1::AudioQuality& q = session_.audio_quality();
  ASSERT_EQ(q.cliffs_size(), 1);
  EXPECT_EQ(q.cliffs(0).concurrency(), 8);
  EXPECT_THAT(q.cliffs(0).problems(), HasSubstr("concurrency 8"));
  EXPECT_THAT(q.cliffs(0).problems(), HasSubstr("duration ratio median 0.50"));
  EXPECT_EQ(q.min_duration_ratio(), 0.9);
}

TEST_F(JudgeTest, IdenticalAudioAtEveryLevelHasNoCliff) {
  for (int c : {1, 2, 4, 8}) {
    AudioQualityLevel& l = Level(c);
    Add(l, 0, 10, 0.6);
    Add(l, 1, 20, 1.2);
  }
  Judge();
  EXPECT_EQ(session_.audio_quality().cliffs_size(), 0);
  EXPECT_THAT(AudioQualityConsole(session_), testing::IsEmpty());  // checks off in the plan
  session_.mutable_plan()->mutable_audio_checks()->set_enabled(true);
  EXPECT_THAT(AudioQualityConsole(session_), HasSubstr("No audio cliff"));
}

TEST_F(JudgeTest, MedianShiftAndZAgainstTheLowestLevel) {
  // Lowest: 50, 60, 70 ms/char: median 60, MAD 10, scale 14.826. Level 2: 80, 90, 100.
  AudioQualityLevel& low = Level(1);
  AudioQualityLevel& high = Level(2);
  int text = 0;
  for (double ms : {50, 60, 70}) Add(low, text++, 10, ms * 10 / 1000);
  text = 10;  // other texts: no consistency comparisons
  for (double ms : {80, 90, 100}) Add(high, text++, 10, ms * 10 / 1000);
  Judge();
  const v1::AudioIntegrity& g = Stats(1).audio_integrity();
  EXPECT_NEAR(g.median_shift_z(), 30 / 14.826, 1e-9);
  EXPECT_NEAR(g.median_ratio(), 1.5, 1e-12);
  // z of 100 against the lowest: 40 / 14.826 = 2.70 < 3.5; own distribution: median 90.
  EXPECT_EQ(g.outliers_lowest(), 0u);
  EXPECT_EQ(g.outliers_own(), 0u);
  EXPECT_EQ(g.flagged(), 0u);
  // The shift itself is out of [0.9, 1.1].
  EXPECT_FALSE(g.ok());
  EXPECT_THAT(g.problems(), HasSubstr("median ms/char 1.50x"));
  EXPECT_EQ(Stats(1).audio_consistency().compared(), 0u);
  EXPECT_TRUE(Stats(1).audio_consistency().ok());
}

TEST_F(JudgeTest, FlagsAreCountedAndAShareAboveTheBoundIsBad) {
  // 20 answers a level; at level 2 one is truncated (5%: not above 5%), at level 4 two (10%).
  for (int c : {1, 2, 4}) {
    AudioQualityLevel& l = Level(c);
    for (int k = 0; k < 20; ++k) {
      v1::AudioAnalysis& a = Add(l, k, 10, 0.6);
      if (c == 2 && k == 0) a.set_truncated(true);
      if (c == 4 && k < 2) a.set_truncated(true);
      if (c != 1) continue;
      // At the lowest level each other flag once: 5 of 20 answers (25%).
      if (k == 0) a.set_leading_silence_ms(1001);
      if (k == 1) a.set_trailing_silence_ms(1500);
      if (k == 2) a.set_internal_silences(2);
      if (k == 3) a.set_clipped_fraction(0.01);
      if (k == 4) {
        a.set_declared_sample_rate(22050);
        a.set_declared_channels(2);
      }
    }
  }
  Judge();
  const v1::AudioIntegrity& g0 = Stats(0).audio_integrity();
  EXPECT_EQ(g0.leading_silence(), 1u);
  EXPECT_EQ(g0.trailing_silence(), 1u);
  EXPECT_EQ(g0.stutters(), 1u);
  EXPECT_EQ(g0.clipped(), 1u);
  EXPECT_DOUBLE_EQ(g0.clipped_fraction_max(), 0.01);
  EXPECT_EQ(g0.rate_mismatch(), 1u);
  EXPECT_EQ(g0.channel_mismatch(), 1u);
  EXPECT_EQ(g0.flagged(), 5u);
  EXPECT_DOUBLE_EQ(g0.flagged_pct(), 25);
  EXPECT_FALSE(g0.ok());
  EXPECT_THAT(g0.problems(), HasSubstr("stutter 1"));

  EXPECT_EQ(Stats(1).audio_integrity().truncated(), 1u);
  EXPECT_TRUE(Stats(1).audio_integrity().ok());
  EXPECT_EQ(Stats(2).audio_integrity().truncated(), 2u);
  EXPECT_DOUBLE_EQ(Stats(2).audio_integrity().flagged_pct(), 10);
  EXPECT_FALSE(Stats(2).audio_integrity().ok());
  // The lowest level is the first bad one.
  ASSERT_EQ(session_.audio_quality().cliffs_size(), 1);
  EXPECT_EQ(session_.audio_quality().cliffs(0).concurrency(), 1);
}

TEST_F(JudgeTest, ReferenceIsTheEarliestAnswerAtTheLowestLevelWhateverTheLevelOrder) {
  // Capacity probes run out of load order: the lowest load is the reference all the same.
  AudioQualityLevel& high = Level(4);
  AudioQualityLevel& low = Level(1);
  Add(high, 0, 10, 1.0);
  Add(low, 0, 10, 1.0, /*start_ns=*/200);
  Add(low, 0, 10, 0.8, /*start_ns=*/100);  // the reference
  Judge();
  EXPECT_EQ(Stats(1).audio_consistency().compared(), 1u);
  EXPECT_DOUBLE_EQ(Stats(1).audio_consistency().duration_ratio_median(), 1.25);
  EXPECT_DOUBLE_EQ(Stats(0).audio_consistency().duration_ratio_median(), 1.25);
  // The lowest level's durations are the baseline: its repeat's 1.25 is reported, not judged
  // there; the same 1.25 at load 4 is the cliff.
  EXPECT_EQ(Stats(1).audio_consistency().inconsistent(), 0u);
  EXPECT_TRUE(Stats(1).audio_consistency().ok());
  EXPECT_EQ(Stats(0).audio_consistency().inconsistent(), 1u);
  ASSERT_EQ(session_.audio_quality().cliffs_size(), 1);
  EXPECT_EQ(session_.audio_quality().cliffs(0).concurrency(), 4);
}

TEST_F(JudgeTest, DeterministicEngineWithUnevenTextsHasNoCliff) {
  // espeak-ng on short texts: each text's audio is the same at every load, but one short text
  // (5 characters, 150 ms/char: a pause dominates) is far from the others' 60-68 ms/char. Drawn
  // 6 times in 60 it was once a robust-z outlier against the lowest level's mix: 10% flagged, a
  // "cliff" at the lowest level with every duration ratio 1.000.
  for (int c : {1, 4}) {
    AudioQualityLevel& l = Level(c);
    for (int k = 0; k < 6; ++k) {
      Add(l, 0, 5, 0.75, k);
      for (int text = 1; text < 10; ++text) Add(l, text, 20, (60 + text) * 20 / 1000.0, k);
    }
    // A text the lowest level never said: judged by ms/char against its mix (64: not an outlier).
    if (c == 4) Add(l, 20, 20, 64 * 20 / 1000.0);
  }
  Judge();
  for (int i : {0, 1}) {
    EXPECT_EQ(Stats(i).audio_integrity().outliers_lowest(), 0u) << i;
    EXPECT_EQ(Stats(i).audio_integrity().flagged(), 0u) << i;
    EXPECT_TRUE(Stats(i).audio_integrity().ok()) << Stats(i).audio_integrity().problems();
    EXPECT_TRUE(Stats(i).audio_consistency().ok()) << i;
  }
  // Its own distribution still shows the short text as unusual (reported, not flagged).
  EXPECT_EQ(Stats(0).audio_integrity().outliers_own(), 6u);
  EXPECT_EQ(session_.audio_quality().cliffs_size(), 0);
}

TEST_F(JudgeTest, ADifferentMixOfTheSameTextsIsNotAMedianShift) {
  // Text 0 at 60 ms/char, text 1 at 100 (deterministic). The lowest level drew text 0 three
  // times in four (median 60), the next text 1 three times in four (median 100): the median
  // ms/char is 1.67x, yet every answer is its text's reference duration exactly.
  AudioQualityLevel& low = Level(1);
  AudioQualityLevel& high = Level(2);
  for (int k = 0; k < 4; ++k) Add(low, k < 3 ? 0 : 1, 10, k < 3 ? 0.6 : 1.0, k);
  for (int k = 0; k < 4; ++k) Add(high, k < 3 ? 1 : 0, 10, k < 3 ? 1.0 : 0.6, k);
  Judge();
  const v1::AudioIntegrity& g = Stats(1).audio_integrity();
  EXPECT_NEAR(g.median_ratio(), 100.0 / 60, 1e-9);  // reported
  EXPECT_TRUE(g.ok()) << g.problems();
  EXPECT_EQ(session_.audio_quality().cliffs_size(), 0);
}

TEST_F(JudgeTest, ATextWithoutAReferenceIsJudgedByMsPerCharAgainstTheLowestLevel) {
  AudioQualityLevel& low = Level(1);
  AudioQualityLevel& high = Level(2);
  for (int text = 0; text < 10; ++text) Add(low, text, 10, 0.6);  // 60 ms/char, scale 0.6
  for (int text = 0; text < 10; ++text) Add(high, text, 10, 0.6);
  Add(high, 50, 10, 0.9);  // 90 ms/char, never said at the lowest level: z = 50
  Judge();
  EXPECT_EQ(Stats(1).audio_integrity().outliers_lowest(), 1u);
  EXPECT_EQ(Stats(1).audio_integrity().flagged(), 1u);
  EXPECT_FALSE(Stats(1).audio_integrity().ok());  // 1 of 11: 9% > 5%
  EXPECT_THAT(Stats(1).audio_integrity().problems(), HasSubstr("duration outlier 1"));
}

TEST_F(JudgeTest, NothingAnalysedIsNotChecked) {
  Level(1);
  Level(2);
  Judge();
  session_.mutable_plan()->mutable_audio_checks()->set_enabled(true);
  const std::string console = AudioQualityConsole(session_);
  EXPECT_THAT(console, HasSubstr("not checked"));
  EXPECT_THAT(console, HasSubstr("Audio not checked: no answer could be analysed"));
  EXPECT_THAT(console, Not(HasSubstr("No audio cliff")));
  EXPECT_THAT(console, Not(HasSubstr(" ok\n")));
  auto rows = common::ParseCsv(AudioQualityCsv(session_));
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  const std::vector<std::string>& header = (*rows)[0];
  for (const char* name : {"integrity_ok", "consistency_ok", "cliff"}) {
    const size_t col =
        static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
    ASSERT_LT(col, header.size()) << name;
    EXPECT_EQ((*rows)[1][col], "") << name;
  }
  const std::string html = AudioQualityHtml(session_);
  EXPECT_THAT(html, HasSubstr("not checked"));
  EXPECT_THAT(html, Not(HasSubstr("no cliff")));
}

TEST_F(JudgeTest, ConsoleRowsNameTheirSeriesInTheCliffLinesOrder) {
  // Levels in run order b1 a1 b2 a2; the cliffs are found per series in name order.
  for (int c : {1, 2}) {
    for (const char* series : {"voice=b", "voice=a"}) {
      AudioQualityLevel& l = Level(c, series);
      Add(l, 0, 10, c == 2 ? 0.3 : 0.6);
    }
  }
  Judge();
  session_.mutable_plan()->mutable_audio_checks()->set_enabled(true);
  const std::string console = AudioQualityConsole(session_);
  EXPECT_THAT(console, HasSubstr("Series"));
  const size_t a1 = console.find("  voice=a 1 "), a2 = console.find("  voice=a 2 ");
  const size_t b1 = console.find("  voice=b 1 "), b2 = console.find("  voice=b 2 ");
  ASSERT_NE(a1, std::string::npos) << console;
  ASSERT_NE(b2, std::string::npos) << console;
  EXPECT_LT(a1, a2);
  EXPECT_LT(a2, b1);
  EXPECT_LT(b1, b2);
  EXPECT_LT(console.find("Audio cliff [voice=a]"), console.find("Audio cliff [voice=b]"));
}

TEST_F(JudgeTest, EachSeriesHasItsOwnReferenceAndCliff) {
  for (const bool b : {false, true}) {
    const std::string series = b ? "voice=b" : "voice=a";
    for (int c : {1, 2}) {
      AudioQualityLevel& l = Level(c, series);
      // voice=b speaks 1.3x as long as voice=a: never compared with a's references.
      for (int k = 0; k < 3; ++k) Add(l, k, 10, b ? 1.3 : (c == 2 ? 0.5 : 1.0));
    }
  }
  Judge();
  ASSERT_EQ(session_.audio_quality().cliffs_size(), 1);
  EXPECT_EQ(session_.audio_quality().cliffs(0).series(), "voice=a");
  EXPECT_EQ(session_.audio_quality().cliffs(0).concurrency(), 2);
  EXPECT_DOUBLE_EQ(Stats(3).audio_consistency().duration_ratio_median(), 1.0);
}

TEST_F(JudgeTest, EnvelopeBelowTheBoundMakesAnAnswerInconsistent) {
  checks_.set_min_envelope_correlation(0.9);
  AudioQualityLevel& low = Level(1);
  AudioQualityLevel& high = Level(2);
  v1::AudioAnalysis& ref = Add(low, 0, 10, 0.2);
  v1::AudioAnalysis& other = Add(high, 0, 10, 0.2);
  ref.clear_envelope_db();
  other.clear_envelope_db();
  for (float v : {-10, -20, -30, -40}) ref.add_envelope_db(v);
  for (float v : {-10, -30, -20, -40}) other.add_envelope_db(v);  // r = 0.8
  Judge();
  const v1::AudioConsistency& c = Stats(1).audio_consistency();
  EXPECT_NEAR(c.envelope_corr_median(), 0.8, 1e-9);
  EXPECT_DOUBLE_EQ(c.duration_ratio_median(), 1.0);
  EXPECT_EQ(c.inconsistent(), 1u);
  EXPECT_FALSE(c.ok());
  EXPECT_THAT(c.problems(), HasSubstr("envelope r median 0.80"));
}

TEST_F(JudgeTest, CsvHasOneRowPerLevelAndMarksTheCliff) {
  for (int c : {1, 2}) {
    AudioQualityLevel& l = Level(c, "a,\"b\"");
    Add(l, 0, 10, c == 2 ? 0.3 : 0.6);
  }
  Judge();
  session_.mutable_plan()->mutable_audio_checks()->set_enabled(true);
  auto rows = common::ParseCsv(AudioQualityCsv(session_));
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  const std::vector<std::string>& header = (*rows)[0];
  auto col = [&](const std::string& name) {
    return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  EXPECT_EQ((*rows)[2][col("series")], "a,\"b\"");
  EXPECT_EQ((*rows)[2][col("concurrency")], "2");
  EXPECT_EQ((*rows)[2][col("duration_ratio_median")], "0.5");
  EXPECT_EQ((*rows)[2][col("consistency_ok")], "false");
  EXPECT_EQ((*rows)[2][col("cliff")], "true");
  EXPECT_EQ((*rows)[1][col("cliff")], "false");
  EXPECT_EQ((*rows)[1][col("duration_ratio_median")], "");  // nothing to compare at level 1
  EXPECT_THAT(AudioQualityConsole(session_), HasSubstr("Audio cliff [a,\"b\"] at concurrency 2"));
  const std::string html = AudioQualityHtml(session_);
  EXPECT_THAT(html, HasSubstr("a,&quot;b&quot;"));
  EXPECT_THAT(html, HasSubstr("badge bad\">cliff"));
}

TEST(AudioQualityInputTest, KeepsMeasuredSuccessfulDecodedAnswersOnly) {
  std::vector<LevelData> levels(1);
  levels[0].concurrency = 2;
  levels[0].series = "voice=a";
  auto add = [&](bool warmup, v1::ErrorKind error, bool analysed, bool decoded, int32_t text) {
    v1::RequestRecord r;
    r.set_warmup(warmup);
    r.set_error(error);
    r.set_chars(12);
    r.set_start_ns(1000 + text);
    r.set_text_index(text);
    if (analysed) {
      r.mutable_analysis()->set_decoded(decoded);
      r.mutable_analysis()->set_decoded_s(0.75);
    }
    levels[0].records.Append(r, 0);
  };
  add(false, v1::ERROR_NONE, true, true, 3);    // kept
  add(true, v1::ERROR_NONE, true, true, 4);     // warm-up
  add(false, v1::ERROR_READ, true, true, 5);    // failed
  add(false, v1::ERROR_NONE, false, false, 6);  // not analysed (outside the sample)
  add(false, v1::ERROR_NONE, true, false, 7);   // a format the agent could not decode
  const std::vector<AudioQualityLevel> in = AudioQualityInput(levels);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].series, "voice=a");
  EXPECT_EQ(in[0].concurrency, 2);
  ASSERT_EQ(in[0].answers.size(), 1u);
  EXPECT_EQ(in[0].answers[0].text_index, 3);
  EXPECT_EQ(in[0].answers[0].chars, 12);
  EXPECT_EQ(in[0].answers[0].start_ns, 1003);
  EXPECT_EQ(in[0].answers[0].analysis->decoded_s(), 0.75);
}

TEST(ApplyAudioQualityTest, DoesNothingWithTheChecksOff) {
  std::vector<LevelData> levels(1);
  v1::Session session;
  session.add_levels();
  v1::Plan plan;
  ApplyAudioQuality(plan, levels, &session);
  EXPECT_FALSE(session.has_audio_quality());
  EXPECT_FALSE(session.levels(0).has_audio_integrity());
  plan.mutable_audio_checks()->set_enabled(true);
  ApplyAudioQuality(plan, levels, &session);
  EXPECT_TRUE(session.has_audio_quality());
  EXPECT_EQ(session.levels(0).audio_integrity().analysed(), 0u);
  EXPECT_TRUE(session.levels(0).audio_integrity().ok());
}

}  // namespace
}  // namespace ttsbench::coordinator
