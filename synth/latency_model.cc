#include "synth/latency_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/splitmix.h"

namespace ttsbench::synth {
namespace {

bool FiniteNonNegative(double v) { return std::isfinite(v) && v >= 0; }

}  // namespace

absl::Status ValidateLatencyModel(const LatencyModel& model) {
  if (model.slots < 1 || model.slots > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("slots must be in [1, 100000], got ", model.slots));
  }
  const std::pair<const char*, double> non_negative[] = {
      {"base_ms", model.base_ms},
      {"per_char_ms", model.per_char_ms},
      {"first_chunk_ms", model.first_chunk_ms},
      {"audio_s_per_char", model.audio_s_per_char},
  };
  for (const auto& [name, value] : non_negative) {
    if (!FiniteNonNegative(value)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be >= 0, got ", value));
    }
  }
  if (!(model.jitter >= 0 && model.jitter < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("jitter must be in [0, 1), got ", model.jitter));
  }
  if (model.sample_rate < 1000 || model.sample_rate > 384000) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample_rate must be in [1000, 384000], got ", model.sample_rate));
  }
  // A chunk must hold at least one sample, or the stream plan would never advance.
  if (!std::isfinite(model.chunk_ms) || model.chunk_ms * model.sample_rate < 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk_ms must hold at least one sample, got ", model.chunk_ms));
  }
  if (model.voice_speed.empty()) {
    return absl::InvalidArgumentError("voice_speed must name at least one voice");
  }
  for (const auto& [voice, speed] : model.voice_speed) {
    if (voice.empty()) return absl::InvalidArgumentError("voice names must not be empty");
    if (!(std::isfinite(speed) && speed > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("speed of voice '", voice, "' must be > 0, got ", speed));
    }
  }
  const DegradeUnderLoad& d = model.degrade;
  if (d.truncate_above < 0 || d.speedup_above < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncate_above and speedup_above must be >= 0, got ", d.truncate_above,
                     " and ", d.speedup_above));
  }
  if (!(d.truncate_fraction > 0 && d.truncate_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncate_fraction must be in (0, 1), got ", d.truncate_fraction));
  }
  if (!(d.speedup > 1 && d.speedup <= 100)) {
    return absl::InvalidArgumentError(absl::StrCat("speedup must be in (1, 100], got ", d.speedup));
  }
  return absl::OkStatus();
}

int64_t DegradedSamples(const DegradeUnderLoad& degrade, int64_t samples, int in_flight) {
  if (degrade.speedup_above > 0 && in_flight > degrade.speedup_above) {
    samples = std::llround(static_cast<double>(samples) / degrade.speedup);
  }
  if (degrade.truncate_above > 0 && in_flight > degrade.truncate_above) {
    samples = std::llround(static_cast<double>(samples) * (1 - degrade.truncate_fraction));
  }
  return samples;
}

size_t CountCharacters(std::string_view utf8) {
  // Every byte that is not a continuation byte (10xxxxxx) starts a code point.
  return static_cast<size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

double VoiceSpeed(const LatencyModel& model, std::string_view voice) {
  if (auto it = model.voice_speed.find(std::string(voice)); it != model.voice_speed.end()) {
    return it->second;
  }
  if (auto it = model.voice_speed.find("default"); it != model.voice_speed.end()) {
    return it->second;
  }
  return 1.0;
}

double AudioSeconds(const LatencyModel& model, size_t chars, double speed) {
  return static_cast<double>(chars) * model.audio_s_per_char / speed;
}

int64_t AudioSamples(const LatencyModel& model, size_t chars, double speed) {
  return std::llround(AudioSeconds(model, chars, speed) * model.sample_rate);
}

double SynthesisMs(const LatencyModel& model, size_t chars, double voice_speed, double u) {
  const double nominal =
      (model.base_ms + static_cast<double>(chars) * model.per_char_ms) / voice_speed;
  return std::max(0.0, nominal * (1 + model.jitter * u));
}

StreamPlan::StreamPlan(const LatencyModel& model, int64_t total_samples, double synthesis_ms)
    : total_samples_(std::max<int64_t>(0, total_samples)),
      chunk_samples_(std::max<int64_t>(1, std::llround(model.chunk_ms * model.sample_rate / 1000))),
      chunks_(static_cast<int>(
          std::max<int64_t>(1, (total_samples_ + chunk_samples_ - 1) / chunk_samples_))),
      first_ms_(model.first_chunk_ms),
      last_ms_(std::max(model.first_chunk_ms, synthesis_ms)) {}

double StreamPlan::DueMs(int chunk) const {
  if (chunks_ == 1) return first_ms_;
  return first_ms_ + (last_ms_ - first_ms_) * chunk / (chunks_ - 1);
}

int64_t StreamPlan::BeginSample(int chunk) const {
  return std::min(total_samples_, chunk * chunk_samples_);
}

int64_t StreamPlan::EndSample(int chunk) const {
  return std::min(total_samples_, (chunk + 1) * chunk_samples_);
}

uint64_t SeededRng::NextU64() { return common::SplitMix64(state_); }

double SeededRng::NextUnit() { return common::SplitMixUnit(state_); }

double SeededRng::NextSigned() { return 2 * NextUnit() - 1; }

}  // namespace ttsbench::synth
