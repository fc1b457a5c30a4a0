// The WAV an ASR recogniser reads (DESIGN.md "ASR check"): one answer's audio bytes, as the
// agent's meter received them, decoded, mixed to mono, resampled and written as 16-bit PCM WAV.
// No protobuf here, so the fuzz target (tests/fuzz) builds it alone.
#ifndef TTSBENCH_COORDINATOR_RUN_ASR_AUDIO_H_
#define TTSBENCH_COORDINATOR_RUN_ASR_AUDIO_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::coordinator {

// What the bytes are (v1::AsrAudioFormat): a container (wav, mp3, aac, opus, vorbis, flac) or
// raw samples (pcm_s16le, pcm_s24le, pcm_s32le, pcm_f32le, ulaw, alaw) at sample_rate, channels.
struct AsrAudioDescription {
  std::string format;
  int sample_rate = 0;
  int channels = 0;
};

struct AsrWav {
  std::string bytes;  // a whole WAV file
  double audio_s = 0;
};

// Raw PCM by its encoding; WAV (sizes that are placeholders or cut short made true first),
// FLAC, Ogg Vorbis/Opus and MP3 with libsndfile; mixed to mono, resampled to `sample_rate`
// (> 0) with a windowed-sinc low-pass, 16-bit. AAC (libsndfile lacks it): Unimplemented;
// bytes that do not decode: InvalidArgument.
absl::StatusOr<AsrWav> ConvertToAsrWav(absl::string_view audio, const AsrAudioDescription& d,
                                       int sample_rate);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_RUN_ASR_AUDIO_H_
