#include "agent/client/one_shot.h"

#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/client/transport_internal.h"

namespace ttsbench::agent {
namespace {

using namespace internal;  // NOLINT: the transports' private vocabulary
namespace http = beast::http;
namespace websocket = beast::websocket;

constexpr size_t kReadChunk = 16u << 10;

SteadyTime Now() { return std::chrono::steady_clock::now(); }

std::string Why(const beast::error_code& ec, uint64_t max_body) {
  if (ec == beast::error::timeout) return "timeout";
  if (ec == net::error::connection_refused) return "connection refused";
  if (ec == net::error::eof || ec == http::error::end_of_stream ||
      ec == http::error::partial_message || ec == net::error::connection_reset ||
      ec == net::ssl::error::stream_truncated || ec == websocket::error::closed) {
    return "connection closed";
  }
  if (ec == http::error::body_limit || ec == websocket::error::message_too_big) {
    return absl::StrCat("answer over ", max_body >> 20, " MiB");
  }
  if (ec.category() == net::error::get_ssl_category()) return absl::StrCat("tls: ", ec.message());
  if (ec.category() == http::make_error_code(http::error::end_of_stream).category()) {
    return absl::StrCat("bad HTTP: ", ec.message());
  }
  return ec.message();
}

// The connection set-up of the load engine (ConnectLayer), its failure in a few words.
template <bool kTls>
net::awaitable<std::string> Connect(Layer<kTls>& layer, const Endpoints& endpoints,
                                    const TlsOptions& tls, SteadyTime deadline) {
  beast::get_lowest_layer(layer).expires_at(deadline);
  std::string detail;
  switch (co_await ConnectLayer<kTls>(layer, endpoints, tls, &detail)) {
    case v1::ERROR_NONE:
      co_return "";
    case v1::ERROR_TIMEOUT:
      co_return "timeout";
    case v1::ERROR_TLS:
      co_return absl::StrCat("tls: ", detail);
    default:
      break;
  }
  absl::string_view words = detail;
  absl::ConsumePrefix(&words, "connect: ");
  co_return absl::AsciiStrToLower(words);  // "connection refused"
}

template <class Stream>
net::awaitable<void> TalkHttp(Stream& s, const OneShotRequest& req, RecordedAnswer& out) {
  out.sent = Now();
  if (auto [ec, n] = co_await net::async_write(s, net::buffer(req.request.wire), kUse); ec) {
    out.error = Why(ec, req.max_body);
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(req.max_body);
  if (auto [ec, n] = co_await http::async_read_header(s, buffer, parser, kUse); ec) {
    out.error = Why(ec, req.max_body);
    co_return;
  }
  out.status = parser.get().result_int();
  const auto type = parser.get()[http::field::content_type];
  out.content_type.assign(type.data(), type.size());
  out.incremental = parser.chunked() || !parser.content_length().has_value();
  std::array<char, kReadChunk> chunk;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [ec, n] = co_await http::async_read_some(s, buffer, parser, kUse);
    if (ec == http::error::need_buffer) ec = {};
    const size_t got = chunk.size() - parser.get().body().size;
    if (got > 0) out.pieces.push_back(AnswerPiece{Now(), std::string(chunk.data(), got)});
    if (ec == http::error::end_of_stream && parser.is_done()) break;
    if (ec) {
      out.error = Why(ec, req.max_body);
      break;
    }
  }
  out.end = Now();
}

template <class Stream>
net::awaitable<void> TalkWebSocket(Stream& s, const OneShotRequest& req, RecordedAnswer& out) {
  websocket::stream<Stream&> ws(s);
  ws.read_message_max(req.max_body);
  const TransportSpec& spec = req.transport;
  ws.set_option(websocket::stream_base::decorator([&spec](websocket::request_type& r) {
    r.set(http::field::user_agent, "ttsbench/0.1");
    for (const v1::Header& h : spec.ws_headers) r.set(h.name(), h.value());
  }));
  websocket::response_type res;
  auto [hec] = co_await ws.async_handshake(res, spec.ws_host, spec.ws_target, kUse);
  if (hec == websocket::error::upgrade_declined) {
    // An HTTP answer like any other (404, 401, ...).
    out.status = static_cast<int>(res.result_int());
    const auto type = res[http::field::content_type];
    out.content_type.assign(type.data(), type.size());
    out.pieces.push_back(AnswerPiece{Now(), res.body(), false});
    co_return;
  }
  if (hec) {
    out.error = Why(hec, req.max_body);
    co_return;
  }
  out.status = 101;
  out.incremental = true;
  out.sent = Now();
  for (const std::string& message : req.request.messages) {
    ws.text(true);
    if (auto [ec, n] = co_await ws.async_write(net::buffer(message), kUse); ec) {
      out.error = Why(ec, req.max_body);
      co_return;
    }
  }
  AudioEventParser events(req.events);
  for (;;) {
    beast::flat_buffer buffer;
    auto [ec, n] = co_await ws.async_read(buffer, kUse);
    if (ec) {
      out.error = Why(ec, req.max_body);
      break;
    }
    const bool binary = ws.got_binary();
    out.pieces.push_back(AnswerPiece{Now(), beast::buffers_to_string(buffer.data()), binary});
    if (binary) continue;
    // An end marker, an error or a message that is no event at all ends the answer.
    if (!events.Parse(out.pieces.back().bytes).ok() || events.event().done) break;
  }
  out.end = Now();
  if (out.error.empty()) {
    auto [ec] = co_await ws.async_close(websocket::close_code::normal, kUse);
    (void)ec;  // the answer is complete; how the socket ends does not matter
  }
}

template <bool kTls>
net::awaitable<void> Record(net::io_context& ioc, const Endpoints& endpoints,
                            const OneShotRequest& req, net::ssl::context* tls, SteadyTime deadline,
                            RecordedAnswer& out) {
  if (kTls && tls == nullptr) {
    out.error = "tls: no TLS client context";
    co_return;
  }
  std::unique_ptr<Layer<kTls>> s = NewStream<Layer<kTls>, kTls>(ioc, tls);
  out.error = co_await Connect<kTls>(*s, endpoints, req.transport.tls, deadline);
  if (!out.error.empty()) co_return;
  if (req.transport.kind == TransportSpec::Kind::kWebSocket) {
    co_await TalkWebSocket(*s, req, out);
  } else {
    co_await TalkHttp(*s, req, out);
  }
  ShutdownAndClose(*s);
}

}  // namespace

std::string RecordedAnswer::Body() const {
  std::string all;
  for (const AnswerPiece& p : pieces) all += p.bytes;
  return all;
}

net::awaitable<void> RecordExchange(net::io_context& ioc, Endpoints endpoints, OneShotRequest req,
                                    net::ssl::context* tls, SteadyTime deadline,
                                    std::shared_ptr<RecordedAnswer> out) {
  out->sent = Now();
  if (req.transport.tls.enabled) {
    co_await Record<true>(ioc, endpoints, req, tls, deadline, *out);
  } else {
    co_await Record<false>(ioc, endpoints, req, tls, deadline, *out);
  }
  if (out->end == SteadyTime{}) out->end = Now();
}

net::awaitable<std::string> CheckConnect(net::io_context& ioc, Endpoints endpoints,
                                         TlsOptions tls_options, net::ssl::context* tls,
                                         SteadyTime deadline) {
  if (!tls_options.enabled) {
    beast::tcp_stream s(ioc);
    co_return co_await Connect<false>(s, endpoints, tls_options, deadline);
  }
  if (tls == nullptr) co_return "tls: no TLS client context";
  beast::ssl_stream<beast::tcp_stream> s(ioc, *tls);
  co_return co_await Connect<true>(s, endpoints, tls_options, deadline);
}

}  // namespace ttsbench::agent
