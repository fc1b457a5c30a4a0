// Server-sent events (text/event-stream) parsed incrementally: a body split anywhere, even inside
// a CRLF, yields the same events as the whole body. Pure, so it can be fuzzed on its own.
#ifndef TTSBENCH_AGENT_SSE_H_
#define TTSBENCH_AGENT_SSE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ttsbench::agent {

struct SseEvent {
  std::string event;  // the `event:` field; "" when the stream names none ("message")
  std::string data;   // the `data:` lines joined by '\n'
};

// Receives an event stream as it arrives: the data of each event in parts, as its bytes come
// (so an event is never held whole), then the event's end.
class SseHandler {
 public:
  virtual ~SseHandler() = default;
  // More of the current event's data, in order: the `data:` values joined by '\n' (no trailing
  // '\n'). A non-OK status fails the stream.
  virtual absl::Status Data(absl::string_view part) = 0;
  // The event whose data came through Data is complete; `event` is its `event:` field. Only
  // events with at least one data line are dispatched (possibly with no Data call: "data:").
  virtual absl::Status Dispatch(absl::string_view event) = 0;
};

// Follows the WHATWG event-stream grammar: lines end in CRLF, LF or CR; `:` starts a comment;
// `data` lines accumulate; a blank line dispatches; an event without data is not dispatched;
// `id` and `retry` are ignored (a benchmark never reconnects).
class SseParser {
 public:
  // An event (or a line) larger than this is an error rather than unbounded memory. A TTS
  // event holds a fraction of a second of audio; decoders pass their dialect's bound.
  static constexpr size_t kDefaultMaxEventBytes = size_t{1} << 20;
  explicit SseParser(size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Calls `on_event` for each event that `piece` completes, in order. The event is the
  // parser's own, valid during the call only: its buffers are reused for the next event, so a
  // stream of events allocates nothing once they have reached their size. InvalidArgument when
  // an event exceeds the bound (the events before it were dispatched); the parser is unusable
  // afterwards.
  using EventSink = absl::FunctionRef<void(const SseEvent&)>;
  absl::Status Feed(absl::string_view piece, EventSink on_event);
  // The same, appending copies of the events to `out`.
  absl::Status Feed(absl::string_view piece, std::vector<SseEvent>& out);

  // The same, the data passed on as it arrives: a `data:` line that does not end in this piece
  // is handed on, not kept, so memory does not grow with the event. The bound on the event
  // still applies; the events before it were dispatched.
  absl::Status Feed(absl::string_view piece, SseHandler& handler);
  absl::Status Finish(SseHandler& handler);

  // End of body. An event whose blank line never came is dispatched anyway: servers that end
  // the body right after the last data line are common, and its audio was received.
  absl::Status Finish(EventSink on_event);
  absl::Status Finish(std::vector<SseEvent>& out);

  // Ready for another body, as a new parser with the same bound; buffers keep their capacity.
  void Reset();

 private:
  absl::Status Line(absl::string_view line, SseHandler& h);
  // The bytes of an unfinished line at the end of a piece: kept, or handed on when the line is
  // known to be data (or a comment, then dropped).
  absl::Status Unfinished(absl::string_view part, SseHandler& h);
  absl::Status EndStreamedLine(SseHandler& h);
  absl::Status Fail(absl::Status st) {
    failed_ = true;
    return st;
  }

  enum class Streamed { kNo, kData, kComment };

  size_t max_event_bytes_;
  std::string line_;       // an unfinished line carried over from the previous piece
  SseEvent event_;         // the event being read, for the EventSink forms
  std::string name_;       // the event's `event:` field
  size_t data_bytes_ = 0;  // of the event's data lines, each counted with its '\n'
  // The unfinished line being handed on rather than kept in line_.
  Streamed streamed_ = Streamed::kNo;
  size_t streamed_bytes_ = 0;     // raw bytes of that line so far
  size_t streamed_value_ = 0;     // of which its value
  bool skip_space_ = false;       // the line so far is "data:": a following space is not data
  bool pending_newline_ = false;  // a data line ended: '\n' joins it to the next one
  bool has_data_ = false;
  bool after_cr_ = false;  // the previous piece ended in CR: a leading LF belongs to it
  bool started_ = false;   // past a possible UTF-8 byte order mark
  bool failed_ = false;
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_SSE_H_
