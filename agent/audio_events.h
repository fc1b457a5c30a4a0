// One JSON message of a streamed TTS answer (an SSE event's data, a WebSocket text message):
// base64 audio, end and error markers, stream metadata. Pure, so it can be fuzzed on its own.
#ifndef TTSBENCH_AGENT_AUDIO_EVENTS_H_
#define TTSBENCH_AGENT_AUDIO_EVENTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::agent {

// Where a dialect puts things in its messages. Paths are dotted ("data.audio").
struct AudioEventSpec {
  // Base64 audio: the first of these present and not null; "" means none.
  std::vector<std::string> audio_fields = {"audio"};
  std::string type_field = "type";        // the message kind, read into AudioEvent::type
  std::vector<std::string> done_types;    // kinds that end the answer ("speech.audio.done")
  std::vector<std::string> error_types;   // kinds that report a failure ("error")
  std::vector<std::string> ignore_types;  // kinds outside any answer (a greeting: "ready")
  std::string final_field;                // true ends the answer ("isFinal")
  std::string error_field;                // a non-empty value reports a failure ("error")
};

struct AudioEvent {
  std::string type;
  std::string audio;  // decoded bytes
  bool done = false;
  bool ignored = false;  // its kind is in ignore_types
  int sample_rate = 0;   // a metadata message's "sample_rate", else 0
  std::string encoding;  // a metadata message's "encoding" (pcm_s16le, pcm_f32le, ...)
};

// InvalidArgument: not a JSON object, or the audio is not base64 (a failed request's audio is
// invalid). FailedPrecondition: the message reports a server-side error. The SSE sentinel
// "[DONE]" is an event with done set.
absl::StatusOr<AudioEvent> ParseAudioEvent(absl::string_view json, const AudioEventSpec& spec);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_AUDIO_EVENTS_H_
