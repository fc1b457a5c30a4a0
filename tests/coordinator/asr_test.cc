// The ASR check's pieces: the WAV the recogniser gets, running a recogniser (failing, hanging),
// and WER relative to the lowest level.
#include "coordinator/run/asr.h"

#include <gtest/gtest.h>
#include <sndfile.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <tuple>
#include <vector>

#include "common/audio.h"
#include "common/clock.h"
#include "tests/common/wav_builder.h"

namespace ttsbench::coordinator {
namespace {

// One second of a 440 Hz tone as raw s16le at `rate`, `channels` interleaved.
std::string Tone16(int rate, int channels, double seconds = 1.0) {
  std::string out;
  const int n = static_cast<int>(rate * seconds);
  for (int i = 0; i < n; ++i) {
    const auto v = static_cast<int16_t>(
        std::lround(8000 * std::sin(2 * std::numbers::pi * 440 * i / static_cast<double>(rate))));
    for (int c = 0; c < channels; ++c) {
      out.push_back(static_cast<char>(v & 0xff));
      out.push_back(static_cast<char>((v >> 8) & 0xff));
    }
  }
  return out;
}

AsrSampleAudio RawSample(std::string audio, int rate, int channels, const char* format) {
  AsrSampleAudio s;
  s.audio = std::move(audio);
  s.format.set_format(format);
  s.format.set_sample_rate(rate);
  s.format.set_channels(channels);
  return s;
}

TEST(MakeAsrWavTest, RawStereoPcmBecomesMono16kHzWavOfTheSameLength) {
  auto wav = MakeAsrWav(RawSample(Tone16(24000, 2), 24000, 2, "pcm_s16le"), 16000);
  ASSERT_TRUE(wav.ok()) << wav.status();
  EXPECT_NEAR(wav->audio_s, 1.0, 1e-3);
  auto decoded = common::DecodeWithSndfile(wav->bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->sample_rate, 16000);
  EXPECT_EQ(decoded->channels, 1);
  EXPECT_EQ(decoded->frames, 16000);
}

TEST(MakeAsrWavTest, ResamplingKeepsTheToneAndItsLevel) {
  auto wav = MakeAsrWav(RawSample(Tone16(22050, 1), 22050, 1, "pcm_s16le"), 16000);
  ASSERT_TRUE(wav.ok()) << wav.status();
  // RMS of the middle of the result: a sine of amplitude 8000 has RMS 8000/sqrt(2).
  const std::string& b = wav->bytes;
  double sum = 0;
  int n = 0;
  for (size_t i = 44 + 2 * 4000; i + 1 < 44 + 2 * 12000; i += 2) {
    int16_t v;
    std::memcpy(&v, b.data() + i, 2);
    sum += static_cast<double>(v) * v;
    ++n;
  }
  EXPECT_NEAR(std::sqrt(sum / n), 8000 / std::sqrt(2.0), 100);
}

TEST(MakeAsrWavTest, StreamedWavWithPlaceholderSizesIsRead) {
  // espeak-ng on a pipe writes 0x7FFFF0xx as its RIFF and data sizes.
  ttsbench::testing::WavSpec spec;
  spec.rate = 22050;
  spec.frames = 11025;
  std::string wav = ttsbench::testing::BuildWav(spec);
  const uint32_t fake = 0x7FFFF000;
  std::memcpy(wav.data() + 4, &fake, 4);
  std::memcpy(wav.data() + 40, &fake, 4);
  AsrSampleAudio s;
  s.audio = wav;
  s.format.set_format("wav");
  auto out = MakeAsrWav(s, 16000);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR(out->audio_s, 0.5, 1e-3);
}

TEST(MakeAsrWavTest, MuLawIsDecoded) {
  // 0xFF is mu-law zero, 0x80 its largest positive value.
  std::string audio(8000, static_cast<char>(0xff));
  for (size_t i = 0; i < audio.size(); i += 2) audio[i] = static_cast<char>(0x80);
  auto wav = MakeAsrWav(RawSample(audio, 8000, 1, "ulaw"), 8000);
  ASSERT_TRUE(wav.ok()) << wav.status();
  int16_t first, second;
  std::memcpy(&first, wav->bytes.data() + 44, 2);
  std::memcpy(&second, wav->bytes.data() + 46, 2);
  EXPECT_GT(first, 30000);
  EXPECT_EQ(second, 0);
}

TEST(MakeAsrWavTest, AChunkSizeNearFourGigabytesEndsTheWalkInsteadOfLooping) {
  // Found by fuzz_asr_wav: a LIST chunk of 0xFFFFFFF8 bytes made `8 + size` wrap to 0 in
  // 32 bits, so the chunk walk stood still forever.
  std::string wav(
      "RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0"
      "\x80\x3e\0\0\x02\0\x10\0LIST\xf8\xff\xff\xff",
      44);
  wav += std::string(64, '\0');
  AsrSampleAudio sample = RawSample(wav, 0, 0, "wav");
  const auto out = MakeAsrWav(sample, 16000);  // returns: an error or what it could read
  if (out.ok()) {
    EXPECT_LT(out->audio_s, 1.0);
  }
}

TEST(MakeAsrWavTest, AacAndGarbageAreErrors) {
  AsrSampleAudio aac = RawSample("xxxx", 0, 0, "aac");
  EXPECT_TRUE(absl::IsUnimplemented(MakeAsrWav(aac, 16000).status()));
  AsrSampleAudio junk = RawSample("not audio at all", 0, 0, "mp3");
  EXPECT_FALSE(MakeAsrWav(junk, 16000).ok());
}

TEST(RunRecogniserTest, PrintedLinesAreTheTranscript) {
  RecogniserRun run =
      RunRecogniser({"/bin/sh", "-c", "printf 'hello\\n\\n  world  \\n'; test -n \"$0\"", "{wav}"},
                    "/tmp/x.wav", std::chrono::seconds(10));
  EXPECT_TRUE(run.ok) << run.error;
  EXPECT_EQ(run.text, "hello world");
  EXPECT_GE(run.cpu_s, 0);
}

TEST(RunRecogniserTest, WavPathReplacesThePlaceholderInsideAnArgument) {
  RecogniserRun run =
      RunRecogniser({"/bin/echo", "--in={wav}"}, "/a b.wav", std::chrono::seconds(10));
  EXPECT_TRUE(run.ok) << run.error;
  EXPECT_EQ(run.text, "--in=/a b.wav");
}

TEST(RunRecogniserTest, NonZeroExitIsAnErrorWithItsLastStderrLine) {
  RecogniserRun run = RunRecogniser({"/bin/sh", "-c", "echo partial; echo 'no model' >&2; exit 3"},
                                    "/tmp/x.wav", std::chrono::seconds(10));
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "exit 3: no model");
}

TEST(RunRecogniserTest, AHangingRecogniserAndWhatItStartedAreKilledAtTheTimeout) {
  const int64_t t0 = common::SteadyNowNs();
  // The child leaves a grandchild holding stdout open: the group kill ends both.
  RecogniserRun run = RunRecogniser({"/bin/sh", "-c", "sleep 30 & sleep 30"}, "/tmp/x.wav",
                                    std::chrono::milliseconds(300));
  const double took = static_cast<double>(common::SteadyNowNs() - t0) / 1e9;
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "timed out after 0.3 s (killed)");
  EXPECT_LT(took, 5.0);
}

