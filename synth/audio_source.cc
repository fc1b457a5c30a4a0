#include "synth/audio_source.h"

#include <sndfile.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numbers>

#include "absl/strings/str_cat.h"

namespace ttsbench::synth {
namespace {

constexpr double kToneHz = 440;
constexpr double kAmplitude = 0.3;
// Encoded files are cached so that a benchmark's repeated texts cost one encode each; past this
// the cache starts over rather than growing without bound.
constexpr size_t kMaxCachedFileBytes = size_t{64} << 20;

double ToneSample(int64_t i, int rate) {
  return kAmplitude * std::sin(2 * std::numbers::pi * kToneHz * static_cast<double>(i) / rate);
}

int16_t ToS16(double v) { return static_cast<int16_t>(std::lround(v * 32767)); }

// G.711 mu-law of a 16-bit sample.
uint8_t ToMulaw(int16_t s) {
  constexpr int kBias = 0x84;
  constexpr int kClip = 32635;
  int v = s;
  const int sign = v < 0 ? 0x80 : 0;
  if (v < 0) v = -v;
  v = std::min(v, kClip) + kBias;
  int exponent = 7;
  for (int mask = 0x4000; (v & mask) == 0 && exponent > 0; mask >>= 1) --exponent;
  const int mantissa = (v >> (exponent + 3)) & 0x0F;
  return static_cast<uint8_t>(~(sign | (exponent << 4) | mantissa));
}

void PutLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutLe16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v);
  p[1] = static_cast<char>(v >> 8);
}

// Canonical 44-byte PCM WAV header. Without a length (streaming) the RIFF and data sizes are
// 0xFFFFFFFF, as streaming TTS servers send them.
std::array<char, kWavHeaderBytes> WavHeader(int sample_rate, std::optional<uint64_t> data_bytes) {
  std::array<char, kWavHeaderBytes> h{};
  // Sizes past 4 GiB cannot be stated; they get the streaming marker as well.
  const uint64_t kUnknown = 0xFFFFFFFFu;
  const auto data = static_cast<uint32_t>(data_bytes ? std::min(*data_bytes, kUnknown) : kUnknown);
  const auto riff =
      static_cast<uint32_t>(data_bytes ? std::min(36 + *data_bytes, kUnknown) : kUnknown);
  std::memcpy(h.data(), "RIFF", 4);
  PutLe32(h.data() + 4, riff);
  std::memcpy(h.data() + 8, "WAVEfmt ", 8);
  PutLe32(h.data() + 16, 16);  // fmt chunk size
  PutLe16(h.data() + 20, 1);   // PCM
  PutLe16(h.data() + 22, 1);   // mono
  PutLe32(h.data() + 24, static_cast<uint32_t>(sample_rate));
  PutLe32(h.data() + 28, static_cast<uint32_t>(sample_rate * 2));  // byte rate
  PutLe16(h.data() + 32, 2);                                       // block align
  PutLe16(h.data() + 34, 16);                                      // bits per sample
  std::memcpy(h.data() + 36, "data", 4);
  PutLe32(h.data() + 40, data);
  return h;
}

size_t BytesPerSample(AudioFormat f) {
  switch (f) {
    case AudioFormat::kPcmF32:
      return 4;
    case AudioFormat::kUlaw:
      return 1;
    default:
      return 2;
  }
}

// libsndfile's virtual I/O writing into a string (encoders seek back to fix headers).
struct MemoryFile {
  std::string data;
  sf_count_t pos = 0;
};
sf_count_t MemLength(void* user) {
  return static_cast<sf_count_t>(static_cast<MemoryFile*>(user)->data.size());
}
sf_count_t MemSeek(sf_count_t offset, int whence, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  const sf_count_t pos = whence == SEEK_SET   ? offset
                         : whence == SEEK_CUR ? f->pos + offset
                                              : static_cast<sf_count_t>(f->data.size()) + offset;
  f->pos = std::max<sf_count_t>(0, pos);
  return f->pos;
}
sf_count_t MemRead(void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  const auto size = static_cast<sf_count_t>(f->data.size());
  const sf_count_t n = std::clamp<sf_count_t>(size - f->pos, 0, count);
  if (n > 0) std::memcpy(ptr, f->data.data() + f->pos, static_cast<size_t>(n));
  f->pos += n;
  return n;
}
sf_count_t MemWrite(const void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  const auto end = static_cast<size_t>(f->pos + count);
  if (end > f->data.size()) f->data.resize(end);
  std::memcpy(f->data.data() + f->pos, ptr, static_cast<size_t>(count));
  f->pos += count;
  return count;
}
sf_count_t MemTell(void* user) { return static_cast<MemoryFile*>(user)->pos; }

