#include "common/audio.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ttsbench::common {
namespace {

uint32_t Le32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t Le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// Counts whole frames of interleaved samples.
class FrameCounter {
 public:
  void Configure(int rate, uint32_t frame_bytes) {
    rate_ = rate;
    frame_bytes_ = frame_bytes;
  }
  // Adds n sample bytes; returns the seconds of audio completed by them.
  double Add(uint64_t n) {
    const double before = seconds();
    bytes_ += n;
    return seconds() - before;
  }
  double seconds() const {
    if (rate_ <= 0 || frame_bytes_ == 0) return 0;
    return static_cast<double>(bytes_ / frame_bytes_) / rate_;
  }
  uint64_t bytes() const { return bytes_; }
  int rate() const { return rate_; }
  void Restart() { bytes_ = 0; }

 private:
  int rate_ = 0;
  uint32_t frame_bytes_ = 0;
  uint64_t bytes_ = 0;
};

uint32_t SampleBytes(PcmEncoding encoding) {
  switch (encoding) {
    case PcmEncoding::kMulaw:
    case PcmEncoding::kAlaw:
      return 1;
    case PcmEncoding::kS16le:
      return 2;
    case PcmEncoding::kS24le:
      return 3;
    case PcmEncoding::kF32le:
    case PcmEncoding::kS32le:
      return 4;
  }
  return 2;
}

class PcmMeter final : public AudioMeter {
 public:
  PcmMeter(int rate, int channels, PcmEncoding encoding) : channels_(std::max(channels, 1)) {
    frames_.Configure(rate, SampleBytes(encoding) * static_cast<uint32_t>(channels_));
  }
  absl::StatusOr<AudioFeed> Feed(absl::string_view piece) override {
    return AudioFeed{piece.size(), frames_.Add(piece.size())};
  }
  absl::Status Finish() override { return absl::OkStatus(); }
  double seconds() const override { return frames_.seconds(); }
  int sample_rate() const override { return frames_.rate(); }
  int channels() const override { return channels_; }
  absl::string_view format() const override { return "pcm"; }
  bool Reset() override {
    frames_.Restart();
    return true;
  }

 private:
  int channels_;
  FrameCounter frames_;
};

// Walks RIFF chunks as they arrive: a small header buffer until "data", then counts bytes.
class WavMeter final : public AudioMeter {
 public:
  absl::StatusOr<AudioFeed> Feed(absl::string_view piece) override {
    AudioFeed feed;
    while (!piece.empty()) {
      if (state_ == State::kData) {
        uint64_t take = piece.size();
        if (data_left_ != kUnbounded) take = std::min<uint64_t>(take, data_left_);
        feed.audio_bytes += take;
        feed.audio_s += frames_.Add(take);
        if (data_left_ != kUnbounded) data_left_ -= take;
        piece.remove_prefix(take);
        if (data_left_ == 0) state_ = State::kTrailer;
        continue;
      }
      if (state_ == State::kTrailer) break;  // chunks after "data" (LIST, id3) carry no audio
      if (state_ == State::kSkip) {
        const uint64_t take = std::min<uint64_t>(piece.size(), skip_left_);
        skip_left_ -= take;
        piece.remove_prefix(take);
        if (skip_left_ == 0) state_ = State::kChunkHeader;
        continue;
      }
      // Header states: gather exactly `need` bytes, then interpret them.
      const size_t need = Need();
      const size_t take = std::min(piece.size(), need - header_.size());
      header_.append(piece.data(), take);
      piece.remove_prefix(take);
      if (header_.size() < need) break;
      absl::Status st = Interpret();
      if (!st.ok()) return st;
    }
    return feed;
  }

  absl::Status Finish() override {
    if (state_ != State::kData && state_ != State::kTrailer) {
      return absl::InvalidArgumentError("WAV ended before its data chunk");
    }
    if (state_ == State::kData && data_left_ != kUnbounded && data_left_ > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("WAV data truncated: ", data_left_, " bytes missing"));
    }
    return absl::OkStatus();
  }
  double seconds() const override { return frames_.seconds(); }
  int sample_rate() const override { return frames_.rate(); }
  int channels() const override { return channels_; }
  absl::string_view format() const override { return "wav"; }
  bool Reset() override {
    std::string header = std::move(header_);
    *this = WavMeter();
    header.clear();
    header_ = std::move(header);  // keeps its capacity
    return true;
  }

 private:
  enum class State { kRiff, kChunkHeader, kFmt, kDs64, kSkip, kData, kTrailer };
  static constexpr uint64_t kUnbounded = ~uint64_t{0};
  static constexpr uint32_t kMaxHeaderChunk = 4096;

  size_t Need() const {
    switch (state_) {
      case State::kRiff:
        return 12;
      case State::kChunkHeader:
        return 8;
      case State::kFmt:
      case State::kDs64:
        return chunk_size_;
      default:
        return 0;
    }
  }

