// A TTS API dialect: how to ask for speech (prepared once per text), over which transport, and
// how to read the answer.
#ifndef TTSBENCH_AGENT_DIALECT_H_
#define TTSBENCH_AGENT_DIALECT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/audio.h"
#include "common/escape.h"
#include "common/url.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent {

// A complete request, built before the level starts so the hot path only writes bytes.
struct PreparedRequest {
  std::string wire;                   // HTTP: the request as written on the socket
  std::vector<std::string> messages;  // WebSocket: text messages sent once the socket is open
  int chars = 0;
};

// What one WebSocket message meant for the answer being read.
struct MessageResult {
  common::AudioFeed feed;
  bool done = false;     // the answer is complete
  bool ignored = false;  // not part of any answer (a session greeting): no first byte, no bytes
};

// Reads one answer. Errors say what went wrong: InvalidArgument means the audio is not valid
// (recorded as invalid_audio); any other code means the server broke or reported a failure of
// the protocol (recorded as protocol).
class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  // HTTP: body bytes as the socket delivers them.
  virtual absl::StatusOr<common::AudioFeed> OnBody(absl::string_view piece) = 0;
  // WebSocket: one whole message.
  virtual absl::StatusOr<MessageResult> OnMessage(absl::string_view payload, bool binary);
  // End of the answer. Audio that only becomes known at the end (base64 inside JSON) is
  // returned here.
  virtual absl::StatusOr<common::AudioFeed> Finish() = 0;
  virtual double seconds() const = 0;
  virtual int sample_rate() const = 0;
  // Ready for the next answer of the same dialect and Content-Type, exactly as a new decoder
  // from NewDecoder would be, keeping its buffers' capacity: a connection keeps its decoder
  // from answer to answer. False: not reusable, ask the dialect for a new one.
  virtual bool Reset() { return false; }
};

// TLS settings of a target: certificates are verified against the system store plus `ca_file`
// unless `insecure` is set explicitly; `host` is sent as SNI and checked against the
// certificate.
struct TlsOptions {
  bool enabled = false;
  std::string host;
  std::string ca_file;
  bool insecure = false;
};

// How the load engine talks to the target.
struct TransportSpec {
  enum class Kind { kHttp, kWebSocket };
  Kind kind = Kind::kHttp;
  TlsOptions tls;
  bool streamed = false;  // answers stream whatever target.streaming says (SSE, WebSocket)
  // WebSocket only. The handshake is made when the connection opens, so its time is counted
  // in connect_ns, not in the request's latency.
  std::string ws_host;                 // Host header of the handshake
  std::string ws_target;               // request target of the handshake (path and query)
  std::vector<v1::Header> ws_headers;  // auth and extra headers of the handshake
  // True: one socket carries request after request (torch-inference /audio/ws). False: the
  // server ends the socket with the answer (ElevenLabs stream-input), so each request opens one.
  bool ws_reuse = false;
  // The server closing the socket ends the answer normally (else it is a read error).
  bool ws_ends_on_close = false;
  // target.max_event_bytes: the largest SSE event or WebSocket text message held.
  size_t max_event_bytes = size_t{1} << 20;
};

class Dialect {
 public:
  virtual ~Dialect() = default;
  virtual absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const = 0;
  // `content_type` is the HTTP answer's; "" for WebSocket.
  virtual absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const = 0;
  virtual const TransportSpec& transport() const = 0;
};

// api: template. Placeholders {text} {voice} {format} {model} {speed} {sample_rate} are
// replaced in the path, query values, header values, body and messages, escaped for where they
// stand: URL-encoded in the path and query, JSON-escaped in the body and messages (so write
// "input": "{text}"; {speed} and {sample_rate} are bare numbers), verbatim in headers.
struct TemplateSpec {
  std::string method = "POST";      // GET | POST | PUT; a body needs POST or PUT
  std::string path;                 // e.g. /v1/tts/{voice}
  std::vector<v1::Header> query;    // name=value pairs
  std::vector<v1::Header> headers;  // non-secret
  std::string body;                 // JSON template (or any text with content_type set)
  std::string content_type = "application/json";
  // Where the audio is: body (raw audio bytes), json (base64 at audio_field in a JSON body),
  // sse (base64 at audio_field of each event's JSON data), websocket (binary frames, or base64
  // at audio_field of JSON text messages).
  std::string audio = "body";
  std::string audio_field = "audio";  // dotted path
  // sse / websocket: what ends the answer: "FIELD" (a true value, e.g. "isFinal") or
  // "FIELD=VALUE" (e.g. "type=done"). Empty: the end of the body, or the server closing the
  // WebSocket (then each request opens its own socket).
  std::string done;
  std::vector<std::string> messages;  // websocket: sent after the handshake, in order
};

// The target's path, language and request_template, with the template's defaults applied.
struct DialectExtras {
  // Overrides the dialect's endpoint path. torch-inference: "/synthesize" selects the older
  // {model_name, inputs, voice, output_format} API.
  std::string path;
  std::string language;  // coqui: language_id
  TemplateSpec request_template;
};

DialectExtras ExtrasFromTarget(const v1::Target& target);

// Selected by target.api: openai | torch-inference | coqui | opentts | piper | elevenlabs |
// template. `secret_headers` (auth) and target.headers are added to every request and
// handshake; secret values are never logged or returned in errors.
absl::StatusOr<std::unique_ptr<Dialect>> MakeDialect(const v1::Target& target,
                                                     const common::Url& url,
                                                     std::vector<v1::Header> secret_headers,
                                                     const DialectExtras& extras = {});

// Percent-encodes everything but RFC 3986 unreserved characters (a query value, a path
// segment).
using common::UrlEncode;

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_DIALECT_H_
