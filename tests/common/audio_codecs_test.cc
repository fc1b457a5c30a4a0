// Measures a corpus of real audio made at test time by sox and ffmpeg (tests/common/
// audio_corpus.sh) against the length of the source it was encoded from, whole and in random
// pieces, and checks that broken bodies are classified, not crashed on.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/audio.h"
#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

bool HaveTools() {
  static const bool have =
      std::system("command -v ffmpeg >/dev/null 2>&1 && command -v sox >/dev/null 2>&1") == 0;
  return have;
}

// An absolute path from CMake: __FILE__ is relative when ccache's base_dir rewrites the compile
// line, and tests run from their own binary folder.
std::string ScriptPath() { return TTSBENCH_AUDIO_CORPUS_SCRIPT; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One corpus file: made once per machine and kept in the test temp directory (the name holds
// every parameter), so the many test processes ctest starts share it.
std::string Corpus(const std::string& kind, int rate, int channels, int64_t samples) {
  const std::string path = absl::StrCat(::testing::TempDir(), "ttsbench-audio-corpus-1/", kind, "-",
                                        rate, "-", channels, "-", samples);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const std::string cmd = absl::StrCat("bash '", ScriptPath(), "' ", kind, " ", rate, " ",
                                         channels, " ", samples, " '", path, "'");
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << "corpus command failed: " << cmd;
      return "";
    }
  }
  return ReadFile(path);
}

struct Measured {
  absl::Status status;
  double seconds = 0;
  double piece_seconds = 0;  // the per-piece audio_s added up
  size_t audio_bytes = 0;
  int rate = 0;
  int channels = 0;
  std::string format;
};

// Feeds `body` to `meter` in pieces of 1..max_piece bytes (random, seeded), or whole when
// max_piece is 0.
Measured MeasureWith(AudioMeter& meter, const std::string& body, size_t max_piece,
                     uint32_t seed = 1) {
  Measured m;
  std::mt19937 rng(seed);
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t n =
        max_piece == 0 ? body.size() : std::min(1 + rng() % max_piece, body.size() - pos);
    auto feed = meter.Feed(absl::string_view(body).substr(pos, n));
    if (!feed.ok()) {
      m.status = feed.status();
      return m;
    }
    m.piece_seconds += feed->audio_s;
    m.audio_bytes += feed->audio_bytes;
    pos += n;
  }
  m.status = meter.Finish();
  m.seconds = meter.seconds();
  m.rate = meter.sample_rate();
  m.channels = meter.channels();
  m.format = std::string(meter.format());
  return m;
}

// The same with a new meter made from `options`.
Measured Measure(const MeterOptions& options, const std::string& body, size_t max_piece,
                 uint32_t seed = 1) {
  auto meter = MakeMeter(options);
  if (!meter.ok()) {
    Measured m;
    m.status = meter.status();
    return m;
  }
  return MeasureWith(**meter, body, max_piece, seed);
}

MeterOptions Format(const std::string& format, int rate = 0, int channels = 1) {
  MeterOptions o;
  o.format = format;
  o.sample_rate = rate;
  o.channels = channels;
  return o;
}

// A corpus format: how it is made, how it is requested, what it should measure as, and how far
// from the source length it may be (one codec frame, or exact).
struct CorpusFormat {
  std::string kind;
  std::string request;    // MeterOptions::format
  std::string measured;   // AudioMeter::format() expected
  int frame_samples = 0;  // tolerance: one codec frame at the codec's rate (0: exact)
  int codec_rate = 0;     // the codec's own rate when it is not the source's (Opus: 48 kHz)
  bool sndfile = false;   // libsndfile decodes it: its frame count must agree exactly
};

