// Meters for compressed containers (MPEG audio and ADTS, Ogg, FLAC), the sniffing meter that
// picks one by the body's first bytes, and a libsndfile decoder for independent checks.

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/audio.h"
#include "common/sndfile_memory.h"

namespace ttsbench::common {
namespace {

// A meter back to a new one's state (`meter = Meter()`), but its buffers keep their capacity.
template <typename Meter, typename... Buffers>
void RenewKeeping(Meter& meter, Buffers&... buffers) {
  std::tuple<Buffers...> kept{std::move(buffers)...};
  meter = Meter();
  std::apply([&](Buffers&... k) { ((k.clear(), buffers = std::move(k)), ...); }, kept);
}

constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

const unsigned char* U(const char* p) { return reinterpret_cast<const unsigned char*>(p); }
uint32_t Be32(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
uint32_t Be24(const unsigned char* p) {
  return uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | uint32_t{p[2]};
}
uint32_t Le32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint64_t Le64(const unsigned char* p) { return uint64_t{Le32(p)} | uint64_t{Le32(p + 4)} << 32; }

// Samples of [start, end) inside [lo, hi): how gapless trimming (encoder delay, pre-skip,
// padding) applies to one frame or page without ever going negative.
int64_t Overlap(int64_t start, int64_t end, int64_t lo, int64_t hi) {
  return std::max<int64_t>(0, std::min(end, hi) - std::max(start, lo));
}

// The bytes not yet consumed: those kept from earlier pieces (`carry`), then the new piece.
// Parsers peek at a few contiguous bytes (a frame or page header) and skip the rest without
// copying; only a header split across pieces is copied into `carry`.
class Reader {
 public:
  Reader(std::string& carry, absl::string_view piece) : carry_(carry), piece_(piece) {}

  bool empty() const { return carry_.empty() && piece_.empty(); }

  // `n` contiguous bytes at the read position, or nullptr when fewer have arrived; then all
  // that arrived is kept in `carry` for the next piece.
  const unsigned char* Peek(size_t n) {
    if (carry_.empty()) {
      if (piece_.size() >= n) return U(piece_.data());
      carry_.assign(piece_.data(), piece_.size());
      piece_ = {};
      return nullptr;
    }
    if (carry_.size() < n) {
      const size_t take = std::min(n - carry_.size(), piece_.size());
      carry_.append(piece_.data(), take);
      piece_.remove_prefix(take);
      if (carry_.size() < n) return nullptr;
    }
    return U(carry_.data());
  }

  // Consumes up to `n` bytes, handing each contiguous run to `f`; returns how many.
  template <typename F>
  uint64_t Consume(uint64_t n, F&& f) {
    uint64_t done = 0;
    if (!carry_.empty() && n > 0) {
      const size_t c = static_cast<size_t>(std::min<uint64_t>(n, carry_.size()));
      f(absl::string_view(carry_.data(), c));
      carry_.erase(0, c);
      done += c;
      n -= c;
    }
    const size_t t = static_cast<size_t>(std::min<uint64_t>(n, piece_.size()));
    if (t > 0) {
      f(piece_.substr(0, t));
      piece_.remove_prefix(t);
      done += t;
    }
    return done;
  }
  uint64_t Skip(uint64_t n) {
    return Consume(n, [](absl::string_view) {});
  }

 private:
  std::string& carry_;
  absl::string_view piece_;
};

// ------------------------------------------------------------------------------------------
// CRCs: Ogg pages (CRC-32, polynomial 0x04C11DB7, MSB first) and FLAC frames (CRC-8 0x07 on
// the header, CRC-16 0x8005 on the whole frame), all with zero initial value.

template <typename T, int kBits>
constexpr std::array<T, 256> CrcTable(T poly) {
  std::array<T, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    T r = static_cast<T>(T(i) << (kBits - 8));
    for (int k = 0; k < 8; ++k) {
      const bool top = (r >> (kBits - 1)) & 1;
      r = static_cast<T>(r << 1);
      if (top) r = static_cast<T>(r ^ poly);
    }
    t[i] = r;
  }
  return t;
}
constexpr auto kCrc32 = CrcTable<uint32_t, 32>(0x04C11DB7u);
constexpr auto kCrc16 = CrcTable<uint16_t, 16>(0x8005);
constexpr auto kCrc8 = CrcTable<uint8_t, 8>(0x07);

uint32_t Crc32(uint32_t crc, absl::string_view s) {
  for (unsigned char c : s) crc = (crc << 8) ^ kCrc32[((crc >> 24) ^ c) & 0xFF];
  return crc;
}
uint8_t Crc8(const unsigned char* p, size_t n) {
  uint8_t crc = 0;
  for (size_t i = 0; i < n; ++i) crc = kCrc8[crc ^ p[i]];
  return crc;
}

// ------------------------------------------------------------------------------------------
// MPEG audio and ADTS frame headers.

struct FrameHeader {
  bool adts = false;
  int sample_rate = 0;
  int channels = 0;
  int samples = 0;      // per frame
  int frame_bytes = 0;  // the whole frame, header included
  int side_info = 0;    // MPEG layer III: bytes of side information after the header
  bool layer3 = false;
  bool crc = false;
  uint32_t key = 0;  // the fields every frame of one stream shares
};

constexpr int kAdtsRates[16] = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050,
                                16000, 12000, 11025, 8000,  7350,  0,     0,     0};

// kbit/s by [version is MPEG-1 ? 0 : 1][layer - 1][index].
constexpr int kBitrates[2][3][16] = {
    {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0},
     {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},
     {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}},
    {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0},
     {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
     {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0}}};

bool IsAdtsSync(const unsigned char* p) { return p[0] == 0xFF && (p[1] & 0xF6) == 0xF0; }
bool IsMpegSync(const unsigned char* p) { return p[0] == 0xFF && (p[1] & 0xE0) == 0xE0; }
// Bytes a header needs before ParseFrameHeader can read it.
size_t HeaderBytes(const unsigned char* p) { return IsAdtsSync(p) ? 7 : 4; }

