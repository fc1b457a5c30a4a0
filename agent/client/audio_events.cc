#include "agent/client/audio_events.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ttsbench::agent {
namespace {

namespace json = boost::json;

// protobuf's JSON parser, which read these messages before, nested up to 100 levels.
constexpr size_t kMaxDepth = 100;

// A field the spec names, as found in the message.
struct Field {
  enum class Kind { kAbsent, kNull, kBool, kNumber, kString, kObject, kArray };
  std::string path;       // dotted
  bool is_audio = false;  // one of spec.audio_fields
  Kind kind = Kind::kAbsent;
  bool boolean = false;
  double number = 0;
  std::string text;  // unescaped, when the string came in parts; keeps its capacity
  // The string's value: into the message itself when it came whole and unescaped (no copy:
  // an answer's base64 audio is most of its bytes), else text.
  absl::string_view value;

  // A present value that counts as set: true, a non-empty string, a non-zero number, an object
  // or an array.
  bool Truthy() const {
    switch (kind) {
      case Kind::kBool:
        return boolean;
      case Kind::kString:
        return !value.empty();
      case Kind::kNumber:
        return number != 0;
      case Kind::kObject:
      case Kind::kArray:
        return true;
      default:
        return false;
    }
  }
};

constexpr size_t kHeadBytes = 200;  // of a message, in a server's error report

// Boost.JSON basic_parser handler: follows the path of objects from the root and records the
// values found at the paths of `fields`; everything else is only validated.
class FieldHandler {
 public:
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);

  std::vector<Field> fields;

  // A message read in pieces: strings are copied (the pieces do not outlive the write), and
  // the first audio string is base64-decoded part by part into `sink` instead of kept.
  bool streaming = false;
  const AudioEventParser::AudioSink* sink = nullptr;  // set during each write
  absl::Status audio_status;                          // why the handler stopped the parse
  enum class Audio { kNone, kStreaming, kDone };
  Audio audio = Audio::kNone;