const std::vector<CorpusFormat>& CorpusFormats() {
  static const auto* formats = new std::vector<CorpusFormat>{
      {"wav_s16", "wav", "wav", 0, 0, true},
      {"wav_s24", "wav", "wav", 0, 0, true},
      {"wav_f32", "wav", "wav", 0, 0, true},
      {"wav_extensible", "wav", "wav", 0, 0, true},
      {"wav_ulaw", "wav", "wav", 0, 0, true},
      {"wav_alaw", "wav", "wav", 0, 0, true},
      {"wav_rf64", "wav", "wav", 0, 0, false},
      {"wav_stream", "wav", "wav", 0, 0, false},
      {"pcm_s16le", "pcm", "pcm", 0, 0, false},
      {"pcm_f32le", "pcm_f32le", "pcm", 0, 0, false},
      {"ulaw", "ulaw", "pcm", 0, 0, false},
      {"mp3_cbr", "mp3", "mp3", 1152, 0, true},
      {"mp3_vbr", "mp3", "mp3", 1152, 0, true},
      {"mp3_tags", "mp3", "mp3", 1152, 0, true},
      // No Xing frame when ffmpeg writes to a pipe: LAME's usual delay (576 + 529 samples) is
      // trimmed, and the end padding, under one frame, is what is left.
      {"mp3_stream", "mp3", "mp3", 1152, 0, false},
      {"flac", "flac", "flac", 0, 0, true},
      {"flac_stream", "flac", "flac", 0, 0, true},
      {"flac_sox", "flac", "flac", 0, 0, true},
      // Resampled to 48 kHz for rates libopus does not take: a few samples either way.
      {"opus", "opus", "opus", 960, 48000, true},
      {"vorbis", "vorbis", "vorbis", 0, 0, true},
      {"aac", "aac", "aac", 1024, 0, false},
  };
  return *formats;
}

struct GridPoint {
  int rate;
  int channels;
  double seconds;
};

// Every rate once per format, mono and stereo and the lengths spread across formats, and one
// minute-long file per format: representative, not the full product (that would take minutes).
std::vector<GridPoint> Grid(size_t format_index) {
  static constexpr int kRates[] = {8000, 16000, 22050, 24000, 44100, 48000};
  static constexpr double kLengths[] = {0.05, 0.5, 3.3, 11.0};
  std::vector<GridPoint> grid;
  for (size_t k = 0; k < 6; ++k) {
    grid.push_back({kRates[k], 1 + static_cast<int>((k + format_index) % 2),
                    kLengths[(k + format_index) % 4]});
  }
  grid.push_back({kRates[format_index % 6], 1 + static_cast<int>(format_index % 2), 60.0});
  return grid;
}

class CorpusTest : public ::testing::TestWithParam<size_t> {};

TEST_P(CorpusTest, MeasuresWithinOneCodecFrameWholeAndInPieces) {
  if (!HaveTools()) GTEST_SKIP() << "ffmpeg and sox are needed (deploy/install-deps.sh)";
  const CorpusFormat& f = CorpusFormats()[GetParam()];
  double worst_ms = 0, worst_frames = 0;
  int sndfile_agree = 0, files = 0;
  for (const GridPoint& g : Grid(GetParam())) {
    const int64_t samples = std::llround(g.seconds * g.rate) + 7;  // not a round number
    const std::string body = Corpus(f.kind, g.rate, g.channels, samples);
    ASSERT_FALSE(body.empty());
    const std::string label =
        absl::StrCat(f.kind, " ", g.rate, " Hz ", g.channels, " ch ", samples, " samples");
    const double want = static_cast<double>(samples) / g.rate;
    const MeterOptions options = Format(f.request, g.rate, g.channels);

    const Measured whole = Measure(options, body, 0);
    ASSERT_TRUE(whole.status.ok()) << label << ": " << whole.status;
    EXPECT_EQ(whole.format, f.measured) << label;
    EXPECT_EQ(whole.rate, f.codec_rate > 0 ? f.codec_rate : g.rate) << label;
    EXPECT_EQ(whole.channels, g.channels) << label;
    const int codec_rate = f.codec_rate > 0 ? f.codec_rate : g.rate;
    const double tolerance = f.frame_samples > 0 ? double(f.frame_samples) / codec_rate : 1e-9;
    EXPECT_NEAR(whole.seconds, want, tolerance) << label;
    EXPECT_NEAR(whole.piece_seconds, whole.seconds, 1e-6) << label;
    const double err = std::abs(whole.seconds - want);
    worst_ms = std::max(worst_ms, err * 1e3);
    if (f.frame_samples > 0)
      worst_frames = std::max(worst_frames, err * codec_rate / f.frame_samples);
    ++files;

    // Random piece sizes, small for short bodies (every split point) and larger for long ones.
    for (uint32_t seed : {1u, 2u, 3u}) {
      const size_t max_piece = body.size() < (64 << 10) ? 1 + seed * 7 : 4096u << seed;
      const Measured split = Measure(options, body, max_piece, seed);
      ASSERT_TRUE(split.status.ok()) << label << " in pieces: " << split.status;
      EXPECT_EQ(split.seconds, whole.seconds) << label << " pieces up to " << max_piece;
      EXPECT_EQ(split.audio_bytes, whole.audio_bytes) << label;
      EXPECT_NEAR(split.piece_seconds, whole.seconds, 1e-6) << label;
    }

    if (f.sndfile) {
      auto decoded = DecodeWithSndfile(body);
      ASSERT_TRUE(decoded.ok()) << label << ": " << decoded.status();
      const double sndfile_s = static_cast<double>(decoded->frames) / decoded->sample_rate;
      EXPECT_NEAR(whole.seconds, sndfile_s, 1e-9)
          << label << ": libsndfile decodes " << decoded->frames << " frames";
      if (std::abs(whole.seconds - sndfile_s) < 1e-9) ++sndfile_agree;
    }
  }
  const std::string summary = absl::StrFormat(
      "%s: %d files, largest error %.3f ms (%.3f codec frames)%s", f.kind, files, worst_ms,
      worst_frames,
      f.sndfile ? absl::StrFormat(", libsndfile agrees on %d/%d", sndfile_agree, files) : "");
  std::cout << "[ corpus   ] " << summary << std::endl;
  RecordProperty("largest_error_ms", absl::StrFormat("%.3f", worst_ms));
}