// Needs HeaderBytes(p) bytes at p.
std::optional<FrameHeader> ParseFrameHeader(const unsigned char* p) {
  FrameHeader h;
  if (IsAdtsSync(p)) {
    const int rate_index = (p[2] >> 2) & 0xF;
    h.adts = true;
    h.sample_rate = kAdtsRates[rate_index];
    h.channels = ((p[2] & 1) << 2) | (p[3] >> 6);
    h.frame_bytes = ((p[3] & 3) << 11) | (p[4] << 3) | (p[5] >> 5);
    h.crc = (p[1] & 1) == 0;
    h.samples = 1024 * ((p[6] & 3) + 1);
    // MPEG-2/4 id, profile, rate and channel configuration stay fixed within a stream.
    h.key = 0x1000000u | (uint32_t{p[1]} & 0x08) << 12 | (uint32_t{p[2]} & 0xFD) << 8 |
            (uint32_t{p[3]} & 0xC0);
    if (h.sample_rate == 0 || h.frame_bytes < (h.crc ? 9 : 7)) return std::nullopt;
    return h;
  }
  if (!IsMpegSync(p)) return std::nullopt;
  const int version_bits = (p[1] >> 3) & 3;  // 0: MPEG-2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
  const int layer = 4 - ((p[1] >> 1) & 3);   // bits 01 → III, 10 → II, 11 → I
  const int bitrate_index = p[2] >> 4;
  const int rate_index = (p[2] >> 2) & 3;
  if (version_bits == 1 || layer == 4 || bitrate_index == 0 /* free format */ ||
      bitrate_index == 15 || rate_index == 3) {
    return std::nullopt;
  }
  static constexpr int kRates[3] = {44100, 48000, 32000};
  const bool mpeg1 = version_bits == 3;
  h.sample_rate = kRates[rate_index] >> (mpeg1 ? 0 : version_bits == 2 ? 1 : 2);
  const int bitrate = kBitrates[mpeg1 ? 0 : 1][layer - 1][bitrate_index] * 1000;
  const int padding = (p[2] >> 1) & 1;
  h.channels = (p[3] >> 6) == 3 ? 1 : 2;
  h.crc = (p[1] & 1) == 0;
  h.layer3 = layer == 3;
  if (layer == 1) {
    h.samples = 384;
    h.frame_bytes = (12 * bitrate / h.sample_rate + padding) * 4;
  } else if (layer == 2 || mpeg1) {
    h.samples = 1152;
    h.frame_bytes = 144 * bitrate / h.sample_rate + padding;
  } else {
    h.samples = 576;
    h.frame_bytes = 72 * bitrate / h.sample_rate + padding;
  }
  if (h.layer3) h.side_info = mpeg1 ? (h.channels == 1 ? 17 : 32) : (h.channels == 1 ? 9 : 17);
  h.key = (uint32_t{p[1]} & 0xFE) << 8 | (uint32_t{p[2]} & 0x0C);
  return h;
}

// A Xing/Info or VBRI frame: the encoder's summary, decoded as silence by old players, not audio.
struct TagFrame {
  int64_t frames = 0;  // audio frames that follow, 0 when not given
  int64_t delay = 0;   // encoder delay, samples
  int64_t padding = 0;
};

// `p` holds `n` bytes of a layer III frame starting at its header.
std::optional<TagFrame> ParseTagFrame(const FrameHeader& h, const unsigned char* p, size_t n) {
  for (size_t off : {size_t{4} + h.side_info, size_t{6} + h.side_info}) {
    if (off + 8 > n) break;
    if (std::memcmp(p + off, "Xing", 4) != 0 && std::memcmp(p + off, "Info", 4) != 0) continue;
    TagFrame tag;
    const uint32_t flags = Be32(p + off + 4);
    size_t q = off + 8;
    if (flags & 1) {
      if (q + 4 > n) return tag;
      tag.frames = Be32(p + q);
      q += 4;
    }
    if (flags & 2) q += 4;    // stream bytes
    if (flags & 4) q += 100;  // seek table
    if (flags & 8) q += 4;    // quality
    // The LAME extension: 9 bytes of encoder name, then delay and padding as 12 bits each.
    // ffmpeg writes the same layout under the names "Lavf"/"Lavc" and reads it from all three.
    if (q + 24 <= n && (std::memcmp(p + q, "LAME", 4) == 0 || std::memcmp(p + q, "Lavf", 4) == 0 ||
                        std::memcmp(p + q, "Lavc", 4) == 0)) {
      const uint32_t v = Be24(p + q + 21);
      tag.delay = v >> 12;
      tag.padding = v & 0xFFF;
    }
    return tag;
  }
  if (n >= 4 + 32 + 18 && std::memcmp(p + 36, "VBRI", 4) == 0) {
    TagFrame tag;
    tag.frames = Be32(p + 36 + 14);
    return tag;
  }
  return std::nullopt;
}

// Bytes a Xing/LAME or VBRI frame needs for ParseTagFrame: header, side info, CRC, tag.
constexpr size_t kTagProbeBytes = 4 + 32 + 2 + 8 + 4 + 4 + 100 + 4 + 24;

// Size of an ID3v2 tag from its 10-byte header, or 0 when the header is not one.
uint64_t Id3v2Size(const unsigned char* p) {
  if (std::memcmp(p, "ID3", 3) != 0 || p[3] < 2 || p[3] > 4 || p[4] == 0xFF) return 0;
  if ((p[6] | p[7] | p[8] | p[9]) & 0x80) return 0;  // sizes are synchsafe
  const uint64_t size = uint64_t{p[6]} << 21 | uint64_t{p[7]} << 14 | uint64_t{p[8]} << 7 | p[9];
  return 10 + size + ((p[5] & 0x10) ? 10 : 0);  // the footer flag adds a 10-byte footer
}

// Strips the tags that may end an MPEG file (ID3v1, APEv1/v2, Lyrics3v2); true when nothing
// else is left.
bool OnlyTrailingTags(absl::string_view t) {
  while (!t.empty()) {
    if (t.size() >= 128 && absl::StartsWith(t.substr(t.size() - 128), "TAG")) {
      t.remove_suffix(128);
    } else if (t.size() >= 32 && absl::StartsWith(t.substr(t.size() - 32), "APETAGEX")) {
      const unsigned char* f = U(t.data() + t.size() - 32);
      uint64_t size = Le32(f + 12);               // items and footer
      if (Le32(f + 20) & (1u << 31)) size += 32;  // a header too
      if (size < 32 || size > t.size()) return false;
      t.remove_suffix(static_cast<size_t>(size));
    } else if (t.size() >= 15 && absl::EndsWith(t, "LYRICS200")) {
      uint64_t size = 0;
      if (!absl::SimpleAtoi(t.substr(t.size() - 15, 6), &size) || size + 15 > t.size()) {
        return false;
      }
      t.remove_suffix(static_cast<size_t>(size + 15));
    } else {
      return false;
    }
  }
  return true;
}

// MPEG audio (layers I–III) and ADTS AAC, one frame at a time.
class MpegMeter final : public AudioMeter {
 public:
  absl::StatusOr<AudioFeed> Feed(absl::string_view piece) override {
    if (!error_.ok()) return error_;
    AudioFeed feed;
    Reader r(carry_, piece);
    error_ = Run(r, feed);
    if (!error_.ok()) return error_;
    return feed;
  }

