// libFuzzer target for the synthetic server's reader of the WebSocket messages that carry text
// over time (ElevenLabs stream-input and multi-stream-input, Cartesia, Deepgram, vLLM-Omni's
// /v1/audio/speech/stream; issue 13): any
// bytes under every protocol must give an event or an InvalidArgument, never a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "synth/paced_messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using ttsbench::synth::PacedProtocol;
  static constexpr PacedProtocol kProtocols[] = {
      PacedProtocol::kElevenLabs, PacedProtocol::kElevenLabsMulti, PacedProtocol::kCartesia,
      PacedProtocol::kDeepgram, PacedProtocol::kVllmOmni};
  const std::string_view message(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto ev = ttsbench::synth::ParsePacedMessage(kProtocols[data[0] % 5], message);
  if (!ev.ok() && !absl::IsInvalidArgument(ev.status())) std::abort();
  // An event is one thing or another, never a close that also carries text to speak.
  if (ev.ok() && ev->close_socket && !ev->text.empty()) std::abort();
  return 0;
}
