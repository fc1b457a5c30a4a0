#include "coordinator/cli/plan_file.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/client/conversation.h"
#include "agent/client/dialect.h"
#include "agent/client/text_pacing.h"
#include "common/audio_analysis.h"
#include "common/escape.h"
#include "common/slo.h"
#include "common/status_macros.h"
#include "common/suggest.h"
#include "common/url.h"

namespace ttsbench::coordinator {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr int kNoLine = 0;

// ---------------------------------------------------------------- YAML -> Plan

int LineOf(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? kNoLine : mark.line + 1;
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", node.Scalar(), "'");
    default:
      return "nothing";
  }
}

// A plain scalar is YAML's untyped `50`; a quoted or !!tagged one (`"50"`) is a string, which
// a number or bool field refuses rather than guessing.
bool IsPlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "?"; }

std::string ChildPath(const std::string& parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

// Every field path of the schema under `d` whose last name is `name` ("load.concurrency").
void FindFieldPaths(const Descriptor* d, absl::string_view name, const std::string& prefix,
                    int depth, std::vector<std::string>& out) {
  if (depth > 8) return;  // the plan schema is shallow; this only guards recursive messages
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string path = ChildPath(prefix, f->name());
    if (f->name() == name) out.push_back(path);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_map()) {
      FindFieldPaths(f->message_type(), name, path, depth + 1, out);
    }
  }
}

// "did you mean" text for an unknown key: a near spelling among its siblings, else the same
// name elsewhere in the plan (a key written at the wrong level).
std::string Suggestion(absl::string_view key, const Descriptor* d, const std::string& path) {
  std::vector<std::string> siblings;
  for (int i = 0; i < d->field_count(); ++i) siblings.push_back(d->field(i)->name());
  if (std::string near = common::NearestName(key, siblings); !near.empty()) {
    return absl::StrCat(" (did you mean '", near, "'?)");
  }
  std::vector<std::string> elsewhere;
  FindFieldPaths(v1::Plan::descriptor(), key, "", 0, elsewhere);
  elsewhere.erase(std::remove(elsewhere.begin(), elsewhere.end(), ChildPath(path, key)),
                  elsewhere.end());
  if (elsewhere.empty()) return "";
  return absl::StrCat(" (did you mean '", absl::StrJoin(elsewhere, "' or '"), "'?)");
}

// Parses one plain integer scalar into T, telling "not a number" apart from "out of range".
template <typename T>
bool ParseInteger(absl::string_view text, T* out, bool* out_of_range) {
  *out_of_range = false;
  if (absl::SimpleAtoi(text, out)) return true;
  absl::string_view digits = text;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
  *out_of_range = !digits.empty() && std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit);
  return false;
}

// Records where documents start. The plan is read in two passes because yaml-cpp 0.7's LoadAll
// never returns on some malformed input (a stray top-level ','), while Load reads the first
// document only and returns null for that same input.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;

  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// The one document in `yaml` (null when there is none), or nullopt with the 1-based line (kNoLine
// when unknown) and the reason.
std::optional<YAML::Node> LoadSingleDocument(absl::string_view yaml, int* line,
                                             std::string* error) {
  try {
    std::istringstream in{std::string(yaml)};
    YAML::Parser parser(in);
    DocumentStarts starts;
    // Two documents are enough to know there are too many; the bound also ends the loop on
    // input the parser cannot get past.
    for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
    }
    if (starts.marks.size() > 1) {
      const YAML::Mark& second = starts.marks[1];
      *line = second.line + 1;
      *error = second.pos == starts.marks[0].pos
                   ? absl::StrCat("unexpected '", yaml.substr(second.pos, 1), "'")
                   : "a plan file holds one YAML document (found a second)";
      return std::nullopt;
    }
    if (starts.marks.empty()) return YAML::Node(YAML::NodeType::Null);
    return YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    *line = e.mark.is_null() ? kNoLine : e.mark.line + 1;
    *error = e.msg;
    return std::nullopt;
  }
}

// Reads YAML nodes into messages through reflection. One reader per document or override;
// `origin_` is what errors start with ("plan.yaml" or "--set load.iterations=x").
class YamlReader {
 public:
  YamlReader(std::string origin, bool is_override, PlanSource* source)
      : origin_(std::move(origin)), is_override_(is_override), source_(source) {}

  absl::Status ReadMessage(const YAML::Node& node, Message& msg, const std::string& path) {
    const Descriptor* d = msg.GetDescriptor();
    if (!node.IsMap()) {
      return Error(LineOf(node), absl::StrCat(path.empty() ? "top level" : path,
                                              ": expected a map of keys, got ", Describe(node)));
    }
    std::map<std::string, int> seen;  // key -> line, for duplicates (yaml-cpp keeps both)
    std::map<const google::protobuf::OneofDescriptor*, std::string> oneofs_seen;
    for (const auto& entry : node) {
      const YAML::Node& key_node = entry.first;
      const int key_line = LineOf(key_node);
      if (!key_node.IsScalar()) {
        return Error(key_line, absl::StrCat("keys must be names, got ", Describe(key_node),
                                            path.empty() ? "" : " in ", path));
      }
      const std::string& key = key_node.Scalar();
      const FieldDescriptor* f = d->FindFieldByName(key);
      if (f == nullptr) {
        return Error(key_line, absl::StrCat("unknown key '", key, "'", path.empty() ? "" : " in ",
                                            path, Suggestion(key, d, path)));
      }
      if (auto [first, inserted] = seen.emplace(key, key_line); !inserted) {
        return Error(key_line, absl::StrCat("duplicate key '", key, "'", path.empty() ? "" : " in ",
                                            path, " (first at line ", first->second, ")"));
      }
      if (const auto* oneof = f->containing_oneof(); oneof != nullptr) {
        if (auto [other, inserted] = oneofs_seen.emplace(oneof, key); !inserted) {
          return Error(key_line,
                       absl::StrCat("'", key, "' and '", other->second, "'",
                                    path.empty() ? "" : " in ", path, " exclude each other"));
        }
      }
      const std::string child = ChildPath(path, key);
      Record(child, key_line);
      RETURN_IF_ERROR(ReadField(entry.second, key_line, msg, f, child));
    }
    return absl::OkStatus();
  }

  // Reads `value` into field `f` of `msg`, replacing what was there (so overrides replace whole
  // lists). A null value (`key:` or `key: ~`) clears the field.
  absl::Status ReadField(const YAML::Node& value, int key_line, Message& msg,
                         const FieldDescriptor* f, const std::string& path) {
    const Reflection* r = msg.GetReflection();
    if (value.IsNull()) {
      r->ClearField(&msg, f);
      return absl::OkStatus();
    }
    if (f->is_map()) return ReadMapField(value, key_line, msg, f, path);
    if (!f->is_repeated()) return ReadValue(value, key_line, msg, f, /*add=*/false, path);
    r->ClearField(&msg, f);
    if (value.IsSequence()) {
      for (size_t i = 0; i < value.size(); ++i) {
        const YAML::Node element = value[i];
        const std::string element_path = absl::StrCat(path, "[", i, "]");
        // yaml-cpp marks an empty entry ("-" alone) at the next token, so use the list's line.
        const int line =
            LineOf(element) == kNoLine || element.IsNull() ? key_line : LineOf(element);
        Record(element_path, line);
        if (element.IsNull()) return Error(line, absl::StrCat(element_path, ": empty entry"));
        RETURN_IF_ERROR(ReadValue(element, line, msg, f, /*add=*/true, element_path));
      }
      return absl::OkStatus();
    }
    // A single scalar stands for a one-element list: `concurrency: 8`.
    if (value.IsScalar() && f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return ReadValue(value, key_line, msg, f, /*add=*/true, path);
    }
    return Error(LineOf(value), absl::StrCat(path, ": expected a sequence, got ", Describe(value)));
  }

