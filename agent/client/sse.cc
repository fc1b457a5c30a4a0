#include "agent/client/sse.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"

namespace ttsbench::agent {
namespace {

constexpr absl::string_view kBom = "\xEF\xBB\xBF";

}  // namespace

absl::Status SseParser::Feed(absl::string_view piece, std::vector<SseEvent>& out) {
  return Feed(piece, [&out](const SseEvent& e) { out.push_back(e); });
}

absl::Status SseParser::Finish(std::vector<SseEvent>& out) {
  return Finish([&out](const SseEvent& e) { out.push_back(e); });
}

void SseParser::Reset() {
  line_.clear();
  event_.event.clear();
  event_.data.clear();
  has_data_ = false;
  after_cr_ = false;
  started_ = false;
  failed_ = false;
}

absl::Status SseParser::Feed(absl::string_view piece, EventSink out) {
  if (failed_) return absl::InvalidArgumentError("event stream already failed");
  size_t i = 0;
  if (after_cr_ && !piece.empty() && piece[0] == '\n') i = 1;
  if (!piece.empty()) after_cr_ = false;
  // Line ends are found with memchr (vectorised in glibc): an audio event's data line is
  // kilobytes of base64, and a byte-by-byte find_first_of was most of the decoder's time. The
  // next LF and the next CR are each remembered across lines, so every byte is scanned once
  // per character, and a stream without CRs (the usual one) costs one CR scan per piece.
  const char* const p = piece.data();
  auto next = [&](char c, size_t from) {
    const void* at = std::memchr(p + from, c, piece.size() - from);
    return at != nullptr ? static_cast<size_t>(static_cast<const char*>(at) - p) : piece.size();
  };
  size_t next_lf = 0;
  size_t next_cr = 0;
  bool known = false;
  while (i < piece.size()) {
    if (!known || next_lf < i) next_lf = next('\n', i);
    if (!known || next_cr < i) next_cr = next('\r', i);
    known = true;
    size_t j = std::min(next_lf, next_cr);
    if (j == piece.size()) j = absl::string_view::npos;
    if (j == absl::string_view::npos) {
      line_.append(piece.data() + i, piece.size() - i);
      if (line_.size() + event_.data.size() > max_event_bytes_) {
        failed_ = true;
        return absl::InvalidArgumentError("server-sent event too large");
      }
      break;
    }
    absl::Status st;
    if (line_.empty()) {
      st = Line(piece.substr(i, j - i), out);  // the common case: no copy
    } else {
      line_.append(piece.data() + i, j - i);
      st = Line(line_, out);
      line_.clear();
    }
    if (!st.ok()) {
      failed_ = true;
      return st;
    }
    if (piece[j] == '\r') {
      if (j + 1 == piece.size()) {
        after_cr_ = true;
        i = j + 1;
      } else {
        i = piece[j + 1] == '\n' ? j + 2 : j + 1;
      }
    } else {
      i = j + 1;
    }
  }
  return absl::OkStatus();
}

absl::Status SseParser::Finish(EventSink out) {
  if (failed_) return absl::InvalidArgumentError("event stream already failed");
  if (!line_.empty()) {
    // Line() does not touch line_, so the carried line is read in place.
    absl::Status st = Line(line_, out);
    line_.clear();
    if (!st.ok()) return st;
  }
  return Line("", out);  // dispatches a pending event
}

absl::Status SseParser::Line(absl::string_view line, EventSink out) {
  if (!started_) {
    // The byte order mark may only open the stream; it can arrive split over pieces, which is
    // why it is removed from the first complete line rather than from the first piece.
    started_ = true;
    if (absl::StartsWith(line, kBom)) line.remove_prefix(kBom.size());
  }
  if (line.empty()) {
    if (has_data_) {
      std::string& data = event_.data;
      if (!data.empty() && data.back() == '\n') data.pop_back();
      out(event_);
    }
    event_.event.clear();
    event_.data.clear();  // keeps its capacity for the next event
    has_data_ = false;
    return absl::OkStatus();
  }
  if (line[0] == ':') return absl::OkStatus();  // comment / keep-alive
  absl::string_view field = line;
  absl::string_view value;
  if (const size_t colon = line.find(':'); colon != absl::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    std::string& data = event_.data;
    if (data.size() + value.size() + 1 > max_event_bytes_) {
      return absl::InvalidArgumentError("server-sent event too large");
    }
    data.append(value.data(), value.size());
    data.push_back('\n');
    has_data_ = true;
  } else if (field == "event") {
    event_.event.assign(value.data(), value.size());
  }
  return absl::OkStatus();
}

}  // namespace ttsbench::agent
