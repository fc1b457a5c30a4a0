#include "common/audio_analysis.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/sndfile_memory.h"

namespace ttsbench::common {
namespace {

constexpr double kEnvelopeFloorDb = -120;
// Compressed answers are held whole until their end to be decoded; longer ones are not.
constexpr size_t kMaxCompressedBytes = size_t{64} << 20;
// A WAV header (chunks before "data") longer than this is not read.
constexpr size_t kMaxWavHeader = size_t{1} << 20;

const unsigned char* U(const char* p) { return reinterpret_cast<const unsigned char*>(p); }
uint32_t Le32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t Le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

int64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// G.711 to 16-bit linear (ITU-T G.711; the classic Sun reference decoder).
int16_t MulawToLinear(uint8_t u) {
  u = static_cast<uint8_t>(~u);
  int t = ((u & 0x0F) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return static_cast<int16_t>((u & 0x80) ? (0x84 - t) : (t - 0x84));
}
int16_t AlawToLinear(uint8_t a) {
  a ^= 0x55;
  int t = (a & 0x0F) << 4;
  const int seg = (a & 0x70) >> 4;
  if (seg == 0) {
    t += 8;
  } else {
    t += 0x108;
    if (seg > 1) t <<= seg - 1;
  }
  return static_cast<int16_t>((a & 0x80) ? t : -t);
}
struct G711Tables {
  std::array<float, 256> mulaw{};
  std::array<float, 256> alaw{};
  G711Tables() {
    for (int i = 0; i < 256; ++i) {
      mulaw[static_cast<size_t>(i)] = MulawToLinear(static_cast<uint8_t>(i)) / 32768.0f;
      alaw[static_cast<size_t>(i)] = AlawToLinear(static_cast<uint8_t>(i)) / 32768.0f;
    }
  }
};
const G711Tables& Tables() {
  static const G711Tables tables;
  return tables;
}

// What the requested format says the bytes are (mirrors the meters' reading of MeterOptions).
enum class Family { kAuto, kWav, kPcm, kCompressed, kUnknown };
struct Requested {
  Family family = Family::kAuto;
  int encoding = 0;  // for kPcm: 0 s16le, 1 f32le, 2 mu-law, 3 A-law
};
Requested FromFormat(absl::string_view f) {
  if (f == "wav" || f == "wave") return {Family::kWav};
  if (f == "pcm" || f == "pcm_s16le" || f == "s16le" || f == "l16" || f == "raw") {
    return {Family::kPcm, 0};
  }
  if (f == "pcm_f32le" || f == "f32le" || f == "float") return {Family::kPcm, 1};
  if (f == "ulaw" || f == "mulaw" || f == "mu-law" || f == "pcm_mulaw" || f == "g711_ulaw") {
    return {Family::kPcm, 2};
  }
  if (f == "alaw" || f == "a-law" || f == "pcm_alaw" || f == "g711_alaw") return {Family::kPcm, 3};
  if (f == "mp3" || f == "mpeg" || f == "aac" || f == "adts" || f == "opus" || f == "ogg" ||
      f == "vorbis" || f == "oga" || f == "flac") {
    return {Family::kCompressed};
  }
  if (f.empty() || f == "auto") return {Family::kAuto};
  return {Family::kUnknown};
}
Requested FromContentType(absl::string_view content_type) {
  const std::string m = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';'))));
  if (m == "audio/wav" || m == "audio/wave" || m == "audio/x-wav" || m == "audio/vnd.wave") {
    return {Family::kWav};
  }
  if (m == "audio/basic" || m == "audio/pcmu") return {Family::kPcm, 2};
  if (m == "audio/pcma") return {Family::kPcm, 3};
  if (m == "audio/pcm" || m == "audio/l16" || m == "audio/raw") return {Family::kPcm, 0};
  if (absl::StartsWith(m, "audio/") || m == "application/ogg") return {Family::kCompressed};
  return {Family::kUnknown};
}

// The clip level of integer samples of `bits`: within 1 LSB of full scale.
double IntClipLevel(int bits) { return 1.0 - 2.0 / std::ldexp(1.0, bits - 1); }

}  // namespace

