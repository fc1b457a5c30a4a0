#include "synth/latency_model.h"

#include <gtest/gtest.h>

#include <vector>

namespace ttsbench::synth {
namespace {

TEST(LatencyModelTest, AudioLengthIsCharactersTimesSecondsPerCharacter) {
  LatencyModel m;
  m.audio_s_per_char = 0.06;
  m.sample_rate = 24000;
  EXPECT_DOUBLE_EQ(AudioSeconds(m, 100), 6.0);
  EXPECT_EQ(AudioSamples(m, 100), 144000);
  EXPECT_EQ(AudioSamples(m, 0), 0);
}

TEST(LatencyModelTest, RequestSpeedDividesAudioLength) {
  LatencyModel m;
  m.audio_s_per_char = 0.05;
  m.sample_rate = 16000;
  EXPECT_DOUBLE_EQ(AudioSeconds(m, 40, 2.0), 1.0);
  EXPECT_EQ(AudioSamples(m, 40, 2.0), 16000);
  EXPECT_EQ(AudioSamples(m, 40, 0.5), 64000);
}

TEST(LatencyModelTest, SampleCountIsRounded) {
  LatencyModel m;
  m.audio_s_per_char = 0.001;
  m.sample_rate = 22050;
  // 7 * 0.001 s * 22050 Hz = 154.35 samples.
  EXPECT_EQ(AudioSamples(m, 7), 154);
  // 11 * 0.001 s * 22050 Hz = 242.55 samples.
  EXPECT_EQ(AudioSamples(m, 11), 243);
}

TEST(LatencyModelTest, DegradeShortensOnlyAboveItsInFlightBound) {
  DegradeUnderLoad d;
  EXPECT_EQ(DegradedSamples(d, 24000, 1000), 24000);  // off by default
  d.truncate_above = 4;
  d.truncate_fraction = 0.25;
  EXPECT_EQ(DegradedSamples(d, 24000, 4), 24000);
  EXPECT_EQ(DegradedSamples(d, 24000, 5), 18000);
  // round(1001 * 0.75) = round(750.75)
  EXPECT_EQ(DegradedSamples(d, 1001, 5), 751);
  d = DegradeUnderLoad();
  d.speedup_above = 2;
  d.speedup = 1.5;
  EXPECT_EQ(DegradedSamples(d, 24000, 2), 24000);
  EXPECT_EQ(DegradedSamples(d, 24000, 3), 16000);
  // Both: 24000 / 1.5 = 16000, then half of it.
  d.truncate_above = 3;
  d.truncate_fraction = 0.5;
  EXPECT_EQ(DegradedSamples(d, 24000, 3), 16000);
  EXPECT_EQ(DegradedSamples(d, 24000, 4), 8000);
}

TEST(LatencyModelTest, DegradeBoundsAreValidated) {
  LatencyModel m;
  EXPECT_TRUE(ValidateLatencyModel(m).ok());
  m.degrade.truncate_above = -1;
  EXPECT_FALSE(ValidateLatencyModel(m).ok());
  m = LatencyModel();
  m.degrade.truncate_fraction = 1;
  EXPECT_FALSE(ValidateLatencyModel(m).ok());
  m = LatencyModel();
  m.degrade.speedup = 1;
  EXPECT_FALSE(ValidateLatencyModel(m).ok());
}

TEST(LatencyModelTest, SynthesisTimeIsBasePlusPerCharacterOverVoiceSpeed) {
  LatencyModel m;
  m.base_ms = 10;
  m.per_char_ms = 0.4;
  EXPECT_DOUBLE_EQ(SynthesisMs(m, 100, 1.0, 0), 50);
  EXPECT_DOUBLE_EQ(SynthesisMs(m, 100, 2.0, 0), 25);
  EXPECT_DOUBLE_EQ(SynthesisMs(m, 100, 0.5, 0), 100);
}

TEST(LatencyModelTest, JitterScalesSynthesisTimeWithinBounds) {
  LatencyModel m;
  m.base_ms = 100;
  m.per_char_ms = 0;
  m.jitter = 0.1;
  EXPECT_DOUBLE_EQ(SynthesisMs(m, 1, 1.0, 1), 110);
  EXPECT_DOUBLE_EQ(SynthesisMs(m, 1, 1.0, -1), 90);
  EXPECT_DOUBLE_EQ(SynthesisMs(m, 1, 1.0, 0.5), 105);
}

TEST(LatencyModelTest, VoiceSpeedFallsBackToDefaultVoice) {
  LatencyModel m;
  EXPECT_DOUBLE_EQ(VoiceSpeed(m, "fast"), 2.0);
  EXPECT_DOUBLE_EQ(VoiceSpeed(m, "premium"), 0.5);
  EXPECT_DOUBLE_EQ(VoiceSpeed(m, "alloy"), 1.0);
  m.voice_speed = {{"default", 3.0}};
  EXPECT_DOUBLE_EQ(VoiceSpeed(m, "alloy"), 3.0);
  m.voice_speed = {{"x", 3.0}};
  EXPECT_DOUBLE_EQ(VoiceSpeed(m, "alloy"), 1.0);
}

TEST(LatencyModelTest, CharactersAreCodePoints) {
  EXPECT_EQ(CountCharacters(""), 0u);
  EXPECT_EQ(CountCharacters("hello"), 5u);
  EXPECT_EQ(CountCharacters("h\xC3\xA9llo"), 5u);              // é is two bytes
  EXPECT_EQ(CountCharacters("\xE4\xBD\xA0\xE5\xA5\xBD"), 2u);  // two CJK characters
  EXPECT_EQ(CountCharacters("\xF0\x9F\x98\x80"), 1u);          // one emoji, four bytes
}

TEST(SeededRngTest, SameSeedGivesSameSequence) {
  SeededRng a(42), b(42), c(43);
  std::vector<double> va, vb, vc;
  for (int i = 0; i < 100; ++i) {
    va.push_back(a.NextSigned());
    vb.push_back(b.NextSigned());
    vc.push_back(c.NextSigned());
  }
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
}

TEST(SeededRngTest, DrawsCoverTheirRanges) {
  SeededRng rng(7);
  double lo = 1, hi = -1, sum = 0;
  constexpr int kDraws = 10000;
  for (int i = 0; i < kDraws; ++i) {
    const double u = rng.NextSigned();
    ASSERT_GE(u, -1.0);
    ASSERT_LT(u, 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
  }
  EXPECT_LT(lo, -0.99);
  EXPECT_GT(hi, 0.99);
  EXPECT_NEAR(sum / kDraws, 0, 0.05);
}

TEST(StreamPlanTest, ChunksSpreadEvenlyFromFirstChunkToEndOfSynthesis) {
  LatencyModel m;
  m.sample_rate = 24000;
  m.chunk_ms = 200;
  m.first_chunk_ms = 25;
  // 2 s of audio = 10 chunks of 4800 samples.
  const StreamPlan plan(m, 48000, 475);
  ASSERT_EQ(plan.chunks(), 10);
  EXPECT_EQ(plan.chunk_samples(), 4800);
  EXPECT_DOUBLE_EQ(plan.DueMs(0), 25);
  EXPECT_DOUBLE_EQ(plan.DueMs(1), 75);
  EXPECT_DOUBLE_EQ(plan.DueMs(9), 475);
  EXPECT_DOUBLE_EQ(plan.LastDueMs(), 475);
  EXPECT_EQ(plan.BeginSample(9), 43200);
  EXPECT_EQ(plan.EndSample(9), 48000);
}

TEST(StreamPlanTest, LastChunkMayBeShortAndSamplesAreCoveredExactlyOnce) {
  LatencyModel m;
  m.sample_rate = 1000;
  m.chunk_ms = 100;
  const StreamPlan plan(m, 250, 100);
  ASSERT_EQ(plan.chunks(), 3);
  int64_t covered = 0;
  for (int k = 0; k < plan.chunks(); ++k) {
    EXPECT_EQ(plan.BeginSample(k), covered);
    covered = plan.EndSample(k);
  }
  EXPECT_EQ(covered, 250);
  EXPECT_EQ(plan.EndSample(2) - plan.BeginSample(2), 50);
}

TEST(StreamPlanTest, EverythingAtFirstChunkWhenSynthesisIsFaster) {
  LatencyModel m;
  m.first_chunk_ms = 50;
  const StreamPlan plan(m, 24000 * 3, 20);
  for (int k = 0; k < plan.chunks(); ++k) EXPECT_DOUBLE_EQ(plan.DueMs(k), 50);
  EXPECT_DOUBLE_EQ(plan.LastDueMs(), 50);
}

TEST(StreamPlanTest, EmptyAudioStillHasOneChunk) {
  LatencyModel m;
  const StreamPlan plan(m, 0, 10);
  EXPECT_EQ(plan.chunks(), 1);
  EXPECT_EQ(plan.BeginSample(0), 0);
  EXPECT_EQ(plan.EndSample(0), 0);
}

TEST(ValidateLatencyModelTest, AcceptsDefaults) { EXPECT_TRUE(ValidateLatencyModel({}).ok()); }

TEST(ValidateLatencyModelTest, RejectsOutOfRangeValuesNamingTheField) {
  struct Case {
    void (*mutate)(LatencyModel&);
    const char* field;
  };
  const Case cases[] = {
      {[](LatencyModel& m) { m.slots = 0; }, "slots"},
      {[](LatencyModel& m) { m.base_ms = -1; }, "base_ms"},
      {[](LatencyModel& m) { m.per_char_ms = -0.1; }, "per_char_ms"},
      {[](LatencyModel& m) { m.jitter = 1.5; }, "jitter"},
      {[](LatencyModel& m) { m.sample_rate = 0; }, "sample_rate"},
      {[](LatencyModel& m) { m.chunk_ms = 0; }, "chunk_ms"},
      {[](LatencyModel& m) {
         m.voice_speed = {{"slow", 0}};
       },
       "slow"},
      {[](LatencyModel& m) { m.voice_speed.clear(); }, "voice"},
  };
  for (const Case& c : cases) {
    LatencyModel m;
    c.mutate(m);
    const absl::Status st = ValidateLatencyModel(m);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(st.message().find(c.field), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace ttsbench::synth