 private:
  absl::Status Error(int line, absl::string_view what) const {
    if (is_override_ || line == kNoLine) {
      return absl::InvalidArgumentError(absl::StrCat(origin_, ": ", what));
    }
    return absl::InvalidArgumentError(absl::StrCat(origin_, ":", line, ": ", what));
  }

  void Record(const std::string& path, int line) {
    if (source_ == nullptr || is_override_) return;
    source_->lines[path] = line;
  }

  absl::Status ReadMapField(const YAML::Node& value, int key_line, Message& msg,
                            const FieldDescriptor* f, const std::string& path) {
    if (!value.IsMap()) {
      return Error(LineOf(value), absl::StrCat(path, ": expected a map, got ", Describe(value)));
    }
    const Reflection* r = msg.GetReflection();
    r->ClearField(&msg, f);
    const FieldDescriptor* key_field = f->message_type()->map_key();
    const FieldDescriptor* value_field = f->message_type()->map_value();
    std::map<std::string, int> seen;
    for (const auto& item : value) {
      if (!item.first.IsScalar()) {
        return Error(LineOf(item.first), absl::StrCat(path, ": keys must be scalars"));
      }
      const std::string entry_path = absl::StrCat(path, ".", item.first.Scalar());
      const int line = LineOf(item.first) == kNoLine ? key_line : LineOf(item.first);
      if (auto [first, inserted] = seen.emplace(item.first.Scalar(), line); !inserted) {
        return Error(line, absl::StrCat("duplicate key '", item.first.Scalar(), "' in ", path,
                                        " (first at line ", first->second, ")"));
      }
      Record(entry_path, line);
      Message* entry = r->AddMessage(&msg, f);
      RETURN_IF_ERROR(ReadValue(item.first, line, *entry, key_field, false, entry_path));
      if (item.second.IsNull()) return Error(line, absl::StrCat(entry_path, ": missing value"));
      RETURN_IF_ERROR(ReadValue(item.second, line, *entry, value_field, false, entry_path));
    }
    return absl::OkStatus();
  }

  // One value: a message from a map, or a scalar checked against the field's type.
  absl::Status ReadValue(const YAML::Node& node, int key_line, Message& msg,
                         const FieldDescriptor* f, bool add, const std::string& path) {
    const Reflection* r = msg.GetReflection();
    const int line = LineOf(node) == kNoLine ? key_line : LineOf(node);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* child = add ? r->AddMessage(&msg, f) : r->MutableMessage(&msg, f);
      return ReadMessage(node, *child, path);
    }
    const char* expected = "";
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        expected = "an integer";
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT:
        expected = "a number";
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        expected = "true or false";
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        expected = "an enum name";
        break;
      default:
        expected = "a string";
    }
    if (!node.IsScalar()) {
      return Error(line, absl::StrCat(path, ": expected ", expected, ", got ", Describe(node)));
    }
    const std::string& text = node.Scalar();
    const bool is_string = f->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
    if (!is_string && !IsPlainScalar(node)) {
      return Error(line,
                   absl::StrCat(path, ": expected ", expected, ", got the string \"", text, "\""));
    }
    auto bad = [&] {
      return Error(line, absl::StrCat(path, ": expected ", expected, ", got '", text, "'"));
    };
    auto range = [&](auto lo, auto hi) {
      return Error(line, absl::StrCat(path, ": must be between ", lo, " and ", hi));
    };
    bool out_of_range = false;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = 0;
        if (!ParseInteger(text, &v, &out_of_range)) {
          return out_of_range ? range(std::numeric_limits<int32_t>::min(),
                                      std::numeric_limits<int32_t>::max())
                              : bad();
        }
        add ? r->AddInt32(&msg, f, v) : r->SetInt32(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = 0;
        if (!ParseInteger(text, &v, &out_of_range)) {
          return out_of_range ? range(std::numeric_limits<int64_t>::min(),
                                      std::numeric_limits<int64_t>::max())
                              : bad();
        }
        add ? r->AddInt64(&msg, f, v) : r->SetInt64(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v = 0;
        if (!ParseInteger(text, &v, &out_of_range)) {
          return out_of_range ? range(0, std::numeric_limits<uint32_t>::max()) : bad();
        }
        add ? r->AddUInt32(&msg, f, v) : r->SetUInt32(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v = 0;
        if (!ParseInteger(text, &v, &out_of_range)) {
          return out_of_range ? range(0, std::numeric_limits<uint64_t>::max()) : bad();
        }
        add ? r->AddUInt64(&msg, f, v) : r->SetUInt64(&msg, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double v = 0;
        // SimpleAtod also takes "inf" and "nan"; no plan value is meaningful as either.
        if (!absl::SimpleAtod(text, &v)) return bad();
        if (!std::isfinite(v)) {
          return Error(line, absl::StrCat(path, ": must be a finite number, got '", text, "'"));
        }
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
          if (std::abs(v) > std::numeric_limits<float>::max()) {
            return range(-std::numeric_limits<float>::max(), std::numeric_limits<float>::max());
          }
          add ? r->AddFloat(&msg, f, static_cast<float>(v))
              : r->SetFloat(&msg, f, static_cast<float>(v));
        } else {
          add ? r->AddDouble(&msg, f, v) : r->SetDouble(&msg, f, v);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        // Only YAML 1.2's spelling: `yes`, `on` and `1` are typos as often as they are booleans.
        if (text != "true" && text != "false") return bad();
        add ? r->AddBool(&msg, f, text == "true") : r->SetBool(&msg, f, text == "true");
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumValueDescriptor* v = f->enum_type()->FindValueByName(text);
        if (v == nullptr) {
          std::vector<std::string> names;
          for (int i = 0; i < f->enum_type()->value_count(); ++i) {
            names.push_back(f->enum_type()->value(i)->name());
          }
          return Error(line, absl::StrCat(path, ": must be one of ", absl::StrJoin(names, ", "),
                                          ", got '", text, "'"));
        }
        add ? r->AddEnum(&msg, f, v) : r->SetEnum(&msg, f, v);
        break;
      }
      default:
        add ? r->AddString(&msg, f, text) : r->SetString(&msg, f, text);
    }
    return absl::OkStatus();
  }

  std::string origin_;
  bool is_override_;
  PlanSource* source_;
};