  absl::Status Finish() override {
    if (!error_.ok()) return error_;
    switch (state_) {
      case State::kFrame:
        return absl::InvalidArgumentError(absl::StrCat(adts_ ? "ADTS" : "MPEG audio", " frame ",
                                                       frames_ + 1, " truncated: ", skip_left_,
                                                       " bytes missing"));
      case State::kTag:
        return absl::InvalidArgumentError("tag truncated at end of MPEG audio");
      case State::kTail:
        if (!OnlyTrailingTags(tail_)) {
          return absl::InvalidArgumentError(absl::StrCat(tail_.size(), " bytes after MPEG frame ",
                                                         frames_, " are neither audio nor a tag"));
        }
        break;
      case State::kSync:
        if (!carry_.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(carry_.size(), " stray bytes at end of MPEG audio"));
        }
        break;
    }
    return CheckSegmentComplete();
  }

  double seconds() const override { return rate_ > 0 ? static_cast<double>(samples_) / rate_ : 0; }
  int sample_rate() const override { return rate_; }
  int channels() const override { return channels_; }
  absl::string_view format() const override { return frames_ == 0 ? "" : adts_ ? "aac" : "mp3"; }
  bool Reset() override {
    RenewKeeping(*this, carry_, tail_);
    return true;
  }

 private:
  enum class State { kSync, kFrame, kTag, kTail };
  static constexpr uint64_t kMaxLeadingZeros = 64 << 10;
  static constexpr int64_t kLameDelaySamples = 576 + 529;
  static constexpr size_t kMaxTail = 1 << 20;

  // One encoder run: its tag frame's delay, padding and frame count apply to the frames after
  // it. A server that concatenates per-sentence files starts a segment at each tag frame.
  struct Segment {
    int64_t declared_frames = 0;
    int64_t delay = 0;
    int64_t padding = 0;
    int64_t frames = 0;
    int64_t gross = 0;  // samples of the frames so far, before trimming
  };

  absl::Status Run(Reader& r, AudioFeed& feed) {
    while (true) {
      switch (state_) {
        case State::kFrame: {
          const uint64_t n = r.Skip(skip_left_);
          skip_left_ -= n;
          if (frame_is_audio_) feed.audio_bytes += n;
          if (skip_left_ > 0) return absl::OkStatus();
          if (frame_is_audio_) feed.audio_s += CompleteFrame();
          state_ = State::kSync;
          break;
        }
        case State::kTag:
          skip_left_ -= r.Skip(skip_left_);
          if (skip_left_ > 0) return absl::OkStatus();
          state_ = State::kSync;
          break;
        case State::kTail:
          r.Consume(kMaxTail, [&](absl::string_view s) { tail_.append(s.data(), s.size()); });
          if (tail_.size() > kMaxTail - 1 || !r.empty()) {
            return absl::InvalidArgumentError("MPEG audio lost frame sync");
          }
          return absl::OkStatus();
        case State::kSync: {
          if (r.empty()) return absl::OkStatus();
          const unsigned char* p = r.Peek(4);
          if (p == nullptr) return absl::OkStatus();
          if (IsMpegSync(p)) {
            p = r.Peek(HeaderBytes(p));
            if (p == nullptr) return absl::OkStatus();
            std::optional<FrameHeader> h = ParseFrameHeader(p);
            if (h && (!have_format_ || h->key == key_)) {
              bool need_more = false;
              absl::Status st = StartFrame(*h, r, need_more);
              if (!st.ok() || need_more) return st;
              break;
            }
          }
          if (std::memcmp(p, "ID3", 3) == 0) {
            p = r.Peek(10);
            if (p == nullptr) return absl::OkStatus();
            skip_left_ = Id3v2Size(p);
            if (skip_left_ > 0) {
              state_ = State::kTag;
              break;
            }
          }
          if (!have_format_) {
            // Before the first frame only ID3v2 tags and stray zero padding may appear.
            if (p[0] == 0 && leading_zeros_ < kMaxLeadingZeros) {
              ++leading_zeros_;
              r.Skip(1);
              break;
            }
            return absl::InvalidArgumentError("not MPEG audio: no frame sync at the start");
          }
          // Tags after the last frame, or bytes that are not audio: decided at Finish.
          state_ = State::kTail;
          break;
        }
      }
    }
  }

  absl::Status StartFrame(const FrameHeader& h, Reader& r, bool& need_more) {
    frame_is_audio_ = true;
    if (h.layer3) {
      const size_t probe = std::min<size_t>(h.frame_bytes, kTagProbeBytes);
      const unsigned char* p = r.Peek(probe);
      if (p == nullptr) {
        need_more = true;
        return absl::OkStatus();
      }
      if (std::optional<TagFrame> tag = ParseTagFrame(h, p, probe)) {
        absl::Status st = CheckSegmentComplete();
        if (!st.ok()) return st;
        segment_ = Segment{};
        segment_.declared_frames = tag->frames;
        segment_.delay = tag->delay;
        segment_.padding = tag->padding;
        frame_is_audio_ = false;
        ++tag_frames_;
      }
    }
    if (!have_format_) {
      have_format_ = true;
      key_ = h.key;
      rate_ = h.sample_rate;
      channels_ = h.channels;
      adts_ = h.adts;
      // ADTS has no priming signal; AAC-LC encoders prime with at least one frame (ffmpeg's
      // aac and fdk-aac exactly 1024 samples), so the first 1024 samples are not content.
      if (adts_) segment_.delay = 1024;
      // Layer III without a Xing/Info frame (an encoder writing to a pipe, a server streaming)
      // says nothing of its delay; LAME, which nearly every server's MP3 comes from (ffmpeg's
      // libmp3lame, lameenc, pydub), primes with 576 samples and the decoder adds 529. Counting
      // them as audio overstated every such answer by 1105 samples (46 ms at 24 kHz); trimmed,
      // the error left is the end padding, under one frame.
      if (!adts_ && h.layer3 && frame_is_audio_) segment_.delay = kLameDelaySamples;
    }
    samples_per_frame_ = h.samples;
    skip_left_ = static_cast<uint64_t>(h.frame_bytes);
    state_ = State::kFrame;
    return absl::OkStatus();
  }

  // Counts the frame just completed; returns the seconds it adds after gapless trimming.
  double CompleteFrame() {
    Segment& s = segment_;
    const int64_t start = s.gross;
    s.gross += samples_per_frame_;
    ++s.frames;
    ++frames_;
    int64_t hi = kNoLimit;
    if (s.declared_frames > 0 && s.frames <= s.declared_frames) {
      hi = s.declared_frames * samples_per_frame_ - s.padding;
    }
    const int64_t add = Overlap(start, s.gross, s.delay, hi);
    samples_ += add;
    return rate_ > 0 ? static_cast<double>(add) / rate_ : 0;
  }

  absl::Status CheckSegmentComplete() const {
    if (segment_.declared_frames > 0 && segment_.frames < segment_.declared_frames) {
      return absl::InvalidArgumentError(absl::StrCat("MPEG audio truncated: ", segment_.frames,
                                                     " of ", segment_.declared_frames,
                                                     " frames the Xing/VBRI header announces"));
    }
    return absl::OkStatus();
  }

  absl::Status error_;
  State state_ = State::kSync;
  std::string carry_;
  std::string tail_;
  uint64_t skip_left_ = 0;
  uint64_t leading_zeros_ = 0;
  bool frame_is_audio_ = false;
  bool have_format_ = false;
  bool adts_ = false;
  uint32_t key_ = 0;
  int rate_ = 0;
  int channels_ = 0;
  int samples_per_frame_ = 0;
  int64_t frames_ = 0;  // audio frames, all segments
  int tag_frames_ = 0;
  int64_t samples_ = 0;  // after trimming, all segments
  Segment segment_;
};

// ------------------------------------------------------------------------------------------
// Ogg.