v1::AudioChecks WithAudioCheckDefaults(v1::AudioChecks c) {
  if (c.audible_threshold_dbfs() == 0) c.set_audible_threshold_dbfs(-50);
  if (c.audible_window_ms() <= 0) c.set_audible_window_ms(5);
  if (c.stutter_ms() <= 0) c.set_stutter_ms(300);
  if (c.envelope_window_ms() <= 0) c.set_envelope_window_ms(50);
  if (c.audible_warn_ms() <= 0) c.set_audible_warn_ms(200);
  return c;
}

// ------------------------------------------------------------------------------------------
// SampleMeasure

void SampleMeasure::Configure(const v1::AudioChecks& checks, int rate, int channels,
                              double clip_level) {
  rate_ = rate;
  channels_ = std::max(channels, 1);
  auto frames_of = [rate](double ms) {
    return std::max<int64_t>(1, std::llround(rate * ms / 1000.0));
  };
  window_frames_ = frames_of(checks.audible_window_ms());
  envelope_frames_ = frames_of(checks.envelope_window_ms());
  stutter_frames_ = std::llround(rate * checks.stutter_ms() / 1000.0);
  threshold_amp_ = std::pow(10.0, checks.audible_threshold_dbfs() / 20.0);
  threshold_sq_ = threshold_amp_ * threshold_amp_;
  clip_level_ = clip_level - 1e-7;
  frames_ = 0;
  win_sq_ = 0;
  win_n_ = 0;
  win_first_loud_ = -1;
  win_last_loud_ = -1;
  env_sq_ = 0;
  env_n_ = 0;
  first_audible_ = -1;
  last_audible_ = -1;
  internal_silences_ = 0;
  longest_silence_ = 0;
  clipped_ = 0;
  envelope_.clear();
}

void SampleMeasure::Add(const float* s, int64_t frames) {
  const int ch = channels_;
  for (int64_t f = 0; f < frames; ++f, s += ch) {
    float peak = 0;
    double sq = 0;
    for (int c = 0; c < ch; ++c) {
      const float x = s[c];
      const float ax = std::fabs(x);
      peak = std::max(peak, ax);
      sq += static_cast<double>(x) * x;
      if (ax >= clip_level_) ++clipped_;
    }
    if (peak >= threshold_amp_) {
      if (win_first_loud_ < 0) win_first_loud_ = frames_;
      win_last_loud_ = frames_;
    }
    ++frames_;
    win_sq_ += sq;
    env_sq_ += sq;
    if (++win_n_ == window_frames_) CloseWindow();
    if (++env_n_ == envelope_frames_) CloseEnvelope();
  }
}

void SampleMeasure::CloseWindow() {
  const double mean_sq = win_sq_ / static_cast<double>(win_n_ * channels_);
  if (mean_sq > threshold_sq_ && win_first_loud_ >= 0) {
    if (first_audible_ < 0) {
      first_audible_ = win_first_loud_;
    } else {
      const int64_t gap = win_first_loud_ - last_audible_ - 1;
      longest_silence_ = std::max(longest_silence_, gap);
      if (gap > stutter_frames_) ++internal_silences_;
    }
    last_audible_ = win_last_loud_;
  }
  win_sq_ = 0;
  win_n_ = 0;
  win_first_loud_ = -1;
  win_last_loud_ = -1;
}

void SampleMeasure::CloseEnvelope() {
  const double mean_sq = env_sq_ / static_cast<double>(env_n_ * channels_);
  const double db = mean_sq > 0 ? 10 * std::log10(mean_sq) : kEnvelopeFloorDb;
  envelope_.push_back(static_cast<float>(std::max(db, kEnvelopeFloorDb)));
  env_sq_ = 0;
  env_n_ = 0;
}

void SampleMeasure::End() {
  if (win_n_ > 0) CloseWindow();
  if (env_n_ > 0) CloseEnvelope();
}

// ------------------------------------------------------------------------------------------
// AudioAnalyser

AudioAnalyser::AudioAnalyser(const v1::AudioChecks& checks)
    : checks_(WithAudioCheckDefaults(checks)) {}

void AudioAnalyser::Begin() {
  state_ = State::kSniff;
  have_options_ = false;
  pending_.clear();
  not_decoded_.clear();
  bytes_ = 0;
  marks_.clear();
  frame_bytes_ = 0;
  data_offset_ = 0;
  data_left_ = -1;
  carry_.clear();
  truncated_ = false;
  compressed_ = false;
  declared_rate_ = 0;
  declared_channels_ = 0;
  measure_.Configure(checks_, 0, 1, 1);
  cpu_us_ = 0;
}