int SndfileFormat(AudioFormat f) {
  switch (f) {
    case AudioFormat::kMp3:
      return SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
    case AudioFormat::kFlac:
      return SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    case AudioFormat::kOpus:
      return SF_FORMAT_OGG | SF_FORMAT_OPUS;
    case AudioFormat::kVorbis:
      return SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    default:
      return 0;
  }
}

// AAC in ADTS, as the OpenAI API sends it. libsndfile has no AAC encoder, so ffmpeg (its native
// `aac` encoder, 1024 samples of priming) encodes the tone from a temporary file.
absl::StatusOr<std::string> EncodeAac(int rate, int64_t samples, int64_t silence) {
  char in_path[] = "/tmp/ttsbench-synth-aac-XXXXXX";
  const int fd = mkstemp(in_path);
  if (fd < 0) return absl::InternalError("aac: cannot create a temporary file");
  ::close(fd);
  const std::string out_path = std::string(in_path) + ".aac";
  struct Cleanup {
    const char* in;
    const std::string& out;
    ~Cleanup() {
      std::remove(in);
      std::remove(out.c_str());
    }
  } cleanup{in_path, out_path};
  {
    std::ofstream pcm(in_path, std::ios::binary);
    for (int64_t i = 0; i < silence + samples; ++i) {
      char b[2];
      PutLe16(b, static_cast<uint16_t>(i < silence ? 0 : ToS16(ToneSample(i - silence, rate))));
      pcm.write(b, 2);
    }
    if (!pcm.flush()) return absl::InternalError("aac: cannot write the temporary file");
  }
  const std::string rate_text = std::to_string(rate);
  const char* argv[] = {
      "ffmpeg", "-nostdin", "-loglevel", "error", "-y",   "-f",  "s16le", "-ar",  rate_text.c_str(),
      "-ac",    "1",        "-i",        in_path, "-c:a", "aac", "-f",    "adts", out_path.c_str(),
      nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, "ffmpeg", nullptr, nullptr, const_cast<char* const*>(argv), environ) !=
      0) {
    return absl::InvalidArgumentError("this server encodes aac with ffmpeg, which is not on PATH");
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("ffmpeg could not encode aac at ", rate, " Hz"));
  }
  std::ifstream in(out_path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return absl::InternalError("aac: ffmpeg wrote nothing");
  return bytes;
}

absl::StatusOr<std::string> Encode(AudioFormat format, int rate, int64_t samples, int64_t silence) {
  if (format == AudioFormat::kAac) return EncodeAac(rate, samples, silence);
  samples += silence;
  MemoryFile file;
  SF_VIRTUAL_IO io{MemLength, MemSeek, MemRead, MemWrite, MemTell};
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SndfileFormat(format);
  if (!sf_format_check(&info)) {
    return absl::InvalidArgumentError(
        absl::StrCat("this server cannot encode that format at ", rate, " Hz"));
  }
  SNDFILE* sf = sf_open_virtual(&io, SFM_WRITE, &info, &file);
  if (sf == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("encoder: ", sf_strerror(nullptr)));
  }
  std::vector<float> block(4096);
  for (int64_t at = 0; at < samples;) {
    const auto n = static_cast<size_t>(std::min<int64_t>(samples - at, 4096));
    for (size_t i = 0; i < n; ++i) {
      const int64_t k = at + static_cast<int64_t>(i) - silence;
      block[i] = k < 0 ? 0.0f : static_cast<float>(ToS16(ToneSample(k, rate))) / 32768;
    }
    if (sf_writef_float(sf, block.data(), static_cast<sf_count_t>(n)) !=
        static_cast<sf_count_t>(n)) {
      sf_close(sf);
      return absl::InternalError("encoder write failed");
    }
    at += static_cast<int64_t>(n);
  }
  if (sf_close(sf) != 0) return absl::InternalError("encoder close failed");
  return std::move(file.data);
}

}  // namespace

