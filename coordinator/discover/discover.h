// `ttsbench discover`: probes a server for the TTS API shapes ttsbench speaks, one short request
// each, and says which work, how (format, streaming, sample rate, first-audio time) and which
// `ttsbench server` command line benchmarks the best of them.
#ifndef TTSBENCH_COORDINATOR_DISCOVER_H_
#define TTSBENCH_COORDINATOR_DISCOVER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

struct DiscoverOptions {
  std::string url;       // http(s)://host[:port][/base]; every probed path goes below the base
  double timeout_s = 5;  // per probe: connect, request and the whole answer
  // Bound on the whole discovery; probes that would start after it are reported as skipped, and
  // a running probe's deadline is cut to it.
  double budget_s = 15;
  std::vector<v1::Header> headers;  // auth and extra headers, sent with every probe; never output
  std::string ca_file;              // TLS: extra CA bundle (PEM)
  bool insecure = false;            // TLS: skip certificate verification (explicit opt-in)
  // Appended verbatim to suggested_command, e.g. "--auth-token-env TTS_TOKEN": how the caller
  // names its secret. Never the secret itself.
  std::string auth_flags;
};

// One request to one endpoint shape.
struct EndpointProbe {
  std::string dialect;  // openai | torch-inference | coqui | opentts | piper | elevenlabs
  // speech (answers audio) | voices | models (answers a list) | health
  std::string kind;
  std::string variant;       // how it was asked: "wav", "stream", "sse", "websocket", "base64", ...
  std::string method, path;  // path below the base URL, without the query
  bool working = false;
  // Why not, when not working: "404", "400: <server's message>", "connection refused",
  // "timeout", "not audio", "empty audio", "skipped: time budget spent", ...
  std::string why;
  int http_status = 0;               // 0 when no HTTP answer (transport failure, WebSocket frames)
  std::string content_type;          // of the answer
  std::string voice;                 // the voice asked for ("" when the request names none)
  std::vector<std::string> formats;  // audio formats measured in answers: wav, pcm, mp3, ...
  // The answer arrives incrementally: chunked or close-delimited body, SSE events or WebSocket
  // frames. Says the server can stream, not that this short text needed several chunks.
  bool streaming = false;
  int sample_rate = 0;
  // Where sample_rate came from: "audio header" (WAV, MP3, ...), "Content-Type", "JSON
  // sample_rate", "meta message", "request" (an ElevenLabs pcm_24000), or "WAV answer of the same
  // endpoint". Empty when raw PCM said nothing and the rate is the assumed 24000 Hz: the
  // durations of such a probe are not trusted, and it is never the best match.
  std::string rate_source;
  double first_audio_ms = 0;  // request written -> first audio byte (after container headers)
  double total_ms = 0;        // request written -> end of the answer
  double audio_s = 0;         // measured duration of the audio answered
  // The `ttsbench server` flags that select this endpoint ("--api openai --format wav
  // --streaming", "--api torch-inference ... --stream-format ws").
  std::string server_flags;
};

struct DiscoveryResult {
  std::string url;  // as probed, without user info
  std::vector<EndpointProbe> probes;
  std::vector<std::string> voices;  // every voice any list offered, first-seen order, no repeats
  std::vector<std::string> models;
  // Warnings for the reader, one line each (a raw PCM rate that had to be assumed).
  std::vector<std::string> notes;
  // The best working speech endpoint `ttsbench server` can select, by a fixed rule that timing
  // noise cannot flip: a known sample rate first, then streaming, then the protocol (plain HTTP
  // stream, WebSocket, SSE, whole answers), then table order. Empty when no TTS endpoint answered
  // audio ("no TTS endpoint found"): the CLI exits 2.
  std::string best_dialect;
  int best_probe = -1;            // index into probes, -1 with best_dialect empty
  std::string suggested_command;  // `ttsbench server ...` for the best match, "" when none
};

// Probes the target. InvalidArgument for a bad URL or CA file; Unavailable when the host cannot
// be reached at all (resolution, TCP connect or TLS handshake fails), which takes at most
// timeout_s. Any HTTP answer, even 404 everywhere, is a result.
absl::StatusOr<DiscoveryResult> Discover(const DiscoverOptions& options);

// The console view: one row per probe, the voices and models found, then the suggested command
// or "no TTS endpoint found".
std::string DiscoveryTable(const DiscoveryResult& result);

// discovery.json: the result as JSON (no headers, so no secrets).
std::string DiscoveryJson(const DiscoveryResult& result);
absl::Status WriteDiscoveryJson(const std::string& path, const DiscoveryResult& result);

// A word for a shell command line: as is when plainly safe, else single-quoted.
std::string ShellQuote(absl::string_view word);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_DISCOVER_H_
