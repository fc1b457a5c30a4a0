// The ASR check's audio sample (plan asr): the first N successful measured requests keep their
// audio exactly as the meter received it, warm-up and later requests keep nothing.
#include <string>
#include <vector>

#include "agent/client/audio_capture.h"
#include "common/audio.h"
#include "gtest/gtest.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

std::vector<v1::RequestRecord> RunSampled(const LoopbackSynth& synth, v1::Target target,
                                          int asr_sample) {
  target.set_url(synth.url());
  target.set_voice("default");
  Shard shard = MakeShard(target);
  shard.cfg.concurrency = 2;
  shard.cfg.iterations = 6;
  shard.cfg.warmup = 2;
  shard.cfg.threads = 2;
  shard.cfg.time_limit_s = 30;
  shard.cfg.asr_sample = asr_sample;
  return RunShard(std::move(shard)).records;
}

std::vector<v1::RequestRecord> Sampled(const std::vector<v1::RequestRecord>& records) {
  std::vector<v1::RequestRecord> out;
  for (const auto& r : records) {
    if (r.has_asr_format()) out.push_back(r);
  }
  return out;
}

TEST(AsrSampleTest, KeepsTheWholeWavBodyOfTheFirstSuccessfulMeasuredRequests) {
  LoopbackSynth synth;
  const auto records = RunSampled(synth, OpenAiTarget("wav", "", ""), 3);
  ASSERT_EQ(records.size(), 6u);
  const auto sampled = Sampled(records);
  ASSERT_EQ(sampled.size(), 3u);
  for (const auto& r : sampled) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_EQ(r.asr_format().format(), "wav");
    EXPECT_FALSE(r.asr_format().capped());
    // The body as it came: header and all, the bytes the meter was fed.
    EXPECT_EQ(static_cast<int64_t>(r.asr_audio().size()), r.bytes());
    EXPECT_EQ(r.asr_format().received_bytes(), r.asr_audio().size());
    EXPECT_EQ(r.text_index(), 0);
    auto decoded = common::DecodeWithSndfile(r.asr_audio());
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_DOUBLE_EQ(static_cast<double>(decoded->frames) / decoded->sample_rate, r.audio_s());
  }
}

TEST(AsrSampleTest, SseAudioIsTheDecodedRawPcmWithItsEncoding) {
  LoopbackSynth synth;
  v1::Target t = OpenAiTarget("pcm", "sse", "");
  t.set_streaming(true);
  t.set_sample_rate(24000);
  const auto sampled = Sampled(RunSampled(synth, t, 2));
  ASSERT_EQ(sampled.size(), 2u);
  for (const auto& r : sampled) {
    EXPECT_EQ(r.asr_format().format(), "pcm_s16le");
    EXPECT_EQ(r.asr_format().sample_rate(), r.sample_rate());
    EXPECT_EQ(r.asr_format().channels(), 1);
    // base64 decoded: two bytes a sample, nothing of the events around them.
    EXPECT_DOUBLE_EQ(static_cast<double>(r.asr_audio().size()) / 2 / r.sample_rate(), r.audio_s());
    EXPECT_LT(static_cast<int64_t>(r.asr_audio().size()), r.bytes());
  }
}

TEST(AsrSampleTest, OffKeepsNothing) {
  LoopbackSynth synth;
  const auto records = RunSampled(synth, OpenAiTarget("wav", "", ""), 0);
  ASSERT_EQ(records.size(), 6u);
  EXPECT_TRUE(Sampled(records).empty());
}

TEST(AudioCaptureTest, KeepsTheStartUpToItsCapAndSaysItWasCapped) {
  auto meter = common::MakePcmMeter(8000, 1, common::PcmEncoding::kS16le);
  common::MeterOptions options;
  options.format = "pcm";
  AudioCapture capture(10);
  capture.Begin();
  capture.Append(std::string(6, 'a'), *meter, options);
  capture.Append(std::string(19, 'b'), *meter, options);
  v1::RequestRecord rec;
  capture.MoveInto(rec);
  EXPECT_EQ(rec.asr_audio(), "aaaaaabbbb");
  EXPECT_TRUE(rec.asr_format().capped());
  EXPECT_EQ(rec.asr_format().received_bytes(), 25u);
  EXPECT_EQ(rec.asr_format().format(), "pcm_s16le");
  EXPECT_EQ(rec.asr_format().sample_rate(), 8000);
  // Ready for the next answer: nothing of the last one stays.
  capture.Begin();
  options.format = "ulaw";
  capture.Append("xy", *meter, options);
  v1::RequestRecord next;
  capture.MoveInto(next);
  EXPECT_EQ(next.asr_audio(), "xy");
  EXPECT_FALSE(next.asr_format().capped());
  EXPECT_EQ(next.asr_format().format(), "ulaw");
}

}  // namespace
}  // namespace ttsbench::agent::testing
