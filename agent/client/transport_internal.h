// Shared by the transport implementations only: the TCP or TLS byte stream under HTTP and
// WebSocket, and how it is opened.
#ifndef TTSBENCH_AGENT_TRANSPORT_INTERNAL_H_
#define TTSBENCH_AGENT_TRANSPORT_INTERNAL_H_

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

#include "agent/client/tls.h"
#include "agent/client/transport.h"
#include "common/clock.h"

namespace ttsbench::agent::internal {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

inline constexpr auto kUse = net::as_tuple(net::use_awaitable);

// Memory for one connection's asynchronous operations. Asio recycles operation memory through
// a small per-thread cache that hands out the first block big enough; a WebSocket's write
// (1,248 bytes) and read (736 bytes) take turns, the read took the write's block, and so each
// went to the heap on every message. A few fixed slots per connection hold them instead;
// anything larger still comes from the heap. Used from the connection's own thread only, and
// declared before the stream it serves, so it outlives every operation on it.
class HandlerMemory {
 public:
  HandlerMemory() = default;
  HandlerMemory(const HandlerMemory&) = delete;
  HandlerMemory& operator=(const HandlerMemory&) = delete;

  void* Allocate(size_t bytes) {
    if (bytes <= kSlotBytes) {
      for (Slot& slot : slots_) {
        if (!slot.used) {
          slot.used = true;
          return slot.bytes;
        }
      }
    }
    return ::operator new(bytes);
  }
  void Deallocate(void* p) {
    for (Slot& slot : slots_) {
      if (p == slot.bytes) {
        slot.used = false;
        return;
      }
    }
    ::operator delete(p);
  }

 private:
  static constexpr size_t kSlotBytes = 2048;
  struct Slot {
    alignas(std::max_align_t) unsigned char bytes[kSlotBytes];
    bool used = false;
  };
  std::array<Slot, 3> slots_;
};

template <typename T>
class HandlerAllocator {
 public:
  using value_type = T;
  explicit HandlerAllocator(HandlerMemory& memory) noexcept : memory_(&memory) {}
  template <typename U>
  HandlerAllocator(const HandlerAllocator<U>& other) noexcept  // NOLINT: an allocator rebinds
      : memory_(other.memory_) {}
  T* allocate(size_t n) const { return static_cast<T*>(memory_->Allocate(sizeof(T) * n)); }
  void deallocate(T* p, size_t) const noexcept { memory_->Deallocate(p); }
  template <typename U>
  bool operator==(const HandlerAllocator<U>& other) const noexcept {
    return memory_ == other.memory_;
  }