INSTANTIATE_TEST_SUITE_P(Formats, CorpusTest, ::testing::Range<size_t>(0, 21),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return CorpusFormats()[info.param].kind;
                         });

TEST(CorpusFormatsTest, GridCoversEveryFormat) { EXPECT_EQ(CorpusFormats().size(), 21u); }

// ------------------------------------------------------------------------------------------
// Format sniffing: the body decides, whatever was requested.

class SniffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveTools()) GTEST_SKIP() << "ffmpeg and sox are needed";
  }
};

TEST_F(SniffTest, BodyOfAnotherFormatThanRequestedIsMeasuredAsWhatItIs) {
  struct Case {
    std::string kind, request, measured;
  };
  for (const Case& c : std::vector<Case>{{"wav_s16", "pcm", "wav"},
                                         {"wav_s16", "mp3", "wav"},
                                         {"mp3_cbr", "wav", "mp3"},
                                         {"mp3_stream", "pcm", "mp3"},
                                         {"aac", "pcm", "aac"},
                                         {"aac", "mp3", "aac"},
                                         {"opus", "wav", "opus"},
                                         {"vorbis", "opus", "vorbis"},
                                         {"flac", "pcm", "flac"},
                                         {"flac_stream", "auto", "flac"}}) {
    const std::string body = Corpus(c.kind, 24000, 1, 24000);
    const Measured m = Measure(Format(c.request, 16000), body, 777);
    ASSERT_TRUE(m.status.ok()) << c.kind << " requested as " << c.request << ": " << m.status;
    EXPECT_EQ(m.format, c.measured) << c.kind << " requested as " << c.request;
    EXPECT_NEAR(m.seconds, 1.0, 2 * 1152 / 24000.0) << c.kind;
  }
}

// One meter serves a connection's answers (AudioMeter::Reset): after any answer — another format,
// a bad one, one cut short — a reset meter measures exactly as a new one does.
TEST_F(SniffTest, AResetMeterMeasuresEveryAnswerAsANewOne) {
  const std::string garbage = "<html><body>502 Bad Gateway</body></html>";
  for (const CorpusFormat& f : CorpusFormats()) {
    const MeterOptions options = Format(f.request, 24000);
    auto meter = MakeMeter(options);
    ASSERT_TRUE(meter.ok()) << meter.status();
    const std::string whole = Corpus(f.kind, 24000, 1, 24000);
    // Another rate and channel count, the same answer cut short, an error page, other formats.
    std::vector<std::string> answers;
    answers.push_back(whole);
    answers.push_back(Corpus(f.kind, 16000, 2, 8000));
    answers.push_back(whole.substr(0, whole.size() / 2));
    answers.push_back(garbage);
    answers.push_back(Corpus("wav_s16", 22050, 1, 11025));
    answers.push_back(Corpus("mp3_cbr", 24000, 1, 12007));
    answers.push_back(whole);
    for (size_t i = 0; i < answers.size(); ++i) {
      SCOPED_TRACE(f.kind + " answer " + std::to_string(i));
      if (i > 0) {
        ASSERT_TRUE((*meter)->Reset());
      }
      const Measured reused = MeasureWith(**meter, answers[i], 997, static_cast<uint32_t>(i));
      const Measured fresh = Measure(options, answers[i], 997, static_cast<uint32_t>(i));
      EXPECT_EQ(reused.status.ok(), fresh.status.ok()) << reused.status << " / " << fresh.status;
      EXPECT_EQ(reused.seconds, fresh.seconds);
      EXPECT_EQ(reused.piece_seconds, fresh.piece_seconds);
      EXPECT_EQ(reused.audio_bytes, fresh.audio_bytes);
      EXPECT_EQ(reused.rate, fresh.rate);
      EXPECT_EQ(reused.channels, fresh.channels);
      EXPECT_EQ(reused.format, fresh.format);
    }
  }
}

