// A synthetic TTS server speaking the APIs ttsbench drives (OpenAI incl. SSE, torch-inference
// incl. its WebSocket and older /synthesize, Coqui, OpenTTS, Piper, ElevenLabs incl. its
// WebSockets stream-input and multi-stream-input, Cartesia's and Deepgram Aura's WebSockets,
// text arriving over time) with a latency model that behaves like a GPU server (parallel slots,
// FIFO queueing, streamed chunks), over HTTP and, given a certificate, TLS on the same port.
// Runs its own io_context thread(s); used in-process by `ttsbench demo` and tests, and as
// `ttsbench-synth`. Beast and Asio stay behind a pimpl so that users of this header compile fast.
#ifndef TTSBENCH_SYNTH_SYNTH_SERVER_H_
#define TTSBENCH_SYNTH_SYNTH_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "synth/latency_model.h"

namespace ttsbench::synth {

struct SynthOptions {
  std::string listen_host = "127.0.0.1";  // an IP address or a resolvable name
  uint16_t port = 0;                      // 0 = ephemeral; read the result from port()
  int threads = 1;  // io_context threads; one is plenty since the work is timers
  LatencyModel model;
  // Fault injection, deterministic under model.seed. error_rate: fraction of audio requests
  // answered 500 (an error message on WebSocket). truncate_rate: fraction of audio responses
  // whose connection is closed after roughly half the body (half the stream).
  double error_rate = 0;
  double truncate_rate = 0;
  // Digital silence before the tone of every answer (every format and answer shape), so that
  // the first audio byte comes on time but the first audible sound this much later: what a
  // TTS-audible check must see and TTFA cannot (issue 14).
  double leading_silence_ms = 0;
  // PEM certificate chain and key. When set, connections that open with a TLS ClientHello are
  // served over TLS, others in the clear, on the same port.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // When set, audio endpoints require it as "Authorization: Bearer|Token KEY", "X-API-Key: KEY"
  // or "xi-api-key: KEY", and answer 401 otherwise.
  std::string api_key;
  // torch-inference /audio/ws audio frames: pcm_f32le (what the real server sends) or pcm_s16le.
  std::string ws_encoding = "pcm_f32le";
  // When set, a line per streamed answer is appended to this file as its first audio goes out:
  // "<received_ns>\t<first_audio_ns>\t<text>", both on the steady clock (CLOCK_MONOTONIC, as
  // the agent's), received = the request read whole. Benchmarks match it to the agent's records.
  std::string log_first_event;
  // A broken server, for memory bounds (every other answer stays normal):
  // "endless-sse-line": SSE requests get one data line that never ends;
  // "endless-json": JSON answers (torch-inference /tts/synthesize, /synthesize) never end;
  // "endless-ws-text": torch-inference /audio/ws answers one text message that never ends.
  // "never-flush": paced sessions never answer the end of input (no isFinal/done/Flushed);
  // "close-mid-turn": paced sessions close the socket after their first audio;
  // "unknown-message": paced sessions send a message of a kind the protocol does not have
  // before their first audio; "talk-after-cancel": paced sessions ignore cancel/Clear;
  // "close-after-turn": paced sessions close the socket after each turn's end marker (a server
  // that hangs up between a conversation's turns).
  std::string misbehave;
  // GET /metrics: the simulated power draw, idle + per busy slot (W).
  double idle_watts = 60;
  double watts_per_busy_slot = 40;
  // Text that arrives over time (issue 13): the WebSockets that take text in pieces (ElevenLabs
  // stream-input and multi-stream-input, Cartesia /tts/websocket, Deepgram /v1/speak). "honest"
  // speaks each stretch of text once lookahead_chars characters or a punctuation mark (. , ! ?
  // ; :) have come (or a flush, or the end of input); "buffering" waits for the end of input and
  // speaks it all. Each stretch is synthesised with the slot model (its own slot, chunks).
  std::string paced_mode = "honest";
  int lookahead_chars = 20;
  // After a cancel / Clear / close frame, audio already due keeps going out this long.
  double stop_delay_ms = 20;
};

// A snapshot of the server's counters (kept in atomics, so reading never blocks the server).
struct SynthStats {
  uint64_t connections_accepted = 0;
  uint64_t tls_connections = 0;       // of those, served over TLS
  uint64_t requests = 0;              // every HTTP request read, any endpoint or status
  uint64_t requests_streamed = 0;     // chunked, SSE and WebSocket audio answers started
  uint64_t errors_injected = 0;       // 500s (WebSocket error messages) from error_rate
  uint64_t truncations_injected = 0;  // bodies and streams cut short by truncate_rate
  uint64_t degraded_answers = 0;      // answers shortened by model.degrade (load above a bound)
  uint64_t websocket_sessions = 0;    // upgrades accepted
  uint64_t websocket_requests = 0;    // synthesis requests received over WebSocket
  uint64_t unauthorized = 0;          // 401s for a missing or wrong api_key
};

class SynthServer {
 public:
  // Validates the options (InvalidArgument), binds (Unavailable when the address is in use or
  // cannot be bound) and starts serving before returning.
  static absl::StatusOr<std::unique_ptr<SynthServer>> Start(const SynthOptions& options);

  SynthServer(const SynthServer&) = delete;
  SynthServer& operator=(const SynthServer&) = delete;
  ~SynthServer();  // calls Stop()

  uint16_t port() const;
  SynthStats stats() const;

  // Closes every connection and joins the threads. Idempotent; must not be called from a
  // handler running on the server's own threads.
  void Stop();

 private:
  class Impl;
  explicit SynthServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ttsbench::synth

#endif  // TTSBENCH_SYNTH_SYNTH_SERVER_H_