  // `input`: the message about to be parsed, which outlives the parse ("" when streaming).
  void Reset(absl::string_view input, bool streamed) {
    input_ = input;
    streaming = streamed;
    audio_status = absl::OkStatus();
    audio = Audio::kNone;
    audio_at_ = -1;
    base64_.Reset();
    for (Field& f : fields) Clear(f);
    frames_.clear();
    path_.clear();
    key_.clear();
    pending_ = -1;
  }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    Field* f = Take();
    if (f != nullptr) f->kind = Field::Kind::kObject;
    // Keys below are followed only along objects from the root, as a dotted path would be.
    const bool followed = frames_.empty() || (frames_.back().followed && key_followed_);
    frames_.push_back(Frame{path_.size(), followed});
    if (followed && frames_.size() > 1) path_ = key_path_;
    return true;
  }
  bool on_object_end(size_t, json::error_code&) { return Pop(); }
  bool on_array_begin(json::error_code&) {
    Field* f = Take();
    if (f != nullptr) f->kind = Field::Kind::kArray;
    frames_.push_back(Frame{path_.size(), false});
    return true;
  }
  bool on_array_end(size_t, json::error_code&) { return Pop(); }
  bool on_key_part(json::string_view s, size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, size_t, json::error_code&) {
    pending_ = -1;
    key_followed_ = false;
    if (frames_.empty() || !frames_.back().followed) {
      key_.clear();
      return true;
    }
    key_.append(s.data(), s.size());
    // A key holding a dot is never reached by a dotted path.
    key_followed_ = key_.find('.') == std::string::npos;
    key_path_.assign(path_);
    if (!key_path_.empty()) key_path_.push_back('.');
    key_path_.append(key_);
    key_.clear();
    if (!key_followed_) return true;
    for (size_t i = 0; i < fields.size(); ++i) {
      Field& f = fields[i];
      if (f.path == key_path_) {
        pending_ = static_cast<int>(i);
        Clear(f);  // a repeated key: the last one counts
      } else if (f.path.size() > key_path_.size() && absl::StartsWith(f.path, key_path_) &&
                 f.path[key_path_.size()] == '.') {
        Clear(f);  // below a repeated key
      }
    }
    return true;
  }
  bool on_string_part(json::string_view s, size_t, json::error_code& ec) {
    if (pending_ >= 0) {
      Field& f = fields[static_cast<size_t>(pending_)];
      f.kind = Field::Kind::kString;
      if (streaming && f.is_audio) return StreamAudio(s, /*last=*/false, ec);
      f.text.append(s.data(), s.size());
    }
    return true;
  }
  bool on_string(json::string_view s, size_t, json::error_code& ec) {
    if (pending_ >= 0 && streaming) {
      Field& f = fields[static_cast<size_t>(pending_)];
      f.kind = Field::Kind::kString;
      if (f.is_audio) {
        const bool ok = StreamAudio(s, /*last=*/true, ec);
        pending_ = -1;
        return ok;
      }
      f.text.append(s.data(), s.size());
      f.value = f.text;
    } else if (pending_ >= 0) {
      Field& f = fields[static_cast<size_t>(pending_)];
      // Whole and unescaped, it lies in the message; escaped, it is in the parser's temporary
      // buffer, gone after this call.
      const auto at = reinterpret_cast<uintptr_t>(s.data());
      const auto begin = reinterpret_cast<uintptr_t>(input_.data());
      if (f.text.empty() && at >= begin && at + s.size() <= begin + input_.size()) {
        f.kind = Field::Kind::kString;
        f.value = absl::string_view(s.data(), s.size());
      } else {
        on_string_part(s, 0, ec);
        f.value = f.text;
      }
    }
    pending_ = -1;
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t v, json::string_view, json::error_code&) {
    return Number(static_cast<double>(v));
  }
  bool on_uint64(uint64_t v, json::string_view, json::error_code&) {
    return Number(static_cast<double>(v));
  }
  bool on_double(double v, json::string_view, json::error_code&) { return Number(v); }
  bool on_bool(bool v, json::error_code&) {
    if (Field* f = Take(); f != nullptr) {
      f->kind = Field::Kind::kBool;
      f->boolean = v;
    }
    return true;
  }
  bool on_null(json::error_code&) {
    if (Field* f = Take(); f != nullptr) f->kind = Field::Kind::kNull;
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    size_t path_size;  // path_ of the container's parent object, restored when it ends
    bool followed;     // an object reached from the root through objects only
  };

  // A part of an audio string in a streamed message: the first audio string is decoded into
  // the sink; any other one is only validated as JSON.
  bool StreamAudio(json::string_view s, bool last, json::error_code& ec) {
    if (audio == Audio::kDone || (audio == Audio::kStreaming && audio_at_ != pending_)) {
      return true;
    }
    audio = Audio::kStreaming;
    audio_at_ = pending_;
    absl::string_view out;
    bool ok = base64_.Write(absl::string_view(s.data(), s.size()), &out);
    if (ok && !out.empty()) audio_status = (*sink)(out);
    if (ok && audio_status.ok() && last) {
      audio = Audio::kDone;
      ok = base64_.Finish(&out);
      if (ok && !out.empty()) audio_status = (*sink)(out);
    }
    if (!ok) audio_status = absl::InvalidArgumentError("audio is not base64");
    if (audio_status.ok()) return true;
    ec = json::error::syntax;
    return false;
  }

  static void Clear(Field& f) {
    f.kind = Field::Kind::kAbsent;
    f.text.clear();
    f.value = {};
  }

  // The field the value now starting belongs to, if any.
  Field* Take() {
    if (pending_ < 0) return nullptr;
    Field* f = &fields[static_cast<size_t>(pending_)];
    pending_ = -1;
    return f;
  }
  bool Number(double v) {
    if (Field* f = Take(); f != nullptr) {
      f->kind = Field::Kind::kNumber;
      f->number = v;
    }
    return true;
  }
  bool Pop() {
    path_.resize(frames_.back().path_size);
    frames_.pop_back();
    pending_ = -1;
    return true;
  }

  absl::string_view input_;
  std::vector<Frame> frames_;
  std::string path_;      // dotted path of the innermost followed object
  std::string key_;       // a key arriving in parts
  std::string key_path_;  // path_ + the current key
  bool key_followed_ = false;
  int pending_ = -1;   // index into fields of the value about to start
  int audio_at_ = -1;  // streaming: the field whose string is being decoded
  Base64Stream base64_;
};

