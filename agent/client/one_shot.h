// One request on a connection of its own, its answer kept as it arrived (bytes and arrival
// times) rather than measured: for tools that inspect a server instead of loading it (`ttsbench
// discover`, a check before a run). Connects and speaks through the same TLS set-up, request
// shapes and event parsing as the load engine's transports.
#ifndef TTSBENCH_AGENT_ONE_SHOT_H_
#define TTSBENCH_AGENT_ONE_SHOT_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/client/audio_events.h"
#include "agent/client/dialect.h"
#include "agent/client/transport.h"

namespace ttsbench::agent {

using SteadyTime = std::chrono::steady_clock::time_point;

// Bytes that arrived together: one read of an HTTP body, or one WebSocket message.
struct AnswerPiece {
  SteadyTime at;
  std::string bytes;
  bool binary = true;  // WebSocket: a binary message (else text)
};

// One exchange as it happened on the wire; what it means is for the caller to decide.
struct RecordedAnswer {
  // Why the exchange stopped short, in a few words ("timeout", "connection refused",
  // "connection closed", "tls: certificate verify failed: ..."); "" when read to its end.
  std::string error;
  int status = 0;  // HTTP status; 101 once a WebSocket is open; 0 without an answer
  std::string content_type;
  bool incremental = false;  // chunked or close-delimited body, or WebSocket messages
  SteadyTime sent{};         // request written (WebSocket: after the handshake)
  SteadyTime end{};
  std::vector<AnswerPiece> pieces;
  std::string Body() const;
};

struct OneShotRequest {
  TransportSpec transport;  // HTTP or WebSocket, TLS settings, the handshake's target
  PreparedRequest request;  // the wire (HTTP) or the messages (WebSocket)
  // WebSocket: a text message that this spec reads as done, or as an error, ends the answer.
  AudioEventSpec events;
  uint64_t max_body = uint64_t{32} << 20;  // an answer (or one message) beyond this is an error
};

// Connects (TCP, then TLS when transport.tls.enabled, with `tls` as the context), sends the
// request and records the answer until it ends or `deadline` passes; `out` is shared so that an
// exchange abandoned by its caller's event loop writes only into its own state.
boost::asio::awaitable<void> RecordExchange(boost::asio::io_context& ioc, Endpoints endpoints,
                                            OneShotRequest req, boost::asio::ssl::context* tls,
                                            SteadyTime deadline,
                                            std::shared_ptr<RecordedAnswer> out);

// TCP connect and TLS handshake only, closed at once: "" when both succeed before `deadline`,
// else why in the words of RecordedAnswer::error.
boost::asio::awaitable<std::string> CheckConnect(boost::asio::io_context& ioc, Endpoints endpoints,
                                                 TlsOptions tls_options,
                                                 boost::asio::ssl::context* tls,
                                                 SteadyTime deadline);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_ONE_SHOT_H_