TEST_F(SniffTest, AutoFormatFollowsContentTypeForRawPcm) {
  const std::string body = Corpus("pcm_s16le", 16000, 1, 16000);
  MeterOptions o;
  o.content_type = "audio/L16; rate=16000; channels=1";
  EXPECT_DOUBLE_EQ(Measure(o, body, 0).seconds, 1.0);
  o.content_type = "audio/pcm;rate=8000;channels=2";  // half the rate, twice the channels
  EXPECT_DOUBLE_EQ(Measure(o, body, 0).seconds, 1.0);
  o.content_type = "application/octet-stream";
  EXPECT_EQ(Measure(o, body, 0).status.code(), absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------------------------------------
// Broken bodies: classified as InvalidArgument, never a crash or a wrong duration.

class MalformedTest : public SniffTest {};

TEST_F(MalformedTest, TruncatedBodiesAreInvalid) {
  for (const std::string kind : {"wav_s16", "mp3_cbr", "mp3_vbr", "mp3_stream", "opus", "vorbis",
                                 "flac", "flac_stream", "aac"}) {
    const std::string body = Corpus(kind, 22050, 2, 22050);
    for (double cut : {0.5, 0.9}) {
      size_t at = static_cast<size_t>(body.size() * cut);
      const Measured m = Measure(Format("auto"), body.substr(0, at), 1000);
      EXPECT_EQ(m.status.code(), absl::StatusCode::kInvalidArgument)
          << kind << " cut at " << at << " of " << body.size() << ": " << m.status << " measured "
          << m.seconds;
    }
  }
}

TEST_F(MalformedTest, CutHeadersAndFlippedBytesAreInvalid) {
  for (const std::string kind : {"opus", "vorbis", "flac_stream"}) {
    std::string body = Corpus(kind, 24000, 1, 24000);
    // One flipped bit in the middle: Ogg's page CRC or FLAC's frame CRC-16 catches it (the FLAC
    // frame then never ends, so the body ends inside it).
    body[body.size() / 2] ^= 0x10;
    const Measured m = Measure(Format("auto"), body, 0);
    EXPECT_EQ(m.status.code(), absl::StatusCode::kInvalidArgument) << kind << ": " << m.status;
  }
  for (const std::string kind : {"wav_s16", "mp3_cbr", "opus", "flac", "aac"}) {
    const std::string body = Corpus(kind, 24000, 1, 24000);
    const Measured m = Measure(Format("auto"), body.substr(0, 3), 0);
    EXPECT_FALSE(m.status.ok()) << kind << " cut to 3 bytes";
  }
}

TEST(MalformedBytesTest, GarbageIsInvalidForEveryCompressedFormat) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::string junk(1 + rng() % 5000, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    // Half of them start like an MPEG frame, to get past the first check.
    if (trial % 2) junk.replace(0, std::min<size_t>(2, junk.size()), "\xFF\xFB");
    for (const char* format : {"wav", "mp3", "aac", "opus", "vorbis", "flac"}) {
      const Measured m = Measure(Format(format), junk, 1 + trial % 300, trial);
      EXPECT_EQ(m.status.code(), absl::StatusCode::kInvalidArgument)
          << format << " accepted " << junk.size() << " random bytes as " << m.seconds << " s";
    }
  }
}

TEST(MalformedBytesTest, ErrorPagesAreNotAudioEvenAsRawPcm) {
  for (const char* body :
       {"<html><body>502 Bad Gateway</body></html>", "{\"error\":{\"message\":\"rate limited\"}}",
        "Internal Server Error", "OK"}) {
    for (const char* format : {"pcm", "ulaw", "wav", "mp3", "opus", "flac", "auto"}) {
      const Measured m = Measure(Format(format, 24000), body, 0);
      EXPECT_EQ(m.status.code(), absl::StatusCode::kInvalidArgument) << format << ": " << body;
    }
  }
}

TEST(MalformedBytesTest, EmptyBodyIsEmptyAudioNotAnError) {
  for (const char* format : {"pcm", "wav", "mp3", "aac", "opus", "flac", "auto"}) {
    const Measured m = Measure(Format(format, 24000), "", 0);
    EXPECT_TRUE(m.status.ok()) << format << ": " << m.status;
    EXPECT_EQ(m.seconds, 0) << format;
  }
}

TEST(MalformedBytesTest, UnsupportedContainersAreNamed) {
  const Measured webm =
      Measure(Format("opus"), std::string("\x1A\x45\xDF\xA3\x9f\x42\x86\x81", 8), 0);
  EXPECT_EQ(webm.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(webm.status.message().find("WebM"), std::string::npos) << webm.status;
  const Measured mp4 = Measure(Format("aac"),
                               std::string("\0\0\0\x20"
                                           "ftypM4A \0\0\0\0",
                                           16),
                               0);
  EXPECT_NE(mp4.status.message().find("MP4"), std::string::npos) << mp4.status;
  EXPECT_FALSE(MakeMeter(Format("speex")).ok());
}

// ------------------------------------------------------------------------------------------
// What servers do with these containers.

TEST_F(SniffTest, ConcatenatedMp3FilesAddUpGaplessly) {
  // A server that encodes each sentence separately and sends the files one after another: each
  // has its own ID3 tag and Info frame with its own delay and padding.
  const std::string a = Corpus("mp3_cbr", 24000, 1, 12007);
  const std::string b = Corpus("mp3_vbr", 24000, 1, 30011);
  const Measured m = Measure(Format("mp3"), a + b, 500);
  ASSERT_TRUE(m.status.ok()) << m.status;
  EXPECT_NEAR(m.seconds, (12007 + 30011) / 24000.0, 1e-9);
}

TEST_F(SniffTest, ChainedOggLinksAddUp) {
  const std::string a = Corpus("opus", 48000, 1, 24007);
  const std::string b = Corpus("opus", 48000, 2, 48011);
  const Measured m = Measure(Format("opus"), a + b, 300);
  ASSERT_TRUE(m.status.ok()) << m.status;
  EXPECT_NEAR(m.seconds, (24007 + 48011) / 48000.0, 1e-9);
  const std::string v = Corpus("vorbis", 22050, 1, 22057);
  const Measured mixed = Measure(Format("ogg"), v + a, 0);
  ASSERT_TRUE(mixed.status.ok()) << mixed.status;
  EXPECT_NEAR(mixed.seconds, 22057 / 22050.0 + 24007 / 48000.0, 1e-9);
}

TEST_F(SniffTest, FirstAudioIsReportedWithTheFirstAudioFrameNotTheHeaders) {
  for (const std::string kind : {"mp3_cbr", "opus", "vorbis", "flac", "aac", "wav_s16"}) {
    const std::string body = Corpus(kind, 24000, 1, 24000);
    auto meter = MakeMeter(Format("auto"));
    ASSERT_TRUE(meter.ok());
    // Headers alone (ID3 + Info frame, Ogg header pages, FLAC metadata, WAV header) are not
    // audio; feed byte by byte until the first audio byte is reported.
    size_t first = 0;
    for (size_t i = 0; i < body.size() && first == 0; ++i) {
      auto feed = (*meter)->Feed(absl::string_view(body).substr(i, 1));
      ASSERT_TRUE(feed.ok()) << kind << ": " << feed.status();
      if (feed->audio_bytes > 0) first = i;
    }
    EXPECT_GT(first, 0u) << kind;
    EXPECT_LT(first, body.size() / 2) << kind;  // after the headers, long before the end
  }
}

}  // namespace
}  // namespace ttsbench::common