json::parse_options Options() {
  json::parse_options o;
  o.max_depth = kMaxDepth;
  return o;
}

bool Contains(const std::vector<std::string>& list, absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// The server's own words, for the record's error_detail: the event, cut to a console line.
absl::Status ServerReportedError(absl::string_view event) {
  constexpr size_t kMaxBytes = 200;
  return absl::FailedPreconditionError(
      absl::StrCat("the server reported an error: ", event.substr(0, kMaxBytes),
                   event.size() > kMaxBytes ? "..." : ""));
}

// ---------------------------------------------------------------------------------------------
// Base64

constexpr std::array<int8_t, 256> MakeBase64Table() {
  std::array<int8_t, 256> t{};
  for (int8_t& v : t) v = -1;
  constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kBase64 = MakeBase64Table();

bool IsBase64Space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool IsBase64Pad(unsigned char c) { return c == '=' || c == '.'; }

// Decodes src[0, n) into `out` (room for 3 * (n / 4) + 2 bytes) with absl's grammar; returns
// the bytes written or -1.
int64_t DecodeScalar(const unsigned char* src, size_t n, char* out) {
  size_t i = 0;
  size_t o = 0;
  // Whole quads of alphabet characters: the common case.
  while (i + 4 <= n) {
    const int32_t a = kBase64[src[i]], b = kBase64[src[i + 1]], c = kBase64[src[i + 2]],
                  d = kBase64[src[i + 3]];
    if ((a | b | c | d) < 0) break;
    const uint32_t v = static_cast<uint32_t>(a) << 18 | static_cast<uint32_t>(b) << 12 |
                       static_cast<uint32_t>(c) << 6 | static_cast<uint32_t>(d);
    out[o] = static_cast<char>(v >> 16);
    out[o + 1] = static_cast<char>(v >> 8);
    out[o + 2] = static_cast<char>(v);
    o += 3;
    i += 4;
  }
  // The rest one character at a time: whitespace skipped, padding ends the data.
  uint32_t acc = 0;
  int state = 0;  // characters in acc
  for (; i < n; ++i) {
    const int32_t v = kBase64[src[i]];
    if (v < 0) {
      if (IsBase64Space(src[i])) continue;
      if (IsBase64Pad(src[i])) break;
      return -1;
    }
    acc = acc << 6 | static_cast<uint32_t>(v);
    if (++state == 4) {
      out[o] = static_cast<char>(acc >> 16);
      out[o + 1] = static_cast<char>(acc >> 8);
      out[o + 2] = static_cast<char>(acc);
      o += 3;
      acc = 0;
      state = 0;
    }
  }
  int expected_pad = 0;
  switch (state) {
    case 1:
      return -1;  // six bits cannot make a byte
    case 2:
      out[o++] = static_cast<char>(acc >> 4);
      expected_pad = 2;
      break;
    case 3:
      out[o] = static_cast<char>(acc >> 10);
      out[o + 1] = static_cast<char>(acc >> 2);
      o += 2;
      expected_pad = 1;
      break;
    default:
      break;
  }
  // After the data: padding and whitespace only, and no padding or exactly the right amount.
  int pad = 0;
  for (; i < n; ++i) {
    if (IsBase64Pad(src[i])) {
      ++pad;
    } else if (!IsBase64Space(src[i])) {
      return -1;
    }
  }
  if (pad != 0 && pad != expected_pad) return -1;
  return static_cast<int64_t>(o);
}

// 32 characters at a time while all are in the alphabet (W. Mula and D. Lemire, "Faster Base64
// Encoding and Decoding Using AVX2 Instructions", 2018: nibble lookups classify and translate,
// multiply-adds pack 6-bit values). Writes 32 bytes per 24 decoded: `out` needs 8 bytes of
// slack. Returns the characters consumed, a multiple of 32; the caller decodes the rest.
__attribute__((target("avx2"))) size_t DecodeAvx2(const unsigned char* src, size_t n, char* out) {
  // clang-format off
  // Classification: a byte is outside the alphabet when lut_lo[low nibble] & lut_hi[high
  // nibble] != 0. Translation: value = byte + lut_roll[high nibble, or 1 for '/'].
  const __m256i lut_lo = _mm256_setr_epi8(
      0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
      0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A,
      0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
      0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A);
  const __m256i lut_hi = _mm256_setr_epi8(
      0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
      0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
      0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
      0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  const __m256i lut_roll = _mm256_setr_epi8(
      0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
      0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  // clang-format on
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i slash = _mm256_set1_epi8(0x2f);
  const __m256i pack1 = _mm256_set1_epi32(0x01400140);
  const __m256i pack2 = _mm256_set1_epi32(0x00011000);
  const __m256i order = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2,
                                         1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i in = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    const __m256i hi_nibbles = _mm256_and_si256(_mm256_srli_epi32(in, 4), nibble);
    const __m256i lo_nibbles = _mm256_and_si256(in, nibble);
    const __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nibbles);
    const __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nibbles);
    if (!_mm256_testz_si256(lo, hi)) break;  // a character outside the alphabet
    const __m256i roll =
        _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(_mm256_cmpeq_epi8(in, slash), hi_nibbles));
    __m256i v = _mm256_add_epi8(in, roll);
    v = _mm256_madd_epi16(_mm256_maddubs_epi16(v, pack1), pack2);
    v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, order), lanes);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i / 4 * 3), v);
  }
  return i;
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2");

}  // namespace

