#include "agent/client/audio_events.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
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
  std::string path;  // dotted
  Kind kind = Kind::kAbsent;
  bool boolean = false;
  double number = 0;
  std::string text;  // unescaped; keeps its capacity between messages

  // A present value that counts as set: true, a non-empty string, a non-zero number, an object
  // or an array.
  bool Truthy() const {
    switch (kind) {
      case Kind::kBool:
        return boolean;
      case Kind::kString:
        return !text.empty();
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

// Boost.JSON basic_parser handler: follows the path of objects from the root and records the
// values found at the paths of `fields`; everything else is only validated.
class FieldHandler {
 public:
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);

  std::vector<Field> fields;

  void Reset() {
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
  bool on_string_part(json::string_view s, size_t, json::error_code&) {
    if (pending_ >= 0) {
      Field& f = fields[static_cast<size_t>(pending_)];
      f.kind = Field::Kind::kString;
      f.text.append(s.data(), s.size());
    }
    return true;
  }
  bool on_string(json::string_view s, size_t, json::error_code& ec) {
    on_string_part(s, 0, ec);
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

  static void Clear(Field& f) {
    f.kind = Field::Kind::kAbsent;
    f.text.clear();
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

  std::vector<Frame> frames_;
  std::string path_;      // dotted path of the innermost followed object
  std::string key_;       // a key arriving in parts
  std::string key_path_;  // path_ + the current key
  bool key_followed_ = false;
  int pending_ = -1;  // index into fields of the value about to start
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

}  // namespace

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
  ev.audio.clear();
  ev.encoding.clear();
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
  parser.handler().Reset();
  json::error_code ec;
  const size_t n = trimmed.empty() || trimmed.front() != '{'
                       ? 0
                       : parser.write_some(/*more=*/false, trimmed.data(), trimmed.size(), ec);
  if (trimmed.empty() || trimmed.front() != '{' || ec || n != trimmed.size() || !parser.done()) {
    return absl::InvalidArgumentError("message is not a JSON object");
  }
  using Kind = Field::Kind;
  if (const Field* t = impl_->Get(impl_->type); t != nullptr && t->kind == Kind::kString) {
    ev.type.assign(t->text);
  }
  if (const Field* e = impl_->Get(impl_->error); e != nullptr && e->Truthy()) {
    return ServerReportedError(trimmed);
  }
  if (!ev.type.empty() && Contains(spec.error_types, ev.type)) {
    return ServerReportedError(trimmed);
  }
  for (int i : impl_->audio) {
    const Field* a = impl_->Get(i);
    if (a == nullptr || a->kind == Kind::kNull) continue;
    if (a->kind != Kind::kString) return absl::InvalidArgumentError("audio is not a base64 string");
    // Decodes into ev.audio, whose capacity is kept from the previous message.
    if (!absl::Base64Unescape(a->text, &ev.audio)) {
      return absl::InvalidArgumentError("audio is not base64");
    }
    break;
  }
  if (const Field* r = impl_->Get(impl_->sample_rate); r != nullptr && r->kind == Kind::kNumber) {
    const double rate = r->number;
    if (rate >= 1 && rate <= 1e6 && std::floor(rate) == rate)
      ev.sample_rate = static_cast<int>(rate);
  }
  if (const Field* e = impl_->Get(impl_->encoding); e != nullptr && e->kind == Kind::kString) {
    ev.encoding.assign(e->text);
  }
  ev.ignored = !ev.type.empty() && Contains(spec.ignore_types, ev.type);
  const Field* f = impl_->Get(impl_->final_);
  ev.done =
      (!ev.type.empty() && Contains(spec.done_types, ev.type)) || (f != nullptr && f->Truthy());
  return absl::OkStatus();
}

absl::StatusOr<AudioEvent> ParseAudioEvent(absl::string_view json, const AudioEventSpec& spec) {
  AudioEventParser parser(spec);
  if (absl::Status st = parser.Parse(json); !st.ok()) return st;
  return parser.event();
}

}  // namespace ttsbench::agent