// Samples (48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1); 0 when malformed.
int OpusPacketSamples(absl::string_view packet) {
  if (packet.empty()) return 0;
  const auto toc = static_cast<unsigned char>(packet[0]);
  const int config = toc >> 3;
  int frame;
  if (config < 12) {
    static constexpr int kSilk[4] = {480, 960, 1920, 2880};
    frame = kSilk[config & 3];
  } else if (config < 16) {
    frame = (config & 1) ? 960 : 480;
  } else {
    static constexpr int kCelt[4] = {120, 240, 480, 960};
    frame = kCelt[config & 3];
  }
  switch (toc & 3) {
    case 0:
      return frame;
    case 1:
    case 2:
      return 2 * frame;
    default:
      return packet.size() < 2 ? 0 : frame * (static_cast<unsigned char>(packet[1]) & 0x3F);
  }
}

// Pages one at a time; the body of each page is checked against its CRC as it streams past.
// Only the first audio stream is measured: other multiplexed streams (Skeleton) are skipped,
// and a new stream starting after the previous one's end (a chained file) adds to it.
class OggMeter final : public AudioMeter {
 public:
  absl::StatusOr<AudioFeed> Feed(absl::string_view piece) override {
    if (!error_.ok()) return error_;
    AudioFeed feed;
    Reader r(carry_, piece);
    error_ = Run(r, feed);
    if (!error_.ok()) return error_;
    return feed;
  }

  absl::Status Finish() override {
    if (!error_.ok()) return error_;
    if (in_body_ || !carry_.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("Ogg page ", pages_ + 1, " truncated"));
    }
    if (link_active_) {
      return absl::InvalidArgumentError("Ogg stream ended without its end-of-stream page");
    }
    return absl::OkStatus();
  }

  double seconds() const override {
    return done_seconds_ + (rate_ > 0 ? static_cast<double>(link_samples_) / rate_ : 0);
  }
  int sample_rate() const override { return rate_; }
  int channels() const override { return channels_; }
  absl::string_view format() const override {
    switch (codec_) {
      case Codec::kOpus:
        return "opus";
      case Codec::kVorbis:
        return "vorbis";
      case Codec::kFlac:
        return "flac";
      default:
        return "";
    }
  }
  bool Reset() override {
    RenewKeeping(*this, carry_, lacing_, packet_head_);
    return true;
  }

 private:
  enum class Codec { kUnknown, kOpus, kVorbis, kFlac };
  static constexpr size_t kPacketHeadBytes = 64;

  absl::Status Run(Reader& r, AudioFeed& feed) {
    while (!r.empty()) {
      if (!in_body_) {
        const unsigned char* p = r.Peek(27);
        if (p == nullptr) return absl::OkStatus();
        if (std::memcmp(p, "OggS", 4) != 0 || p[4] != 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("not an Ogg page where page ", pages_ + 1, " should start"));
        }
        const size_t segments = p[26];
        p = r.Peek(27 + segments);
        if (p == nullptr) return absl::OkStatus();
        absl::Status st = BeginPage(p, segments);
        if (!st.ok()) return st;
        r.Skip(27 + segments);
        in_body_ = true;
      }
      absl::Status st = absl::OkStatus();
      body_left_ -= r.Consume(body_left_, [&](absl::string_view s) {
        crc_ = Crc32(crc_, s);
        if (tracked_page_ && st.ok()) st = Body(s, feed);
      });
      if (!st.ok()) return st;
      if (body_left_ > 0) return absl::OkStatus();
      if (tracked_page_) {
        // Packets of lacing value 0 at the end of the page complete without bytes.
        st = Body({}, feed);
        if (!st.ok()) return st;
      }
      st = EndPage(feed);
      if (!st.ok()) return st;
      in_body_ = false;
    }
    return absl::OkStatus();
  }

  absl::Status BeginPage(const unsigned char* p, size_t segments) {
    flags_ = p[5];
    granule_ = static_cast<int64_t>(Le64(p + 6));
    const uint32_t serial = Le32(p + 14);
    page_crc_ = Le32(p + 22);
    static constexpr unsigned char kZero[4] = {0, 0, 0, 0};
    crc_ = Crc32(0, absl::string_view(reinterpret_cast<const char*>(p), 22));
    crc_ = Crc32(crc_, absl::string_view(reinterpret_cast<const char*>(kZero), 4));
    crc_ = Crc32(crc_, absl::string_view(reinterpret_cast<const char*>(p + 26), 1 + segments));
    lacing_.assign(p + 27, p + 27 + segments);
    body_left_ = 0;
    for (unsigned char l : lacing_) body_left_ += l;
    segment_ = 0;
    segment_left_ = lacing_.empty() ? 0 : lacing_[0];
    page_packets_ = 0;
    page_opus_samples_ = 0;
    if (flags_ & 2) {  // beginning of a stream
      if (!link_active_) {
        // A new link: the first stream, or the next in a chain after the previous one ended.
        link_active_ = true;
        serial_ = serial;
        any_link_ = true;
        if (rate_ > 0) done_seconds_ += static_cast<double>(link_samples_) / rate_;
        link_samples_ = 0;
        codec_ = Codec::kUnknown;
        headers_ = 1;
        packet_index_ = 0;
        packet_head_.clear();
        started_ = false;
        pre_skip_ = 0;
      }
    } else if (!any_link_) {
      return absl::InvalidArgumentError("Ogg body does not start with a beginning-of-stream page");
    }
    tracked_page_ = link_active_ && serial == serial_;
    return absl::OkStatus();
  }

  // Walks the page body's bytes through the lacing table; a packet ends with a lacing value
  // below 255.
  absl::Status Body(absl::string_view s, AudioFeed& feed) {
    while (segment_ < lacing_.size()) {
      if (segment_left_ > 0) {
        if (s.empty()) return absl::OkStatus();
        const size_t n = std::min<size_t>(s.size(), segment_left_);
        if (packet_head_.size() < kPacketHeadBytes && NeedPacketHead()) {
          packet_head_.append(s.data(), std::min(n, kPacketHeadBytes - packet_head_.size()));
        }
        if (packet_index_ >= headers_) feed.audio_bytes += n;
        segment_left_ -= n;
        s.remove_prefix(n);
        if (segment_left_ > 0) return absl::OkStatus();
      }
      if (lacing_[segment_] < 255) {
        absl::Status st = OnPacket();
        if (!st.ok()) return st;
      }
      ++segment_;
      if (segment_ < lacing_.size()) segment_left_ = lacing_[segment_];
    }
    return absl::OkStatus();
  }

  bool NeedPacketHead() const {
    return packet_index_ < headers_ || (codec_ == Codec::kOpus && !started_);
  }

  absl::Status OnPacket() {
    const auto* p = U(packet_head_.data());
    const size_t n = packet_head_.size();
    if (packet_index_ == 0) {
      if (n >= 19 && std::memcmp(p, "OpusHead", 8) == 0) {
        if ((p[8] >> 4) != 0 || p[9] == 0) return absl::InvalidArgumentError("bad OpusHead");
        codec_ = Codec::kOpus;
        channels_ = p[9];
        pre_skip_ = p[10] | p[11] << 8;
        rate_ = 48000;  // Opus granules count 48 kHz samples whatever the input rate was
        headers_ = 2;
      } else if (n >= 30 && std::memcmp(p, "\x01vorbis", 7) == 0) {
        codec_ = Codec::kVorbis;
        channels_ = p[11];
        rate_ = static_cast<int>(Le32(p + 12));
        if (channels_ == 0 || rate_ <= 0) return absl::InvalidArgumentError("bad Vorbis header");
        headers_ = 3;
      } else if (n >= 51 &&
                 std::memcmp(p,
                             "\x7F"
                             "FLAC",
                             5) == 0 &&
                 std::memcmp(p + 9, "fLaC", 4) == 0) {
        codec_ = Codec::kFlac;
        const unsigned char* si = p + 17;
        rate_ = static_cast<int>(si[10] << 12 | si[11] << 4 | si[12] >> 4);
        channels_ = ((si[12] >> 1) & 7) + 1;
        const int more = p[7] << 8 | p[8];
        // 0 means "unknown": then the first packet that starts with a frame sync is audio.
        headers_ = more > 0 ? 1 + more : std::numeric_limits<int64_t>::max();
        if (rate_ <= 0) return absl::InvalidArgumentError("bad Ogg FLAC STREAMINFO");
      } else if (n >= 8 && std::memcmp(p, "fishead", 8) == 0) {
        link_active_ = false;  // Ogg Skeleton: metadata only; the audio stream's BOS follows
        any_link_ = true;
        tracked_page_ = false;
        return absl::OkStatus();
      } else {
        return absl::InvalidArgumentError("Ogg stream of an unsupported codec");
      }
    } else if (packet_index_ < headers_) {
      const bool ok = codec_ == Codec::kOpus     ? n >= 8 && std::memcmp(p, "OpusTags", 8) == 0
                      : codec_ == Codec::kVorbis ? n >= 7 && p[0] == 2 * packet_index_ + 1 &&
                                                       std::memcmp(p + 1, "vorbis", 6) == 0
                                                 : true;
      if (codec_ == Codec::kFlac && n >= 2 && p[0] == 0xFF && (p[1] & 0xFE) == 0xF8) {
        headers_ = packet_index_;  // the header count was not given; audio starts here
      } else if (!ok) {
        return absl::InvalidArgumentError("Ogg header packet missing");
      }
    }
    if (packet_index_ >= headers_) {
      ++page_packets_;
      if (codec_ == Codec::kOpus && !started_)
        page_opus_samples_ += OpusPacketSamples(packet_head_);
    }
    ++packet_index_;
    packet_head_.clear();
    return absl::OkStatus();
  }

  absl::Status EndPage(AudioFeed& feed) {
    ++pages_;
    if (crc_ != page_crc_) {
      return absl::InvalidArgumentError(absl::StrCat("Ogg page ", pages_, " fails its CRC"));
    }
    if (!tracked_page_) return absl::OkStatus();
    // −1 means no packet ends on the page; 2^62 samples are millions of years at 48 kHz, and
    // bounding them keeps the arithmetic below from overflowing on hostile input.
    if (granule_ < -1 || granule_ > (int64_t{1} << 62)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Ogg page ", pages_, " has granule ", granule_));
    }
    if (page_packets_ > 0 && granule_ != -1) {
      if (!started_) {
        // RFC 7845 §4.3: a stream may start at a non-zero granule (cut from a longer one): its
        // first sample is the first audio page's granule less the samples on that page. A
        // last page may be short (end trimming), so it cannot say where the stream starts.
        start_ = 0;
        if (codec_ == Codec::kOpus && !(flags_ & 4)) {
          start_ = std::max<int64_t>(0, granule_ - page_opus_samples_);
        }
        last_granule_ = start_;
        started_ = true;
      }
      if (granule_ < last_granule_) {
        return absl::InvalidArgumentError("Ogg granule position went backwards");
      }
      const int64_t add = Overlap(last_granule_, granule_, start_ + pre_skip_, kNoLimit);
      last_granule_ = granule_;
      link_samples_ += add;
      feed.audio_s += static_cast<double>(add) / rate_;
    }
    if (flags_ & 4) link_active_ = false;  // end of stream: a chained link may follow
    return absl::OkStatus();
  }

  absl::Status error_;
  std::string carry_;
  bool in_body_ = false;
  int64_t pages_ = 0;
  // The page being read.
  uint8_t flags_ = 0;
  int64_t granule_ = 0;
  uint32_t page_crc_ = 0;
  uint32_t crc_ = 0;
  std::vector<unsigned char> lacing_;
  uint64_t body_left_ = 0;
  size_t segment_ = 0;
  size_t segment_left_ = 0;
  bool tracked_page_ = false;
  int page_packets_ = 0;  // audio packets completed on this page
  int64_t page_opus_samples_ = 0;
  // The stream (link) being measured.
  bool any_link_ = false;
  bool link_active_ = false;
  uint32_t serial_ = 0;
  Codec codec_ = Codec::kUnknown;
  int64_t headers_ = 1;
  int64_t packet_index_ = 0;
  std::string packet_head_;
  bool started_ = false;
  int64_t start_ = 0;
  int64_t pre_skip_ = 0;
  int64_t last_granule_ = 0;
  int64_t link_samples_ = 0;
  double done_seconds_ = 0;  // links already ended
  int rate_ = 0;
  int channels_ = 0;
};