bool Base64Decode(absl::string_view src, std::string* dest) {
  const auto* in = reinterpret_cast<const unsigned char*>(src.data());
  const size_t n = src.size();
  // Decoded size at most, plus the vector path's slack.
  dest->resize(3 * (n / 4) + 2 + 8);
  char* out = dest->data();
  size_t done = kHasAvx2 ? DecodeAvx2(in, n, out) : 0;
  const int64_t tail = DecodeScalar(in + done, n - done, out + done / 4 * 3);
  if (tail < 0) {
    dest->clear();
    return false;
  }
  dest->resize(done / 4 * 3 + static_cast<size_t>(tail));
  return true;
}

bool Base64DecodeScalarForTest(absl::string_view src, std::string* dest) {
  dest->resize(3 * (src.size() / 4) + 2);
  const int64_t n =
      DecodeScalar(reinterpret_cast<const unsigned char*>(src.data()), src.size(), dest->data());
  dest->resize(n < 0 ? 0 : static_cast<size_t>(n));
  return n >= 0;
}

struct AudioEventParser::Impl {
  explicit Impl(AudioEventSpec s) : spec(std::move(s)), parser(Options()) {
    FieldHandler& h = parser.handler();
    // Each path once; a spec may name one path in two roles.
    auto index = [&h](const std::string& path) -> int {
      if (path.empty()) return -1;
      for (size_t i = 0; i < h.fields.size(); ++i) {
        if (h.fields[i].path == path) return static_cast<int>(i);
      }
      h.fields.emplace_back().path = path;
      return static_cast<int>(h.fields.size() - 1);
    };
    type = index(spec.type_field);
    error = index(spec.error_field);
    final_ = index(spec.final_field);
    sample_rate = index("sample_rate");
    encoding = index("encoding");
    for (const std::string& a : spec.audio_fields) audio.push_back(index(a));
    for (int i : audio) {
      if (i >= 0) h.fields[static_cast<size_t>(i)].is_audio = true;
    }
  }

  const Field* Get(int i) const {
    if (i < 0) return nullptr;
    const Field& f = parser.handler().fields[static_cast<size_t>(i)];
    return f.kind == Field::Kind::kAbsent ? nullptr : &f;
  }

