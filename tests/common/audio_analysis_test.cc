// The audio analyser (audio_checks, issue 14): real files made by sox and ffmpeg with a known
// leading silence in every format, threshold edges, and streamed pieces split anywhere.
#include "common/audio_analysis.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

bool HaveTools() {
  static const bool have =
      std::system("command -v ffmpeg >/dev/null 2>&1 && command -v sox >/dev/null 2>&1") == 0;
  return have;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// 500 ms of digital silence, 300 ms of a 440 Hz tone at 0.3, 200 ms of silence (1 s in all), at
// 24 kHz mono (no dither: digital silence stays zero), encoded as `kind` (the ffmpeg arguments
// after -i, or "sox-ext" for sox's WAVE_FORMAT_EXTENSIBLE). Made once per test binary run in the
// test temp directory.
std::string Sample(const std::string& kind, const std::string& args, int rate = 24000) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "ttsbench-analysis-", getpid(), "/");
  const std::string src = absl::StrCat(dir, "src-", rate, ".wav");
  const std::string out = absl::StrCat(dir, kind, "-", rate);
  struct stat st;
  if (stat(out.c_str(), &st) == 0) return ReadFile(out);
  std::string cmd = absl::StrCat("mkdir -p '", dir, "' && sox -R -D -n -r ", rate, " -c 1 -b 16 '",
                                 src, "' synth 0.3 sine 440 vol 0.3 pad 0.5 0.2 && ");
  if (kind == "sox-ext") {
    absl::StrAppend(&cmd, "sox -R '", src, "' -b 24 -t wav '", out, "'");
  } else {
    absl::StrAppend(&cmd, "ffmpeg -nostdin -hide_banner -v error -y -i '", src, "' ", args, " '",
                    out, "'");
  }
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "encoder failed: " << cmd;
    return "";
  }
  return ReadFile(out);
}

v1::AudioChecks Checks() {
  v1::AudioChecks c;
  c.set_enabled(true);
  return WithAudioCheckDefaults(c);
}

// Feeds `bytes` whole (max_piece 0) or in seeded random pieces of 1..max_piece bytes, each
// stamped 1 ms after the last (from t0); first audio at t0.
v1::AudioAnalysis Analyse(const std::string& bytes, const MeterOptions& options,
                          size_t max_piece = 0, const v1::AudioChecks& checks = Checks(),
                          int64_t t0 = 1'000'000'000) {
  AudioAnalyser a(checks);
  a.Begin();
  std::mt19937 rng(7);
  int64_t t = t0;
  for (size_t at = 0; at < bytes.size();) {
    size_t n = bytes.size() - at;
    if (max_piece > 0) n = std::min(n, std::uniform_int_distribution<size_t>(1, max_piece)(rng));
    a.Audio(options, absl::string_view(bytes).substr(at, n));
    a.Arrived(t);
    t += 1'000'000;
    at += n;
  }
  v1::AudioAnalysis out;
  a.Finish(t0, t, &out);
  return out;
}

struct Format {
  std::string name;
  std::string args;
  MeterOptions options;
  double tolerance_ms;  // codec delay and pre-echo of lossy formats
};

std::vector<Format> Formats() {
  auto opt = [](std::string format, int rate = 0) {
    MeterOptions o;
    o.format = std::move(format);
    o.sample_rate = rate;
    return o;
  };
  return {
      {"wav_s16", "-c:a pcm_s16le -f wav", opt("wav"), 1},
      {"wav_s24", "-c:a pcm_s24le -f wav", opt("wav"), 1},
      {"wav_f32", "-c:a pcm_f32le -f wav", opt("wav"), 1},
      {"wav_u8", "-c:a pcm_u8 -f wav", opt("wav"), 1},
      {"wav_ulaw", "-c:a pcm_mulaw -f wav", opt("wav"), 1},
      {"wav_alaw", "-c:a pcm_alaw -f wav", opt("wav"), 1},
      {"sox-ext", "", opt("wav"), 1},
      {"wav_rf64", "-c:a pcm_s16le -rf64 always -f wav", opt("wav"), 1},
      {"pcm_s16le", "-f s16le", opt("pcm", 24000), 1},
      {"pcm_f32le", "-f f32le", opt("pcm_f32le", 24000), 1},
      {"ulaw", "-f mulaw", opt("ulaw", 24000), 1},
      {"alaw", "-f alaw", opt("alaw", 24000), 1},
      {"flac", "-c:a flac -f flac", opt("flac"), 1},
      {"mp3", "-c:a libmp3lame -b:a 64k -f mp3", opt("mp3"), 30},
      {"opus", "-c:a libopus -b:a 32k -f ogg", opt("opus"), 15},
      {"vorbis", "-c:a libvorbis -q:a 3 -f ogg", opt("vorbis"), 15},
  };
}

