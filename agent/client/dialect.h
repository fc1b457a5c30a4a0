// A TTS API dialect: how to ask for speech (prepared once per text), over which transport, and
// how to read the answer.
#ifndef TTSBENCH_AGENT_DIALECT_H_
#define TTSBENCH_AGENT_DIALECT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/audio.h"
#include "common/audio_analysis.h"
#include "common/escape.h"
#include "common/url.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent {

class AudioCapture;  // agent/client/audio_capture.h

// A complete request, built before the level starts so the hot path only writes bytes.
struct PreparedRequest {
  std::string wire;                   // HTTP: the request as written on the socket; command: stdin
  std::vector<std::string> messages;  // WebSocket: text messages sent once the socket is open
  std::vector<std::string> argv;      // command: the program (canonical path) and its arguments
  int chars = 0;
  // Paced text (plan pacing, WebSocket only): after `messages`, each piece's message is sent at
  // its due time (agent/client/text_pacing.h), then `closing` (the flush and the end of input).
  struct Piece {
    std::string message;
    int tokens = 1;
    int chars = 0;
  };
  std::vector<Piece> pieces;
  std::vector<std::string> closing;
  // Barge-in: the message that interrupts the answer (empty: a close frame).
  std::string interrupt;
  // The messages hold kContextMarker where a context id goes: the transport writes a fresh id
  // there for each request, since a context id is not reused on a connection.
  bool context_marker = false;
};

// Stands for a request's context id in paced messages (PreparedRequest::context_marker): as long
// as the id written over it (16 hex digits after "ctx").
inline constexpr absl::string_view kContextMarker = "ctx@@@@@@@@@@@@@@@@";

// What one WebSocket message meant for the answer being read.
struct MessageResult {
  common::AudioFeed feed;
  bool done = false;     // the answer is complete
  bool ignored = false;  // not part of any answer (a session greeting): no first byte, no bytes
  bool acknowledged = false;  // done by the interrupt's acknowledgment (AudioEventSpec::ack_types)
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
  // WebSocket: one message in pieces as they arrive (`first` starts it, `last` ends it), so
  // that a message is never held whole: its feed is the audio of this piece; done/ignored are
  // set by the last piece. A text message longer than the event cap is refused (invalid
  // audio) as soon as it passes it.
  virtual absl::StatusOr<MessageResult> OnMessagePart(absl::string_view piece, bool binary,
                                                      bool first, bool last);
  // End of the answer. Audio that only becomes known at the end (base64 inside JSON) is
  // returned here.
  virtual absl::StatusOr<common::AudioFeed> Finish() = 0;
  virtual double seconds() const = 0;
  virtual int sample_rate() const = 0;
  // Ready for the next answer of the same dialect and Content-Type, exactly as a new decoder
  // from NewDecoder would be, keeping its buffers' capacity: a connection keeps its decoder
  // from answer to answer. False: not reusable, ask the dialect for a new one.
  virtual bool Reset() { return false; }
  // The analyser of this answer's audio (plan audio_checks), or null: every audio byte fed to
  // the meter is also given to it. Set by the transport before the answer is read.
  void set_analyser(common::AudioAnalyser* analyser) { analyser_ = analyser; }
  // The ASR check's sample (null: off): the bytes the audio meter is fed are appended there
  // too, until set to null again.
  virtual void set_capture(AudioCapture* capture) { capture_ = capture; }

 protected:
  common::AudioAnalyser* analyser_ = nullptr;
  AudioCapture* capture_ = nullptr;
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
  // kCommand: a local program per request (api: command); its "connection" is the process.
  // kGrpc: a gRPC channel (api: riva); ws_headers are its call metadata.
  enum class Kind { kHttp, kWebSocket, kCommand, kGrpc };
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
  std::string grpc_target;  // kGrpc: the channel's "host:port"
  // target.max_event_bytes: the largest SSE event or WebSocket text message held.
  size_t max_event_bytes = size_t{1} << 20;
};