  AudioEventSpec spec;
  json::basic_parser<FieldHandler> parser;
  int type, error, final_, sample_rate, encoding;
  std::vector<int> audio;
};

AudioEventParser::AudioEventParser(AudioEventSpec spec)
    : impl_(std::make_unique<Impl>(std::move(spec))) {}

AudioEventParser::~AudioEventParser() = default;

absl::Status AudioEventParser::Parse(absl::string_view json) {
  const AudioEventSpec& spec = impl_->spec;
  AudioEvent& ev = event_;
  ev.type.clear();
  ev.encoding.clear();
  // The audio keeps its size from the previous message until it is decoded over (growing a
  // string zero-fills the new bytes, a cost per message); emptied on every other way out.
  struct EmptyUnlessDecoded {
    std::string& audio;
    bool decoded = false;
    ~EmptyUnlessDecoded() {
      if (!decoded) audio.clear();
    }
  } audio_guard{ev.audio};
  ev.done = false;
  ev.ignored = false;
  ev.sample_rate = 0;
  if (json.size() > spec.max_event_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("message of ", json.size(),
                                                   " bytes is over the limit of ",
                                                   spec.max_event_bytes, " bytes"));
  }
  const absl::string_view trimmed = absl::StripAsciiWhitespace(json);
  if (trimmed == "[DONE]") {
    ev.done = true;
    return absl::OkStatus();
  }
  json::basic_parser<FieldHandler>& parser = impl_->parser;
  parser.reset();
  parser.handler().Reset(trimmed, /*streamed=*/false);
  json::error_code ec;
  const size_t n = trimmed.empty() || trimmed.front() != '{'
                       ? 0
                       : parser.write_some(/*more=*/false, trimmed.data(), trimmed.size(), ec);
  if (trimmed.empty() || trimmed.front() != '{' || ec || n != trimmed.size() || !parser.done()) {
    return absl::InvalidArgumentError("message is not a JSON object");
  }
  bool decoded = false;
  absl::Status st = Evaluate(trimmed, /*audio_streamed=*/false, &decoded);
  audio_guard.decoded = decoded;
  return st;
}

absl::Status AudioEventParser::Evaluate(absl::string_view report, bool audio_streamed,
                                        bool* decoded) {
  const AudioEventSpec& spec = impl_->spec;
  AudioEvent& ev = event_;
  using Kind = Field::Kind;
  if (const Field* t = impl_->Get(impl_->type); t != nullptr && t->kind == Kind::kString) {
    ev.type.assign(t->value.data(), t->value.size());
  }
  if (const Field* e = impl_->Get(impl_->error); e != nullptr && e->Truthy()) {
    return ServerReportedError(report);
  }
  if (!ev.type.empty() && Contains(spec.error_types, ev.type)) {
    return ServerReportedError(report);
  }
  for (int i : impl_->audio) {
    if (audio_streamed) break;  // handed on as it came
    const Field* a = impl_->Get(i);
    if (a == nullptr || a->kind == Kind::kNull) continue;
    if (a->kind != Kind::kString) return absl::InvalidArgumentError("audio is not a base64 string");
    // Decodes into ev.audio, whose capacity is kept from the previous message.
    if (!Base64Decode(a->value, &ev.audio)) {
      return absl::InvalidArgumentError("audio is not base64");
    }
    *decoded = true;
    break;
  }
  if (const Field* r = impl_->Get(impl_->sample_rate); r != nullptr && r->kind == Kind::kNumber) {
    const double rate = r->number;
    if (rate >= 1 && rate <= 1e6 && std::floor(rate) == rate)
      ev.sample_rate = static_cast<int>(rate);
  }
  if (const Field* e = impl_->Get(impl_->encoding); e != nullptr && e->kind == Kind::kString) {
    ev.encoding.assign(e->value.data(), e->value.size());
  }
  ev.ignored = !ev.type.empty() && Contains(spec.ignore_types, ev.type);
  const Field* f = impl_->Get(impl_->final_);
  ev.done =
      (!ev.type.empty() && Contains(spec.done_types, ev.type)) || (f != nullptr && f->Truthy());
  return absl::OkStatus();
}