void AudioAnalyser::Audio(const MeterOptions& options, absl::string_view bytes) {
  if (bytes.empty()) return;
  const int64_t t0 = ThreadCpuNs();
  if (!have_options_) {
    have_options_ = true;
    options_.format = absl::AsciiStrToLower(options.format);
    options_.content_type.assign(options.content_type);
    options_.sample_rate = options.sample_rate;
    options_.channels = options.channels;
    // Declared: the Content-Type's; raw PCM's rate is set below (it is read at what the
    // request, a metadata message or the plan said). A container's own rate is not a
    // declaration, nor is the raw-PCM fallback the meter options carry for it.
    declared_rate_ = RateFromContentType(options.content_type);
    declared_channels_ = ChannelsFromContentType(options.content_type);
  }
  bytes_ += static_cast<int64_t>(bytes.size());
  Consume(bytes);
  cpu_us_ += static_cast<double>(ThreadCpuNs() - t0) / 1e3;
}

void AudioAnalyser::Arrived(int64_t t_ns) {
  if (bytes_ == 0 || (!marks_.empty() && marks_.back().first == bytes_)) return;
  marks_.emplace_back(bytes_, t_ns);
}

void AudioAnalyser::Consume(absl::string_view bytes) {
  switch (state_) {
    case State::kSniff:
      pending_.append(bytes.data(), bytes.size());
      Decide(false);
      return;
    case State::kWavHeader:
      pending_.append(bytes.data(), bytes.size());
      TryWavHeader(false);
      return;
    case State::kPcm:
      DecodePcm(bytes);
      return;
    case State::kCompressed:
      if (pending_.size() + bytes.size() > kMaxCompressedBytes) {
        NotDecoded(absl::StrCat("compressed answer over ", kMaxCompressedBytes >> 20, " MiB"));
        return;
      }
      pending_.append(bytes.data(), bytes.size());
      return;
    case State::kNotDecoded:
      return;
  }
}

void AudioAnalyser::NotDecoded(std::string why) {
  state_ = State::kNotDecoded;
  not_decoded_ = std::move(why);
  pending_.clear();
}

// Decides what the bytes are from their first ones, as the meters do: a known signature wins
// over the requested format.
void AudioAnalyser::Decide(bool at_end) {
  const absl::string_view b = pending_;
  if (b.size() < 8 && !at_end) return;  // the longest signature ends at byte 8 (MP4's ftyp)
  Requested req = FromFormat(options_.format);
  if (req.family == Family::kAuto) req = FromContentType(options_.content_type);
  const auto* p = U(b.data());
  if (absl::StartsWith(b, "RIFF") || absl::StartsWith(b, "RF64")) {
    state_ = State::kWavHeader;
    TryWavHeader(at_end);
    return;
  }
  if (absl::StartsWith(b, "\x1A\x45\xDF\xA3")) return NotDecoded("webm");
  if (b.size() >= 8 && b.substr(4, 4) == "ftyp") return NotDecoded("mp4");
  const bool signature =
      absl::StartsWith(b, "OggS") || absl::StartsWith(b, "fLaC") || absl::StartsWith(b, "ID3");
  // A bare frame sync counts only where PCM was not asked for (PCM can start with 0xFFFx).
  const bool sync = b.size() >= 2 && p[0] == 0xFF && (p[1] & 0xE0) == 0xE0;
  if (sync && req.family != Family::kPcm && ((p[1] >> 1) & 3) == 0) {
    return NotDecoded("aac");  // ADTS: libsndfile has no AAC decoder
  }
  if (signature || (sync && req.family != Family::kPcm) || req.family == Family::kCompressed) {
    state_ = State::kCompressed;
    return;
  }
  if (req.family == Family::kPcm) {
    int rate = RateFromContentType(options_.content_type);
    if (rate == 0) rate = options_.sample_rate;
    int channels = ChannelsFromContentType(options_.content_type);
    if (channels == 0) channels = options_.channels;
    if (declared_rate_ == 0) declared_rate_ = rate;
    if (declared_channels_ == 0) declared_channels_ = channels;
    if (rate <= 0 || channels <= 0) return NotDecoded("raw PCM without a sample rate");
    static constexpr PcmFormat kEncodings[] = {{PcmFormat::kInt, 2},
                                               {PcmFormat::kFloat, 4},
                                               {PcmFormat::kMulaw, 1},
                                               {PcmFormat::kAlaw, 1}};
    std::string bytes;
    bytes.swap(pending_);
    StartPcm(kEncodings[req.encoding], rate, channels, 0, -1);
    DecodePcm(bytes);
    bytes.clear();
    pending_.swap(bytes);  // its capacity is kept
    return;
  }
  NotDecoded(options_.format.empty() ? "unknown format" : options_.format);
}

