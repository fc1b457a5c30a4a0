#include "common/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ttsbench::common {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool NameStart(char c) { return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool NameChar(char c) { return NameStart(c) || absl::ascii_isdigit(static_cast<unsigned char>(c)); }

// A cursor over one line.
class LineReader {
 public:
  explicit LineReader(absl::string_view line) : s_(line) {}
  void SkipBlanks() {
    while (i_ < s_.size() && IsBlank(s_[i_])) ++i_;
  }
  bool AtEnd() const { return i_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[i_]; }
  void Advance() { ++i_; }
  // [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; without ':' for label names.
  absl::string_view Name(bool colons) {
    const size_t from = i_;
    auto start = [&](char c) { return NameStart(c) || (colons && c == ':'); };
    auto rest = [&](char c) { return NameChar(c) || (colons && c == ':'); };
    if (AtEnd() || !start(s_[i_])) return {};
    ++i_;
    while (i_ < s_.size() && rest(s_[i_])) ++i_;
    return s_.substr(from, i_ - from);
  }
  // A token up to the next blank.
  absl::string_view Token() {
    const size_t from = i_;
    while (i_ < s_.size() && !IsBlank(s_[i_])) ++i_;
    return s_.substr(from, i_ - from);
  }
  absl::string_view Rest() const { return s_.substr(std::min(i_, s_.size())); }

 private:
  absl::string_view s_;
  size_t i_ = 0;
};

