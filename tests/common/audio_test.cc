#include "common/audio.h"

#include <random>
#include <string>

#include "gtest/gtest.h"
#include "tests/common/wav_builder.h"

namespace ttsbench::common {
namespace {

using testing::BuildWav;
using testing::WavSpec;

// Feeds `body` in pieces of the given sizes (cycled); returns total audio bytes reported.
struct SplitResult {
  absl::Status status;
  size_t audio_bytes = 0;
  double audio_s = 0;
  double seconds = 0;
};

SplitResult FeedSplit(AudioMeter& meter, const std::string& body, std::vector<size_t> sizes) {
  SplitResult r;
  size_t pos = 0, k = 0;
  while (pos < body.size()) {
    const size_t n = std::min(sizes[k++ % sizes.size()], body.size() - pos);
    auto feed = meter.Feed(absl::string_view(body).substr(pos, n));
    if (!feed.ok()) {
      r.status = feed.status();
      return r;
    }
    r.audio_bytes += feed->audio_bytes;
    r.audio_s += feed->audio_s;
    pos += n;
  }
  r.status = meter.Finish();
  r.seconds = meter.seconds();
  return r;
}

TEST(WavMeterTest, MeasuresWholeFileExactly) {
  WavSpec spec;
  spec.rate = 22050;
  spec.frames = 22050 * 3 + 7;
  auto meter = MakeWavMeter();
  auto seconds = MeasureWhole(*meter, BuildWav(spec));
  ASSERT_TRUE(seconds.ok()) << seconds.status();
  EXPECT_DOUBLE_EQ(*seconds, (22050.0 * 3 + 7) / 22050.0);
  EXPECT_EQ(meter->sample_rate(), 22050);
}

TEST(WavMeterTest, StreamedPlaceholderSizesCountToEndOfBody) {
  for (bool zero : {false, true}) {
    WavSpec spec;
    spec.placeholder_sizes = !zero;
    spec.zero_sizes = zero;
    spec.frames = 12345;
    auto meter = MakeWavMeter();
    const SplitResult r = FeedSplit(*meter, BuildWav(spec), {4096});
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_DOUBLE_EQ(r.seconds, 12345.0 / 24000.0) << "zero sizes: " << zero;
  }
}

TEST(WavMeterTest, OddChunkSplitsGiveTheWholeBodyAnswer) {
  WavSpec spec;
  spec.channels = 2;
  spec.rate = 48000;
  spec.frames = 4801;
  spec.list_chunk_before_data = true;
  spec.placeholder_sizes = true;
  const std::string body = BuildWav(spec);
  const double want = 4801.0 / 48000.0;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<size_t> sizes;
    for (int i = 0; i < 16; ++i) sizes.push_back(1 + rng() % 97);
    auto meter = MakeWavMeter();
    const SplitResult r = FeedSplit(*meter, body, sizes);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_DOUBLE_EQ(r.seconds, want);
    // Header bytes are never counted as audio; per-piece durations add up to the total.
    EXPECT_EQ(r.audio_bytes, 4801u * 4);
    EXPECT_NEAR(r.audio_s, want, 1e-12);
  }
  auto one_byte = MakeWavMeter();
  EXPECT_DOUBLE_EQ(FeedSplit(*one_byte, body, {1}).seconds, want);
}

TEST(WavMeterTest, FirstAudioByteIsReportedInThePieceThatHoldsIt) {
  WavSpec spec;
  spec.frames = 100;
  const std::string body = BuildWav(spec);
  auto meter = MakeWavMeter();
  auto header = meter->Feed(absl::string_view(body).substr(0, 44));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->audio_bytes, 0u);
  auto rest = meter->Feed(absl::string_view(body).substr(44, 3));
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->audio_bytes, 3u);
  EXPECT_DOUBLE_EQ(rest->audio_s, 1.0 / 24000);  // one whole 2-byte frame completed
}