// ------------------------------------------------------------------------------------------
// FLAC.

struct FlacFrameHeader {
  bool variable = false;  // blocking strategy: `number` is a sample number, else a frame number
  uint64_t number = 0;
  int block = 0;
  int rate = 0;  // 0: as STREAMINFO says
  int channels = 0;
  size_t bytes = 0;
};

// Needs up to 16 bytes at p; `n` is how many there are.
std::optional<FlacFrameHeader> ParseFlacFrameHeader(const unsigned char* p, size_t n) {
  if (n < 6 || p[0] != 0xFF || (p[1] & 0xFE) != 0xF8) return std::nullopt;
  FlacFrameHeader h;
  h.variable = p[1] & 1;
  const int block_code = p[2] >> 4;
  const int rate_code = p[2] & 0xF;
  const int channel_code = p[3] >> 4;
  if (block_code == 0 || rate_code == 15 || channel_code > 10 || ((p[3] >> 1) & 7) == 3 ||
      (p[3] & 1)) {
    return std::nullopt;
  }
  h.channels = channel_code < 8 ? channel_code + 1 : 2;
  // The UTF-8-like coded frame or sample number.
  size_t i = 4;
  int extra = 0;
  if (p[i] < 0x80) {
    h.number = p[i];
  } else if (p[i] >= 0xC0 && p[i] < 0xFF) {
    extra = p[i] >= 0xFE   ? 6
            : p[i] >= 0xFC ? 5
            : p[i] >= 0xF8 ? 4
            : p[i] >= 0xF0 ? 3
            : p[i] >= 0xE0 ? 2
                           : 1;
    h.number = p[i] & (0x3F >> extra);
  } else {
    return std::nullopt;
  }
  if (i + 1 + extra > n) return std::nullopt;
  for (int k = 1; k <= extra; ++k) {
    if ((p[i + k] & 0xC0) != 0x80) return std::nullopt;
    h.number = h.number << 6 | (p[i + k] & 0x3F);
  }
  i += 1 + extra;
  if (block_code == 1) {
    h.block = 192;
  } else if (block_code <= 5) {
    h.block = 576 << (block_code - 2);
  } else if (block_code == 6) {
    if (i + 1 > n) return std::nullopt;
    h.block = p[i++] + 1;
  } else if (block_code == 7) {
    if (i + 2 > n) return std::nullopt;
    h.block = (p[i] << 8 | p[i + 1]) + 1;
    i += 2;
  } else {
    h.block = 256 << (block_code - 8);
  }
  static constexpr int kRates[12] = {0,     88200, 176400, 192000, 8000,  16000,
                                     22050, 24000, 32000,  44100,  48000, 96000};
  if (rate_code < 12) {
    h.rate = kRates[rate_code];
  } else {
    const size_t len = rate_code == 12 ? 1 : 2;
    if (i + len > n) return std::nullopt;
    const int v = len == 1 ? p[i] : p[i] << 8 | p[i + 1];
    h.rate = rate_code == 12 ? v * 1000 : rate_code == 13 ? v : v * 10;
    i += len;
  }
  if (i + 1 > n || Crc8(p, i) != p[i]) return std::nullopt;
  h.bytes = i + 1;
  return h;
}