// Forgets where `path` and everything under it came from: an override now owns it.
void ForgetOrigins(PlanSource& source, const std::string& path) {
  auto under = [&path](const std::string& p) {
    return p == path || absl::StartsWith(p, absl::StrCat(path, ".")) ||
           absl::StartsWith(p, absl::StrCat(path, "["));
  };
  for (auto it = source.lines.begin(); it != source.lines.end();) {
    it = under(it->first) ? source.lines.erase(it) : std::next(it);
  }
  for (auto it = source.overrides.begin(); it != source.overrides.end();) {
    it = under(it->first) ? source.overrides.erase(it) : std::next(it);
  }
}

absl::Status ApplyOverride(const std::string& text, v1::Plan& plan, PlanSource* source) {
  const std::string origin = absl::StrCat("--set ", text);
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": expected KEY=VALUE"));
  }
  const std::string key_path = text.substr(0, eq);
  int line = kNoLine;
  std::string error;
  const std::optional<YAML::Node> value = LoadSingleDocument(text.substr(eq + 1), &line, &error);
  if (!value)
    return absl::InvalidArgumentError(absl::StrCat(origin, ": invalid YAML value: ", error));
  Message* msg = &plan;
  std::string path;
  const std::vector<std::string> keys = absl::StrSplit(key_path, '.');
  for (size_t i = 0; i < keys.size(); ++i) {
    const FieldDescriptor* f = msg->GetDescriptor()->FindFieldByName(keys[i]);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": unknown key '", keys[i], "'", path.empty() ? "" : " in ", path,
                       Suggestion(keys[i], msg->GetDescriptor(), path)));
    }
    path = ChildPath(path, keys[i]);
    if (i + 1 == keys.size()) {
      if (source != nullptr) {
        ForgetOrigins(*source, path);
        source->overrides[path] = text;
      }
      YamlReader reader(origin, /*is_override=*/true, source);
      return reader.ReadField(*value, kNoLine, *msg, f, path);
    }
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": '", path, "' has no keys under it"));
    }
    msg = msg->GetReflection()->MutableMessage(msg, f);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- validation

constexpr absl::string_view kApis[] = {"openai", "torch-inference", "coqui",    "opentts",
                                       "piper",  "elevenlabs",      "template", "command",
                                       "riva",   "cartesia",        "deepgram", "vllm-omni"};
// api: riva: LINEAR_PCM or OGGOPUS (agent/client/riva_transport.h RivaEncoding).
constexpr absl::string_view kRivaFormats[] = {"pcm", "opus", "ogg"};
// A command's stdout may be any format the meters know, raw PCM of several encodings included.
constexpr absl::string_view kCommandFormats[] = {
    "wav", "pcm",  "pcm_f32le", "pcm_s24le", "pcm_s32le", "ulaw", "alaw",
    "mp3", "opus", "vorbis",    "aac",       "flac",      "auto"};
constexpr absl::string_view kFormats[] = {"wav", "pcm", "mp3", "opus", "aac", "flac", "ulaw"};
constexpr absl::string_view kAuthSchemes[] = {"Bearer", "Token", "none"};
constexpr absl::string_view kStreamFormats[] = {"", "sse", "ws"};
constexpr absl::string_view kLengths[] = {"short", "medium", "long", "mixed"};
constexpr absl::string_view kLoadModels[] = {"closed", "open"};
constexpr absl::string_view kArrivals[] = {"constant", "poisson", "gamma"};
constexpr absl::string_view kConnections[] = {"keepalive", "per_request"};
constexpr absl::string_view kFailurePolicies[] = {"abort", "continue"};

template <size_t N>
bool OneOf(absl::string_view value, const absl::string_view (&allowed)[N]) {
  return std::find(std::begin(allowed), std::end(allowed), value) != std::end(allowed);
}

template <size_t N>
std::string Choices(const absl::string_view (&allowed)[N]) {
  std::vector<std::string> quoted;
  for (absl::string_view a : allowed) {
    if (!a.empty()) quoted.push_back(std::string(a));
  }
  return absl::StrJoin(quoted, ", ");
}

std::string ParentPath(const std::string& path) {
  const size_t cut = path.find_last_of(".[");
  return cut == std::string::npos ? "" : path.substr(0, cut);
}

// One rule for header names, the client layer's (it refuses the same names before any load).
using agent::IsHeaderName;

bool IsEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

std::string FormatDouble(double v);

// Builds errors that point at where a field came from.
class Checker {
 public:
  explicit Checker(const PlanSource* source) : source_(source) {}

  absl::Status Error(const std::string& path, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(Where(path), path, ": ", what));
  }

  absl::Status Enum(const std::string& path, const std::string& value, const auto& allowed) const {
    if (OneOf(value, allowed)) return absl::OkStatus();
    return Error(path, absl::StrCat("must be one of ", Choices(allowed), ", got '", value, "'"));
  }

  absl::Status AtLeast(const std::string& path, double value, double lo) const {
    if (value >= lo && std::isfinite(value)) return absl::OkStatus();
    return Error(path, absl::StrCat("must be >= ", FormatDouble(lo)));
  }

  absl::Status Positive(const std::string& path, double value) const {
    if (value > 0 && std::isfinite(value)) return absl::OkStatus();
    return Error(path, "must be > 0");
  }

  absl::Status Between(const std::string& path, double value, double lo, double hi) const {
    if (value >= lo && value <= hi) return absl::OkStatus();
    return Error(path,
                 absl::StrCat("must be between ", FormatDouble(lo), " and ", FormatDouble(hi)));
  }

 private:
  // The nearest recorded origin of `path` or of a field above it.
  std::string Where(const std::string& path) const {
    if (source_ == nullptr) return "";
    for (std::string p = path; !p.empty(); p = ParentPath(p)) {
      if (auto it = source_->overrides.find(p); it != source_->overrides.end()) {
        return absl::StrCat("--set ", it->second, ": ");
      }
      if (auto it = source_->lines.find(p); it != source_->lines.end()) {
        return absl::StrCat(source_->file, ":", it->second, ": ");
      }
    }
    return source_->file.empty() ? "" : absl::StrCat(source_->file, ": ");
  }

  const PlanSource* source_;
};

}  // namespace

absl::string_view DefaultFormat(absl::string_view api) {
  // ElevenLabs has no "wav"; its own default output_format is MP3 at 44.1 kHz, 128 kb/s.
  // Riva answers raw samples (LINEAR_PCM) or Ogg Opus, never WAV.
  if (api == "riva") return "pcm";
  // Raw PCM only over their sockets.
  if (api == "cartesia" || api == "deepgram" || api == "vllm-omni") return "pcm";
  return api == "elevenlabs" ? "mp3_44100_128" : "wav";
}

