// The client messages of the TTS WebSockets that take text over time (ElevenLabs stream-input
// and multi-stream-input, Cartesia, Deepgram Aura, vLLM-Omni's /v1/audio/speech/stream), read
// into one event shape for the synthetic
// server's text-paced model. Pure, so it can be fuzzed on its own.
#ifndef TTSBENCH_SYNTH_PACED_MESSAGES_H_
#define TTSBENCH_SYNTH_PACED_MESSAGES_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ttsbench::synth {

enum class PacedProtocol { kElevenLabs, kElevenLabsMulti, kCartesia, kDeepgram, kVllmOmni };

// What one client message asks for. A message may carry text and end the input at once
// (Cartesia's continue: false), or text and a flush (ElevenLabs' "flush": true).
struct PacedEvent {
  std::string text;     // appended to the context's text (may be empty)
  bool flush = false;   // speak what is buffered now
  bool end = false;     // the end of the input: speak the rest, then the end marker
  bool cancel = false;  // barge-in: stop speaking (after the stop delay)
  bool close_socket = false;
  std::string context_id;  // multi-stream-input, Cartesia ("" otherwise)
  double speed = 0;        // voice_settings.speed (0: unset)
  std::string encoding;    // Cartesia output_format.encoding ("" unset)
  int sample_rate = 0;     // Cartesia output_format.sample_rate (0 unset)
};

// InvalidArgument naming what is wrong (not JSON, a missing or mistyped field, an unknown
// message type): the server answers with the protocol's error message.
absl::StatusOr<PacedEvent> ParsePacedMessage(PacedProtocol protocol, std::string_view message);

}  // namespace ttsbench::synth

#endif  // TTSBENCH_SYNTH_PACED_MESSAGES_H_
