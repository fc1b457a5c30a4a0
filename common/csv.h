// CSV as ttsbench writes and reads it (RFC 4180 quoting): the one writer of summary.csv,
// requests.csv and compare.csv, and the one reader of them.
#ifndef TTSBENCH_COMMON_CSV_H_
#define TTSBENCH_COMMON_CSV_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::common {

// Appends rows to a string, one field at a time. A field holding a comma, a double quote, CR or
// LF is quoted, its quotes doubled; anything else is written as is. Rows end in "\n" (readers of
// RFC 4180 accept it, and line tools keep working on files without embedded line breaks).
class CsvWriter {
 public:
  explicit CsvWriter(std::string* out) : out_(out) {}

  CsvWriter& Field(absl::string_view text);
  CsvWriter& Field(const char* text) { return Field(absl::string_view(text)); }
  CsvWriter& Field(const std::string& text) { return Field(absl::string_view(text)); }
  CsvWriter& Field(int64_t n);
  CsvWriter& Field(uint64_t n);
  CsvWriter& Field(int32_t n) { return Field(static_cast<int64_t>(n)); }
  CsvWriter& Field(uint32_t n) { return Field(static_cast<uint64_t>(n)); }
  // A whole row of text fields (a header).
  CsvWriter& Row(const std::vector<std::string>& fields);
  // Text fields added to the row being written (it goes on until EndRow).
  CsvWriter& Add(const std::vector<std::string>& fields);
  CsvWriter& EndRow();

 private:
  std::string* out_;
  bool row_started_ = false;
};

// Reads records from text held in memory: quoted fields may hold commas, doubled quotes and
// CR/LF; a record ends at LF or CRLF outside quotes; a final record without a line end counts;
// empty lines are skipped.
class CsvReader {
 public:
  explicit CsvReader(absl::string_view text) : text_(text) {}

  // Fills `fields` (reusing its strings) with the next record. False at the end of the text.
  // An unterminated quote or a character after a closing quote is an error naming the line.
  absl::StatusOr<bool> Next(std::vector<std::string>* fields);

  // The line the last record returned by Next() started on, from 1.
  size_t line() const { return record_line_; }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
  size_t line_ = 1;
  size_t record_line_ = 0;
};

// Every record of `text`; for small files (summary.csv, compare.csv).
absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view text);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_CSV_H_
