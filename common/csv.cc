#include "common/csv.h"

#include "absl/strings/str_cat.h"

namespace ttsbench::common {
namespace {

// Plain loops: absl::string_view::find_first_of builds a 256-entry table on every call, which
// was a sixth of the time spent writing ten million requests.csv rows.
bool NeedsQuotes(absl::string_view text) {
  for (char c : text) {
    if (c == ',' || c == '"' || c == '\n' || c == '\r') return true;
  }
  return false;
}

// The end of the unquoted field starting at `pos`: the next comma or LF, or the end.
size_t UnquotedEnd(absl::string_view text, size_t pos) {
  while (pos < text.size() && text[pos] != ',' && text[pos] != '\n') ++pos;
  return pos;
}

}  // namespace

CsvWriter& CsvWriter::Field(absl::string_view text) {
  if (row_started_) out_->push_back(',');
  row_started_ = true;
  if (!NeedsQuotes(text)) {
    out_->append(text.data(), text.size());
    return *this;
  }
  out_->push_back('"');
  for (char c : text) {
    if (c == '"') out_->push_back('"');
    out_->push_back(c);
  }
  out_->push_back('"');
  return *this;
}

CsvWriter& CsvWriter::Field(int64_t n) {
  if (row_started_) out_->push_back(',');
  row_started_ = true;
  absl::StrAppend(out_, n);
  return *this;
}

CsvWriter& CsvWriter::Field(uint64_t n) {
  if (row_started_) out_->push_back(',');
  row_started_ = true;
  absl::StrAppend(out_, n);
  return *this;
}

CsvWriter& CsvWriter::Row(const std::vector<std::string>& fields) { return Add(fields).EndRow(); }

CsvWriter& CsvWriter::Add(const std::vector<std::string>& fields) {
  for (const std::string& f : fields) Field(f);
  return *this;
}

CsvWriter& CsvWriter::EndRow() {
  out_->push_back('\n');
  row_started_ = false;
  return *this;
}

absl::StatusOr<bool> CsvReader::Next(std::vector<std::string>* fields) {
  // Empty lines between records carry nothing.
  while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
    if (text_[pos_] == '\n') ++line_;
    ++pos_;
  }
  if (pos_ >= text_.size()) return false;
  record_line_ = line_;
  size_t count = 0;
  auto next_field = [&]() -> std::string& {
    if (count == fields->size()) fields->emplace_back();
    std::string& f = (*fields)[count++];
    f.clear();
    return f;
  };
  while (true) {
    std::string& field = next_field();
    if (pos_ < text_.size() && text_[pos_] == '"') {
      const size_t open_line = line_;
      ++pos_;
      while (true) {
        const size_t quote = text_.find('"', pos_);
        if (quote == absl::string_view::npos) {
          return absl::DataLossError(
              absl::StrCat("line ", open_line, ": quoted field never closed"));
        }
        const absl::string_view chunk = text_.substr(pos_, quote - pos_);
        for (char c : chunk) line_ += c == '\n' ? 1 : 0;
        field.append(chunk.data(), chunk.size());
        pos_ = quote + 1;
        if (pos_ < text_.size() && text_[pos_] == '"') {  // "" is one quote
          field.push_back('"');
          ++pos_;
          continue;
        }
        break;
      }
      if (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '\n' &&
          !(text_[pos_] == '\r' && (pos_ + 1 == text_.size() || text_[pos_ + 1] == '\n'))) {
        return absl::DataLossError(
            absl::StrCat("line ", line_, ": unexpected character after a closing quote"));
      }
    } else {
      const size_t end = UnquotedEnd(text_, pos_);
      absl::string_view raw = text_.substr(pos_, end - pos_);
      if (end < text_.size() && text_[end] == '\n' && !raw.empty() && raw.back() == '\r') {
        raw.remove_suffix(1);
      } else if (end == text_.size() && !raw.empty() && raw.back() == '\r') {
        raw.remove_suffix(1);
      }
      if (raw.find('"') != absl::string_view::npos) {
        return absl::DataLossError(
            absl::StrCat("line ", line_, ": a double quote inside an unquoted field"));
      }
      field.assign(raw.data(), raw.size());
      pos_ = end;
    }
    if (pos_ < text_.size() && text_[pos_] == ',') {
      ++pos_;
      continue;
    }
    // End of record: CRLF, LF or end of text.
    if (pos_ < text_.size() && text_[pos_] == '\r') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
    break;
  }
  fields->resize(count);
  return true;
}

absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view text) {
  std::vector<std::vector<std::string>> rows;
  CsvReader reader(text);
  std::vector<std::string> fields;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&fields);
    if (!more.ok()) return more.status();
    if (!*more) break;
    rows.push_back(fields);
  }
  return rows;
}

}  // namespace ttsbench::common
