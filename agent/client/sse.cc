#include "agent/client/sse.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"

namespace ttsbench::agent {
namespace {

constexpr absl::string_view kBom = "\xEF\xBB\xBF";

absl::Status TooLarge() { return absl::InvalidArgumentError("server-sent event too large"); }

// The EventSink forms: the data gathered into the parser's event, dispatched whole.
class Collect final : public SseHandler {
 public:
  Collect(SseEvent& event, SseParser::EventSink out) : event_(event), out_(out) {}
  absl::Status Data(absl::string_view part) override {
    event_.data.append(part.data(), part.size());
    return absl::OkStatus();
  }
  absl::Status Dispatch(absl::string_view event) override {
    event_.event.assign(event.data(), event.size());
    out_(event_);
    event_.event.clear();
    event_.data.clear();  // keeps its capacity for the next event
    return absl::OkStatus();
  }

 private:
  SseEvent& event_;
  SseParser::EventSink out_;
};

}  // namespace

absl::Status SseParser::Feed(absl::string_view piece, std::vector<SseEvent>& out) {
  return Feed(piece, [&out](const SseEvent& e) { out.push_back(e); });
}

absl::Status SseParser::Finish(std::vector<SseEvent>& out) {
  return Finish([&out](const SseEvent& e) { out.push_back(e); });
}

absl::Status SseParser::Feed(absl::string_view piece, EventSink on_event) {
  Collect collect(event_, on_event);
  return Feed(piece, collect);
}

absl::Status SseParser::Finish(EventSink on_event) {
  Collect collect(event_, on_event);
  return Finish(collect);
}

void SseParser::Reset() {
  line_.clear();
  event_.event.clear();
  event_.data.clear();
  name_.clear();
  data_bytes_ = 0;
  streamed_ = Streamed::kNo;
  streamed_bytes_ = 0;
  streamed_value_ = 0;
  skip_space_ = false;
  pending_newline_ = false;
  has_data_ = false;
  after_cr_ = false;
  started_ = false;
  failed_ = false;
}

absl::Status SseParser::Feed(absl::string_view piece, SseHandler& h) {
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
    const size_t j = std::min(next_lf, next_cr);
    if (j == piece.size()) {
      if (absl::Status st = Unfinished(piece.substr(i), h); !st.ok()) return Fail(std::move(st));
      const size_t held = streamed_ != Streamed::kNo ? streamed_bytes_ : line_.size();
      if (held + data_bytes_ > max_event_bytes_) return Fail(TooLarge());
      break;
    }
    absl::Status st;
    if (streamed_ != Streamed::kNo) {
      st = Unfinished(piece.substr(i, j - i), h);
      if (st.ok()) st = EndStreamedLine(h);
    } else if (line_.empty()) {
      st = Line(piece.substr(i, j - i), h);  // the common case: no copy
    } else {
      line_.append(piece.data() + i, j - i);
      st = Line(line_, h);
      line_.clear();
    }
    if (!st.ok()) return Fail(std::move(st));
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

absl::Status SseParser::Finish(SseHandler& h) {
  if (failed_) return absl::InvalidArgumentError("event stream already failed");
  absl::Status st;
  if (streamed_ != Streamed::kNo) {
    st = EndStreamedLine(h);
  } else if (!line_.empty()) {
    // Line() does not touch line_, so the carried line is read in place.
    st = Line(line_, h);
    line_.clear();
  }
  if (st.ok()) st = Line("", h);  // dispatches a pending event
  if (!st.ok()) return Fail(std::move(st));
  return absl::OkStatus();
}

absl::Status SseParser::Unfinished(absl::string_view part, SseHandler& h) {
  if (streamed_ != Streamed::kNo) {
    streamed_bytes_ += part.size();
    if (streamed_ == Streamed::kComment) return absl::OkStatus();
    if (skip_space_ && !part.empty()) {
      skip_space_ = false;
      if (part[0] == ' ') part.remove_prefix(1);
    }
    streamed_value_ += part.size();
    return part.empty() ? absl::OkStatus() : h.Data(part);
  }
  line_.append(part.data(), part.size());
  // Known to be data or a comment: handed on (or dropped) from here to its end, so a line that
  // never ends holds no memory. Anything else (an `event:` field, a line not yet long enough
  // to tell) is kept as the grammar needs it, within the bound.
  absl::string_view s = line_;
  if (!started_) {
    if (s.size() < kBom.size() && absl::StartsWith(kBom, s)) return absl::OkStatus();
    if (absl::StartsWith(s, kBom)) s.remove_prefix(kBom.size());
  }
  if (absl::StartsWith(s, "data:")) {
    started_ = true;
    streamed_ = Streamed::kData;
    streamed_bytes_ = line_.size();
    absl::string_view value = s.substr(5);
    skip_space_ = value.empty();
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    streamed_value_ = value.size();
    absl::Status st;
    if (pending_newline_) {
      pending_newline_ = false;
      st = h.Data("\n");
    }
    if (st.ok() && !value.empty()) st = h.Data(value);
    line_.clear();
    return st;
  }
  if (!s.empty() && s[0] == ':') {
    started_ = true;
    streamed_ = Streamed::kComment;
    streamed_bytes_ = line_.size();
    line_.clear();
  }
  return absl::OkStatus();
}

absl::Status SseParser::EndStreamedLine(SseHandler&) {
  const bool data = streamed_ == Streamed::kData;
  const size_t value = streamed_value_;
  streamed_ = Streamed::kNo;
  streamed_bytes_ = 0;
  streamed_value_ = 0;
  skip_space_ = false;
  if (!data) return absl::OkStatus();
  if (data_bytes_ + value + 1 > max_event_bytes_) return TooLarge();
  data_bytes_ += value + 1;
  pending_newline_ = true;
  has_data_ = true;
  return absl::OkStatus();
}

absl::Status SseParser::Line(absl::string_view line, SseHandler& h) {
  if (!started_) {
    // The byte order mark may only open the stream; it can arrive split over pieces, which is
    // why it is removed from the first complete line rather than from the first piece.
    started_ = true;
    if (absl::StartsWith(line, kBom)) line.remove_prefix(kBom.size());
  }
  if (line.empty()) {
    absl::Status st;
    if (has_data_) st = h.Dispatch(name_);
    name_.clear();
    data_bytes_ = 0;
    pending_newline_ = false;
    has_data_ = false;
    return st;
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
    if (data_bytes_ + value.size() + 1 > max_event_bytes_) return TooLarge();
    absl::Status st;
    if (pending_newline_) st = h.Data("\n");
    if (st.ok() && !value.empty()) st = h.Data(value);
    pending_newline_ = true;
    data_bytes_ += value.size() + 1;
    has_data_ = true;
    return st;
  } else if (field == "event") {
    name_.assign(value.data(), value.size());
  }
  return absl::OkStatus();
}

}  // namespace ttsbench::agent