void AudioEventParser::Begin() {
  AudioEvent& ev = event_;
  ev.type.clear();
  ev.encoding.clear();
  // ev.audio keeps its size: Parse decodes over it (growing a string zero-fills it).
  ev.done = false;
  ev.ignored = false;
  ev.sample_rate = 0;
  held_.clear();
  head_.clear();
  size_ = 0;
  streaming_ = false;
  failed_ = false;
}

absl::Status AudioEventParser::Write(absl::string_view piece, AudioSink audio) {
  if (failed_) return absl::InvalidArgumentError("message already refused");
  const size_t max = impl_->spec.max_event_bytes;
  size_ += piece.size();
  absl::Status st;
  if (size_ > max) {
    st = absl::InvalidArgumentError(absl::StrCat("message over the limit of ", max, " bytes"));
  } else if (streaming_) {
    st = Push(piece, audio);
  } else {
    if (held_.empty()) piece = absl::StripLeadingAsciiWhitespace(piece);
    if (held_.size() + piece.size() <= kHeldBytes) {
      held_.append(piece.data(), piece.size());
      return absl::OkStatus();
    }
    st = StartStreaming(piece, audio);
  }
  if (!st.ok()) failed_ = true;
  return st;
}

absl::Status AudioEventParser::StartStreaming(absl::string_view piece, AudioSink audio) {
  streaming_ = true;
  const char first = held_.empty() ? piece.front() : held_.front();
  if (first != '{') return absl::InvalidArgumentError("message is not a JSON object");
  impl_->parser.reset();
  impl_->parser.handler().Reset("", /*streamed=*/true);
  absl::Status st = Push(held_, audio);
  held_.clear();
  if (st.ok()) st = Push(piece, audio);
  return st;
}

absl::Status AudioEventParser::Push(absl::string_view piece, AudioSink audio) {
  if (head_.size() <= kHeadBytes) {
    head_.append(piece.data(), std::min(piece.size(), kHeadBytes + 1 - head_.size()));
  }
  json::basic_parser<FieldHandler>& parser = impl_->parser;
  if (parser.done()) {
    // After the object only whitespace may come.
    if (!absl::StripLeadingAsciiWhitespace(piece).empty()) {
      return absl::InvalidArgumentError("message is not a JSON object");
    }
    return absl::OkStatus();
  }
  FieldHandler& h = parser.handler();
  h.sink = &audio;
  json::error_code ec;
  const size_t n = parser.write_some(/*more=*/true, piece.data(), piece.size(), ec);
  h.sink = nullptr;
  if (!h.audio_status.ok()) return h.audio_status;
  if (ec || (n != piece.size() && !absl::StripLeadingAsciiWhitespace(piece.substr(n)).empty())) {
    return absl::InvalidArgumentError("message is not a JSON object");
  }
  return absl::OkStatus();
}

absl::Status AudioEventParser::End(AudioSink audio) {
  if (failed_) return absl::InvalidArgumentError("message already refused");
  failed_ = true;  // until Begin
  if (!streaming_) {
    absl::Status st = Parse(held_);
    if (!st.ok() || event_.audio.empty()) return st;
    return audio(event_.audio);
  }
  json::basic_parser<FieldHandler>& parser = impl_->parser;
  FieldHandler& h = parser.handler();
  json::error_code ec;
  if (!parser.done()) {
    h.sink = &audio;
    parser.write_some(/*more=*/false, "", 0, ec);
    h.sink = nullptr;
    if (!h.audio_status.ok()) return h.audio_status;
  }
  if (ec || !parser.done()) return absl::InvalidArgumentError("message is not a JSON object");
  bool decoded = false;
  const absl::string_view report = head_.size() > kHeadBytes
                                       ? absl::string_view(head_)
                                       : absl::StripTrailingAsciiWhitespace(head_);
  return Evaluate(report, h.audio == FieldHandler::Audio::kDone, &decoded);
}

// ---------------------------------------------------------------------------------------------
// Base64Stream

