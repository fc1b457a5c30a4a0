#include "coordinator/run/asr_audio.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/sndfile_memory.h"

namespace ttsbench::coordinator {
namespace {

// Sample rates accepted from the audio (as target.sample_rate), and the most audio decoded: a
// few hundred kilobytes of FLAC or MP3 silence would otherwise decode into hours.
constexpr int kMinRate = 1000;
constexpr int kMaxRate = 768000;
constexpr double kMaxSeconds = 600;

struct Samples {
  std::vector<float> mono;
  int rate = 0;
};

float Mulaw(uint8_t u) {
  u = static_cast<uint8_t>(~u);
  const int sign = u & 0x80, exponent = (u >> 4) & 0x07, mantissa = u & 0x0f;
  const int magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return static_cast<float>(sign ? -magnitude : magnitude) / 32768.0f;
}

float Alaw(uint8_t a) {
  a ^= 0x55;
  const int sign = a & 0x80, exponent = (a >> 4) & 0x07, mantissa = a & 0x0f;
  int magnitude = exponent == 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return static_cast<float>(sign ? magnitude : -magnitude) / 32768.0f;
}

// Raw interleaved samples in the encoding AsrAudioFormat names, mixed to mono.
absl::StatusOr<Samples> DecodeRaw(absl::string_view audio, const AsrAudioDescription& f) {
  const int channels = std::max(1, f.channels);
  if (f.sample_rate <= 0) return absl::InvalidArgumentError("raw PCM without a sample rate");
  const std::string& enc = f.format;
  const size_t width = enc == "pcm_s16le"                         ? 2
                       : enc == "pcm_f32le" || enc == "pcm_s32le" ? 4
                       : enc == "pcm_s24le"                       ? 3
                                                                  : 1;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(audio.data());
  const size_t frames =
      std::min(audio.size() / (width * static_cast<size_t>(channels)),
               static_cast<size_t>(std::clamp(f.sample_rate, kMinRate, kMaxRate) * kMaxSeconds));
  Samples out;
  out.rate = f.sample_rate;
  out.mono.resize(frames);
  for (size_t i = 0; i < frames; ++i) {
    float sum = 0;
    for (int c = 0; c < channels; ++c) {
      const unsigned char* b = p + (i * static_cast<size_t>(channels) + c) * width;
      float v = 0;
      if (enc == "pcm_s16le") {
        v = static_cast<float>(static_cast<int16_t>(b[0] | (b[1] << 8))) / 32768.0f;
      } else if (enc == "pcm_s24le") {
        const int32_t x = (b[0] << 8) | (b[1] << 16) | (b[2] << 24);
        v = static_cast<float>(x) / 2147483648.0f;
      } else if (enc == "pcm_s32le") {
        int32_t x;
        std::memcpy(&x, b, 4);
        v = static_cast<float>(x) / 2147483648.0f;
      } else if (enc == "pcm_f32le") {
        std::memcpy(&v, b, 4);
      } else if (enc == "ulaw") {
        v = Mulaw(b[0]);
      } else if (enc == "alaw") {
        v = Alaw(b[0]);
      } else {
        return absl::InvalidArgumentError(absl::StrCat("unknown raw encoding '", enc, "'"));
      }
      sum += v;
    }
    out.mono[i] = sum / static_cast<float>(channels);
  }
  return out;
}

// WAV whose sizes are placeholders (a stream: 0, 0xFFFFFFFF, espeak-ng's 0x7FFFF0xx) or that
// was cut at the cap: the sizes made true, so libsndfile reads what is there.
std::string FixWavSizes(absl::string_view in) {
  std::string wav(in);
  if (wav.size() < 12 || wav.compare(0, 4, "RIFF") != 0) return wav;
  auto put32 = [&wav](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) wav[at + static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
  };
  put32(4, static_cast<uint32_t>(wav.size() - 8));
  for (size_t at = 12; at + 8 <= wav.size();) {
    uint32_t size = 0;
    std::memcpy(&size, wav.data() + at + 4, 4);
    if (wav.compare(at, 4, "data") == 0) {
      put32(at + 4, static_cast<uint32_t>(wav.size() - at - 8));
      break;
    }
    // In size_t: a chunk size near 2^32 wrapped the uint32_t sum to 0 and never moved on.
    at += 8 + static_cast<size_t>(size) + (size & 1);
  }
  return wav;
}

absl::StatusOr<Samples> DecodeContainer(absl::string_view audio, const std::string& format) {
  const std::string body = format == "wav" ? FixWavSizes(audio) : std::string(audio);
  common::SndfileMemory file{body, 0};
  SF_INFO info{};
  SNDFILE* sf = common::OpenSndfileMemory(file, info);
  if (sf == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(format.empty() ? "the" : format,
                                                   " audio not decodable: ", sf_strerror(nullptr)));
  }
  Samples out;
  out.rate = info.samplerate;
  const int channels = std::max(1, info.channels);
  std::vector<float> block(4096 * static_cast<size_t>(channels));
  const auto max_frames =
      static_cast<size_t>(std::clamp(out.rate, kMinRate, kMaxRate) * kMaxSeconds);
  while (out.mono.size() < max_frames) {
    const sf_count_t n = sf_readf_float(sf, block.data(), 4096);
    if (n <= 0) break;
    for (sf_count_t i = 0; i < n; ++i) {
      float sum = 0;
      for (int c = 0; c < channels; ++c) sum += block[static_cast<size_t>(i * channels + c)];
      out.mono.push_back(sum / static_cast<float>(channels));
    }
  }
  sf_close(sf);
  if (out.rate <= 0) return absl::InvalidArgumentError("audio without a sample rate");
  return out;
}

// Band-limited resampling: a Blackman-windowed sinc low-pass at the lower Nyquist frequency,
// 16 zero crossings each side.
std::vector<float> Resample(const std::vector<float>& in, int from, int to) {
  if (from == to || in.empty()) return in;
  const double ratio = static_cast<double>(to) / from;
  const double cutoff = std::min(1.0, ratio);  // of the input's Nyquist frequency
  constexpr double kZeros = 16;
  const double half = kZeros / cutoff;  // kernel half-width, input samples
  const auto out_n = static_cast<size_t>(std::floor(static_cast<double>(in.size()) * ratio));
  std::vector<float> out(out_n);
  const double pi = std::numbers::pi;
  for (size_t n = 0; n < out_n; ++n) {
    const double t = static_cast<double>(n) / ratio;
    const auto lo = static_cast<int64_t>(std::ceil(t - half));
    const auto hi = static_cast<int64_t>(std::floor(t + half));
    double acc = 0;
    for (int64_t k = std::max<int64_t>(lo, 0);
         k <= std::min<int64_t>(hi, static_cast<int64_t>(in.size()) - 1); ++k) {
      const double d = t - static_cast<double>(k);
      const double x = cutoff * d;
      const double sinc = std::abs(x) < 1e-9 ? 1.0 : std::sin(pi * x) / (pi * x);
      const double w = 0.42 + 0.5 * std::cos(pi * d / half) + 0.08 * std::cos(2 * pi * d / half);
      acc += in[static_cast<size_t>(k)] * cutoff * sinc * w;
    }
    out[n] = static_cast<float>(acc);
  }
  return out;
}

std::string Wav16Mono(const std::vector<float>& samples, int rate) {
  std::string wav;
  const auto data = static_cast<uint32_t>(samples.size() * 2);
  auto put = [&wav](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) wav.push_back(static_cast<char>(v >> (8 * i)));
  };
  wav.append("RIFF");
  put(36 + data, 4);
  wav.append("WAVEfmt ");
  put(16, 4);
  put(1, 2);  // PCM
  put(1, 2);  // mono
  put(static_cast<uint32_t>(rate), 4);
  put(static_cast<uint32_t>(rate) * 2, 4);
  put(2, 2);
  put(16, 2);
  wav.append("data");
  put(data, 4);
  for (const float s : samples) {
    const long v = std::isfinite(s) ? std::lround(std::clamp(s, -1.0f, 1.0f) * 32767.0f) : 0;
    put(static_cast<uint32_t>(static_cast<int16_t>(v)), 2);
  }
  return wav;
}

}  // namespace

absl::StatusOr<AsrWav> ConvertToAsrWav(absl::string_view audio, const AsrAudioDescription& d,
                                       int sample_rate) {
  if (audio.empty()) return absl::InvalidArgumentError("no audio");
  if (d.format == "aac") {
    return absl::UnimplementedError("AAC cannot be decoded here (libsndfile lacks it)");
  }
  if (sample_rate <= 0) return absl::InvalidArgumentError("no sample rate to write");
  const bool raw = absl::StartsWith(d.format, "pcm_") || d.format == "ulaw" || d.format == "alaw";
  absl::StatusOr<Samples> decoded = raw ? DecodeRaw(audio, d) : DecodeContainer(audio, d.format);
  if (!decoded.ok()) return decoded.status();
  if (decoded->rate < kMinRate || decoded->rate > kMaxRate) {
    return absl::InvalidArgumentError(absl::StrCat("sample rate ", decoded->rate, " Hz"));
  }
  std::vector<float> out = Resample(decoded->mono, decoded->rate, sample_rate);
  AsrWav wav;
  wav.audio_s = static_cast<double>(out.size()) / sample_rate;
  wav.bytes = Wav16Mono(out, sample_rate);
  return wav;
}

}  // namespace ttsbench::coordinator