class FormatTest : public ::testing::TestWithParam<Format> {};

TEST_P(FormatTest, FindsTheLeadingSilenceAndTheAudibleTime) {
  if (!HaveTools()) GTEST_SKIP() << "needs sox and ffmpeg";
  const Format& f = GetParam();
  const std::string bytes = Sample(f.name, f.args, f.name == "opus" ? 48000 : 24000);
  ASSERT_FALSE(bytes.empty());
  const v1::AudioAnalysis a = Analyse(bytes, f.options);
  ASSERT_TRUE(a.decoded()) << a.not_decoded();
  EXPECT_NEAR(a.leading_silence_ms(), 500, f.tolerance_ms);
  EXPECT_NEAR(a.trailing_silence_ms(), 200, f.tolerance_ms + 20);
  EXPECT_NEAR(a.decoded_s(), 1.0, 0.06);
  EXPECT_EQ(a.channels(), 1);
  EXPECT_FALSE(a.truncated());
  EXPECT_EQ(a.internal_silences(), 0);
  EXPECT_LT(a.clipped_fraction(), 1e-3);
  // First audio at t0 = 1 s: heard at t0 + the silence (every byte arrived earlier than that).
  EXPECT_NEAR(static_cast<double>(a.audible_ns() - 1'000'000'000) / 1e6, a.leading_silence_ms(),
              0.01);
  // Envelope: one value per 50 ms, silent then loud then silent.
  ASSERT_GE(a.envelope_db_size(), 19);
  EXPECT_LT(a.envelope_db(2), -60);
  EXPECT_GT(a.envelope_db(13), -20);
  EXPECT_GT(a.decode_cpu_us(), 0);
}

TEST_P(FormatTest, PiecesSplitAnywhereGiveTheSameAnswer) {
  if (!HaveTools()) GTEST_SKIP() << "needs sox and ffmpeg";
  const Format& f = GetParam();
  const std::string bytes = Sample(f.name, f.args, f.name == "opus" ? 48000 : 24000);
  const v1::AudioAnalysis whole = Analyse(bytes, f.options);
  for (const size_t piece : {size_t{1}, size_t{3}, size_t{7}, size_t{1000}}) {
    if (piece == 1 && bytes.size() > 100'000) continue;
    const v1::AudioAnalysis split = Analyse(bytes, f.options, piece);
    EXPECT_EQ(split.decoded(), whole.decoded());
    EXPECT_EQ(split.leading_silence_ms(), whole.leading_silence_ms()) << "pieces of " << piece;
    EXPECT_EQ(split.trailing_silence_ms(), whole.trailing_silence_ms());
    EXPECT_EQ(split.decoded_s(), whole.decoded_s());
    EXPECT_EQ(split.clipped_fraction(), whole.clipped_fraction());
    ASSERT_EQ(split.envelope_db_size(), whole.envelope_db_size());
    for (int i = 0; i < whole.envelope_db_size(); ++i) {
      EXPECT_EQ(split.envelope_db(i), whole.envelope_db(i));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, FormatTest, ::testing::ValuesIn(Formats()),
                         [](const auto& info) {
                           return info.param.name == "sox-ext" ? std::string("wav_extensible")
                                                               : info.param.name;
                         });

// 16-bit mono WAV of the given samples (in [-1, 1]).
std::string Wav(const std::vector<double>& samples, int rate, uint32_t declared_frames = 0) {
  auto le = [](std::string& s, uint32_t v, int n) {
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
  };
  const uint32_t data =
      static_cast<uint32_t>(2 * (declared_frames > 0 ? declared_frames : samples.size()));
  std::string s = "RIFF";
  le(s, 36 + data, 4);
  s += "WAVEfmt ";
  le(s, 16, 4);
  le(s, 1, 2);
  le(s, 1, 2);
  le(s, static_cast<uint32_t>(rate), 4);
  le(s, static_cast<uint32_t>(rate) * 2, 4);
  le(s, 2, 2);
  le(s, 16, 2);
  s += "data";
  le(s, data, 4);
  for (const double v : samples) {
    le(s, static_cast<uint16_t>(static_cast<int16_t>(std::lround(v * 32767))), 2);
  }
  return s;
}

// A sine of RMS `dbfs` for `ms`, after `silence_ms` of silence, at 16 kHz.
std::vector<double> Tone(double silence_ms, double ms, double dbfs, int rate = 16000) {
  std::vector<double> v(static_cast<size_t>(silence_ms * rate / 1000), 0.0);
  const double amp = std::pow(10.0, dbfs / 20) * std::sqrt(2.0);
  for (int i = 0; i < static_cast<int>(ms * rate / 1000); ++i) {
    v.push_back(amp * std::sin(2 * M_PI * 1000.0 * i / rate));
  }
  return v;
}

MeterOptions WavOptions() {
  MeterOptions o;
  o.format = "wav";
  return o;
}

TEST(AudioAnalyserTest, ToneJustAboveTheThresholdIsAudible) {
  const v1::AudioAnalysis a = Analyse(Wav(Tone(200, 300, -48), 16000), WavOptions());
  ASSERT_TRUE(a.decoded());
  EXPECT_NEAR(a.leading_silence_ms(), 200, 1);
  EXPECT_NE(a.audible_ns(), 0);
}

TEST(AudioAnalyserTest, ToneJustBelowTheThresholdIsSilence) {
  const v1::AudioAnalysis a = Analyse(Wav(Tone(200, 300, -52), 16000), WavOptions());
  ASSERT_TRUE(a.decoded());
  EXPECT_EQ(a.audible_ns(), 0);
  EXPECT_NEAR(a.leading_silence_ms(), 500, 0.1);  // all of it
}

TEST(AudioAnalyserTest, TheThresholdIsConfigurable) {
  v1::AudioChecks c = Checks();
  c.set_audible_threshold_dbfs(-60);
  const v1::AudioAnalysis a = Analyse(Wav(Tone(200, 300, -52), 16000), WavOptions(), 0, c);
  EXPECT_NE(a.audible_ns(), 0);
  EXPECT_NEAR(a.leading_silence_ms(), 200, 1);
}

TEST(AudioAnalyserTest, AudibleTimeIsTheArrivalOfTheBytesWhenTheyComeLate) {
  // The tone's bytes arrive 2 s after first audio: heard when they arrive, not at t0 + 200 ms.
  const std::string wav = Wav(Tone(200, 300, -20), 16000);
  const size_t cut = 44 + 2 * 3200;  // header + 200 ms of silence
  AudioAnalyser a(Checks());
  a.Begin();
  a.Audio(WavOptions(), absl::string_view(wav).substr(0, cut));
  a.Arrived(1'000'000'000);
  a.Audio(WavOptions(), absl::string_view(wav).substr(cut));
  a.Arrived(3'000'000'000);
  v1::AudioAnalysis out;
  a.Finish(1'000'000'000, 3'000'000'000, &out);
  EXPECT_EQ(out.audible_ns(), 3'000'000'000);
  // And when they came early, the player's clock decides: first audio + 200 ms.
  a.Begin();
  a.Audio(WavOptions(), wav);
  a.Arrived(1'000'000'000);
  a.Finish(1'000'000'000, 1'000'000'000, &out);
  EXPECT_NEAR(static_cast<double>(out.audible_ns() - 1'000'000'000) / 1e6, 200, 1);
}

TEST(AudioAnalyserTest, CountsInternalSilencesLongerThanTheStutterBound) {
  std::vector<double> v = Tone(0, 300, -20);
  const std::vector<double> gap_then_tone = Tone(400, 300, -20);
  v.insert(v.end(), gap_then_tone.begin(), gap_then_tone.end());
  const std::vector<double> short_gap = Tone(100, 300, -20);
  v.insert(v.end(), short_gap.begin(), short_gap.end());
  const v1::AudioAnalysis a = Analyse(Wav(v, 16000), WavOptions());
  EXPECT_EQ(a.internal_silences(), 1);
  EXPECT_NEAR(a.longest_internal_silence_ms(), 400, 2);
  EXPECT_NEAR(a.leading_silence_ms(), 0, 0.1);
}

TEST(AudioAnalyserTest, MeasuresClipping) {
  std::vector<double> v(8000, 0.0);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (i / 8) % 2 ? 1.0 : -1.0;  // full-scale square
  for (size_t i = 0; i < 8000; ++i) v.push_back(0.1);
  const v1::AudioAnalysis a = Analyse(Wav(v, 16000), WavOptions());
  EXPECT_NEAR(a.clipped_fraction(), 0.5, 1e-3);
}

TEST(AudioAnalyserTest, AWavShortOfItsDeclaredSizeIsTruncated) {
  const v1::AudioAnalysis a =
      Analyse(Wav(Tone(100, 100, -20), 16000, /*declared_frames=*/16000), WavOptions());
  ASSERT_TRUE(a.decoded());
  EXPECT_TRUE(a.truncated());
  EXPECT_NEAR(a.decoded_s(), 0.2, 1e-3);
  EXPECT_FALSE(Analyse(Wav(Tone(100, 100, -20), 16000), WavOptions()).truncated());
}

TEST(AudioAnalyserTest, AFormatTheDecoderLacksIsNamedNotFailed) {
  if (!HaveTools()) GTEST_SKIP() << "needs sox and ffmpeg";
  MeterOptions o;
  o.format = "aac";
  const v1::AudioAnalysis a = Analyse(Sample("aac", "-c:a aac -b:a 64k -f adts"), o);
  EXPECT_FALSE(a.decoded());
  EXPECT_EQ(a.not_decoded(), "aac");
  EXPECT_EQ(a.audible_ns(), 0);
}

TEST(AudioAnalyserTest, RawPcmTakesItsRateFromTheContentType) {
  MeterOptions o;
  o.format = "pcm";
  o.content_type = "audio/pcm;rate=16000";
  const std::string wav = Wav(Tone(250, 100, -20), 16000);
  const v1::AudioAnalysis a = Analyse(wav.substr(44), o);
  ASSERT_TRUE(a.decoded());
  EXPECT_EQ(a.sample_rate(), 16000);
  EXPECT_EQ(a.declared_sample_rate(), 16000);
  EXPECT_NEAR(a.leading_silence_ms(), 250, 1);
}

TEST(AudioAnalyserTest, RawPcmWithoutARateIsNotDecoded) {
  MeterOptions o;
  o.format = "pcm";
  const v1::AudioAnalysis a = Analyse(std::string(100, '\0'), o);
  EXPECT_FALSE(a.decoded());
  EXPECT_FALSE(a.not_decoded().empty());
}

TEST(AudioAnalyserTest, GarbageNeverCrashesAndIsNotDecoded) {
  std::mt19937 rng(3);
  std::string junk(5000, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  for (const char* format : {"mp3", "opus", "flac", "wav", ""}) {
    MeterOptions o;
    o.format = format;
    const v1::AudioAnalysis a = Analyse(absl::StrCat(format[0] == 'w' ? "RIFF" : "OggS", junk), o);
    EXPECT_FALSE(a.decoded()) << format;
  }
}

TEST(AudioAnalyserTest, BeginForgetsTheLastAnswer) {
  AudioAnalyser a(Checks());
  v1::AudioAnalysis first, second;
  for (v1::AudioAnalysis* out : {&first, &second}) {
    a.Begin();
    a.Audio(WavOptions(), Wav(Tone(300, 100, -20), 16000));
    a.Arrived(5);
    a.Finish(5, 5, out);
  }
  EXPECT_EQ(first.leading_silence_ms(), second.leading_silence_ms());
  EXPECT_EQ(first.envelope_db_size(), second.envelope_db_size());
  EXPECT_EQ(first.decoded_s(), second.decoded_s());
}

}  // namespace
}  // namespace ttsbench::common
