// libFuzzer target for the JSON audio-event parser that reads WebSocket text messages (and SSE
// data): any bytes under every dialect's spec must give an event or a status, never a crash;
// an accepted event's audio must be what its base64 says.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "agent/client/audio_events.h"

namespace {

using ttsbench::agent::AudioEventSpec;

AudioEventSpec Spec(uint8_t which) {
  AudioEventSpec s;
  switch (which % 7) {
    case 0:  // OpenAI SSE
      s.done_types = {"speech.audio.done"};
      s.error_types = {"error"};
      break;
    case 1:  // ElevenLabs stream-input
      s.final_field = "isFinal";
      s.error_field = "error";
      break;
    case 2:  // torch-inference /audio/ws
      s.done_types = {"tts_done"};
      s.error_types = {"error"};
      s.ignore_types = {"ready"};
      break;
    case 4:  // Cartesia's WebSocket (issue 13)
      s.audio_fields = {"data"};
      s.done_types = {"done"};
      s.error_types = {"error"};
      s.known_types = {"chunk", "timestamps", "phoneme_timestamps", "flush_done"};
      break;
    case 5:  // Deepgram Aura's WebSocket (issue 13): audio in binary frames
      s.audio_fields = {};
      s.done_types = {"Flushed", "Cleared"};
      s.error_types = {"Error"};
      s.ignore_types = {"Metadata"};
      s.known_types = {"Warning"};
      s.ack_types = {"Cleared"};
      break;
    case 6:  // vLLM-Omni's /v1/audio/speech/stream (issue 13): binary audio, audio_b64 chunks
      s.audio_fields = {"audio_b64"};
      s.done_types = {"session.done"};
      s.error_types = {"error"};
      s.known_types = {"audio.start", "audio.done", "audio.chunk"};
      break;
    default:  // a template with nested paths
      s.audio_fields = {"data.audio", "result.chunk.b64", "audio"};
      s.type_field = "meta.kind";
      s.done_types = {"end"};
      s.final_field = "meta.last";
      break;
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view message(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto ev = ttsbench::agent::ParseAudioEvent(message, Spec(data[0]));
  if (ev.ok() && !ev->audio.empty()) {
    // Round trip: the decoded audio re-encodes to base64 that decodes to the same bytes.
    std::string again;
    if (!absl::Base64Unescape(absl::Base64Escape(ev->audio), &again) || again != ev->audio) {
      std::abort();
    }
  }
  if (ev.ok() && ev->sample_rate < 0) std::abort();
  return 0;
}
