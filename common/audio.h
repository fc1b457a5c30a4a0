// Incremental audio meters: fed a response body piece by piece as it arrives, they say how much
// of each piece is audio and how long the audio is, exactly, without holding the body.
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
  size_t audio_bytes =
      0;               // bytes of audio frames/samples in this piece (container headers excluded)
  double audio_s = 0;  // playable duration completed by this piece (whole frames only)
};

// One implementation per container; see MakeMeter for which one a response gets.
class AudioMeter {
 public:
  virtual ~AudioMeter() = default;
  // InvalidArgument when the bytes cannot be this format.
  virtual absl::StatusOr<AudioFeed> Feed(absl::string_view piece) = 0;
  // Called at end of body: InvalidArgument when the audio is truncated or malformed. A body with
  // no audio at all is not an error here: seconds() stays 0 and the caller records empty audio.
  virtual absl::Status Finish() = 0;
  virtual double seconds() const = 0;
  virtual int sample_rate() const = 0;
  virtual int channels() const { return 0; }  // 0 while unknown
  // What was measured ("wav", "pcm", "mp3", "aac", "opus", "vorbis", "flac"), "" while unknown.
  virtual absl::string_view format() const { return ""; }
  // Back to the state of a new meter made by the same call, keeping its buffers, so one meter
  // serves answer after answer with no allocation. False when this meter cannot (the caller then
  // makes a new one).
  virtual bool Reset() { return false; }
};

// Bytes per sample of raw PCM; only the size matters for duration.
enum class PcmEncoding { kS16le, kF32le, kMulaw, kAlaw, kS24le, kS32le };

// Raw interleaved PCM with a known rate (from configuration, Content-Type or a stream's metadata
// message). Counts whole frames only.
std::unique_ptr<AudioMeter> MakePcmMeter(int sample_rate, int channels, PcmEncoding encoding);

// RIFF/WAVE and RF64: PCM 8–32 bit, float, A-law, mu-law, WAVE_FORMAT_EXTENSIBLE; streamed WAV
// whose RIFF and data sizes are 0, 0xFFFFFFFF or 0x7FFFF0xx (espeak-ng on a pipe) counts to the
// end of the body.
std::unique_ptr<AudioMeter> MakeWavMeter();

// MPEG audio (MP3, and layers I/II) and ADTS AAC, frame by frame from the frame headers. ID3v2
// tags are skipped wherever they appear; ID3v1, APE and Lyrics3 tags after the last frame are
// accepted. MP3 is gapless: a Xing/Info frame is not audio, and its LAME tag's encoder delay and
// padding are removed. ADTS carries no priming signal; one frame (1024 samples) of encoder
// priming is assumed, as every common AAC-LC encoder (ffmpeg, fdk-aac, Apple) primes with at
// least that much.
std::unique_ptr<AudioMeter> MakeMpegMeter();

// Ogg Opus (48 kHz timeline: last granule − pre-skip − start), Ogg Vorbis and Ogg FLAC (last
// granule / rate), page by page with CRC checks; chained links (one per sentence) add up.
std::unique_ptr<AudioMeter> MakeOggMeter();

// Native FLAC: frames found by their headers and checked by their CRC-16, block sizes summed;
// STREAMINFO's total, when non-zero, must agree.
std::unique_ptr<AudioMeter> MakeFlacMeter();

// What a response is measured as. `format` is the requested format: wav | pcm (s16le) |
// pcm_f32le | ulaw | alaw | mp3 | aac | opus | vorbis | ogg | flac | auto (""). Whatever was
// requested, a body that starts with a known signature (RIFF, RF64, ID3, an MPEG or ADTS frame
// sync, fLaC, OggS) is measured as what it is, since servers answer other formats than asked
// (piper returns WAV whatever the request says). Raw PCM takes its rate and channels from the
// Content-Type's `rate=`/`channels=` when present, else from `sample_rate`/`channels`.
struct MeterOptions {
  std::string format;
  std::string content_type;
  int sample_rate = 0;
  int channels = 1;
};
absl::StatusOr<std::unique_ptr<AudioMeter>> MakeMeter(const MeterOptions& options);

// Raw PCM (a meter whose format() is "pcm"): its encoding as MakeMeter chose it from the
// requested format or, for "auto", the Content-Type — "pcm_s16le", "pcm_f32le", "ulaw",
// "alaw" (v1::AsrAudioFormat names; the ASR check's sample).
absl::string_view RawPcmFormat(const MeterOptions& options);

// MakeMeter with a mono raw-PCM default; kept for the dialects that predate MeterOptions.
absl::StatusOr<std::unique_ptr<AudioMeter>> MakeMeterFor(absl::string_view format,
                                                         absl::string_view content_type,
                                                         int default_sample_rate);

// The `rate=` parameter of a Content-Type such as "audio/pcm;rate=24000", or 0.
int RateFromContentType(absl::string_view content_type);
// The `channels=` parameter of a Content-Type such as "audio/L16;rate=8000;channels=2", or 0.
int ChannelsFromContentType(absl::string_view content_type);

// Duration of a whole in-memory body (non-streamed), e.g. a base64-decoded WAV.
absl::StatusOr<double> MeasureWhole(AudioMeter& meter, absl::string_view body);

// Decodes a whole in-memory body with libsndfile (WAV, FLAC, Ogg Vorbis/Opus, MP3) and counts
// the frames it yields: slow, but an independent answer for checks and odd files.
struct DecodedAudio {
  int64_t frames = 0;
  int sample_rate = 0;
  int channels = 0;
};
absl::StatusOr<DecodedAudio> DecodeWithSndfile(absl::string_view body);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_AUDIO_H_
