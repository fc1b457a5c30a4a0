// What the listener hears of one answer (plan audio_checks, issue 14): an incremental analyser
// fed the answer's audio bytes as they arrive, which decodes them and fills v1::AudioAnalysis
// (leading/trailing/internal silences, audible first audio, clipping, envelope, truncation).
#ifndef TTSBENCH_COMMON_AUDIO_ANALYSIS_H_
#define TTSBENCH_COMMON_AUDIO_ANALYSIS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/audio.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::common {

// AudioChecks with its defaults filled in (threshold -50 dBFS, window 5 ms, stutter 300 ms,
// envelope 50 ms, warning 200 ms): the one statement of the defaults.
v1::AudioChecks WithAudioCheckDefaults(v1::AudioChecks checks);

// The level measures over decoded samples, in windows on the audio's own clock. Used by
// AudioAnalyser for every format; public for tests.
class SampleMeasure {
 public:
  void Configure(const v1::AudioChecks& checks, int rate, int channels, double clip_level);
  // Interleaved samples in [-1, 1]; `frames` frames of `channels` samples.
  void Add(const float* samples, int64_t frames);
  // Ends the answer: the last partial windows count.
  void End();

  int rate() const { return rate_; }
  int channels() const { return channels_; }
  int64_t frames() const { return frames_; }
  int64_t first_audible_frame() const { return first_audible_; }  // -1: none
  int64_t last_audible_frame() const { return last_audible_; }
  int internal_silences() const { return internal_silences_; }
  int64_t longest_internal_silence_frames() const { return longest_silence_; }
  int64_t clipped() const { return clipped_; }
  const std::vector<float>& envelope_db() const { return envelope_; }

 private:
  void CloseWindow();
  void CloseEnvelope();

  int rate_ = 0;
  int channels_ = 1;
  int64_t window_frames_ = 1;
  int64_t envelope_frames_ = 1;
  int64_t stutter_frames_ = 0;
  double threshold_amp_ = 0;  // a sample at or above this (absolute) is loud
  double threshold_sq_ = 0;   // a window whose mean square exceeds this is audible
  double clip_level_ = 1;
  int64_t frames_ = 0;
  // The window being filled.
  double win_sq_ = 0;
  int64_t win_n_ = 0;
  int64_t win_first_loud_ = -1;
  int64_t win_last_loud_ = -1;
  double env_sq_ = 0;
  int64_t env_n_ = 0;
  int64_t first_audible_ = -1;
  int64_t last_audible_ = -1;
  int internal_silences_ = 0;
  int64_t longest_silence_ = 0;
  int64_t clipped_ = 0;
  std::vector<float> envelope_;
};

class RecordStore;

// The level's audio-check figures (LevelStats 38-41) from its measured successful requests
// that carry an analysis: TTFA-audible (audible_ns - start_ns, requests with an audible
// sample), leading silence, how many were analysed and how many not decoded. Nothing when no
// request was analysed. `not_decoded` (may be null) receives the first request's reason.
void AddAudioCheckStats(const RecordStore& records, v1::LevelStats* st,
                        std::string* not_decoded = nullptr);

class AudioAnalyser {
 public:
  explicit AudioAnalyser(const v1::AudioChecks& checks);

  // A new answer; buffers keep their capacity.
  void Begin();
  // The answer's audio bytes as the meter sees them (container headers included, envelopes
  // such as SSE/base64 removed). `options` are the meter's: the first call's describe raw PCM.
  void Audio(const MeterOptions& options, absl::string_view bytes);
  // Every byte given so far had arrived by `t_ns` (agent clock).
  void Arrived(int64_t t_ns);
  // Whether any audio byte came.
  bool empty() const { return bytes_ == 0; }
  // Decodes what is left (compressed formats), and fills `out`. `first_audio_ns` is the
  // record's; bytes never stamped by Arrived arrived at `end_ns`.
  void Finish(int64_t first_audio_ns, int64_t end_ns, v1::AudioAnalysis* out);

 private:
  enum class State { kSniff, kWavHeader, kPcm, kCompressed, kNotDecoded };
  struct PcmFormat {
    enum Kind { kInt, kFloat, kMulaw, kAlaw, kUnsigned8 } kind = kInt;
    int bytes = 2;  // per sample
  };

  void Consume(absl::string_view bytes);
  void Decide(bool at_end);
  void TryWavHeader(bool at_end);
  void StartPcm(PcmFormat format, int rate, int channels, int64_t data_offset, int64_t data_size);
  void DecodePcm(absl::string_view bytes);
  void DecodeCompressed();
  void NotDecoded(std::string why);
  int64_t ArrivalOf(int64_t byte_pos, int64_t end_ns) const;

  v1::AudioChecks checks_;
  State state_ = State::kSniff;
  MeterOptions options_;
  bool have_options_ = false;
  std::string pending_;  // sniffing / WAV header / compressed bytes
  std::string not_decoded_;
  int64_t bytes_ = 0;                               // audio bytes given
  std::vector<std::pair<int64_t, int64_t>> marks_;  // (bytes given so far, arrival ns)
  // Raw PCM (and WAV's data chunk).
  PcmFormat pcm_;
  int frame_bytes_ = 0;
  int64_t data_offset_ = 0;  // byte position of the first sample
  int64_t data_left_ = -1;   // bytes of the data chunk still due; -1: to the end
  std::string carry_;        // a frame split across pieces
  std::vector<float> scratch_;
  bool truncated_ = false;
  bool compressed_ = false;  // samples were decoded at the end (offsets mapped by byte share)
  int declared_rate_ = 0;
  int declared_channels_ = 0;
  SampleMeasure measure_;
  double cpu_us_ = 0;
};

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_AUDIO_ANALYSIS_H_
