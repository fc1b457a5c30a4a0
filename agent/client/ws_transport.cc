// WebSocket over TCP or TLS (Beast): the handshake is made when the connection opens (so its
// time is connect time); a request is the dialect's text messages, its answer the messages that
// follow until the decoder sees the end (or the server closes, where the dialect says so).
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/client/transport_internal.h"
#include "common/clock.h"

namespace ttsbench::agent {
namespace {

using namespace internal;  // NOLINT: the transport's private vocabulary
namespace websocket = beast::websocket;
using common::SteadyNowNs;

// Binary audio messages of a few MB are plausible (a whole sentence in one frame); no TTS answer
// needs more than this in one message. A binary message is fed to the decoder piece by piece
// once it outgrows the event cap, so even this size is never held; a text message (JSON) is
// refused as soon as it outgrows TransportSpec::max_event_bytes.
constexpr uint64_t kMaxMessageBytes = uint64_t{64} << 20;
constexpr size_t kReadBufferBytes = 16 * 1024;

template <bool kTls>
class WsConnection final : public ClientConnection {
 public:
  using Ws = websocket::stream<Layer<kTls>>;

  WsConnection(net::io_context& ioc, const TransportSpec& spec, net::ssl::context* tls)
      : ioc_(ioc), spec_(spec), tls_(tls) {}