  absl::Status Interpret() {
    const auto* p = reinterpret_cast<const unsigned char*>(header_.data());
    switch (state_) {
      case State::kRiff:
        if ((std::memcmp(p, "RIFF", 4) != 0 && std::memcmp(p, "RF64", 4) != 0) ||
            std::memcmp(p + 8, "WAVE", 4) != 0) {
          return absl::InvalidArgumentError("not a RIFF/WAVE body");
        }
        state_ = State::kChunkHeader;
        break;
      case State::kChunkHeader: {
        const uint32_t size = Le32(p + 4);
        if (std::memcmp(p, "fmt ", 4) == 0 || std::memcmp(p, "ds64", 4) == 0) {
          const bool fmt = p[0] == 'f';
          if (size < (fmt ? 16u : 24u) || size > kMaxHeaderChunk) {
            return absl::InvalidArgumentError(
                absl::StrCat("bad WAV ", fmt ? "fmt" : "ds64", " chunk size ", size));
          }
          chunk_size_ = size + (size & 1);
          state_ = fmt ? State::kFmt : State::kDs64;
        } else if (std::memcmp(p, "data", 4) == 0) {
          if (!have_fmt_) return absl::InvalidArgumentError("WAV data chunk before fmt chunk");
          // Streaming servers cannot know the length up front and write 0 or 0xFFFFFFFF; RF64
          // writes 0xFFFFFFFF and the real size in ds64.
          if (size == 0xFFFFFFFFu && ds64_data_size_ > 0) {
            data_left_ = ds64_data_size_;
          } else {
            // espeak-ng (and others writing to a pipe) put 0x7FFFF000 plus the header's size
            // there instead: a placeholder too, not 2 GiB of data.
            const bool placeholder =
                size == 0 || size == 0xFFFFFFFFu || (size & 0xFFFFF000u) == 0x7FFFF000u;
            data_left_ = placeholder ? kUnbounded : size;
          }
          state_ = State::kData;
        } else {
          skip_left_ = uint64_t{size} + (size & 1);
          state_ = skip_left_ > 0 ? State::kSkip : State::kChunkHeader;
        }
        break;
      }
      case State::kDs64:
        ds64_data_size_ = uint64_t{Le32(p + 8)} | uint64_t{Le32(p + 12)} << 32;
        state_ = State::kChunkHeader;
        break;
      case State::kFmt: {
        uint16_t tag = Le16(p);
        const uint16_t channels = Le16(p + 2);
        const uint32_t rate = Le32(p + 4);
        const uint16_t block_align = Le16(p + 12);
        const uint16_t bits = Le16(p + 14);
        // WAVE_FORMAT_EXTENSIBLE names the real format in the first two bytes of its GUID.
        if (tag == 0xFFFE && chunk_size_ >= 40) tag = Le16(p + 24);
        // PCM, IEEE float, A-law, mu-law: fixed-size frames. Compressed WAV (ADPCM, MP3) is not.
        if (tag != 1 && tag != 3 && tag != 6 && tag != 7 && tag != 0xFFFE) {
          return absl::InvalidArgumentError(absl::StrCat("unsupported WAV format tag ", tag));
        }
        if (channels == 0 || rate == 0 || rate > 1000000 || bits == 0 || bits > 64) {
          return absl::InvalidArgumentError("WAV fmt chunk has zero channels, rate or bits");
        }
        const uint32_t frame = block_align != 0 ? block_align : channels * ((bits + 7u) / 8);
        frames_.Configure(static_cast<int>(rate), frame);
        channels_ = channels;
        have_fmt_ = true;
        state_ = State::kChunkHeader;
        break;
      }
      default:
        break;
    }
    header_.clear();
    return absl::OkStatus();
  }

  State state_ = State::kRiff;
  std::string header_;
  uint32_t chunk_size_ = 0;
  bool have_fmt_ = false;
  int channels_ = 0;
  uint64_t ds64_data_size_ = 0;
  uint64_t skip_left_ = 0;
  uint64_t data_left_ = 0;
  FrameCounter frames_;
};

}  // namespace

std::unique_ptr<AudioMeter> MakePcmMeter(int sample_rate, int channels, PcmEncoding encoding) {
  return std::make_unique<PcmMeter>(sample_rate, channels, encoding);
}

std::unique_ptr<AudioMeter> MakeWavMeter() { return std::make_unique<WavMeter>(); }

namespace {

// A positive integer parameter `name=` of a Content-Type, or 0.
int ContentTypeParam(absl::string_view content_type, absl::string_view name) {
  for (absl::string_view param : absl::StrSplit(content_type, ';')) {
    param = absl::StripAsciiWhitespace(param);
    if (param.size() > name.size() && param[name.size()] == '=' &&
        absl::StartsWithIgnoreCase(param, name)) {
      int value = 0;
      if (absl::SimpleAtoi(param.substr(name.size() + 1), &value) && value > 0) return value;
    }
  }
  return 0;
}

}  // namespace

int RateFromContentType(absl::string_view content_type) {
  return ContentTypeParam(content_type, "rate");
}

int ChannelsFromContentType(absl::string_view content_type) {
  return ContentTypeParam(content_type, "channels");
}

absl::StatusOr<std::unique_ptr<AudioMeter>> MakeMeterFor(absl::string_view format,
                                                         absl::string_view content_type,
                                                         int default_sample_rate) {
  MeterOptions options;
  options.format = std::string(format);
  options.content_type = std::string(content_type);
  options.sample_rate = default_sample_rate;
  return MakeMeter(options);
}

absl::StatusOr<double> MeasureWhole(AudioMeter& meter, absl::string_view body) {
  auto feed = meter.Feed(body);
  if (!feed.ok()) return feed.status();
  absl::Status st = meter.Finish();
  if (!st.ok()) return st;
  return meter.seconds();
}

}  // namespace ttsbench::common
