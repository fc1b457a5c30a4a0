// libFuzzer target for one audio parser (TTSBENCH_FUZZ_PARSER): any bytes, fed whole and in
// pieces, must give a status (never a crash, hang or sanitizer report), and the two feeds must
// agree: a meter's answer cannot depend on how the network split the body.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/audio.h"
#include "tests/fuzz/pieces.h"

namespace {

using ttsbench::common::AudioMeter;

std::unique_ptr<AudioMeter> NewMeter() {
  const char* parser = TTSBENCH_FUZZ_PARSER;
  if (std::strcmp(parser, "wav") == 0) return ttsbench::common::MakeWavMeter();
  if (std::strcmp(parser, "mp3") == 0 || std::strcmp(parser, "adts") == 0) {
    return ttsbench::common::MakeMpegMeter();
  }
  if (std::strcmp(parser, "ogg") == 0) return ttsbench::common::MakeOggMeter();
  if (std::strcmp(parser, "flac") == 0) return ttsbench::common::MakeFlacMeter();
  // "pcm": the sniffing path a raw-PCM request takes (signatures, MPEG sync check, text check).
  ttsbench::common::MeterOptions options;
  options.format = "pcm";
  options.sample_rate = 24000;
  return *ttsbench::common::MakeMeter(options);
}

struct Result {
  bool ok = false;
  double seconds = 0;
  double piece_seconds = 0;
};

// Feeds `body` in pieces whose sizes come from a small generator seeded by `seed`; 0: whole.
Result Run(absl::string_view body, uint32_t seed) {
  std::unique_ptr<AudioMeter> meter = NewMeter();
  Result r;
  ttsbench::fuzzing::PieceSizes pieces(seed, 64);
  while (!body.empty()) {
    const size_t n = pieces.Next(body.size());
    auto feed = meter->Feed(body.substr(0, n));
    if (!feed.ok()) return r;
    r.piece_seconds += feed->audio_s;
    body.remove_prefix(n);
  }
  r.ok = meter->Finish().ok();
  r.seconds = meter->seconds();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t seed = data[0] | 1u;  // the first byte picks the split; the rest is the body
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Result whole = Run(body, 0);
  const Result pieces = Run(body, seed);
  if (whole.ok != pieces.ok) std::abort();
  if (whole.ok) {
    if (!std::isfinite(whole.seconds) || whole.seconds < 0) std::abort();
    if (whole.seconds != pieces.seconds) std::abort();
    if (std::abs(pieces.piece_seconds - whole.piece_seconds) > 1e-6) std::abort();
  }
  return 0;
}
