#include "common/audio.h"

#include <random>
#include <string>
#include <vector>

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

// Low-level noise as s16le: not text, not a container signature.
std::string PcmBytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 2 ? 0xFF : (i * 13) & 0x1F);
  return s;
}

TEST(PcmMeterTest, CountsWholeFramesAtTheGivenRate) {
  auto meter = MakePcmMeter(16000, 1, PcmEncoding::kS16le);
  const SplitResult r = FeedSplit(*meter, PcmBytes(32001), {333, 1, 4096});
  ASSERT_TRUE(r.status.ok());
  EXPECT_DOUBLE_EQ(r.seconds, 1.0);  // the odd trailing byte is not a frame
  auto f32 = MakePcmMeter(8000, 2, PcmEncoding::kF32le);
  EXPECT_DOUBLE_EQ(*MeasureWhole(*f32, PcmBytes(8000 * 8)), 1.0);
  EXPECT_EQ(f32->channels(), 2);
}

TEST(PcmMeterTest, EncodingsDifferInBytesPerSample) {
  struct Case {
    PcmEncoding encoding;
    size_t bytes;
  };
  for (const Case& c : std::vector<Case>{{PcmEncoding::kMulaw, 1},
                                         {PcmEncoding::kAlaw, 1},
                                         {PcmEncoding::kS16le, 2},
                                         {PcmEncoding::kS24le, 3},
                                         {PcmEncoding::kS32le, 4},
                                         {PcmEncoding::kF32le, 4}}) {
    auto meter = MakePcmMeter(8000, 1, c.encoding);
    EXPECT_DOUBLE_EQ(*MeasureWhole(*meter, PcmBytes(8000 * c.bytes)), 1.0) << c.bytes;
  }
}

TEST(MeterForTest, RateComesFromContentTypeElseConfiguration) {
  EXPECT_EQ(RateFromContentType("audio/pcm;rate=22050"), 22050);
  EXPECT_EQ(RateFromContentType("audio/L16; charset=x; Rate=16000"), 16000);
  EXPECT_EQ(RateFromContentType("audio/pcm"), 0);
  EXPECT_EQ(ChannelsFromContentType("audio/L16;rate=8000;channels=2"), 2);
  EXPECT_EQ(ChannelsFromContentType("audio/L16;rate=8000"), 0);
  auto m = MakeMeterFor("pcm", "audio/pcm;rate=22050", 24000);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(*MeasureWhole(**m, PcmBytes(44100)), 1.0);
  m = MakeMeterFor("pcm", "application/octet-stream", 24000);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(*MeasureWhole(**m, PcmBytes(48000)), 1.0);
  EXPECT_EQ((*m)->sample_rate(), 24000);
  m = MakeMeterFor("ulaw", "audio/basic", 8000);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(*MeasureWhole(**m, PcmBytes(8000)), 1.0);
}

TEST(MeterForTest, RawPcmNeedsARate) {
  EXPECT_FALSE(MakeMeterFor("pcm", "audio/pcm", 0).ok());
  EXPECT_TRUE(MakeMeterFor("pcm", "audio/pcm;rate=16000", 0).ok());
}

TEST(MeterForTest, RawPcmThatHappensToStartWithAnMpegSyncIsStillPcm) {
  // 0xFFFB is a plausible s16le sample; only a second frame header where the first frame would
  // end makes it MP3.
  std::string body = PcmBytes(48000);
  body[0] = '\xFF';
  body[1] = '\xFB';
  body[2] = '\x90';
  auto m = MakeMeterFor("pcm", "audio/pcm;rate=24000", 0);
  ASSERT_TRUE(m.ok());
  auto seconds = MeasureWhole(**m, body);
  ASSERT_TRUE(seconds.ok()) << seconds.status();
  EXPECT_DOUBLE_EQ(*seconds, 1.0);
  EXPECT_EQ((*m)->format(), "pcm");
}

TEST(MeterForTest, StreamedPcmReportsAudioAsItArrives) {
  auto m = MakeMeterFor("pcm", "audio/pcm;rate=16000", 0);
  ASSERT_TRUE(m.ok());
  const std::string body = PcmBytes(3200);
  auto first = (**m).Feed(absl::string_view(body).substr(0, 1000));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->audio_bytes, 1000u);
  EXPECT_DOUBLE_EQ(first->audio_s, 500.0 / 16000);
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

TEST(MeterForTest, UnknownFormatIsAnError) {
  EXPECT_FALSE(MakeMeterFor("speex", "", 24000).ok());
  EXPECT_TRUE(MakeMeterFor("mp3", "", 24000).ok());
}

TEST(WavMeterTest, Rf64UsesTheDs64DataSize) {
  WavSpec spec;
  spec.frames = 1000;
  std::string wav = BuildWav(spec);
  // RIFF → RF64 with a ds64 chunk before fmt and 0xFFFFFFFF in the data size.
  std::string rf64 = "RF64";
  testing::PutLe(rf64, 0xFFFFFFFFu, 4);
  rf64 += "WAVEds64";
  testing::PutLe(rf64, 28, 4);
  testing::PutLe(rf64, 0, 8 / 2);
  testing::PutLe(rf64, 0, 8 / 2);
  testing::PutLe(rf64, 2000, 4);  // data size, low half
  testing::PutLe(rf64, 0, 4);
  testing::PutLe(rf64, 1000, 4);  // sample count
  testing::PutLe(rf64, 0, 4);
  testing::PutLe(rf64, 0, 4);  // table length
  std::string rest = wav.substr(12);
  const size_t data = rest.find("data");
  rest.replace(data + 4, 4, std::string(4, '\xFF'));
  rf64 += rest + "junk after data";
  auto meter = MakeWavMeter();
  auto s = MeasureWhole(*meter, rf64);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(*s, 1000.0 / 24000);
}

TEST(WavMeterTest, CompressedWavIsRejected) {
  WavSpec spec;
  spec.format_tag = 0x55;  // MP3 in WAV
  auto meter = MakeWavMeter();
  auto s = MeasureWhole(*meter, BuildWav(spec));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ttsbench::common