void Base64Stream::Reset() {
  acc_ = 0;
  chars_ = 0;
  padded_ = false;
  pad_ = 0;
  expected_pad_ = 0;
}

bool Base64Stream::Write(absl::string_view src, absl::string_view* out) {
  const auto* in = reinterpret_cast<const unsigned char*>(src.data());
  const size_t n = src.size();
  // At most 3 bytes per 4 characters, with the carried quad and the vector path's slack.
  const size_t need = 3 * (n / 4) + 24;
  if (buffer_.size() < need) buffer_.resize(need);
  char* o = buffer_.data();
  size_t w = 0;
  size_t i = 0;
  while (i < n) {
    if (chars_ == 0 && !padded_) {
      // Whole runs of the alphabet: the common case, as Base64Decode does it.
      const size_t done = kHasAvx2 ? DecodeAvx2(in + i, n - i, o + w) : 0;
      w += done / 4 * 3;
      i += done;
      while (i + 4 <= n) {
        const int32_t a = kBase64[in[i]], b = kBase64[in[i + 1]], c = kBase64[in[i + 2]],
                      d = kBase64[in[i + 3]];
        if ((a | b | c | d) < 0) break;
        const uint32_t v = static_cast<uint32_t>(a) << 18 | static_cast<uint32_t>(b) << 12 |
                           static_cast<uint32_t>(c) << 6 | static_cast<uint32_t>(d);
        o[w] = static_cast<char>(v >> 16);
        o[w + 1] = static_cast<char>(v >> 8);
        o[w + 2] = static_cast<char>(v);
        w += 3;
        i += 4;
      }
      if (i >= n) break;
    }
    const unsigned char ch = in[i++];
    if (padded_) {
      if (IsBase64Pad(ch)) {
        ++pad_;
      } else if (!IsBase64Space(ch)) {
        return false;
      }
      continue;
    }
    const int32_t v = kBase64[ch];
    if (v >= 0) {
      acc_ = acc_ << 6 | static_cast<uint32_t>(v);
      if (++chars_ == 4) {
        o[w] = static_cast<char>(acc_ >> 16);
        o[w + 1] = static_cast<char>(acc_ >> 8);
        o[w + 2] = static_cast<char>(acc_);
        w += 3;
        acc_ = 0;
        chars_ = 0;
      }
      continue;
    }
    if (IsBase64Space(ch)) continue;
    if (!IsBase64Pad(ch)) return false;
    padded_ = true;
    pad_ = 1;
    switch (chars_) {
      case 1:
        return false;  // six bits cannot make a byte
      case 2:
        o[w++] = static_cast<char>(acc_ >> 4);
        expected_pad_ = 2;
        break;
      case 3:
        o[w] = static_cast<char>(acc_ >> 10);
        o[w + 1] = static_cast<char>(acc_ >> 2);
        w += 2;
        expected_pad_ = 1;
        break;
      default:
        expected_pad_ = 0;
        break;
    }
    acc_ = 0;
    chars_ = 0;
  }
  *out = absl::string_view(o, w);
  return true;
}

bool Base64Stream::Finish(absl::string_view* out) {
  if (buffer_.size() < 4) buffer_.resize(4);
  char* o = buffer_.data();
  size_t w = 0;
  if (padded_) {
    if (pad_ != expected_pad_) return false;
  } else {
    switch (chars_) {
      case 1:
        return false;
      case 2:
        o[w++] = static_cast<char>(acc_ >> 4);
        break;
      case 3:
        o[w] = static_cast<char>(acc_ >> 10);
        o[w + 1] = static_cast<char>(acc_ >> 2);
        w += 2;
        break;
      default:
        break;
    }
  }
  *out = absl::string_view(o, w);
  return true;
}

absl::StatusOr<AudioEvent> ParseAudioEvent(absl::string_view json, const AudioEventSpec& spec) {
  AudioEventParser parser(spec);
  if (absl::Status st = parser.Parse(json); !st.ok()) return st;
  return parser.event();
}

}  // namespace ttsbench::agent