TEST(WavMeterTest, FloatAndExtensibleFormatsUseBlockAlign) {
  WavSpec spec;
  spec.bits = 32;
  spec.format_tag = 3;
  spec.channels = 2;
  spec.rate = 16000;
  spec.frames = 16000;
  auto meter = MakeWavMeter();
  auto s = MeasureWhole(*meter, BuildWav(spec));
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(*s, 1.0);
  spec.format_tag = 0xFFFE;
  spec.bits = 24;
  meter = MakeWavMeter();
  s = MeasureWhole(*meter, BuildWav(spec));
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(*s, 1.0);
}

TEST(WavMeterTest, TruncatedDataIsAnError) {
  WavSpec spec;
  spec.frames = 1000;
  spec.declared_extra_frames = 10;
  auto meter = MakeWavMeter();
  EXPECT_FALSE(MeasureWhole(*meter, BuildWav(spec)).ok());
}

TEST(WavMeterTest, BodyEndingInsideTheHeaderIsAnError) {
  auto meter = MakeWavMeter();
  EXPECT_FALSE(MeasureWhole(*meter, BuildWav(WavSpec{}).substr(0, 30)).ok());
}

TEST(WavMeterTest, GarbageIsRejected) {
  auto meter = MakeWavMeter();
  EXPECT_FALSE(meter->Feed("<html>500 Internal Server Error</html>").ok());
}

TEST(WavMeterTest, TrailingChunksAfterDataAreNotAudio) {
  WavSpec spec;
  spec.frames = 240;
  std::string body = BuildWav(spec) + "LIST" + std::string("\x04\0\0\0", 4) + "abcd";
  auto meter = MakeWavMeter();
  const SplitResult r = FeedSplit(*meter, body, {5});
  ASSERT_TRUE(r.status.ok());
  EXPECT_DOUBLE_EQ(r.seconds, 0.01);
}

TEST(PcmMeterTest, CountsWholeFramesAtTheGivenRate) {
  auto meter = MakePcmMeter(16000, 1, PcmEncoding::kS16le);
  const SplitResult r = FeedSplit(*meter, std::string(32001, 'x'), {333, 1, 4096});
  ASSERT_TRUE(r.status.ok());
  EXPECT_DOUBLE_EQ(r.seconds, 1.0);  // the odd trailing byte is not a frame
  auto f32 = MakePcmMeter(8000, 2, PcmEncoding::kF32le);
  EXPECT_DOUBLE_EQ(*MeasureWhole(*f32, std::string(8000 * 8, 'x')), 1.0);
}

TEST(MeterForTest, RateComesFromContentTypeElseConfiguration) {
  EXPECT_EQ(RateFromContentType("audio/pcm;rate=22050"), 22050);
  EXPECT_EQ(RateFromContentType("audio/L16; charset=x; Rate=16000"), 16000);
  EXPECT_EQ(RateFromContentType("audio/pcm"), 0);
  auto m = MakeMeterFor("pcm", "audio/pcm;rate=22050", 24000);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(*MeasureWhole(**m, std::string(44100, 'x')), 1.0);
  m = MakeMeterFor("pcm", "application/octet-stream", 24000);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(*MeasureWhole(**m, std::string(48000, 'x')), 1.0);
}

TEST(MeterForTest, PcmRequestAnsweredWithWavIsMeasuredAsWav) {
  WavSpec spec;
  spec.rate = 16000;
  spec.frames = 8000;
  auto m = MakeMeterFor("pcm", "audio/wav", 24000);
  ASSERT_TRUE(m.ok());
  const SplitResult r = FeedSplit(**m, BuildWav(spec), {2, 3});
  ASSERT_TRUE(r.status.ok());
  EXPECT_DOUBLE_EQ(r.seconds, 0.5);
}

TEST(MeterForTest, UnknownFormatIsAnError) { EXPECT_FALSE(MakeMeterFor("mp3", "", 24000).ok()); }

}  // namespace
}  // namespace ttsbench::common