 private:
  template <typename>
  friend class HandlerAllocator;
  HandlerMemory* memory_;
};

// kUse, with the operations' memory from `memory`.
inline auto UseWith(HandlerMemory& memory) {
  return net::bind_allocator(HandlerAllocator<std::byte>(memory), kUse);
}

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
// On failure `detail` says why (the socket error, the certificate verify error).
template <bool kTls>
net::awaitable<v1::ErrorKind> ConnectLayer(Layer<kTls>& layer, const Endpoints& endpoints,
                                           const TlsOptions& tls, std::string* detail) {
  beast::tcp_stream& tcp_layer = beast::get_lowest_layer(layer);
  if (endpoints.empty()) {
    *detail = "no address to connect to";
    co_return v1::ERROR_CONNECT;
  }
  auto [ec, ep] = co_await tcp_layer.async_connect(endpoints, kUse);
  if (ec == beast::error::timeout) {
    *detail = "connect timed out (--timeout)";
    co_return v1::ERROR_TIMEOUT;
  }
  if (ec) {
    *detail = "connect: " + ec.message();
    co_return v1::ERROR_CONNECT;
  }
  beast::error_code ignored;
  tcp_layer.socket().set_option(tcp::no_delay(true), ignored);
  if constexpr (kTls) {
    if (!PrepareTlsConnection(layer.native_handle(), tls)) {
      *detail = "TLS set-up refused by OpenSSL (SNI, host name check or ALPN)";
      co_return v1::ERROR_TLS;
    }
    auto [hec] = co_await layer.async_handshake(net::ssl::stream_base::client, kUse);
    if (hec == beast::error::timeout) {
      *detail = "TLS handshake timed out (--timeout)";
      co_return v1::ERROR_TIMEOUT;
    }
    if (hec) {
      *detail = TlsHandshakeDetail(layer.native_handle(), hec);
      co_return v1::ERROR_TLS;
    }
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

// One request's deadline (DESIGN.md "Time"): connect and TLS when the connection is opened for
// the request, the send and the whole answer. The stream's timer enforces it while an operation
// waits; the read loops check it too, because a read that completes at once races the timer's
// handler and wins, so a server sending at full speed would never be cut off.
class Deadline {
 public:
  Deadline(int64_t from_ns, std::chrono::nanoseconds timeout) : at_ns_(from_ns + timeout.count()) {}
  bool Passed(int64_t now_ns) const { return now_ns >= at_ns_; }
  std::chrono::nanoseconds Remaining() const {
    return std::chrono::nanoseconds(at_ns_ - common::SteadyNowNs());
  }
  // Arms the timer of the TCP stream under `stream` (any layering).
  template <class Stream>
  void Arm(Stream& stream) const {
    beast::get_lowest_layer(stream).expires_at(
        net::steady_timer::time_point(std::chrono::nanoseconds(at_ns_)));
  }

 private:
  int64_t at_ns_;
};

// Whether the server closed (or reset) a kept connection while it was idle: checked before the
// request is written, so a stale connection is replaced without the doubt a failed read leaves
// (Go's net/http retries a POST only in this case too). One poll(2), no wait.
bool PeerHungUp(tcp::socket& socket);

// Ends an exchange with a classified error and stamps its end. A request the tool cancelled
// (Stop, lapsed lease) is recorded as cancelled unless its own deadline had passed. The
// connection is closed: its state is unknown after a failure.
// `detail` becomes the record's error_detail.
inline Outcome FailExchange(ExchangeContext& ctx, v1::ErrorKind kind, ClientConnection& conn,
                            std::string detail) {
  ctx.rec.set_error(ctx.stopping.load() && kind != v1::ERROR_TIMEOUT ? v1::ERROR_CANCELLED : kind);
  ctx.rec.set_error_detail(std::move(detail));
  ctx.rec.set_end_ns(common::SteadyNowNs());
  conn.Close();
  return Outcome::kDone;
}

// Keeps what a failed answer delivered: body bytes, chunk timing and the audio measured so far
// (`decoder` may be null).
void KeepReceived(v1::RequestRecord& rec, int64_t bytes, const ChunkTimeline& timeline,
                  const ResponseDecoder* decoder);

// Ends an answer that was read to its end (rec's end_ns and bytes set), with `error` found on
// the way (ERROR_NONE if none; `detail` says why): the decoder's end, the audio's length, and
// DESIGN.md's timing rules. A non-streamed answer's audio is first known at its end (TTFA =
// latency); only a streamed answer that succeeded contributes inter-chunk gaps.
Outcome CompleteAnswer(ExchangeContext& ctx, ResponseDecoder& decoder, ChunkTimeline& timeline,
                       v1::ErrorKind error, std::string detail = {});

// Fills rec.analysis from ctx.analyser once the answer is complete (nothing when it is null or
// saw no audio). Called by CompleteAnswer; answers cut off by a read error are not analysed.
void Analyse(ExchangeContext& ctx);

// "the request deadline (--timeout 30s) passed while <what>".
std::string TimeoutDetail(const ExchangeContext& ctx, absl::string_view what);

// Replaces a stale kept connection inside the request's deadline; its set-up time is added to
// the record's connect_ns. False: the open failed and the record holds the error.
template <class Connection>
net::awaitable<bool> Reopen(Connection& conn, const Endpoints& endpoints, ExchangeContext& ctx,
                            const Deadline& deadline) {
  const int64_t t0 = common::SteadyNowNs();
  const OpenResult r = co_await conn.Open(endpoints, deadline.Remaining());
  ctx.rec.set_connect_ns(ctx.rec.connect_ns() + (common::SteadyNowNs() - t0));
  if (r.error == v1::ERROR_NONE) co_return true;
  if (r.http_status != 0) ctx.rec.set_http_status(r.http_status);
  FailExchange(ctx, r.error, conn, r.detail);
  co_return false;
}

}  // namespace ttsbench::agent::internal

#endif  // TTSBENCH_AGENT_TRANSPORT_INTERNAL_H_
