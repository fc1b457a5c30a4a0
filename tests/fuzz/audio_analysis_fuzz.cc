// libFuzzer target for the audio checks' analyser (common/audio_analysis): any bytes, in any
// declared format, fed whole and in pieces, must give an analysis (never a crash, hang or
// sanitizer report), and the two feeds must agree: what the listener hears cannot depend on how
// the network split the answer.
#include <cstdint>
#include <cstdlib>

#include "common/audio_analysis.h"
#include "tests/fuzz/pieces.h"

namespace {

// The first byte's low bits pick the declared format; its high bits the split.
constexpr const char* kFormats[] = {"wav", "pcm", "pcm_f32le", "ulaw", "alaw", "mp3", "opus", ""};

ttsbench::v1::AudioAnalysis Run(absl::string_view body, const char* format, uint32_t seed) {
  ttsbench::v1::AudioChecks checks;
  checks.set_enabled(true);
  ttsbench::common::AudioAnalyser analyser(checks);
  ttsbench::common::MeterOptions options;
  options.format = format;
  options.sample_rate = 8000;
  analyser.Begin();
  ttsbench::fuzzing::PieceSizes pieces(seed, 64);
  int64_t t = 1000;
  while (!body.empty()) {
    const size_t n = pieces.Next(body.size());
    analyser.Audio(options, body.substr(0, n));
    analyser.Arrived(t += 1000);
    body.remove_prefix(n);
  }
  ttsbench::v1::AudioAnalysis out;
  analyser.Finish(1000, t, &out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const char* format = kFormats[data[0] & 7];
  const uint32_t seed = (data[0] >> 3) | 1u;
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const ttsbench::v1::AudioAnalysis whole = Run(body, format, 0);
  const ttsbench::v1::AudioAnalysis split = Run(body, format, seed);
  if (whole.decoded() != split.decoded() ||
      whole.leading_silence_ms() != split.leading_silence_ms() ||
      whole.trailing_silence_ms() != split.trailing_silence_ms() ||
      whole.decoded_s() != split.decoded_s() || whole.truncated() != split.truncated() ||
      whole.clipped_fraction() != split.clipped_fraction() ||
      whole.envelope_db_size() != split.envelope_db_size() ||
      whole.internal_silences() != split.internal_silences()) {
    std::abort();
  }
  return 0;
}