  net::awaitable<OpenResult> Open(const Endpoints& endpoints,
                                  std::chrono::nanoseconds timeout) override {
    open_began_ns_ = SteadyNowNs();
    Close();
    endpoints_ = endpoints;
    if (kTls && tls_ == nullptr) co_return OpenResult{v1::ERROR_TLS, 0, "no TLS client context"};
    ws_ = NewStream<Ws, kTls>(ioc_, tls_);
    beast::get_lowest_layer(*ws_).expires_after(timeout);
    std::string detail;
    const v1::ErrorKind kind =
        co_await ConnectLayer<kTls>(ws_->next_layer(), endpoints, spec_.tls, &detail);
    if (kind != v1::ERROR_NONE) {
      Close();
      co_return OpenResult{kind, 0, std::move(detail)};
    }
    // One deadline per operation comes from the TCP layer; the WebSocket's own idle timers
    // would only fight it.
    ws_->set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                                    websocket::stream_base::none(), false});
    const TransportSpec& spec = spec_;
    ws_->set_option(websocket::stream_base::decorator([&spec](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "ttsbench/0.1");
      for (const v1::Header& h : spec.ws_headers) req.set(h.name(), h.value());
    }));
    ws_->read_message_max(kMaxMessageBytes);
    websocket::response_type res;
    auto [ec] = co_await ws_->async_handshake(res, spec_.ws_host, spec_.ws_target, kUse);
    if (ec) {
      Close();
      const int status = static_cast<int>(res.result_int());
      if (ec == websocket::error::upgrade_declined && status >= 200) {
        co_return OpenResult{
            StatusErrorKind(status), status,
            absl::StrCat(
                "WebSocket upgrade refused: ",
                StatusDetail(status, absl::string_view(res.reason().data(), res.reason().size()),
                             res.body()))};
      }
      if (ec == beast::error::timeout) {
        co_return OpenResult{v1::ERROR_TIMEOUT, 0, "WebSocket handshake timed out (--timeout)"};
      }
      if (PeerClosed(ec)) {
        co_return OpenResult{v1::ERROR_READ, 0,
                             absl::StrCat("WebSocket handshake: ", ReadDetail(ec, {}))};
      }
      co_return OpenResult{v1::ERROR_PROTOCOL, status,
                           absl::StrCat("WebSocket handshake: ", ec.message())};
    }
    buffer_.reserve(kReadBufferBytes);
    open_ = true;
    co_return OpenResult{};
  }

  void Close() override {
    open_ = false;
    buffer_.clear();
    // A refused message may have grown the buffer to the event cap: not kept while idle.
    if (buffer_.capacity() > kReadBufferBytes) buffer_.shrink_to_fit();
    if (ws_ != nullptr) ShutdownAndClose(*ws_);
  }

  bool is_open() const override { return open_; }

  net::awaitable<Outcome> Exchange(const PreparedRequest& req, ExchangeContext& ctx) override {
    v1::RequestRecord& rec = ctx.rec;
    auto fail = [&](v1::ErrorKind kind, std::string detail) {
      return FailExchange(ctx, kind, *this, std::move(detail));
    };
    const int64_t began = SteadyNowNs();
    const Deadline deadline(ctx.fresh ? open_began_ns_ : began, ctx.timeout);
    rec.set_start_ns(began);
    rec.set_http_status(101);  // the socket's upgrade: the answer itself has no status
    // As over HTTP: a kept socket is replaced only when nothing of the request can have reached
    // the server.
    bool reused = !ctx.fresh;
    if (reused && PeerHungUp(beast::get_lowest_layer(*ws_).socket())) {
      reused = false;
      if (!co_await Reopen(*this, endpoints_, ctx, deadline)) co_return Outcome::kDone;
    }
    for (size_t i = 0; i < req.messages.size();) {
      deadline.Arm(*ws_);
      ws_->text(true);
      auto [ec, n] = co_await ws_->async_write(net::buffer(req.messages[i]), UseWith(memory_));
      if (!ec) {
        ++i;
        continue;
      }
      const bool stale = PeerClosed(ec) || ec == websocket::error::closed;
      if (!reused || i != 0 || n != 0 || !stale) {
        const v1::ErrorKind kind = WriteErrorKind(ec);
        co_return fail(kind, kind == v1::ERROR_TIMEOUT ? TimeoutDetail(ctx, "sending the request")
                                                       : absl::StrCat("write: ", ec.message()));
      }
      reused = false;
      if (!co_await Reopen(*this, endpoints_, ctx, deadline)) co_return Outcome::kDone;
    }
    Ws& ws = *ws_;
    auto d = Decoder(ctx.dialect);
    if (!d.ok()) co_return fail(v1::ERROR_PROTOCOL, std::string(d.status().message()));
    ResponseDecoder* const decoder = *d;
    decoder->set_analyser(ctx.analyser);
    decoder->set_capture(ctx.capture);  // the ASR sample, or null
    int64_t bytes = 0;
    ChunkTimeline timeline(gaps_ns_);
    const bool streamed = rec.streamed();
    auto fail_keeping = [&](v1::ErrorKind kind, std::string detail) {
      KeepReceived(rec, bytes, timeline, decoder);
      return fail(kind, std::move(detail));
    };
    for (bool done = false; !done;) {
      // A message piece by piece as it arrives, straight into the decoder: the deadline is
      // checked however fast frames arrive, and no message is ever held whole (a text message
      // is parsed as it comes and refused as soon as it passes target.max_event_bytes).
      beast::error_code ec;
      size_t n = 0;
      MessageResult message;  // the audio of the pieces so far; done/ignored from the last
      bool first = true;
      do {
        buffer_.clear();
        auto [pec, pn] = co_await ws.async_read_some(buffer_, kReadBufferBytes, UseWith(memory_));
        ec = pec;
        n += pn;
        if (ec) break;
        const int64_t t = SteadyNowNs();
        if (deadline.Passed(t)) {
          co_return fail_keeping(v1::ERROR_TIMEOUT, TimeoutDetail(ctx, "reading the answer"));
        }
        const bool last = ws.is_message_done();
        auto r = decoder->OnMessagePart(View(buffer_), ws.got_binary(), first, last);
        first = false;
        if (!r.ok()) {
          // The session's state is unknown after a bad answer: the next request reconnects.
          if (rec.first_byte_ns() == 0) rec.set_first_byte_ns(t);
          bytes += static_cast<int64_t>(n);
          co_return fail_keeping(DecoderErrorKind(r.status()), std::string(r.status().message()));
        }
        message.feed.audio_bytes += r->feed.audio_bytes;
        message.feed.audio_s += r->feed.audio_s;
        message.done = r->done;
        message.ignored = r->ignored;
      } while (!ws.is_message_done());
      if (ec) {
        if (ec == websocket::error::closed && spec_.ws_ends_on_close) {
          open_ = false;
          break;
        }
        bytes += static_cast<int64_t>(n);
        // Closed before the end marker: a read error.
        const v1::ErrorKind kind = ReadErrorKind(ec);
        co_return fail_keeping(
            kind, kind == v1::ERROR_TIMEOUT
                      ? TimeoutDetail(ctx, "reading the answer")
                      : absl::StrCat("answer cut off after ", bytes, " bytes: ", ec.message()));
      }
      const int64_t t = SteadyNowNs();
      if (message.ignored) continue;
      if (rec.first_byte_ns() == 0) rec.set_first_byte_ns(t);
      bytes += static_cast<int64_t>(n);
      if (streamed && message.feed.audio_bytes > 0) timeline.Audio(t, message.feed.audio_s, rec);
      if (ctx.analyser != nullptr) ctx.analyser->Arrived(t);
      done = message.done;
    }
    rec.set_end_ns(SteadyNowNs());
    rec.set_bytes(bytes);
    // A socket per request: the server ends it after the answer; nothing more to wait for.
    if (!spec_.ws_reuse) Close();
    co_return CompleteAnswer(ctx, *decoder, timeline, v1::ERROR_NONE);
  }

 private:
  // The decoder of this answer: the last answer's, reset, when the dialect is the same (steady
  // state), else a new one.
  absl::StatusOr<ResponseDecoder*> Decoder(const Dialect& dialect) {
    if (decoder_ == nullptr || decoder_dialect_ != &dialect || !decoder_->Reset()) {
      decoder_ = nullptr;
      auto d = dialect.NewDecoder("");
      if (!d.ok()) return d.status();
      decoder_ = std::move(*d);
      decoder_dialect_ = &dialect;
    }
    return decoder_.get();
  }

  static absl::string_view View(const beast::flat_buffer& b) {
    const auto data = b.cdata();
    return absl::string_view(static_cast<const char*>(data.data()), data.size());
  }

  net::io_context& ioc_;
  const TransportSpec& spec_;
  net::ssl::context* tls_;
  HandlerMemory memory_;  // before ws_: outlives every operation on it
  std::unique_ptr<Ws> ws_;
  Endpoints endpoints_;  // of the last Open: where a stale kept socket is reopened
  int64_t open_began_ns_ = 0;
  beast::flat_buffer buffer_;
  std::vector<int64_t> gaps_ns_;  // the answer's inter-chunk gaps, capacity kept
  std::unique_ptr<ResponseDecoder> decoder_;
  const Dialect* decoder_dialect_ = nullptr;
  bool open_ = false;
};

}  // namespace

std::unique_ptr<ClientConnection> MakeWebSocketConnection(net::io_context& ioc,
                                                          const TransportSpec& spec,
                                                          net::ssl::context* tls) {
  if (spec.tls.enabled) return std::make_unique<WsConnection<true>>(ioc, spec, tls);
  return std::make_unique<WsConnection<false>>(ioc, spec, tls);
}

}  // namespace ttsbench::agent
