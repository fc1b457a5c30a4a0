#include "agent/audio_events.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace ttsbench::agent {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

const Value* Find(const Struct& root, absl::string_view path) {
  if (path.empty()) return nullptr;
  const Struct* s = &root;
  const Value* v = nullptr;
  for (absl::string_view key : absl::StrSplit(path, '.')) {
    if (s == nullptr) return nullptr;
    auto it = s->fields().find(std::string(key));
    if (it == s->fields().end()) return nullptr;
    v = &it->second;
    s = v->has_struct_value() ? &v->struct_value() : nullptr;
  }
  return v;
}

bool Truthy(const Value* v) {
  if (v == nullptr) return false;
  switch (v->kind_case()) {
    case Value::kBoolValue:
      return v->bool_value();
    case Value::kStringValue:
      return !v->string_value().empty();
    case Value::kNumberValue:
      return v->number_value() != 0;
    case Value::kStructValue:
    case Value::kListValue:
      return true;
    default:
      return false;
  }
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
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

absl::StatusOr<AudioEvent> ParseAudioEvent(absl::string_view json, const AudioEventSpec& spec) {
  AudioEvent ev;
  const absl::string_view trimmed = absl::StripAsciiWhitespace(json);
  if (trimmed == "[DONE]") {
    ev.done = true;
    return ev;
  }
  Struct doc;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  if (trimmed.empty() || trimmed.front() != '{' ||
      !google::protobuf::util::JsonStringToMessage(
           google::protobuf::StringPiece(trimmed.data(), trimmed.size()), &doc, opts)
           .ok()) {
    return absl::InvalidArgumentError("message is not a JSON object");
  }
  if (const Value* t = Find(doc, spec.type_field); t != nullptr && t->has_string_value()) {
    ev.type = t->string_value();
  }
  if (!spec.error_field.empty() && Truthy(Find(doc, spec.error_field))) {
    return ServerReportedError(trimmed);
  }
  if (!ev.type.empty() && Contains(spec.error_types, ev.type)) {
    return ServerReportedError(trimmed);
  }
  for (const std::string& field : spec.audio_fields) {
    const Value* a = Find(doc, field);
    if (a == nullptr || a->kind_case() == Value::kNullValue) continue;
    if (!a->has_string_value()) return absl::InvalidArgumentError("audio is not a base64 string");
    if (!absl::Base64Unescape(a->string_value(), &ev.audio)) {
      return absl::InvalidArgumentError("audio is not base64");
    }
    break;
  }
  if (const Value* r = Find(doc, "sample_rate"); r != nullptr && r->has_number_value()) {
    const double rate = r->number_value();
    if (rate >= 1 && rate <= 1e6 && std::floor(rate) == rate)
      ev.sample_rate = static_cast<int>(rate);
  }
  if (const Value* e = Find(doc, "encoding"); e != nullptr && e->has_string_value()) {
    ev.encoding = e->string_value();
  }
  ev.ignored = !ev.type.empty() && Contains(spec.ignore_types, ev.type);
  ev.done = (!ev.type.empty() && Contains(spec.done_types, ev.type)) ||
            (!spec.final_field.empty() && Truthy(Find(doc, spec.final_field)));
  return ev;
}

}  // namespace ttsbench::agent