void AudioAnalyser::TryWavHeader(bool at_end) {
  const absl::string_view b = pending_;
  const auto* p = U(b.data());
  if (b.size() < 12) {
    if (at_end) NotDecoded("wav header cut short");
    return;
  }
  if (b.substr(8, 4) != "WAVE") return NotDecoded("RIFF but not WAVE");
  const bool rf64 = absl::StartsWith(b, "RF64");
  size_t pos = 12;
  bool have_fmt = false;
  PcmFormat fmt;
  int rate = 0, channels = 0;
  int64_t ds64_data = -1;
  for (;;) {
    if (pos + 8 > b.size()) break;
    const absl::string_view id = b.substr(pos, 4);
    const uint32_t size = Le32(p + pos + 4);
    if (id == "data") {
      if (!have_fmt) return NotDecoded("wav data before fmt");
      int64_t data = size;
      if (rf64 && size == 0xFFFFFFFF && ds64_data >= 0) {
        data = ds64_data;
      } else if (size == 0 || size == 0xFFFFFFFF || (size & 0xFFFFFF00) == 0x7FFFF000) {
        data = -1;  // streamed WAV: to the end of the answer
      }
      std::string bytes;
      bytes.swap(pending_);
      StartPcm(fmt, rate, channels, static_cast<int64_t>(pos + 8), data);
      DecodePcm(absl::string_view(bytes).substr(pos + 8));
      bytes.clear();
      pending_.swap(bytes);  // its capacity is kept
      return;
    }
    if (pos + 8 + size > b.size()) break;
    const unsigned char* body = p + pos + 8;
    if (id == "fmt " && size >= 16) {
      int tag = Le16(body);
      channels = Le16(body + 2);
      rate = static_cast<int>(Le32(body + 4));
      const int bits = Le16(body + 14);
      if (tag == 0xFFFE && size >= 26) tag = Le16(body + 24);
      if (tag == 1 && bits == 8) {
        fmt = {PcmFormat::kUnsigned8, 1};
      } else if (tag == 1 && (bits == 16 || bits == 24 || bits == 32)) {
        fmt = {PcmFormat::kInt, bits / 8};
      } else if (tag == 3 && (bits == 32 || bits == 64)) {
        fmt = {PcmFormat::kFloat, bits / 8};
      } else if (tag == 6 && bits == 8) {
        fmt = {PcmFormat::kAlaw, 1};
      } else if (tag == 7 && bits == 8) {
        fmt = {PcmFormat::kMulaw, 1};
      } else {
        return NotDecoded(absl::StrCat("wav format ", tag, " with ", bits, " bits"));
      }
      if (rate <= 0 || channels <= 0) return NotDecoded("wav without rate or channels");
      have_fmt = true;
    } else if (id == "ds64" && size >= 16) {
      ds64_data = static_cast<int64_t>(uint64_t{Le32(body + 8)} | uint64_t{Le32(body + 12)} << 32);
    }
    pos += 8 + size + (size & 1);
  }
  if (at_end) return NotDecoded("wav ended before its data chunk");
  if (b.size() > kMaxWavHeader) NotDecoded("wav header over 1 MiB");
}

