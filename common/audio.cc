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

 private:
  int rate_ = 0;
  uint32_t frame_bytes_ = 0;
  uint64_t bytes_ = 0;
};

class PcmMeter final : public AudioMeter {
 public:
  PcmMeter(int rate, int channels, PcmEncoding enc) {
    const uint32_t sample_bytes = enc == PcmEncoding::kS16le ? 2 : 4;
    frames_.Configure(rate, sample_bytes * static_cast<uint32_t>(channels));
  }
  absl::StatusOr<AudioFeed> Feed(absl::string_view piece) override {
    return AudioFeed{piece.size(), frames_.Add(piece.size())};
  }
  absl::Status Finish() override { return absl::OkStatus(); }
  double seconds() const override { return frames_.seconds(); }
  int sample_rate() const override { return frames_.rate(); }

 private:
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

 private:
  enum class State { kRiff, kChunkHeader, kFmt, kSkip, kData, kTrailer };
  static constexpr uint64_t kUnbounded = ~uint64_t{0};

  size_t Need() const {
    switch (state_) {
      case State::kRiff:
        return 12;
      case State::kChunkHeader:
        return 8;
      case State::kFmt:
        return fmt_size_;
      default:
        return 0;
    }
  }

  absl::Status Interpret() {
    const auto* p = reinterpret_cast<const unsigned char*>(header_.data());
    switch (state_) {
      case State::kRiff:
        if (std::memcmp(p, "RIFF", 4) != 0 || std::memcmp(p + 8, "WAVE", 4) != 0) {
          return absl::InvalidArgumentError("not a RIFF/WAVE body");
        }
        state_ = State::kChunkHeader;
        break;
      case State::kChunkHeader: {
        const uint32_t size = Le32(p + 4);
        if (std::memcmp(p, "fmt ", 4) == 0) {
          if (size < 16 || size > 4096) return absl::InvalidArgumentError("bad WAV fmt size");
          fmt_size_ = size + (size & 1);
          state_ = State::kFmt;
        } else if (std::memcmp(p, "data", 4) == 0) {
          if (!have_fmt_) return absl::InvalidArgumentError("WAV data chunk before fmt chunk");
          // Streaming servers cannot know the length up front and write 0 or 0xFFFFFFFF.
          data_left_ = (size == 0 || size == 0xFFFFFFFFu) ? kUnbounded : size;
          state_ = State::kData;
        } else {
          skip_left_ = uint64_t{size} + (size & 1);
          state_ = skip_left_ > 0 ? State::kSkip : State::kChunkHeader;
        }
        break;
      }
      case State::kFmt: {
        const uint16_t tag = Le16(p);
        const uint16_t channels = Le16(p + 2);
        const uint32_t rate = Le32(p + 4);
        const uint16_t block_align = Le16(p + 12);
        const uint16_t bits = Le16(p + 14);
        // PCM, IEEE float, A-law, mu-law, WAVE_FORMAT_EXTENSIBLE: all fixed-size frames.
        if (tag != 1 && tag != 3 && tag != 6 && tag != 7 && tag != 0xFFFE) {
          return absl::InvalidArgumentError(absl::StrCat("unsupported WAV format tag ", tag));
        }
        if (channels == 0 || rate == 0 || rate > 1000000 || bits == 0) {
          return absl::InvalidArgumentError("WAV fmt chunk has zero channels, rate or bits");
        }
        const uint32_t frame = block_align != 0 ? block_align : channels * ((bits + 7) / 8);
        frames_.Configure(static_cast<int>(rate), frame);
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
  uint32_t fmt_size_ = 0;
  bool have_fmt_ = false;
  uint64_t skip_left_ = 0;
  uint64_t data_left_ = 0;
  FrameCounter frames_;
};

// Decides between WAV and the configured format on the first four body bytes.
class SniffingMeter final : public AudioMeter {
 public:
  explicit SniffingMeter(std::unique_ptr<AudioMeter> fallback) : fallback_(std::move(fallback)) {}
  absl::StatusOr<AudioFeed> Feed(absl::string_view piece) override {
    if (inner_ != nullptr) return inner_->Feed(piece);
    pending_.append(piece.data(), piece.size());
    if (pending_.size() < 4) return AudioFeed{};
    return Decide();
  }
  absl::Status Finish() override {
    if (inner_ == nullptr) {
      auto feed = Decide();
      if (!feed.ok()) return feed.status();
    }
    return inner_->Finish();
  }
  double seconds() const override { return inner_ ? inner_->seconds() : 0; }
  int sample_rate() const override { return inner_ ? inner_->sample_rate() : 0; }

 private:
  std::unique_ptr<AudioMeter> fallback_;
  std::unique_ptr<AudioMeter> inner_;
  std::string pending_;

  absl::StatusOr<AudioFeed> Decide() {
    inner_ = absl::StartsWith(pending_, "RIFF") ? MakeWavMeter() : std::move(fallback_);
    const std::string all = std::move(pending_);
    return inner_->Feed(all);
  }
};

}  // namespace

std::unique_ptr<AudioMeter> MakePcmMeter(int sample_rate, int channels, PcmEncoding encoding) {
  return std::make_unique<PcmMeter>(sample_rate, channels, encoding);
}

std::unique_ptr<AudioMeter> MakeWavMeter() { return std::make_unique<WavMeter>(); }

int RateFromContentType(absl::string_view content_type) {
  for (absl::string_view param : absl::StrSplit(content_type, ';')) {
    param = absl::StripAsciiWhitespace(param);
    if (absl::StartsWithIgnoreCase(param, "rate=")) {
      int rate = 0;
      if (absl::SimpleAtoi(param.substr(5), &rate) && rate > 0) return rate;
    }
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<AudioMeter>> MakeMeterFor(absl::string_view format,
                                                         absl::string_view content_type,
                                                         int default_sample_rate) {
  if (format == "wav") return MakeWavMeter();
  if (format == "pcm") {
    int rate = RateFromContentType(content_type);
    if (rate == 0) rate = default_sample_rate;
    if (rate <= 0) return absl::InvalidArgumentError("raw PCM needs a sample rate");
    return std::unique_ptr<AudioMeter>(
        std::make_unique<SniffingMeter>(MakePcmMeter(rate, 1, PcmEncoding::kS16le)));
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported audio format '", format, "'"));
}

absl::StatusOr<double> MeasureWhole(AudioMeter& meter, absl::string_view body) {
  auto feed = meter.Feed(body);
  if (!feed.ok()) return feed.status();
  absl::Status st = meter.Finish();
  if (!st.ok()) return st;
  return meter.seconds();
}

}  // namespace ttsbench::common
