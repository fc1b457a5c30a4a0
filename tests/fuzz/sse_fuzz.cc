// libFuzzer target for the SSE parser: any bytes, fed whole and in pieces, must give the same
// events (or the same failure), never a crash, hang or sanitizer report; each event's data then
// goes through the JSON audio-event parser as the OpenAI dialect would read it.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/client/audio_events.h"
#include "agent/client/sse.h"
#include "tests/fuzz/pieces.h"

namespace {

using ttsbench::agent::SseEvent;
using ttsbench::agent::SseParser;

struct Result {
  bool ok = true;
  std::vector<SseEvent> events;
};

// Pieces sized by a small generator seeded by `seed`; 0: whole. A small bound on event size so
// the limit path is reached too.
Result Run(absl::string_view body, uint32_t seed) {
  SseParser parser(4096);
  Result r;
  ttsbench::fuzzing::PieceSizes pieces(seed, 32);
  while (!body.empty()) {
    const size_t n = pieces.Next(body.size());
    if (!parser.Feed(body.substr(0, n), r.events).ok()) {
      r.ok = false;
      return r;
    }
    body.remove_prefix(n);
  }
  r.ok = parser.Finish(r.events).ok();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint32_t seed = data[0] | 1u;
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Result whole = Run(body, 0);
  const Result pieces = Run(body, seed);
  if (whole.ok != pieces.ok) std::abort();
  if (whole.ok) {
    if (whole.events.size() != pieces.events.size()) std::abort();
    for (size_t i = 0; i < whole.events.size(); ++i) {
      if (whole.events[i].event != pieces.events[i].event) std::abort();
      if (whole.events[i].data != pieces.events[i].data) std::abort();
    }
  }
  ttsbench::agent::AudioEventSpec spec;
  spec.done_types = {"speech.audio.done"};
  spec.error_types = {"error"};
  for (const SseEvent& e : whole.events) (void)ttsbench::agent::ParseAudioEvent(e.data, spec);
  return 0;
}