void AudioAnalyser::StartPcm(PcmFormat format, int rate, int channels, int64_t data_offset,
                             int64_t data_size) {
  state_ = State::kPcm;
  pcm_ = format;
  frame_bytes_ = format.bytes * channels;
  data_offset_ = data_offset;
  data_left_ = data_size;
  double clip = 1;
  switch (format.kind) {
    case PcmFormat::kInt:
      clip = IntClipLevel(format.bytes * 8);
      break;
    case PcmFormat::kUnsigned8:
      clip = IntClipLevel(8);
      break;
    case PcmFormat::kFloat:
      clip = IntClipLevel(16);
      break;
    case PcmFormat::kMulaw:
      clip = Tables().mulaw[0x80];  // the largest magnitude
      break;
    case PcmFormat::kAlaw:
      clip = Tables().alaw[0xAA];
      break;
  }
  measure_.Configure(checks_, rate, channels, clip);
}

void AudioAnalyser::DecodePcm(absl::string_view bytes) {
  if (data_left_ >= 0) {
    if (static_cast<int64_t>(bytes.size()) > data_left_) {
      bytes = bytes.substr(0, static_cast<size_t>(data_left_));
    }
    data_left_ -= static_cast<int64_t>(bytes.size());
  }
  const size_t fb = static_cast<size_t>(frame_bytes_);
  const int ch = measure_.channels();
  auto decode = [&](const unsigned char* p, size_t frames) {
    constexpr size_t kBlock = 1024;
    if (scratch_.size() < kBlock * static_cast<size_t>(ch)) {
      scratch_.resize(kBlock * static_cast<size_t>(ch));
    }
    const G711Tables& g711 = Tables();
    while (frames > 0) {
      const size_t n = std::min(frames, kBlock);
      const size_t samples = n * static_cast<size_t>(ch);
      float* out = scratch_.data();
      switch (pcm_.kind) {
        case PcmFormat::kInt:
          for (size_t i = 0; i < samples; ++i, p += pcm_.bytes) {
            if (pcm_.bytes == 2) {
              out[i] = static_cast<int16_t>(p[0] | p[1] << 8) / 32768.0f;
            } else if (pcm_.bytes == 3) {
              const int32_t v = static_cast<int32_t>(uint32_t{p[0]} << 8 | uint32_t{p[1]} << 16 |
                                                     uint32_t{p[2]} << 24) >>
                                8;
              out[i] = static_cast<float>(v / 8388608.0);
            } else {
              out[i] = static_cast<float>(static_cast<int32_t>(Le32(p)) / 2147483648.0);
            }
          }
          break;
        case PcmFormat::kUnsigned8:
          for (size_t i = 0; i < samples; ++i, ++p) out[i] = (p[0] - 128) / 128.0f;
          break;
        case PcmFormat::kFloat:
          for (size_t i = 0; i < samples; ++i, p += pcm_.bytes) {
            if (pcm_.bytes == 4) {
              float v;
              std::memcpy(&v, p, 4);
              out[i] = std::isfinite(v) ? v : 0.0f;
            } else {
              double v;
              std::memcpy(&v, p, 8);
              out[i] = std::isfinite(v) ? static_cast<float>(v) : 0.0f;
            }
          }
          break;
        case PcmFormat::kMulaw:
          for (size_t i = 0; i < samples; ++i, ++p) out[i] = g711.mulaw[p[0]];
          break;
        case PcmFormat::kAlaw:
          for (size_t i = 0; i < samples; ++i, ++p) out[i] = g711.alaw[p[0]];
          break;
      }
      measure_.Add(out, static_cast<int64_t>(n));
      frames -= n;
    }
  };
  if (!carry_.empty()) {
    const size_t take = std::min(fb - carry_.size(), bytes.size());
    carry_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (carry_.size() < fb) return;
    decode(U(carry_.data()), 1);
    carry_.clear();
  }
  const size_t whole = bytes.size() / fb;
  decode(U(bytes.data()), whole);
  bytes.remove_prefix(whole * fb);
  carry_.assign(bytes.data(), bytes.size());
}

