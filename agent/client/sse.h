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

  // End of body. An event whose blank line never came is dispatched anyway: servers that end
  // the body right after the last data line are common, and its audio was received.
  absl::Status Finish(EventSink on_event);
  absl::Status Finish(std::vector<SseEvent>& out);

  // Ready for another body, as a new parser with the same bound; buffers keep their capacity.
  void Reset();

 private:
  absl::Status Line(absl::string_view line, EventSink on_event);

  size_t max_event_bytes_;
  std::string line_;  // an unfinished line carried over from the previous piece
  SseEvent event_;    // the event being read
  bool has_data_ = false;
  bool after_cr_ = false;  // the previous piece ended in CR: a leading LF belongs to it
  bool started_ = false;   // past a possible UTF-8 byte order mark
  bool failed_ = false;
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_SSE_H_
