// Shared by the transport implementations only: the TCP or TLS byte stream under HTTP and
// WebSocket, and how it is opened.
#ifndef TTSBENCH_AGENT_TRANSPORT_INTERNAL_H_
#define TTSBENCH_AGENT_TRANSPORT_INTERNAL_H_

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <type_traits>

#include "agent/tls.h"
#include "agent/transport.h"
#include "common/clock.h"

namespace ttsbench::agent::internal {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

inline constexpr auto kUse = net::as_tuple(net::use_awaitable);

template <bool kTls>
using Layer = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

// Builds a stream (a Layer, or a websocket::stream over one) on the io_context.
template <class Stream, bool kTls>
std::unique_ptr<Stream> NewStream(net::io_context& ioc, net::ssl::context* tls) {
  if constexpr (kTls) {
    return std::make_unique<Stream>(ioc, *tls);
  } else {
    return std::make_unique<Stream>(ioc);
  }
}

// TCP connect, then the TLS handshake, on `layer`; the lowest layer's deadline must be set.
template <bool kTls>
net::awaitable<v1::ErrorKind> ConnectLayer(Layer<kTls>& layer, const Endpoints& endpoints,
                                           const TlsOptions& tls) {
  beast::tcp_stream& tcp_layer = beast::get_lowest_layer(layer);
  if (endpoints.empty()) co_return v1::ERROR_CONNECT;
  auto [ec, ep] = co_await tcp_layer.async_connect(endpoints, kUse);
  if (ec) co_return ec == beast::error::timeout ? v1::ERROR_TIMEOUT : v1::ERROR_CONNECT;
  beast::error_code ignored;
  tcp_layer.socket().set_option(tcp::no_delay(true), ignored);
  if constexpr (kTls) {
    if (!PrepareTlsConnection(layer.native_handle(), tls)) co_return v1::ERROR_TLS;
    auto [hec] = co_await layer.async_handshake(net::ssl::stream_base::client, kUse);
    if (hec) co_return hec == beast::error::timeout ? v1::ERROR_TIMEOUT : v1::ERROR_TLS;
  }
  co_return v1::ERROR_NONE;
}

// Shuts down and closes the socket under `stream` (any layering), which cancels its operations.
template <class Stream>
void ShutdownAndClose(Stream& stream) {
  beast::error_code ignored;
  beast::tcp_stream& s = beast::get_lowest_layer(stream);
  s.socket().shutdown(tcp::socket::shutdown_both, ignored);
  s.close();
}

// Ends an exchange with a classified error (cancelled when the runner is stopping), stamps its
// end and closes the connection, whose state is unknown after a failure.
inline Outcome FailExchange(ExchangeContext& ctx, v1::ErrorKind kind, ClientConnection& conn) {
  ctx.rec.set_error(ctx.stopping.load() ? v1::ERROR_CANCELLED : kind);
  ctx.rec.set_end_ns(common::SteadyNowNs());
  conn.Close();
  return Outcome::kDone;
}

}  // namespace ttsbench::agent::internal

#endif  // TTSBENCH_AGENT_TRANSPORT_INTERNAL_H_
