// The optional ASR check's sample (plan asr, DESIGN.md "ASR check"): one answer's audio bytes
// exactly as the audio meter received them, kept so the coordinator can run a recogniser on
// them. A virtual user owns one while its agent's sample of the level is not yet full; off, the
// decoders hold a null pointer and pay one branch per piece.
#ifndef TTSBENCH_AGENT_CLIENT_AUDIO_CAPTURE_H_
#define TTSBENCH_AGENT_CLIENT_AUDIO_CAPTURE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/audio.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent {

// At most this many audio bytes of one answer are kept (87 s of 24 kHz 16-bit mono PCM, over
// 4 minutes of 128 kbit/s MP3); longer audio keeps its start and is marked capped.
inline constexpr size_t kAsrMaxAudioBytes = size_t{4} << 20;

class AudioCapture {
 public:
  explicit AudioCapture(size_t max_bytes = kAsrMaxAudioBytes) : max_bytes_(max_bytes) {}
  // Ready for the next answer.
  void Begin();
  // Bytes the meter `meter` (made with `options`) was just fed.
  void Append(absl::string_view bytes, const common::AudioMeter& meter,
              const common::MeterOptions& options);
  // Moves the bytes and their format into the record (asr_audio, asr_format).
  void MoveInto(v1::RequestRecord& rec);

  size_t size() const { return bytes_.size(); }

 private:
  size_t max_bytes_;
  std::string bytes_;
  uint64_t received_ = 0;
  absl::string_view format_;  // a string literal: the meter's format or the raw PCM encoding
  int sample_rate_ = 0;
  int channels_ = 0;
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_CLIENT_AUDIO_CAPTURE_H_