// Go's strconv.ParseFloat as Prometheus writes values: decimal or exponent, NaN, +Inf, -Inf.
bool ParseValue(absl::string_view t, double* out) {
  if (t.empty()) return false;
  if (absl::EqualsIgnoreCase(t, "nan")) {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  bool negative = false;
  absl::string_view body = t;
  if (body[0] == '+' || body[0] == '-') {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (absl::EqualsIgnoreCase(body, "inf") || absl::EqualsIgnoreCase(body, "infinity")) {
    *out = negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
    return true;
  }
  // Digits, '.', exponent only: from_chars would also take "nan(...)" and hex with a prefix.
  if (body.empty() || !(absl::ascii_isdigit(static_cast<unsigned char>(body[0])) || body[0] == '.'))
    return false;
  double v = 0;
  const auto [end, ec] =
      std::from_chars(body.data(), body.data() + body.size(), v, std::chars_format::general);
  if (end != body.data() + body.size()) return false;
  // Out of range: Go gives +-Inf (or 0), and so do we rather than failing the scrape.
  if (ec == std::errc::result_out_of_range) {
    v = std::fabs(v) < 1 ? 0.0 : std::numeric_limits<double>::infinity();
  } else if (ec != std::errc()) {
    return false;
  }
  *out = negative ? -v : v;
  return true;
}

absl::Status LineError(size_t line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

// {name="value",...} with optional trailing comma; the reader is at '{'.
absl::Status ParseLabels(LineReader& r, size_t line_no, PromSample& s) {
  r.Advance();  // '{'
  while (true) {
    r.SkipBlanks();
    if (r.Peek() == '}') {
      r.Advance();
      return absl::OkStatus();
    }
    const absl::string_view name = r.Name(false);
    if (name.empty()) return LineError(line_no, "expected a label name or '}'");
    r.SkipBlanks();
    if (r.Peek() != '=') return LineError(line_no, absl::StrCat("expected '=' after ", name));
    r.Advance();
    r.SkipBlanks();
    if (r.Peek() != '"') return LineError(line_no, absl::StrCat("label ", name, ": expected '\"'"));
    r.Advance();
    std::string value;
    while (true) {
      if (r.AtEnd())
        return LineError(line_no, absl::StrCat("label ", name, ": unterminated value"));
      const char c = r.Peek();
      r.Advance();
      if (c == '"') break;
      if (c != '\\') {
        value.push_back(c);
        continue;
      }
      const char e = r.Peek();
      r.Advance();
      if (e == '\\' || e == '"') {
        value.push_back(e);
      } else if (e == 'n') {
        value.push_back('\n');
      } else {
        return LineError(line_no, absl::StrCat("label ", name, ": invalid escape"));
      }
    }
    for (const auto& [k, v] : s.labels) {
      if (k == name) return LineError(line_no, absl::StrCat("label ", name, " given twice"));
    }
    s.labels.emplace_back(std::string(name), std::move(value));
    r.SkipBlanks();
    if (r.Peek() == ',') {
      r.Advance();
    } else if (r.Peek() != '}') {
      return LineError(line_no, "expected ',' or '}' after a label");
    }
  }
}

// The family a sample belongs to: histogram/summary lines carry suffixes of their base name.
PromType TypeOf(const std::map<std::string, PromType, std::less<>>& types, absl::string_view name) {
  if (auto it = types.find(name); it != types.end()) return it->second;
  for (absl::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (!absl::EndsWith(name, suffix)) continue;
    auto it = types.find(name.substr(0, name.size() - suffix.size()));
    if (it == types.end()) continue;
    if (it->second == PromType::kHistogram ||
        (it->second == PromType::kSummary && suffix != "_bucket")) {
      return it->second;
    }
  }
  return PromType::kUntyped;
}

}  // namespace

absl::string_view PromTypeName(PromType type) {
  switch (type) {
    case PromType::kCounter:
      return "counter";
    case PromType::kGauge:
      return "gauge";
    case PromType::kHistogram:
      return "histogram";
    case PromType::kSummary:
      return "summary";
    case PromType::kUntyped:
      break;
  }
  return "untyped";
}

absl::StatusOr<std::vector<PromSample>> ParsePrometheusText(absl::string_view text,
                                                            size_t max_samples) {
  std::vector<PromSample> samples;
  std::map<std::string, PromType, std::less<>> types;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    absl::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == absl::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF from proxies
    LineReader r(line);
    r.SkipBlanks();
    if (r.AtEnd()) continue;
    if (r.Peek() == '#') {
      r.Advance();
      r.SkipBlanks();
      const absl::string_view keyword = r.Token();
      if (keyword != "TYPE" && keyword != "HELP") continue;  // a plain comment
      r.SkipBlanks();
      const absl::string_view name = r.Name(true);
      if (name.empty()) return LineError(line_no, absl::StrCat("# ", keyword, ": no metric name"));
      if (keyword == "HELP") continue;  // the docstring is not needed
      r.SkipBlanks();
      const absl::string_view type = r.Token();
      r.SkipBlanks();
      if (!r.AtEnd()) return LineError(line_no, "# TYPE: text after the type");
      PromType t;
      if (type == "counter") {
        t = PromType::kCounter;
      } else if (type == "gauge") {
        t = PromType::kGauge;
      } else if (type == "histogram") {
        t = PromType::kHistogram;
      } else if (type == "summary") {
        t = PromType::kSummary;
      } else if (type == "untyped") {
        t = PromType::kUntyped;
      } else {
        return LineError(
            line_no, absl::StrCat("# TYPE ", name, ": unknown type '", type.substr(0, 40), "'"));
      }
      types.insert_or_assign(std::string(name), t);
      continue;
    }
    PromSample s;
    const absl::string_view name = r.Name(true);
    if (name.empty()) return LineError(line_no, "expected a metric name");
    s.name = std::string(name);
    r.SkipBlanks();
    if (r.Peek() == '{') {
      if (auto st = ParseLabels(r, line_no, s); !st.ok()) return st;
      r.SkipBlanks();
    }
    const absl::string_view value = r.Token();
    if (!ParseValue(value, &s.value)) {
      return LineError(line_no, absl::StrCat(name, ": '", value.substr(0, 40), "' is not a value"));
    }
    r.SkipBlanks();
    if (!r.AtEnd()) {
      const absl::string_view ts = r.Token();
      int64_t ms = 0;
      if (!absl::SimpleAtoi(ts, &ms)) {
        return LineError(line_no, absl::StrCat(name, ": '", ts.substr(0, 40),
                                               "' is not a timestamp (integer ms)"));
      }
      s.timestamp_ms = ms;
      r.SkipBlanks();
      if (!r.AtEnd()) return LineError(line_no, absl::StrCat(name, ": text after the timestamp"));
    }
    s.type = TypeOf(types, s.name);
    if (samples.size() >= max_samples) {
      return LineError(line_no, absl::StrCat("more than ", max_samples, " samples"));
    }
    samples.push_back(std::move(s));
  }
  return samples;
}

std::string PromSeriesKey(const PromSample& sample) {
  if (sample.labels.empty()) return sample.name;
  std::vector<std::pair<std::string, std::string>> labels = sample.labels;
  std::sort(labels.begin(), labels.end());
  std::string out = sample.name;
  out.push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out.push_back(',');
    first = false;
    absl::StrAppend(&out, k, "=\"");
    for (char c : v) {
      if (c == '\\' || c == '"') {
        out.push_back('\\');
        out.push_back(c);
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace ttsbench::common