TEST(RunRecogniserTest, AMissingProgramIsAnError) {
  RecogniserRun run = RunRecogniser({"/nonexistent/asr"}, "/tmp/x.wav", std::chrono::seconds(1));
  EXPECT_FALSE(run.ok);
  EXPECT_NE(run.error.find("cannot start /nonexistent/asr"), std::string::npos) << run.error;
}

// A level whose recognised samples are (text_index, wer, cer).
v1::LevelStats Level(const std::string& series, int concurrency,
                     std::vector<std::tuple<int, double, double>> samples) {
  v1::LevelStats l;
  l.set_series(series);
  l.set_concurrency(concurrency);
  v1::AsrLevel& a = *l.mutable_asr();
  double wer = 0, cer = 0;
  for (const auto& [text, w, c] : samples) {
    v1::AsrResult& r = *a.add_results();
    r.set_text_index(text);
    r.set_wer(w);
    r.set_cer(c);
    wer += w;
    cer += c;
  }
  a.set_recognised(static_cast<uint32_t>(samples.size()));
  if (!samples.empty()) {
    a.set_wer_mean(wer / samples.size());
    a.set_cer_mean(cer / samples.size());
  }
  return l;
}

TEST(FillAsrBaselinesTest, DeltaComparesTheSameTextsAtTheLowestLevelOfTheSameSeries) {
  v1::Session s;
  // Series a: the lowest level (1) recognised texts 0 and 1 (text 0 twice).
  *s.add_levels() = Level("a", 4, {{0, 0.50, 0.20}, {1, 0.90, 0.60}, {7, 0.10, 0.10}});
  *s.add_levels() = Level("a", 1, {{0, 0.20, 0.10}, {0, 0.40, 0.10}, {1, 0.60, 0.30}});
  // Series b: a failed sample at the baseline does not count; nothing recognised at 1.
  v1::LevelStats b2 = Level("b", 2, {{3, 0.25, 0.05}});
  v1::AsrResult& failed = *b2.mutable_asr()->add_results();
  failed.set_text_index(5);
  failed.set_error("exit 1");
  *s.add_levels() = b2;
  *s.add_levels() = Level("b", 8, {{3, 0.50, 0.15}, {5, 0.90, 0.90}});
  *s.add_levels() = Level("b", 1, {});
  FillAsrBaselines(s);
  // Level a/4: text 0 against its mean 0.30, text 1 against 0.60; text 7 has no baseline.
  EXPECT_DOUBLE_EQ(s.levels(0).asr().wer_delta(), ((0.50 - 0.30) + (0.90 - 0.60)) / 2);
  EXPECT_DOUBLE_EQ(s.levels(0).asr().cer_delta(), ((0.20 - 0.10) + (0.60 - 0.30)) / 2);
  EXPECT_DOUBLE_EQ(s.levels(0).asr().baseline_load(), 1);
  EXPECT_DOUBLE_EQ(s.levels(1).asr().wer_delta(), 0);
  EXPECT_DOUBLE_EQ(s.levels(1).asr().cer_delta(), 0);
  EXPECT_DOUBLE_EQ(s.levels(2).asr().wer_delta(), 0);
  EXPECT_DOUBLE_EQ(s.levels(3).asr().wer_delta(), 0.25);  // text 3 only
  EXPECT_DOUBLE_EQ(s.levels(3).asr().baseline_load(), 2);
  EXPECT_DOUBLE_EQ(s.levels(4).asr().wer_delta(), 0);
  EXPECT_EQ(s.warnings_size(), 0);
}

TEST(FillAsrBaselinesTest, NoSharedTextFallsBackToTheMeansAndWarns) {
  v1::Session s;
  *s.add_levels() = Level("", 1, {{0, 0.20, 0.10}});
  *s.add_levels() = Level("", 2, {{1, 0.70, 0.40}});
  FillAsrBaselines(s);
  EXPECT_DOUBLE_EQ(s.levels(1).asr().wer_delta(), 0.50);
  EXPECT_DOUBLE_EQ(s.levels(1).asr().cer_delta(), 0.30);
  ASSERT_EQ(s.warnings_size(), 1);
  EXPECT_EQ(s.warnings(0),
            "asr: concurrency 2: no sampled text in common with the lowest level (concurrency 1): "
            "its WER change compares different texts");
}

}  // namespace
}  // namespace ttsbench::coordinator