void AudioAnalyser::DecodeCompressed() {
  SndfileMemory file{pending_, 0};
  SF_INFO info{};
  SNDFILE* sf = OpenSndfileMemory(file, info);
  const absl::string_view b = pending_;
  const char* name = absl::StartsWith(b, "OggS")   ? "ogg"
                     : absl::StartsWith(b, "fLaC") ? "flac"
                                                   : "mp3";
  if (sf == nullptr)
    return NotDecoded(absl::StrCat(name, " (libsndfile: ", sf_strerror(nullptr), ")"));
  compressed_ = true;
  frame_bytes_ = 0;
  data_offset_ = 0;
  measure_.Configure(checks_, info.samplerate, info.channels, IntClipLevel(16));
  const int ch = std::max(info.channels, 1);
  constexpr sf_count_t kBlock = 1024;
  if (scratch_.size() < static_cast<size_t>(kBlock * ch)) {
    scratch_.resize(static_cast<size_t>(kBlock * ch));
  }
  sf_count_t decoded = 0;
  for (sf_count_t n; (n = sf_readf_float(sf, scratch_.data(), kBlock)) > 0;) {
    measure_.Add(scratch_.data(), n);
    decoded += n;
  }
  const int err = sf_error(sf);
  sf_close(sf);
  // Short of what the container declared (FLAC STREAMINFO, the last Ogg granule), or a
  // decoding error partway: the answer was cut.
  if (err != SF_ERR_NO_ERROR ||
      (info.frames > 0 && info.frames != SF_COUNT_MAX && decoded < info.frames)) {
    truncated_ = true;
  }
}

int64_t AudioAnalyser::ArrivalOf(int64_t byte_pos, int64_t end_ns) const {
  auto it = std::upper_bound(marks_.begin(), marks_.end(), byte_pos,
                             [](int64_t pos, const auto& mark) { return pos < mark.first; });
  return it == marks_.end() ? end_ns : it->second;
}

void AudioAnalyser::Finish(int64_t first_audio_ns, int64_t end_ns, v1::AudioAnalysis* out) {
  const int64_t t0 = ThreadCpuNs();
  if (state_ == State::kSniff) Decide(true);
  if (state_ == State::kWavHeader) TryWavHeader(true);
  if (state_ == State::kCompressed) DecodeCompressed();
  if (state_ == State::kPcm || compressed_) {
    if (state_ == State::kPcm && (!carry_.empty() || data_left_ > 0)) truncated_ = true;
    measure_.End();
  }
  cpu_us_ += static_cast<double>(ThreadCpuNs() - t0) / 1e3;
  out->Clear();
  out->set_decode_cpu_us(cpu_us_);
  out->set_declared_sample_rate(declared_rate_);
  out->set_declared_channels(declared_channels_);
  if (state_ == State::kNotDecoded || measure_.rate() <= 0) {
    out->set_decoded(false);
    out->set_not_decoded(not_decoded_.empty() ? "no decodable audio" : not_decoded_);
    return;
  }
  const SampleMeasure& m = measure_;
  const double rate = m.rate();
  auto ms = [rate](int64_t frames) { return static_cast<double>(frames) * 1e3 / rate; };
  out->set_decoded(true);
  out->set_sample_rate(m.rate());
  out->set_channels(m.channels());
  out->set_decoded_s(static_cast<double>(m.frames()) / rate);
  out->set_truncated(truncated_);
  out->set_clipped_fraction(m.frames() > 0 ? static_cast<double>(m.clipped()) /
                                                 static_cast<double>(m.frames() * m.channels())
                                           : 0);
  out->set_internal_silences(m.internal_silences());
  out->set_longest_internal_silence_ms(ms(m.longest_internal_silence_frames()));
  out->set_envelope_window_ms(checks_.envelope_window_ms());
  out->mutable_envelope_db()->Assign(m.envelope_db().begin(), m.envelope_db().end());
  const int64_t first = m.first_audible_frame();
  if (first < 0) {
    out->set_leading_silence_ms(ms(m.frames()));  // nothing audible: all of it is silence
    return;
  }
  out->set_leading_silence_ms(ms(first));
  out->set_trailing_silence_ms(ms(m.frames() - 1 - m.last_audible_frame()));
  const int64_t pos =
      compressed_ ? static_cast<int64_t>(static_cast<double>(bytes_) * static_cast<double>(first) /
                                         static_cast<double>(std::max<int64_t>(m.frames(), 1)))
                  : data_offset_ + first * frame_bytes_;
  const int64_t arrival = ArrivalOf(pos, end_ns);
  const int64_t offset_ns = static_cast<int64_t>(static_cast<double>(first) * 1e9 / rate);
  out->set_audible_ns(first_audio_ns > 0 ? std::max(arrival, first_audio_ns + offset_ns) : arrival);
}

}  // namespace ttsbench::common