// Metadata blocks streamed past (STREAMINFO kept), then frames. A frame has no length field:
// the next one is found by its sync code where the CRC-16 of the bytes since the previous
// header comes to zero (that frame's footer just ended) and the header's CRC-8, numbering and
// format agree. This is how ffmpeg's FLAC parser finds frames too.
class FlacMeter final : public AudioMeter {
 public:
  absl::StatusOr<AudioFeed> Feed(absl::string_view piece) override {
    if (!error_.ok()) return error_;
    AudioFeed feed;
    error_ = Run(piece, feed, /*at_end=*/false);
    if (!error_.ok()) return error_;
    return feed;
  }

  absl::Status Finish() override {
    if (!error_.ok()) return error_;
    if (state_ != State::kFrames) {
      return absl::InvalidArgumentError("FLAC ended inside its metadata");
    }
    AudioFeed feed;
    error_ = Run({}, feed, /*at_end=*/true);
    if (!error_.ok()) return error_;
    if (in_frame_ && crc16_ != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("FLAC frame ", frames_ + 1, " truncated (CRC-16 mismatch)"));
    }
    if (total_samples_ > 0 && samples_ != total_samples_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "FLAC has ", samples_, " samples in its frames but STREAMINFO says ", total_samples_));
    }
    return absl::OkStatus();
  }

  double seconds() const override { return rate_ > 0 ? static_cast<double>(samples_) / rate_ : 0; }
  int sample_rate() const override { return rate_; }
  int channels() const override { return channels_; }
  absl::string_view format() const override { return "flac"; }
  bool Reset() override {
    RenewKeeping(*this, carry_, buf_);
    return true;
  }

 private:
  enum class State { kMagic, kBlockHeader, kStreamInfo, kSkipBlock, kFrames };
  static constexpr size_t kLookahead = 16;  // the longest frame header

  absl::Status Run(absl::string_view piece, AudioFeed& feed, bool at_end) {
    Reader r(carry_, piece);
    while (state_ != State::kFrames && !r.empty()) {
      switch (state_) {
        case State::kMagic: {
          const unsigned char* p = r.Peek(4);
          if (p == nullptr) return absl::OkStatus();
          if (std::memcmp(p, "fLaC", 4) != 0) return absl::InvalidArgumentError("not FLAC");
          r.Skip(4);
          state_ = State::kBlockHeader;
          break;
        }
        case State::kBlockHeader: {
          const unsigned char* p = r.Peek(4);
          if (p == nullptr) return absl::OkStatus();
          last_block_ = p[0] & 0x80;
          const int type = p[0] & 0x7F;
          block_left_ = Be24(p + 1);
          if (!have_info_ && (type != 0 || block_left_ != 34)) {
            return absl::InvalidArgumentError("FLAC does not start with STREAMINFO");
          }
          if (type == 127) return absl::InvalidArgumentError("invalid FLAC metadata block");
          r.Skip(4);
          state_ = type == 0 && !have_info_ ? State::kStreamInfo : State::kSkipBlock;
          break;
        }
        case State::kStreamInfo: {
          const unsigned char* si = r.Peek(34);
          if (si == nullptr) return absl::OkStatus();
          max_block_ = si[2] << 8 | si[3];
          rate_ = si[10] << 12 | si[11] << 4 | si[12] >> 4;
          channels_ = ((si[12] >> 1) & 7) + 1;
          total_samples_ = static_cast<int64_t>(uint64_t{si[13] & 0xFu} << 32 | Be32(si + 14));
          if (rate_ == 0) return absl::InvalidArgumentError("FLAC STREAMINFO has rate 0");
          have_info_ = true;
          r.Skip(34);
          state_ = last_block_ ? State::kFrames : State::kBlockHeader;
          break;
        }
        case State::kSkipBlock:
          block_left_ -= r.Skip(block_left_);
          if (block_left_ > 0) return absl::OkStatus();
          state_ = last_block_ ? State::kFrames : State::kBlockHeader;
          break;
        case State::kFrames:
          break;
      }
    }
    if (state_ != State::kFrames) return absl::OkStatus();
    r.Consume(~uint64_t{0}, [&](absl::string_view s) { buf_.append(s.data(), s.size()); });
    return Scan(feed, at_end);
  }

  absl::Status Scan(AudioFeed& feed, bool at_end) {
    const auto* b = U(buf_.data());
    const size_t size = buf_.size();
    const size_t limit = at_end ? size : (size > kLookahead ? size - kLookahead : 0);
    size_t i = 0;
    if (!in_frame_) {
      if (size == 0 || (!at_end && size < kLookahead)) return absl::OkStatus();
      std::optional<FlacFrameHeader> h = ParseFlacFrameHeader(b, size);
      if (!h || !Fits(*h)) return absl::InvalidArgumentError("no FLAC frame after the metadata");
      feed.audio_s += BeginFrame(*h);
    }
    for (; i < limit; ++i) {
      if (b[i] == 0xFF && crc16_ == 0 && frame_bytes_ >= min_frame_bytes_) {
        std::optional<FlacFrameHeader> h = ParseFlacFrameHeader(b + i, size - i);
        if (h && Follows(*h) && Fits(*h)) {
          ++frames_;
          feed.audio_s += BeginFrame(*h);
        }
      }
      crc16_ = static_cast<uint16_t>((crc16_ << 8) ^ kCrc16[((crc16_ >> 8) ^ b[i]) & 0xFF]);
      ++frame_bytes_;
    }
    feed.audio_bytes += i;
    buf_.erase(0, i);
    return absl::OkStatus();
  }

  // The header's format agrees with STREAMINFO.
  bool Fits(const FlacFrameHeader& h) const {
    return (h.rate == 0 || h.rate == rate_) && h.channels == channels_ &&
           (max_block_ == 0 || h.block <= max_block_);
  }
  // The header numbers the frame right after the current one.
  bool Follows(const FlacFrameHeader& h) const {
    if (h.variable != current_.variable) return false;
    return h.variable ? h.number == current_.number + static_cast<uint64_t>(current_.block)
                      : h.number == current_.number + 1;
  }

  // A frame counts from its header: nothing marks where it ends but the next header (or the end
  // of the body), so counting at completion would leave the last frame out of the per-piece
  // durations. Finish fails if it turns out truncated.
  double BeginFrame(const FlacFrameHeader& h) {
    current_ = h;
    in_frame_ = true;
    crc16_ = 0;
    frame_bytes_ = 0;
    min_frame_bytes_ = h.bytes + 3;  // a subframe byte and the CRC-16 at least
    samples_ += h.block;
    return static_cast<double>(h.block) / rate_;
  }

  absl::Status error_;
  State state_ = State::kMagic;
  std::string carry_;
  std::string buf_;
  bool last_block_ = false;
  bool have_info_ = false;
  uint64_t block_left_ = 0;
  int max_block_ = 0;
  int rate_ = 0;
  int channels_ = 0;
  int64_t total_samples_ = 0;
  bool in_frame_ = false;
  FlacFrameHeader current_;
  uint16_t crc16_ = 0;
  size_t frame_bytes_ = 0;
  size_t min_frame_bytes_ = 0;
  int64_t frames_ = 0;
  int64_t samples_ = 0;
};