std::optional<AudioFormat> ParseAudioFormat(std::string_view name) {
  if (name == "wav") return AudioFormat::kWav;
  if (name == "pcm" || name == "pcm_s16le") return AudioFormat::kPcmS16;
  if (name == "pcm_f32le") return AudioFormat::kPcmF32;
  if (name == "ulaw") return AudioFormat::kUlaw;
  if (name == "mp3") return AudioFormat::kMp3;
  if (name == "flac") return AudioFormat::kFlac;
  if (name == "opus") return AudioFormat::kOpus;
  if (name == "vorbis" || name == "ogg") return AudioFormat::kVorbis;
  if (name == "aac") return AudioFormat::kAac;
  return std::nullopt;
}

std::string ContentType(AudioFormat format, int sample_rate) {
  switch (format) {
    case AudioFormat::kWav:
      return "audio/wav";
    case AudioFormat::kPcmS16:
      return absl::StrCat("audio/pcm;rate=", sample_rate);
    case AudioFormat::kPcmF32:
      return absl::StrCat("audio/pcm;rate=", sample_rate, ";encoding=float");
    case AudioFormat::kUlaw:
      return absl::StrCat("audio/basic;rate=", sample_rate);
    case AudioFormat::kMp3:
      return "audio/mpeg";
    case AudioFormat::kFlac:
      return "audio/flac";
    case AudioFormat::kOpus:
      return "audio/ogg;codecs=opus";
    case AudioFormat::kVorbis:
      return "audio/ogg";
    case AudioFormat::kAac:
      return "audio/aac";
  }
  return "application/octet-stream";
}

bool IsEncoded(AudioFormat format) {
  return format == AudioFormat::kAac || SndfileFormat(format) != 0;
}

const std::string& AudioLibrary::Tone(AudioFormat format, int sample_rate) {
  if (format == AudioFormat::kWav) format = AudioFormat::kPcmS16;
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<std::string>& slot = tones_[{format, sample_rate}];
  if (slot == nullptr) {
    auto bytes = std::make_unique<std::string>();
    bytes->resize(BytesPerSample(format) * static_cast<size_t>(sample_rate));
    char* p = bytes->data();
    for (int i = 0; i < sample_rate; ++i) {
      const int16_t s = ToS16(ToneSample(i, sample_rate));
      if (format == AudioFormat::kPcmF32) {
        const float f = static_cast<float>(s) / 32768;
        std::memcpy(p + 4 * i, &f, 4);  // x86/ARM are little-endian, like the wire format
      } else if (format == AudioFormat::kUlaw) {
        p[i] = static_cast<char>(ToMulaw(s));
      } else {
        PutLe16(p + 2 * i, static_cast<uint16_t>(s));
      }
    }
    slot = std::move(bytes);
  }
  return *slot;
}

const std::string& AudioLibrary::Silence(AudioFormat format, int sample_rate) {
  if (format == AudioFormat::kWav) format = AudioFormat::kPcmS16;
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<std::string>& slot = silences_[{format, sample_rate}];
  if (slot == nullptr) {
    // mu-law's zero is 0xFF; every linear format's is all-zero bytes.
    slot = std::make_unique<std::string>(BytesPerSample(format) * static_cast<size_t>(sample_rate),
                                         format == AudioFormat::kUlaw ? '\xFF' : '\0');
  }
  return *slot;
}

