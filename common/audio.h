// Incremental audio meters: fed a response body piece by piece as it arrives, they say how much
// of each piece is audio and how long the audio is, without holding the body.
#ifndef TTSBENCH_COMMON_AUDIO_H_
#define TTSBENCH_COMMON_AUDIO_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::common {

struct AudioFeed {
  size_t audio_bytes = 0;  // bytes of samples in this piece (headers excluded)
  double audio_s = 0;      // audio duration completed by this piece (whole frames only)
};

class AudioMeter {
 public:
  virtual ~AudioMeter() = default;
  // InvalidArgument when the bytes cannot be this format.
  virtual absl::StatusOr<AudioFeed> Feed(absl::string_view piece) = 0;
  // Called at end of body: InvalidArgument when the audio is truncated or never started.
  virtual absl::Status Finish() = 0;
  virtual double seconds() const = 0;
  virtual int sample_rate() const = 0;
};

enum class PcmEncoding { kS16le, kF32le };

// Raw interleaved PCM with a known rate.
std::unique_ptr<AudioMeter> MakePcmMeter(int sample_rate, int channels, PcmEncoding encoding);

// RIFF/WAVE, including streamed WAV whose RIFF and data sizes are 0 or 0xFFFFFFFF (unbounded).
std::unique_ptr<AudioMeter> MakeWavMeter();

// Picks the meter for a response: `format` is the requested format (wav | pcm); `content_type`
// may carry `rate=`; a body that starts with RIFF is always WAV.
absl::StatusOr<std::unique_ptr<AudioMeter>> MakeMeterFor(absl::string_view format,
                                                         absl::string_view content_type,
                                                         int default_sample_rate);

// The `rate=` parameter of a Content-Type such as "audio/pcm;rate=24000", or 0.
int RateFromContentType(absl::string_view content_type);

// Duration of a whole in-memory body (non-streamed), e.g. a base64-decoded WAV.
absl::StatusOr<double> MeasureWhole(AudioMeter& meter, absl::string_view body);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_AUDIO_H_