namespace {

// api: command: a local program instead of a URL (DESIGN.md "The command target").
absl::Status CheckCommand(v1::Target& t, const Checker& c) {
  if (!t.url().empty()) {
    return c.Error("target.url", "not used by api: command (the program is target.command.argv)");
  }
  RETURN_IF_ERROR(c.Enum("target.format", t.format(), kCommandFormats));
  const v1::CommandTemplate& cmd = t.command();
  if (!cmd.input().empty()) {
    RETURN_IF_ERROR(c.Enum("target.command.input", cmd.input(), agent::kCommandInputs));
  }
  if (std::optional<agent::TemplateIssue> issue = agent::FindCommandIssue(cmd)) {
    return c.Error(absl::StrCat("target.command.", issue->field), issue->problem);
  }
  const bool raw =
      absl::StartsWith(t.format(), "pcm") || t.format() == "ulaw" || t.format() == "alaw";
  if (raw && t.sample_rate() == 0) {
    return c.Error("target.sample_rate",
                   absl::StrCat("required for raw ", t.format(), " from a command (its rate)"));
  }
  // Standard output is read as a stream: first audio is its first audio bytes.
  t.set_streaming(true);
  return absl::OkStatus();
}

// api: riva: a grpc:// or grpcs:// URL without a path; the NVCF function id from an
// environment variable or a file, like the API key.
absl::Status CheckRiva(v1::Target& t, const Checker& c) {
  const bool grpc_url =
      absl::StartsWith(t.url(), "grpc://") || absl::StartsWith(t.url(), "grpcs://");
  if (t.api() != "riva") {
    if (grpc_url) {
      return c.Error("target.url", "grpc:// and grpcs:// URLs are for api: riva");
    }
    if (!t.function_id_env().empty())
      return c.Error("target.function_id_env", "is only for api: riva");
    if (!t.function_id_file().empty()) {
      return c.Error("target.function_id_file", "is only for api: riva");
    }
    return absl::OkStatus();
  }
  if (!grpc_url) {
    return c.Error("target.url", "api: riva needs grpc://host:port (or grpcs:// for TLS)");
  }
  if (auto url = common::ParseUrl(t.url()); url.ok() && !url->base_path.empty()) {
    return c.Error("target.url", "a grpc:// URL has no path (grpc://host:port)");
  }
  if (!t.stream_format().empty()) {
    return c.Error("target.stream_format",
                   "not for api: riva (streaming: true selects SynthesizeOnline)");
  }
  if (!t.path().empty()) return c.Error("target.path", "not for api: riva");
  if (!t.function_id_env().empty() && !t.function_id_file().empty()) {
    return c.Error("target.function_id_file", "give function_id_env or function_id_file, not both");
  }
  if (!t.function_id_env().empty() && !IsEnvName(t.function_id_env())) {
    return c.Error("target.function_id_env",
                   "must be the name of an environment variable (letters, digits, _), not the id");
  }
  for (int i = 0; i < t.headers_size(); ++i) {
    if (absl::EqualsIgnoreCase(t.headers(i).name(), "function-id") &&
        (!t.function_id_env().empty() || !t.function_id_file().empty())) {
      return c.Error(absl::StrCat("target.headers[", i, "].name"),
                     "function-id comes from function_id_env or function_id_file already");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTarget(v1::Target& t, const Checker& c) {
  if (t.api().empty()) t.set_api("openai");
  RETURN_IF_ERROR(c.Enum("target.api", t.api(), kApis));
  if (t.format().empty()) t.set_format(std::string(DefaultFormat(t.api())));
  if (t.api() == "command") {
    RETURN_IF_ERROR(CheckCommand(t, c));
  } else if (t.has_command()) {
    return c.Error("target.command", "is only for api: command");
  } else if (t.url().empty()) {
    return c.Error("target.url", "required (http(s)://host[:port][/base])");
  } else if (auto url = common::ParseUrl(t.url()); !url.ok()) {
    return c.Error("target.url", url.status().message());
  }
  // A gRPC URL is for api: riva only, and riva speaks gRPC only (DESIGN.md "Riva over gRPC").
  RETURN_IF_ERROR(CheckRiva(t, c));
  if (t.api() == "riva") {
    RETURN_IF_ERROR(c.Enum("target.format", t.format(), kRivaFormats));
  } else if (t.api() == "elevenlabs") {
    // Their own names pass through: mp3_44100_128, pcm_16000, ulaw_8000.
    std::vector<absl::string_view> parts = absl::StrSplit(t.format(), '_');
    int n = 0;
    const bool own = (parts.size() == 2 || parts.size() == 3) &&
                     (parts[0] == "mp3" || parts[0] == "pcm" || parts[0] == "ulaw") &&
                     absl::SimpleAtoi(parts[1], &n) && n > 0;
    if (!own && t.format() != "mp3" && t.format() != "pcm" && t.format() != "ulaw") {
      return c.Error("target.format",
                     absl::StrCat("must be mp3, pcm, ulaw or an ElevenLabs output_format such as "
                                  "mp3_44100_128 or pcm_16000, got '",
                                  t.format(), "'"));
    }
  } else if (t.api() != "command") {  // CheckCommand took its wider list
    RETURN_IF_ERROR(c.Enum("target.format", t.format(), kFormats));
  }
  if (t.timeout_s() == 0) t.set_timeout_s(30);
  RETURN_IF_ERROR(c.Positive("target.timeout_s", t.timeout_s()));
  if (t.sample_rate() != 0) {
    RETURN_IF_ERROR(c.Between("target.sample_rate", t.sample_rate(), 1000, 768000));
  }
  RETURN_IF_ERROR(c.AtLeast("target.speed", t.speed(), 0));
  if (t.max_event_bytes() != 0) {
    RETURN_IF_ERROR(c.Between("target.max_event_bytes", static_cast<double>(t.max_event_bytes()),
                              1024, 64 << 20));
  }
  RETURN_IF_ERROR(c.Enum("target.stream_format", t.stream_format(), kStreamFormats));
  if (t.stream_format() == "sse" && t.api() != "openai") {
    return c.Error("target.stream_format", "sse is only for api: openai");
  }
  if (t.stream_format() == "ws" && t.api() != "torch-inference" && t.api() != "elevenlabs") {
    return c.Error("target.stream_format",
                   "ws is only for api: torch-inference or elevenlabs (template: "
                   "request_template.audio: websocket)");
  }
  // SSE and WebSocket answers arrive in pieces (the agent reads them as streams whatever
  // `streaming` says), so the plan and the session must say streamed too.
  const std::string& piecewise = t.request_template().audio();
  if (!t.stream_format().empty() || piecewise == "sse" || piecewise == "websocket") {
    t.set_streaming(true);
  }
  // Issue 13: WebSocket-only APIs stream; ElevenLabs' WebSocket is one of two endpoints.
  if (t.api() == "cartesia" || t.api() == "deepgram" || t.api() == "vllm-omni") {
    t.set_streaming(true);
  }
  if (!t.ws_endpoint().empty()) {
    static constexpr absl::string_view kWsEndpoints[] = {"stream-input", "multi-stream-input"};
    RETURN_IF_ERROR(c.Enum("target.ws_endpoint", t.ws_endpoint(), kWsEndpoints));
    if (t.api() != "elevenlabs" || t.stream_format() != "ws") {
      return c.Error("target.ws_endpoint", "is only for api: elevenlabs with stream_format: ws");
    }
  }
  if (!t.path().empty() && (t.path()[0] != '/' || absl::StrContains(t.path(), " "))) {
    return c.Error("target.path", "must start with / and hold no spaces");
  }
  if (t.api() == "template") {
    // The rules are the client layer's (the dialect checks the same before any load); the
    // enumerations first, for their did-you-mean.
    v1::RequestTemplate& r = *t.mutable_request_template();
    r = agent::WithTemplateDefaults(std::move(r));
    RETURN_IF_ERROR(c.Enum("target.request_template.method", r.method(), agent::kTemplateMethods));
    RETURN_IF_ERROR(c.Enum("target.request_template.audio", r.audio(), agent::kTemplateAudio));
    if (std::optional<agent::TemplateIssue> issue = agent::FindTemplateIssue(r)) {
      return c.Error(absl::StrCat("target.request_template.", issue->field), issue->problem);
    }
  } else if (t.has_request_template()) {
    return c.Error("target.request_template", "is only for api: template");
  }

  if (!t.auth_token_env().empty() && !t.auth_token_file().empty()) {
    return c.Error("target.auth_token_file", "give auth_token_env or auth_token_file, not both");
  }
  if (!t.auth_token_env().empty() && !IsEnvName(t.auth_token_env())) {
    // Catches the token itself pasted where its variable's name belongs.
    return c.Error("target.auth_token_env",
                   "must be the name of an environment variable (letters, digits, _), not a token");
  }
  const bool has_token = !t.auth_token_env().empty() || !t.auth_token_file().empty();
  if (has_token) {
    if (t.auth_scheme().empty()) t.set_auth_scheme("Bearer");
    if (t.auth_header().empty()) t.set_auth_header("Authorization");
  } else {
    // Without a token these would be silently ignored and every request would get a 401.
    if (!t.auth_scheme().empty()) {
      return c.Error("target.auth_scheme", "needs auth_token_env or auth_token_file");
    }
    if (!t.auth_header().empty()) {
      return c.Error("target.auth_header", "needs auth_token_env or auth_token_file");
    }
  }
  if (has_token) RETURN_IF_ERROR(c.Enum("target.auth_scheme", t.auth_scheme(), kAuthSchemes));
  if (has_token && !IsHeaderName(t.auth_header())) {
    return c.Error("target.auth_header",
                   absl::StrCat("'", t.auth_header(), "' is not a header name"));
  }
  for (int i = 0; i < t.headers_size(); ++i) {
    const std::string path = absl::StrCat("target.headers[", i, "]");
    const v1::Header& h = t.headers(i);
    if (!IsHeaderName(h.name())) {
      return c.Error(
          absl::StrCat(path, ".name"),
          h.name().empty() ? "required" : absl::StrCat("'", h.name(), "' is not a header name"));
    }
    if (absl::EqualsIgnoreCase(h.name(), "Authorization") ||
        (has_token && absl::EqualsIgnoreCase(h.name(), t.auth_header()))) {
      // Plan files are copied into session.json; credentials go through auth_token_*.
      return c.Error(absl::StrCat(path, ".name"),
                     "credentials go in auth_token_env or auth_token_file, not in headers");
    }
    if (h.value().find_first_of("\r\n") != std::string::npos) {
      return c.Error(absl::StrCat(path, ".value"), "must be one line");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTexts(v1::Texts& t, const Checker& c) {
  if (t.length().empty()) t.set_length("medium");
  return c.Enum("texts.length", t.length(), kLengths);
}

absl::Status CheckLoad(v1::Load& l, const Checker& c) {
  if (l.model().empty()) l.set_model("closed");
  RETURN_IF_ERROR(c.Enum("load.model", l.model(), kLoadModels));
  if (l.model() == "closed") {
    if (l.concurrency().empty()) {
      return c.Error("load.concurrency", "required for the closed model (e.g. [1, 2, 4])");
    }
    for (int i = 0; i < l.concurrency_size(); ++i) {
      RETURN_IF_ERROR(
          c.Between(absl::StrCat("load.concurrency[", i, "]"), l.concurrency(i), 1, 1000000));
    }
    // Open-loop settings in a closed-loop plan mean the author expected another model.
    if (!l.rate().empty()) return c.Error("load.rate", "only for load.model: open");
    if (!l.arrival().empty()) return c.Error("load.arrival", "only for load.model: open");
    if (l.burstiness() != 0) return c.Error("load.burstiness", "only for load.model: open");
    if (l.max_inflight() != 0) return c.Error("load.max_inflight", "only for load.model: open");
  } else {
    if (l.rate().empty()) {
      return c.Error("load.rate", "required for the open model (requests/s, e.g. [5, 10])");
    }
    for (int i = 0; i < l.rate_size(); ++i) {
      RETURN_IF_ERROR(c.Positive(absl::StrCat("load.rate[", i, "]"), l.rate(i)));
    }
    if (!l.concurrency().empty()) {
      return c.Error("load.concurrency", "only for load.model: closed (open loop uses load.rate)");
    }
    if (l.ramp_up_s() != 0) return c.Error("load.ramp_up_s", "only for load.model: closed");
    if (l.think_time_s() != 0) return c.Error("load.think_time_s", "only for load.model: closed");
    if (l.arrival().empty()) l.set_arrival("poisson");
    RETURN_IF_ERROR(c.Enum("load.arrival", l.arrival(), kArrivals));
    if (l.burstiness() == 0) l.set_burstiness(1);
    RETURN_IF_ERROR(c.Positive("load.burstiness", l.burstiness()));
    if (l.arrival() != "gamma" && l.burstiness() != 1) {
      return c.Error("load.burstiness", "only used with arrival: gamma");
    }
    RETURN_IF_ERROR(c.AtLeast("load.max_inflight", l.max_inflight(), 0));
  }
  RETURN_IF_ERROR(c.AtLeast("load.duration_s", l.duration_s(), 0));
  if (l.iterations() == 0 && l.duration_s() == 0) l.set_iterations(40);
  if (l.duration_s() == 0 || l.iterations() != 0) {
    RETURN_IF_ERROR(c.AtLeast("load.iterations", l.iterations(), 1));
  }
  RETURN_IF_ERROR(c.AtLeast("load.warmup", l.warmup(), 0));
  RETURN_IF_ERROR(c.AtLeast("load.warmup_s", l.warmup_s(), 0));
  RETURN_IF_ERROR(c.AtLeast("load.ramp_up_s", l.ramp_up_s(), 0));
  RETURN_IF_ERROR(c.AtLeast("load.think_time_s", l.think_time_s(), 0));
  RETURN_IF_ERROR(c.AtLeast("load.level_time_limit_s", l.level_time_limit_s(), 0));
  if (l.warmup() > 0 && l.warmup_s() > 0) {
    return c.Error("load.warmup_s", "warm-up is by count (load.warmup) or by time, not both");
  }
  if (const double planned = l.duration_s() + l.warmup_s() + l.ramp_up_s();
      l.level_time_limit_s() > 0 && l.duration_s() > 0 && l.level_time_limit_s() < planned) {
    // A limit below the level's own length would silently cut every level short.
    return c.Error("load.level_time_limit_s",
                   absl::StrCat(l.level_time_limit_s(), " s is shorter than the level itself (",
                                planned, " s of warm-up, ramp-up and duration)"));
  }
  if (l.connections().empty()) l.set_connections("keepalive");
  RETURN_IF_ERROR(c.Enum("load.connections", l.connections(), kConnections));
  if (l.stall_threshold_ms() == 0) l.set_stall_threshold_ms(100);
  return c.Positive("load.stall_threshold_ms", l.stall_threshold_ms());
}

// audio_checks (issue 14): off unless enabled; its defaults from common::WithAudioCheckDefaults.
absl::Status CheckAudioChecks(v1::AudioChecks& a, const Checker& c) {
  if (!a.enabled()) {
    // Settings without the switch mean the author expected the checks to run.
    const v1::AudioChecks off;
    if (a.SerializeAsString() != off.SerializeAsString()) {
      return c.Error("audio_checks.enabled", "must be true when other audio_checks keys are set");
    }
    return absl::OkStatus();
  }
  a = common::WithAudioCheckDefaults(a);
  RETURN_IF_ERROR(
      c.Between("audio_checks.audible_threshold_dbfs", a.audible_threshold_dbfs(), -120, -1));
  RETURN_IF_ERROR(c.Between("audio_checks.audible_window_ms", a.audible_window_ms(), 0.1, 1000));
  RETURN_IF_ERROR(c.Between("audio_checks.stutter_ms", a.stutter_ms(), 1, 60000));
  RETURN_IF_ERROR(c.Between("audio_checks.sample_per_level", a.sample_per_level(), 0, 1000000));
  RETURN_IF_ERROR(c.Between("audio_checks.envelope_window_ms", a.envelope_window_ms(), 1, 10000));
  return c.Between("audio_checks.audible_warn_ms", a.audible_warn_ms(), 1, 600000);
}

absl::Status CheckAgents(v1::AgentsPlan& a, const Checker& c) {
  RETURN_IF_ERROR(c.Between("agents.expect", a.expect(), 0, 10000));
  if (a.expect() == 0) {
    if (a.spawn() == 0) a.set_spawn(2);
    RETURN_IF_ERROR(c.Between("agents.spawn", a.spawn(), 1, 256));
  } else {
    if (a.spawn() != 0) {
      return c.Error("agents.spawn",
                     "give agents.spawn (local) or agents.expect (remote), not both");
    }
    // Remote agents dial the coordinator, so they must know its address in advance.
    if (a.listen().empty()) {
      return c.Error("agents.listen", "required with agents.expect (e.g. 0.0.0.0:7070)");
    }
  }
  if (!a.listen().empty()) {
    if (auto st = common::ValidateHostPort(a.listen()); !st.ok()) {
      return c.Error("agents.listen", st.message());
    }
  }
  if (a.connect_timeout_s() == 0) a.set_connect_timeout_s(30);
  RETURN_IF_ERROR(c.Positive("agents.connect_timeout_s", a.connect_timeout_s()));
  for (int i = 0; i < a.weights_size(); ++i) {
    RETURN_IF_ERROR(c.Positive(absl::StrCat("agents.weights[", i, "]"), a.weights(i)));
  }
  const int agents = a.expect() > 0 ? a.expect() : a.spawn();
  if (!a.weights().empty() && a.weights_size() != agents) {
    return c.Error("agents.weights", absl::StrCat("has ", a.weights_size(), " entries for ", agents,
                                                  " agents (one weight per agent)"));
  }
  if (a.failure_policy().empty()) a.set_failure_policy("abort");
  RETURN_IF_ERROR(c.Enum("agents.failure_policy", a.failure_policy(), kFailurePolicies));
  if (a.max_clock_uncertainty_ms() == 0) a.set_max_clock_uncertainty_ms(10);
  RETURN_IF_ERROR(c.Positive("agents.max_clock_uncertainty_ms", a.max_clock_uncertainty_ms()));
  if (a.lease_s() == 0) a.set_lease_s(5);
  RETURN_IF_ERROR(c.Between("agents.lease_s", a.lease_s(), 1, 60));
  const bool cert = !a.tls_cert().empty(), key = !a.tls_key().empty(), ca = !a.tls_ca().empty();
  if (cert || key || ca) {
    // Mutual TLS needs all three; a partial set would silently fall back to plaintext.
    const char* missing = !cert ? "agents.tls_cert" : !key ? "agents.tls_key" : "agents.tls_ca";
    if (!(cert && key && ca)) {
      return c.Error(missing, "tls_cert, tls_key and tls_ca go together (give all three or none)");
    }
  }
  return absl::OkStatus();
}

// plan asr: the optional ASR check (DESIGN.md "ASR check"); defaults filled in.
absl::Status CheckAsr(v1::Plan& plan, const Checker& c) {
  if (!plan.has_asr()) return absl::OkStatus();
  v1::AsrCheck& a = *plan.mutable_asr();
  if (a.command().empty()) {
    return c.Error("asr.command",
                   "required: the recogniser's command line, with {wav} where the sample's WAV "
                   "path goes");
  }
  auto words = agent::SplitCommandWords(a.command());
  if (!words.ok()) return c.Error("asr.command", words.status().message());
  if (std::none_of(words->begin(), words->end(),
                   [](const std::string& w) { return absl::StrContains(w, "{wav}"); })) {
    return c.Error("asr.command", "has no {wav} (where the sample's WAV path goes)");
  }
  if (a.sample_per_level() == 0) a.set_sample_per_level(5);
  RETURN_IF_ERROR(c.Between("asr.sample_per_level", a.sample_per_level(), 1, 100));
  if (a.timeout_s() == 0) a.set_timeout_s(60);
  RETURN_IF_ERROR(c.Between("asr.timeout_s", a.timeout_s(), 0.001, 3600));
  if (a.sample_rate() == 0) a.set_sample_rate(16000);
  return c.Between("asr.sample_rate", a.sample_rate(), 8000, 192000);
}

// common/slo.h owns the grammar; this only says where in the plan a bad entry is.
absl::Status CheckSlos(const v1::Plan& plan, const Checker& c) {
  size_t bad = 0;
  auto slos = common::ParseSlos({plan.slo().begin(), plan.slo().end()}, &bad);
  if (slos.ok()) {
    // Continuity is a property of streams: a run that streams nothing could never meet it.
    const bool streams = plan.target().streaming() || plan.mode() == "comprehensive";
    for (size_t i = 0; i < slos->size(); ++i) {
      if ((*slos)[i].metric == "continuity_ok" && !streams) {
        return c.Error(absl::StrCat("slo[", i, "]"),
                       "continuity_ok needs streamed answers: add --streaming (target.streaming)");
      }
    }
    return absl::OkStatus();
  }
  const std::string path = absl::StrCat("slo[", bad, "]");
  // ParseSlos prefixes the index; Error() puts the path (with the file line) in front instead.
  absl::string_view why = slos.status().message();
  absl::ConsumePrefix(&why, path + ": ");
  return c.Error(path, why);
}

// ---------------------------------------------------------------- Plan -> YAML

std::string FormatDouble(double v) {
  // Whole numbers as integers (to_chars would write 1e+06), the rest in the shortest text that
  // reads back to the same double: 0.1 stays "0.1".
  if (v == std::floor(v) && std::abs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, result.ptr);
}

std::string ScalarText(const Message& msg, const FieldDescriptor* f, int index) {
  const Reflection* r = msg.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(msg, f, index) : r->GetInt32(msg, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(msg, f, index) : r->GetInt64(msg, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(msg, f, index) : r->GetUInt32(msg, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(msg, f, index) : r->GetUInt64(msg, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return FormatDouble(rep ? r->GetRepeatedDouble(msg, f, index) : r->GetDouble(msg, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FormatDouble(rep ? r->GetRepeatedFloat(msg, f, index) : r->GetFloat(msg, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(msg, f, index) : r->GetBool(msg, f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(msg, f, index) : r->GetEnum(msg, f))->name();
    default:
      return rep ? r->GetRepeatedString(msg, f, index) : r->GetString(msg, f);
  }
}

void EmitMessage(YAML::Emitter& out, const Message& msg);

void EmitValue(YAML::Emitter& out, const Message& msg, const FieldDescriptor* f, int index) {
  const Reflection* r = msg.GetReflection();
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    EmitMessage(out, index >= 0 ? r->GetRepeatedMessage(msg, f, index) : r->GetMessage(msg, f));
  } else {
    // The emitter quotes strings that would read back as something else (null, "", "a: b").
    out << ScalarText(msg, f, index);
  }
}

void EmitMessage(YAML::Emitter& out, const Message& msg) {
  const Reflection* r = msg.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(msg, &fields);
  if (fields.empty()) {
    out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
    return;
  }
  out << YAML::BeginMap;
  for (const FieldDescriptor* f : fields) {
    out << YAML::Key << f->name() << YAML::Value;
    if (f->is_map()) {
      out << YAML::BeginMap;
      for (int i = 0; i < r->FieldSize(msg, f); ++i) {
        const Message& entry = r->GetRepeatedMessage(msg, f, i);
        out << YAML::Key << ScalarText(entry, f->message_type()->map_key(), -1) << YAML::Value;
        EmitValue(out, entry, f->message_type()->map_value(), -1);
      }
      out << YAML::EndMap;
    } else if (f->is_repeated()) {
      // Numbers read best on one line (`concurrency: [1, 2, 4]`); strings and maps one per line.
      const bool flow = f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE &&
                        f->cpp_type() != FieldDescriptor::CPPTYPE_STRING;
      if (flow) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (int i = 0; i < r->FieldSize(msg, f); ++i) EmitValue(out, msg, f, i);
      out << YAML::EndSeq;
    } else {
      EmitValue(out, msg, f, -1);
    }
  }
  out << YAML::EndMap;
}

}  // namespace

absl::StatusOr<v1::Plan> ParsePlanYaml(absl::string_view yaml, const std::string& file,
                                       const std::vector<std::string>& overrides,
                                       PlanSource* source) {
  if (source != nullptr) {
    source->file = file;
    source->lines.clear();
    source->overrides.clear();
  }
  int line = kNoLine;
  std::string error;
  const std::optional<YAML::Node> root = LoadSingleDocument(yaml, &line, &error);
  if (!root) {
    return absl::InvalidArgumentError(line == kNoLine ? absl::StrCat(file, ": ", error)
                                                      : absl::StrCat(file, ":", line, ": ", error));
  }
  v1::Plan plan;
  // An empty file is an empty plan: validation then names the first required field.
  if (!root->IsNull()) {
    YamlReader reader(file, /*is_override=*/false, source);
    RETURN_IF_ERROR(reader.ReadMessage(*root, plan, ""));
  }
  for (const std::string& o : overrides) RETURN_IF_ERROR(ApplyOverride(o, plan, source));
  return plan;
}

absl::StatusOr<v1::Plan> LoadPlanFile(const std::string& path,
                                      const std::vector<std::string>& overrides,
                                      PlanSource* source) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a plan file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  }
  return ParsePlanYaml(text.str(), path, overrides, source);
}

absl::Status LoadMessageYamlFile(const std::string& path, google::protobuf::Message& msg) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  int line = kNoLine;
  std::string error;
  const std::optional<YAML::Node> root = LoadSingleDocument(text.str(), &line, &error);
  if (!root) {
    return absl::InvalidArgumentError(line == kNoLine ? absl::StrCat(path, ": ", error)
                                                      : absl::StrCat(path, ":", line, ": ", error));
  }
  if (root->IsNull()) return absl::InvalidArgumentError(absl::StrCat(path, ": is empty"));
  YamlReader reader(path, /*is_override=*/false, nullptr);
  return reader.ReadMessage(*root, msg, "");
}

namespace {

// Every string of the plan must be UTF-8: protobuf drops other bytes from JSON and an agent
// refuses the whole plan, so a voice typed in another encoding would fail the run mid-way.
absl::Status CheckUtf8(const Message& m, const std::string& prefix, const Checker& c) {
  const Reflection& r = *m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r.ListFields(m, &fields);
  auto check = [&](const std::string& value, const std::string& path) -> absl::Status {
    for (size_t i = 0; i < value.size();) {
      const size_t n = common::Utf8SequenceLength(value, i);
      if (n == 0) return c.Error(path, absl::StrCat("not valid UTF-8 (byte ", i + 1, ")"));
      i += n;
    }
    return absl::OkStatus();
  };
  for (const FieldDescriptor* f : fields) {
    const std::string path = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    const int n = f->is_repeated() ? r.FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const std::string at = f->is_repeated() ? absl::StrCat(path, "[", i, "]") : path;
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        RETURN_IF_ERROR(CheckUtf8(
            f->is_repeated() ? r.GetRepeatedMessage(m, f, i) : r.GetMessage(m, f), at, c));
      } else if (f->type() == FieldDescriptor::TYPE_STRING) {
        RETURN_IF_ERROR(
            check(f->is_repeated() ? r.GetRepeatedString(m, f, i) : r.GetString(m, f), at));
      }
    }
  }
  return absl::OkStatus();
}

// audio_checks 20-26: the bounds of the integrity and consistency verdicts (0 = the default,
// coordinator/report/audio_quality.h AudioQualityBounds).
absl::Status CheckAudioQualityBounds(const v1::AudioChecks& a, const Checker& c) {
  const std::string p = "audio_checks.";
  auto set = [](double v) { return v != 0; };
  if (set(a.min_duration_ratio())) {
    RETURN_IF_ERROR(c.Between(p + "min_duration_ratio", a.min_duration_ratio(), 0.01, 1));
  }
  if (set(a.max_duration_ratio())) {
    RETURN_IF_ERROR(c.Between(p + "max_duration_ratio", a.max_duration_ratio(), 1, 100));
  }
  if (set(a.min_envelope_correlation())) {
    RETURN_IF_ERROR(c.Between(p + "min_envelope_correlation", a.min_envelope_correlation(), -1, 1));
  }
  if (set(a.outlier_z())) RETURN_IF_ERROR(c.Between(p + "outlier_z", a.outlier_z(), 0.1, 1000));
  if (set(a.max_flagged_pct())) {
    RETURN_IF_ERROR(c.Between(p + "max_flagged_pct", a.max_flagged_pct(), 0, 100));
  }
  if (set(a.max_clipped_fraction())) {
    RETURN_IF_ERROR(c.Between(p + "max_clipped_fraction", a.max_clipped_fraction(), 0, 1));
  }
  if (set(a.max_edge_silence_ms())) {
    RETURN_IF_ERROR(c.Positive(p + "max_edge_silence_ms", a.max_edge_silence_ms()));
  }
  return absl::OkStatus();
}

}  // namespace

// Defaults filled here (a zero or empty field counts as unset):
//   mode "run"; output_dir "ttsbench-results"; session_name stays empty (the runner names it);
//   target.api openai, format wav, timeout_s 30; with a token: auth_scheme Bearer,
//   auth_header Authorization; texts.length medium; load.model closed, iterations 40 (unless
//   duration_s is set), connections keepalive, stall_threshold_ms 100; open loop: arrival
//   poisson, burstiness 1; agents.spawn 2 (without expect), connect_timeout_s 30,
//   failure_policy abort, max_clock_uncertainty_ms 10, lease_s 5. Normalised: target.streaming
//   is true with a stream_format, or a request_template whose audio is sse or websocket.
// Issue 14: telemetry (--scrape, docs/DESIGN.md "Telemetry") and cost ("Cost and energy").
absl::Status CheckTelemetryAndCost(v1::Plan& plan, const Checker& c) {
  if (plan.has_telemetry()) {
    v1::Telemetry& t = *plan.mutable_telemetry();
    for (int i = 0; i < t.scrape_size(); ++i) {
      if (auto url = common::ParseUrl(t.scrape(i)); !url.ok()) {
        return c.Error(absl::StrCat("telemetry.scrape[", i, "]"), url.status().message());
      }
    }
    if (t.scrape_size() == 0 && t.series_size() > 0) {
      return c.Error("telemetry.series", "needs telemetry.scrape (the URLs to scrape)");
    }
    if (t.interval_s() == 0) t.set_interval_s(1);
    RETURN_IF_ERROR(c.Between("telemetry.interval_s", t.interval_s(), 0.05, 3600));
    if (t.timeout_s() == 0) t.set_timeout_s(t.interval_s());
    RETURN_IF_ERROR(c.Between("telemetry.timeout_s", t.timeout_s(), 0.01, 600));
    for (int i = 0; i < t.series_size(); ++i) {
      if (t.series(i).empty()) return c.Error(absl::StrCat("telemetry.series[", i, "]"), "empty");
    }
  }
  if (plan.has_cost()) {
    v1::Cost& cost = *plan.mutable_cost();
    RETURN_IF_ERROR(c.Between("cost.per_replica_hour_usd", cost.per_replica_hour_usd(), 0, 1e9));
    RETURN_IF_ERROR(c.Between("cost.replicas", cost.replicas(), 0, 100000));
    if (cost.per_replica_hour_usd() == 0 && cost.replicas() > 0) {
      return c.Error("cost.replicas", "needs cost.per_replica_hour_usd (the price of one)");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePlan(v1::Plan& plan, const PlanSource* source) {
  const Checker c(source);
  RETURN_IF_ERROR(CheckUtf8(plan, "", c));
  if (plan.mode().empty()) plan.set_mode("run");
  if (plan.output_dir().empty()) plan.set_output_dir("ttsbench-results");
  const std::string& name = plan.session_name();
  if (name.find_first_of("/\\") != std::string::npos || name == "." || name == "..") {
    return c.Error("session_name", "must be a plain folder name (no '/')");
  }
  RETURN_IF_ERROR(CheckTarget(*plan.mutable_target(), c));
  RETURN_IF_ERROR(CheckTexts(*plan.mutable_texts(), c));
  RETURN_IF_ERROR(CheckLoad(*plan.mutable_load(), c));
  RETURN_IF_ERROR(CheckAgents(*plan.mutable_agents(), c));
  RETURN_IF_ERROR(CheckSlos(plan, c));
  RETURN_IF_ERROR(CheckAudioChecks(*plan.mutable_audio_checks(), c));
  RETURN_IF_ERROR(CheckAudioQualityBounds(plan.audio_checks(), c));
  RETURN_IF_ERROR(CheckAsr(plan, c));
  RETURN_IF_ERROR(CheckTelemetryAndCost(plan, c));
  // Paced text (issue 13): the schedule's keys, and an API that takes text over time.
  if (plan.has_pacing()) {
    if (absl::Status st = agent::ValidatePacing(plan.pacing()); !st.ok()) {
      const std::string msg(st.message());
      const size_t sp = msg.find(' ');
      return c.Error(msg.substr(0, sp), msg.substr(sp + 1));
    }
    const std::string& api = plan.target().api();
    if (agent::PacingEnabled(plan.pacing()) && api != "cartesia" && api != "deepgram" &&
        api != "vllm-omni" && !(api == "elevenlabs" && plan.target().stream_format() == "ws")) {
      return c.Error("pacing",
                     "needs a WebSocket API that takes text over time (elevenlabs "
                     "with stream_format ws, cartesia, deepgram, vllm-omni)");
    }
  }
  // Conversations (issue 13): a virtual user's turns on one connection, closed loop only.
  if (plan.has_conversation()) {
    if (absl::Status st = agent::ValidateConversation(plan.conversation()); !st.ok()) {
      const std::string msg(st.message());
      const size_t sp = msg.find(' ');
      return c.Error(msg.substr(0, sp), msg.substr(sp + 1));
    }
    if (agent::ConversationEnabled(plan.conversation()) && plan.load().model() != "closed") {
      return c.Error("conversation", "needs load.model: closed (each virtual user converses)");
    }
    if (agent::ConversationEnabled(plan.conversation()) &&
        plan.load().connections() == "per_request") {
      return c.Error("load.connections",
                     "per_request cannot be combined with conversation turns (a conversation "
                     "keeps one connection for its turns)");
    }
  }
  if (!plan.output().metrics_addr().empty()) {
    if (auto st = common::ValidateHostPort(plan.output().metrics_addr()); !st.ok()) {
      return c.Error("output.metrics_addr", st.message());
    }
  }
  std::map<std::string, int> voices;
  for (int i = 0; i < plan.voices_size(); ++i) {
    const std::string path = absl::StrCat("voices[", i, "]");
    if (plan.voices(i).empty()) return c.Error(path, "must not be empty");
    if (auto [first, inserted] = voices.emplace(plan.voices(i), i); !inserted) {
      return c.Error(path,
                     absl::StrCat("'", plan.voices(i), "' is already voices[", first->second, "]"));
    }
  }
  return absl::OkStatus();
}

std::string PlanToYaml(const v1::Plan& plan) {
  YAML::Emitter out;
  EmitMessage(out, plan);
  return absl::StrCat(out.c_str(), "\n");
}

}  // namespace ttsbench::coordinator