absl::StatusOr<std::shared_ptr<const std::string>> AudioLibrary::Encoded(AudioFormat format,
                                                                         int sample_rate,
                                                                         int64_t samples,
                                                                         int64_t silence) {
  const auto key = std::make_tuple(format, sample_rate, samples, silence);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = files_.find(key); it != files_.end()) return it->second;
  }
  // Encoding takes milliseconds; other connections need not wait for it.
  auto bytes = Encode(format, sample_rate, samples, silence);
  if (!bytes.ok()) return bytes.status();
  auto file = std::make_shared<const std::string>(std::move(*bytes));
  std::lock_guard<std::mutex> lock(mu_);
  if (file_bytes_ + file->size() > kMaxCachedFileBytes) {
    files_.clear();
    file_bytes_ = 0;
  }
  auto [it, inserted] = files_.emplace(key, file);
  if (inserted) file_bytes_ += file->size();
  return it->second;
}

absl::StatusOr<AudioBody> AudioBody::Make(AudioLibrary& library, AudioFormat format,
                                          int sample_rate, int64_t samples, bool streamed,
                                          int64_t leading_silence) {
  AudioBody body;
  body.format_ = format;
  body.sample_rate_ = sample_rate;
  body.silence_ = std::max<int64_t>(0, leading_silence);
  body.samples_ = std::max<int64_t>(0, samples) + body.silence_;
  if (IsEncoded(format)) {
    auto file = library.Encoded(format, sample_rate, body.samples_ - body.silence_, body.silence_);
    if (!file.ok()) return file.status();
    body.file_ = std::move(*file);
    return body;
  }
  body.tone_ = &library.Tone(format, sample_rate);
  if (body.silence_ > 0) body.quiet_ = &library.Silence(format, sample_rate);
  body.bytes_per_sample_ = BytesPerSample(format);
  if (format == AudioFormat::kWav) {
    body.wav_header_ = WavHeader(
        sample_rate, streamed ? std::nullopt
                              : std::optional<uint64_t>(2 * static_cast<uint64_t>(body.samples_)));
  }
  return body;
}

void AudioBody::Append(int64_t begin, int64_t end, std::vector<std::string_view>& out) const {
  begin = std::clamp<int64_t>(begin, 0, samples_);
  end = std::clamp<int64_t>(end, begin, samples_);
  if (file_ != nullptr) {
    const auto size = static_cast<int64_t>(file_->size());
    // The whole file when there are no samples (its header still goes out).
    const int64_t from = samples_ == 0 ? 0 : size * begin / samples_;
    const int64_t to = samples_ == 0 ? size : size * end / samples_;
    if (to > from) {
      out.emplace_back(file_->data() + from, static_cast<size_t>(to - from));
    }
    return;
  }
  if (begin == 0 && format_ == AudioFormat::kWav) {
    out.emplace_back(wav_header_.data(), wav_header_.size());
  }
  const int64_t rate = sample_rate_;
  // The leading silence, a second of it at a time.
  for (; begin < std::min(end, silence_);) {
    const int64_t n = std::min({end, silence_, begin + rate}) - begin;
    out.emplace_back(quiet_->data(), bytes_per_sample_ * static_cast<size_t>(n));
    begin += n;
  }
  int64_t pos = (begin - silence_) % rate;
  for (int64_t left = end - begin; left > 0;) {
    const int64_t n = std::min(left, rate - pos);
    out.emplace_back(tone_->data() + bytes_per_sample_ * static_cast<size_t>(pos),
                     bytes_per_sample_ * static_cast<size_t>(n));
    left -= n;
    pos = 0;
  }
}

std::string AudioBody::Copy(int64_t begin, int64_t end) const {
  std::vector<std::string_view> parts;
  Append(begin, end, parts);
  std::string out;
  for (std::string_view p : parts) out.append(p.data(), p.size());
  return out;
}

size_t AudioBody::TotalBytes() const {
  if (file_ != nullptr) return file_->size();
  return HeaderBytes() + bytes_per_sample_ * static_cast<size_t>(samples_);
}

}  // namespace ttsbench::synth
