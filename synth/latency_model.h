// The timing model of the synthetic TTS server: pure functions from a request (characters, voice,
// speed) to audio length, synthesis time and the streamed-chunk schedule, so they can be unit
// tested without sockets and shared by anything that wants to predict the server's behaviour.
#ifndef TTSBENCH_SYNTH_LATENCY_MODEL_H_
#define TTSBENCH_SYNTH_LATENCY_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ttsbench::synth {

// A server whose audio degrades only under load, to test the consistency check (issue 14): above
// `*_above` audio requests in flight at the server (the one being planned included), answers are
// shorter than the text's, and say nothing about it: truncated (the end cut off) or sped up (the
// same text in less time). Below it, and with both off (0), the audio of a text is always the
// same. Both may be on; a sped-up answer is then truncated too.
struct DegradeUnderLoad {
  int truncate_above = 0;          // 0: off
  double truncate_fraction = 0.5;  // share of the audio cut off its end, in (0, 1)
  int speedup_above = 0;           // 0: off
  double speedup = 1.5;            // the audio is this many times shorter, > 1
};

// How a GPU-like TTS server spends time. Defaults sit near a small real model on one GPU.
struct LatencyModel {
  // Parallel synthesis slots; requests beyond this queue (FIFO), so throughput saturates with
  // concurrency as it does on a GPU whose batch is full.
  int slots = 4;
  double base_ms = 10;             // fixed synthesis overhead per request
  double per_char_ms = 0.4;        // synthesis time per input character at voice speed 1.0
  double first_chunk_ms = 25;      // slot acquisition to the first streamed chunk
  double audio_s_per_char = 0.06;  // seconds of audio per character at request speed 1.0
  double jitter = 0.0;             // relative jitter of synthesis time (0.1 = +-10%), seeded
  uint64_t seed = 1;
  int sample_rate = 24000;
  double chunk_ms = 200;  // audio per streamed chunk
  // Synthesis speed factor per voice (>1 synthesises faster). Unknown voices get the "default"
  // entry (1.0 if absent) so clients written for other servers ("alloy", ...) still work.
  std::map<std::string, double> voice_speed = {{"default", 1.0}, {"fast", 2.0}, {"premium", 0.5}};
  DegradeUnderLoad degrade;
};

// InvalidArgument naming the first field out of range.
absl::Status ValidateLatencyModel(const LatencyModel& model);

// Unicode code points in UTF-8 text: what "characters" means for the model (and for CPS).
size_t CountCharacters(std::string_view utf8);

// Synthesis speed factor of `voice`; see LatencyModel::voice_speed for unknown voices.
double VoiceSpeed(const LatencyModel& model, std::string_view voice);

// Seconds of audio for `chars` characters; the OpenAI `speed` field divides the length.
double AudioSeconds(const LatencyModel& model, size_t chars, double speed = 1.0);

// round(AudioSeconds * sample_rate): the exact sample count a response carries.
int64_t AudioSamples(const LatencyModel& model, size_t chars, double speed = 1.0);

// The samples an answer of `samples` carries with `in_flight` audio requests at the server:
// round(samples / speedup) above speedup_above, then round(that * (1 - truncate_fraction)) above
// truncate_above.
int64_t DegradedSamples(const DegradeUnderLoad& degrade, int64_t samples, int in_flight);

// (base_ms + chars * per_char_ms) / voice_speed * (1 + jitter * u), u in [-1, 1]; never negative.
double SynthesisMs(const LatencyModel& model, size_t chars, double voice_speed, double u);

// When each chunk of a streamed response is due, relative to slot acquisition. Chunk 0 is due at
// first_chunk_ms; the rest are spread evenly so the last is due when synthesis ends (all at
// first_chunk_ms when that is later). Computed on demand so no per-request vector is allocated.
class StreamPlan {
 public:
  StreamPlan(const LatencyModel& model, int64_t total_samples, double synthesis_ms);

  // At least 1, even for empty audio (the chunk then carries only a container header).
  int chunks() const { return chunks_; }
  int64_t chunk_samples() const { return chunk_samples_; }
  double DueMs(int chunk) const;
  int64_t BeginSample(int chunk) const;
  int64_t EndSample(int chunk) const;
  // When the whole stream is done: max(first_chunk_ms, synthesis_ms).
  double LastDueMs() const { return last_ms_; }

 private:
  int64_t total_samples_;
  int64_t chunk_samples_;
  int chunks_;
  double first_ms_;
  double last_ms_;
};

// Small seeded generator (SplitMix64) so a server's jitter and fault draws repeat exactly under a
// seed on every platform, which std:: distributions do not promise.
class SeededRng {
 public:
  explicit SeededRng(uint64_t seed) : state_(seed) {}
  uint64_t NextU64();
  double NextUnit();    // [0, 1)
  double NextSigned();  // [-1, 1)

 private:
  uint64_t state_;
};

}  // namespace ttsbench::synth

#endif  // TTSBENCH_SYNTH_LATENCY_MODEL_H_