class Dialect {
 public:
  virtual ~Dialect() = default;
  virtual absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const = 0;
  // Paced text (plan pacing): the request for `text` cut into `pieces` (their concatenation),
  // sent over time, with the protocol's flush before the end of input when `flush`. Dialects
  // without incremental text input refuse (InvalidArgument naming the api).
  virtual absl::StatusOr<PreparedRequest> PreparePaced(absl::string_view text,
                                                       const std::vector<std::string>& pieces,
                                                       bool flush) const;
  // `content_type` is the HTTP answer's; "" for WebSocket.
  virtual absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const = 0;
  virtual const TransportSpec& transport() const = 0;
};

// api: template: target.request_template (the proto is the one representation; see its
// comment for the placeholders). The defaults of its empty fields (method POST, content_type
// application/json, audio body, audio_field "audio") filled in: the plan validator stores them,
// and the template dialect reads the template through this.
v1::RequestTemplate WithTemplateDefaults(v1::RequestTemplate t);

// The values request_template.method and .audio take.
inline constexpr absl::string_view kTemplateMethods[] = {"GET", "POST", "PUT"};
inline constexpr absl::string_view kTemplateAudio[] = {"body", "json", "sse", "websocket"};

// A rule of request templates that a template (its defaults filled in) breaks: the field
// ("path", "headers[2].name", ...) and what is wrong with it. The one statement of the rules:
// the plan validator names the file and line of the field, the dialect refuses the target.
struct TemplateIssue {
  std::string field;
  std::string problem;
};
std::optional<TemplateIssue> FindTemplateIssue(const v1::RequestTemplate& t);

// api: command: target.command (a CommandTemplate). Text reaches the program on stdin unless
// an argument holds {text} (or input says so); kCommandInputs are the values input takes.
inline constexpr absl::string_view kCommandInputs[] = {"stdin", "argument"};
// The one statement of the command template's rules (field relative to `command`, e.g. "argv[0]").
std::optional<TemplateIssue> FindCommandIssue(const v1::CommandTemplate& c);
// Whether the text is passed as an argument (else on stdin, followed by a newline).
bool CommandTextAsArgument(const v1::CommandTemplate& c);
// A command line typed as one string ("espeak-ng --stdout -v {voice} {text}") split into its
// words as a POSIX shell would split them, without any expansion: blanks separate words,
// 'single' and "double" quotes group (backslash escapes " \ $ ` inside double quotes), a
// backslash outside quotes escapes the next character. Nothing is ever run by a shell.
absl::StatusOr<std::vector<std::string>> SplitCommandWords(absl::string_view line);

// Selected by target.api: openai | torch-inference | coqui | opentts | piper | elevenlabs |
// template | command (argv[0] already checked against the agent's --allow-command list and
// replaced by its canonical path: MakeDialect does not check it). target.path overrides the
// dialect's endpoint path (torch-inference: "/synthesize" selects the older {model_name, inputs,
// voice, output_format} API); target.language is coqui's language_id. `secret_headers` (auth) and
// target.headers are added to every request and handshake; secret values are never logged or
// returned in errors.
absl::StatusOr<std::unique_ptr<Dialect>> MakeDialect(const v1::Target& target,
                                                     const common::Url& url,
                                                     std::vector<v1::Header> secret_headers);

// Request framing shared by the dialects and by one-off requests (discover's list probes).
// RFC 9110 token characters only: what a header name may hold.
bool IsHeaderName(absl::string_view name);
// No line break: a value that cannot end its header line early.
bool IsHeaderValue(absl::string_view value);
// The Host header for `url`: [v6] literals bracketed, the port unless it is the scheme's own.
std::string HostHeader(const common::Url& url);
// "Name: value\r\n" for each header, in order (names and values already checked).
std::string HeaderLines(const std::vector<v1::Header>& headers);
// An HTTP/1.1 request as written on the socket: `target` (path and query) below url's base
// path, `header_lines` as HeaderLines makes them; a Content-Type and Content-Length with a body
// or any method but GET.
std::string HttpRequestWire(const common::Url& url, absl::string_view method,
                            absl::string_view target, absl::string_view accept,
                            absl::string_view header_lines, absl::string_view body = "",
                            absl::string_view content_type = "");

// Percent-encodes everything but RFC 3986 unreserved characters (a query value, a path
// segment).
using common::UrlEncode;

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_DIALECT_H_
