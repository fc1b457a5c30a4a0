// The audio the synthetic server sends: a 440 Hz tone at any sample rate, in every format it
// serves (WAV, raw PCM s16le/f32le, mu-law, and MP3, FLAC, Ogg Opus, Ogg Vorbis encoded by
// libsndfile, AAC in ADTS encoded by ffmpeg when it is installed), whole or sliced by sample range
// for streamed chunks.
#ifndef TTSBENCH_SYNTH_AUDIO_SOURCE_H_
#define TTSBENCH_SYNTH_AUDIO_SOURCE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"

namespace ttsbench::synth {

enum class AudioFormat { kWav, kPcmS16, kPcmF32, kUlaw, kMp3, kFlac, kOpus, kVorbis, kAac };

// wav | pcm (s16le) | pcm_f32le | ulaw | mp3 | flac | opus | vorbis (or ogg) | aac; nullopt
// otherwise.
std::optional<AudioFormat> ParseAudioFormat(std::string_view name);
// The Content-Type of a body in `format`; raw PCM carries its rate.
std::string ContentType(AudioFormat format, int sample_rate);
// Whether it is encoded (libsndfile; ffmpeg for AAC), and so whether slices are byte ranges of
// a whole file.
bool IsEncoded(AudioFormat format);
// The WAV header size the server writes.
inline constexpr size_t kWavHeaderBytes = 44;

// Tone tables per (rate, encoding) and encoded files cached by (format, rate, samples), shared
// by all connections. Thread-safe; returned references stay valid for the library's lifetime.
class AudioLibrary {
 public:
  // One second of the tone, interleaved mono samples in `format` (kPcmS16, kPcmF32 or kUlaw).
  // 440 whole cycles fit in a second at any integer rate, so slices of it loop seamlessly.
  const std::string& Tone(AudioFormat format, int sample_rate);
  // One second of digital silence in `format` (kPcmS16, kPcmF32 or kUlaw).
  const std::string& Silence(AudioFormat format, int sample_rate);
  // The whole file of `samples` tone samples; InvalidArgument when the encoder refuses (e.g. Opus
  // at a rate other than 8, 12, 16, 24 or 48 kHz, or AAC without ffmpeg on PATH).
  // `silence` samples of digital silence come first (leading silence), then `samples` of tone.
  absl::StatusOr<std::shared_ptr<const std::string>> Encoded(AudioFormat format, int sample_rate,
                                                             int64_t samples, int64_t silence = 0);

 private:
  std::mutex mu_;
  std::map<std::pair<AudioFormat, int>, std::unique_ptr<std::string>> tones_;
  std::map<std::pair<AudioFormat, int>, std::unique_ptr<std::string>> silences_;
  std::map<std::tuple<AudioFormat, int, int64_t, int64_t>, std::shared_ptr<const std::string>>
      files_;
  size_t file_bytes_ = 0;
};

// One response's audio.
class AudioBody {
 public:
  // `streamed`: a WAV header without sizes (0xFFFFFFFF), as streaming servers send.
  // `leading_silence` samples of digital silence come before the `samples` of tone (the
  // synthetic server's --leading-silence-ms); samples() counts both.
  static absl::StatusOr<AudioBody> Make(AudioLibrary& library, AudioFormat format, int sample_rate,
                                        int64_t samples, bool streamed,
                                        int64_t leading_silence = 0);

  // Appends the pieces that carry samples [begin, end) to `out`: exactly those samples for WAV
  // and raw PCM (plus the WAV header when begin is 0); for encoded formats the proportional byte
  // range of the whole file, so that consecutive slices add up to the file. The pieces point
  // into the library and this object.
  void Append(int64_t begin, int64_t end, std::vector<std::string_view>& out) const;
  std::string Copy(int64_t begin, int64_t end) const;  // the same bytes, joined
  size_t TotalBytes() const;
  // Bytes of the container header (WAV) or 0: truncation keeps it and half the audio.
  size_t HeaderBytes() const { return format_ == AudioFormat::kWav ? kWavHeaderBytes : 0; }

  AudioFormat format() const { return format_; }
  int sample_rate() const { return sample_rate_; }
  int64_t samples() const { return samples_; }

 private:
  AudioFormat format_ = AudioFormat::kWav;
  int sample_rate_ = 0;
  int64_t samples_ = 0;
  int64_t silence_ = 0;                 // leading silent samples (within samples_)
  const std::string* tone_ = nullptr;   // raw formats
  const std::string* quiet_ = nullptr;  // raw formats: a second of silence
  size_t bytes_per_sample_ = 2;
  std::array<char, kWavHeaderBytes> wav_header_{};
  std::shared_ptr<const std::string> file_;  // encoded formats
};

}  // namespace ttsbench::synth

#endif  // TTSBENCH_SYNTH_AUDIO_SOURCE_H_