// ------------------------------------------------------------------------------------------
// Sniffing.

enum class Kind { kNeedMore, kUnknown, kWav, kMpeg, kOgg, kFlac, kText, kWebm, kMp4 };

constexpr size_t kTextProbe = 16;
constexpr size_t kMaxSniff = 16 << 10;

bool LooksLikeText(absl::string_view b) {
  const size_t n = std::min(b.size(), kTextProbe);
  if (n < 2) return false;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(b[i]);
    if ((c < 0x20 || c > 0x7E) && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

// What the body is by its first bytes. `verify_sync`: a bare MPEG/ADTS sync counts only when a
// second frame header follows where the first frame ends, since raw PCM can start with 0xFFFx.
Kind Sniff(absl::string_view b, bool at_end, bool verify_sync) {
  if (b.size() < 4 && !at_end) return Kind::kNeedMore;
  const auto* p = U(b.data());
  if (b.size() >= 4) {
    if (absl::StartsWith(b, "RIFF") || absl::StartsWith(b, "RF64")) return Kind::kWav;
    if (absl::StartsWith(b, "OggS")) return Kind::kOgg;
    if (absl::StartsWith(b, "fLaC")) return Kind::kFlac;
    if (absl::StartsWith(b, "ID3") && p[3] >= 2 && p[3] <= 4) return Kind::kMpeg;
    if (absl::StartsWith(b, "\x1A\x45\xDF\xA3")) return Kind::kWebm;
    if (b.size() >= 8 && b.substr(4, 4) == "ftyp") return Kind::kMp4;
    if (IsMpegSync(p)) {
      const size_t hb = HeaderBytes(p);
      if (b.size() < hb) return at_end ? Kind::kUnknown : Kind::kNeedMore;
      std::optional<FrameHeader> h = ParseFrameHeader(p);
      if (h && !verify_sync) return Kind::kMpeg;
      if (h) {
        const size_t next = static_cast<size_t>(h->frame_bytes);
        if (b.size() >= next + 7) {
          std::optional<FrameHeader> h2 = ParseFrameHeader(p + next);
          if (h2 && h2->key == h->key) return Kind::kMpeg;
        } else if (at_end) {
          if (b.size() == next) return Kind::kMpeg;
        } else if (b.size() < kMaxSniff) {
          return Kind::kNeedMore;
        }
      }
    }
  }
  if (b.size() < kTextProbe && !at_end) return Kind::kNeedMore;
  if (LooksLikeText(b)) return Kind::kText;
  return Kind::kUnknown;
}

// Buffers the first bytes until Sniff decides, then hands everything to the meter for what the
// body is; `fallback` (the requested format) when no signature matches.
class SniffingMeter final : public AudioMeter {
 public:
  SniffingMeter(std::unique_ptr<AudioMeter> fallback, bool verify_sync)
      : fallback_(std::move(fallback)), verify_sync_(verify_sync) {}

  absl::StatusOr<AudioFeed> Feed(absl::string_view piece) override {
    if (inner_ != nullptr) return inner_->Feed(piece);
    if (!error_.ok()) return error_;
    if (pending_.empty()) {
      // Usually the first piece decides: no copy.
      const Kind kind = Sniff(piece, false, verify_sync_);
      if (kind != Kind::kNeedMore) return Decide(kind, piece);
    }
    pending_.append(piece.data(), piece.size());
    const Kind kind = Sniff(pending_, false, verify_sync_);
    if (kind == Kind::kNeedMore) return AudioFeed{};
    return DecidePending(kind);
  }

  absl::Status Finish() override {
    if (!error_.ok()) return error_;
    if (inner_ == nullptr) {
      if (pending_.empty()) return absl::OkStatus();  // no body: empty audio, not invalid
      auto feed = DecidePending(Sniff(pending_, true, verify_sync_));
      if (!feed.ok()) return feed.status();
    }
    return inner_->Finish();
  }
  double seconds() const override { return inner_ ? inner_->seconds() : 0; }
  int sample_rate() const override { return inner_ ? inner_->sample_rate() : 0; }
  int channels() const override { return inner_ ? inner_->channels() : 0; }
  absl::string_view format() const override { return inner_ ? inner_->format() : ""; }
  // The meters made for earlier answers are kept (one per kind) and reset when the next answer
  // is of the same kind, so a connection's answers after the first allocate nothing here.
  bool Reset() override {
    if (fallback_ != nullptr && !fallback_->Reset()) return false;
    inner_ = nullptr;
    error_ = absl::OkStatus();
    pending_.clear();
    return true;
  }

 private:
  absl::StatusOr<AudioFeed> Decide(Kind kind, absl::string_view bytes) {
    error_ = Choose(kind, bytes);
    if (!error_.ok()) return error_;
    return inner_->Feed(bytes);
  }
  // Decides on the buffered first bytes, then empties the buffer (keeping its capacity).
  absl::StatusOr<AudioFeed> DecidePending(Kind kind) {
    auto feed = Decide(kind, pending_);
    pending_.clear();
    return feed;
  }

  // `slot`'s meter, reset when it served an earlier answer, else made by `make`.
  AudioMeter* Reuse(std::unique_ptr<AudioMeter>& slot, std::unique_ptr<AudioMeter> (*make)()) {
    if (slot == nullptr || !slot->Reset()) slot = make();
    return slot.get();
  }

  absl::Status Choose(Kind kind, absl::string_view bytes) {
    switch (kind) {
      case Kind::kWav:
        inner_ = Reuse(wav_, MakeWavMeter);
        break;
      case Kind::kMpeg:
        inner_ = Reuse(mpeg_, MakeMpegMeter);
        break;
      case Kind::kOgg:
        inner_ = Reuse(ogg_, MakeOggMeter);
        break;
      case Kind::kFlac:
        inner_ = Reuse(flac_, MakeFlacMeter);
        break;
      case Kind::kText:
        return absl::InvalidArgumentError(
            absl::StrCat("body is text, not audio: \"", absl::CEscape(bytes.substr(0, 64)), "\""));
      case Kind::kWebm:
        return absl::InvalidArgumentError("WebM/Matroska audio is not supported");
      case Kind::kMp4:
        return absl::InvalidArgumentError("MP4/M4A audio is not supported");
      case Kind::kNeedMore:
      case Kind::kUnknown:
        if (fallback_ == nullptr) {
          return absl::InvalidArgumentError("body is not audio of any known format");
        }
        inner_ = fallback_.get();
        break;
    }
    return absl::OkStatus();
  }

  std::unique_ptr<AudioMeter> fallback_;  // the requested format's meter
  bool verify_sync_;
  absl::Status error_;
  AudioMeter* inner_ = nullptr;  // the meter of this answer: fallback_ or one of the below
  std::unique_ptr<AudioMeter> wav_, mpeg_, ogg_, flac_;
  std::string pending_;
};

enum class Family { kNone, kWav, kPcm, kMpeg, kOgg, kFlac };

struct Requested {
  Family family = Family::kNone;
  PcmEncoding encoding = PcmEncoding::kS16le;
};

std::optional<Requested> FromFormat(absl::string_view f) {
  auto pcm = [](PcmEncoding e) { return Requested{Family::kPcm, e}; };
  if (f == "wav" || f == "wave") return Requested{Family::kWav};
  if (f == "pcm" || f == "pcm_s16le" || f == "s16le" || f == "l16" || f == "raw") {
    return pcm(PcmEncoding::kS16le);
  }
  if (f == "pcm_f32le" || f == "f32le" || f == "float") return pcm(PcmEncoding::kF32le);
  if (f == "ulaw" || f == "mulaw" || f == "mu-law" || f == "pcm_mulaw" || f == "g711_ulaw") {
    return pcm(PcmEncoding::kMulaw);
  }
  if (f == "alaw" || f == "a-law" || f == "pcm_alaw" || f == "g711_alaw") {
    return pcm(PcmEncoding::kAlaw);
  }
  if (f == "mp3" || f == "mpeg" || f == "aac" || f == "adts") return Requested{Family::kMpeg};
  if (f == "opus" || f == "ogg" || f == "vorbis" || f == "oga") return Requested{Family::kOgg};
  if (f == "flac") return Requested{Family::kFlac};
  if (f.empty() || f == "auto") return Requested{};
  return std::nullopt;
}

// For format "auto": the Content-Type's media type.
Requested FromContentType(absl::string_view content_type) {
  std::string mime = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';'))));
  const absl::string_view m = mime;
  if (m == "audio/wav" || m == "audio/wave" || m == "audio/x-wav" || m == "audio/vnd.wave") {
    return {Family::kWav};
  }
  if (m == "audio/mpeg" || m == "audio/mp3" || m == "audio/aac" || m == "audio/aacp" ||
      m == "audio/x-aac") {
    return {Family::kMpeg};
  }
  if (m == "audio/ogg" || m == "audio/opus" || m == "audio/vorbis" || m == "application/ogg") {
    return {Family::kOgg};
  }
  if (m == "audio/flac" || m == "audio/x-flac") return {Family::kFlac};
  if (m == "audio/basic" || m == "audio/pcmu") return {Family::kPcm, PcmEncoding::kMulaw};
  if (m == "audio/pcma") return {Family::kPcm, PcmEncoding::kAlaw};
  if (m == "audio/pcm" || m == "audio/l16" || m == "audio/raw") return {Family::kPcm};
  return {};
}

}  // namespace

std::unique_ptr<AudioMeter> MakeMpegMeter() { return std::make_unique<MpegMeter>(); }
std::unique_ptr<AudioMeter> MakeOggMeter() { return std::make_unique<OggMeter>(); }
std::unique_ptr<AudioMeter> MakeFlacMeter() { return std::make_unique<FlacMeter>(); }

absl::StatusOr<std::unique_ptr<AudioMeter>> MakeMeter(const MeterOptions& options) {
  const std::string format = absl::AsciiStrToLower(options.format);
  std::optional<Requested> req = FromFormat(format);
  if (!req) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported audio format '", format, "'"));
  }
  if (req->family == Family::kNone) req = FromContentType(options.content_type);
  std::unique_ptr<AudioMeter> fallback;
  switch (req->family) {
    case Family::kNone:
      break;
    case Family::kWav:
      fallback = MakeWavMeter();
      break;
    case Family::kPcm: {
      int rate = RateFromContentType(options.content_type);
      if (rate == 0) rate = options.sample_rate;
      if (rate <= 0) return absl::InvalidArgumentError("raw PCM needs a sample rate");
      int channels = ChannelsFromContentType(options.content_type);
      if (channels == 0) channels = options.channels;
      if (channels <= 0) return absl::InvalidArgumentError("raw PCM needs a channel count");
      fallback = MakePcmMeter(rate, channels, req->encoding);
      break;
    }
    case Family::kMpeg:
      fallback = MakeMpegMeter();
      break;
    case Family::kOgg:
      fallback = MakeOggMeter();
      break;
    case Family::kFlac:
      fallback = MakeFlacMeter();
      break;
  }
  return std::unique_ptr<AudioMeter>(
      std::make_unique<SniffingMeter>(std::move(fallback), req->family == Family::kPcm));
}

absl::string_view RawPcmFormat(const MeterOptions& options) {
  std::optional<Requested> req = FromFormat(absl::AsciiStrToLower(options.format));
  if (req && req->family == Family::kNone) req = FromContentType(options.content_type);
  switch (req ? req->encoding : PcmEncoding::kS16le) {
    case PcmEncoding::kF32le:
      return "pcm_f32le";
    case PcmEncoding::kMulaw:
      return "ulaw";
    case PcmEncoding::kAlaw:
      return "alaw";
    case PcmEncoding::kS24le:
      return "pcm_s24le";
    case PcmEncoding::kS32le:
      return "pcm_s32le";
    case PcmEncoding::kS16le:
      break;
  }
  return "pcm_s16le";
}

absl::StatusOr<DecodedAudio> DecodeWithSndfile(absl::string_view body) {
  SndfileMemory file{body, 0};
  SF_INFO info{};
  SNDFILE* sf = OpenSndfileMemory(file, info);
  if (sf == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("libsndfile: ", sf_strerror(nullptr)));
  }
  DecodedAudio out;
  out.sample_rate = info.samplerate;
  out.channels = info.channels;
  std::vector<float> buf(4096 * static_cast<size_t>(std::max(info.channels, 1)));
  for (sf_count_t n; (n = sf_readf_float(sf, buf.data(), 4096)) > 0;) out.frames += n;
  const int err = sf_error(sf);
  sf_close(sf);
  if (err != SF_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("libsndfile: ", sf_error_number(err)));
  }
  return out;
}

}  // namespace ttsbench::common
