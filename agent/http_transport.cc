// HTTP/1.1 over TCP or TLS: keep-alive, Content-Length and chunked bodies; the dialect's decoder
// sees body bytes as they arrive (raw audio, JSON, or SSE events).
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <memory>
#include <utility>

#include "agent/transport_internal.h"
#include "common/clock.h"

namespace ttsbench::agent {
namespace {

using namespace internal;  // NOLINT: the transport's private vocabulary
namespace http = beast::http;
using common::SteadyNowNs;

constexpr size_t kBodyBufferBytes = 16 * 1024;
constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr uint64_t kBodyLimit = uint64_t{1} << 32;
// Beast sizes each socket read by the flat_buffer's free capacity (512 bytes when empty), so
// an unreserved buffer turns a 200 KB body into 400 reads.
constexpr size_t kReadBufferBytes = 16 * 1024;

template <bool kTls>
class HttpConnection final : public ClientConnection {
 public:
  HttpConnection(net::io_context& ioc, const TransportSpec& spec, net::ssl::context* tls)
      : ioc_(ioc), spec_(spec), tls_(tls), body_(std::make_unique<char[]>(kBodyBufferBytes)) {
    buffer_.reserve(kReadBufferBytes);
  }

  net::awaitable<OpenResult> Open(const Endpoints& endpoints,
                                  std::chrono::nanoseconds timeout) override {
    Close();
    if (kTls && tls_ == nullptr) co_return OpenResult{v1::ERROR_TLS};
    // A TLS stream cannot be reconnected: every connection gets a fresh one.
    stream_ = NewStream<Layer<kTls>, kTls>(ioc_, tls_);
    beast::get_lowest_layer(*stream_).expires_after(timeout);
    const v1::ErrorKind kind = co_await ConnectLayer<kTls>(*stream_, endpoints, spec_.tls);
    if (kind != v1::ERROR_NONE) {
      Close();
      co_return OpenResult{kind};
    }
    open_ = true;
    co_return OpenResult{};
  }

  void Close() override {
    open_ = false;
    buffer_.clear();
    if (stream_ == nullptr) return;
    beast::error_code ec;
    beast::tcp_stream& s = beast::get_lowest_layer(*stream_);
    s.socket().shutdown(tcp::socket::shutdown_both, ec);
    s.close();
  }

  bool is_open() const override { return open_; }

  net::awaitable<Outcome> Exchange(const PreparedRequest& req, ExchangeContext& ctx) override {
    v1::RequestRecord& rec = ctx.rec;
    auto fail = [&](v1::ErrorKind kind) {
      rec.set_error(ctx.stopping.load() ? v1::ERROR_CANCELLED : kind);
      rec.set_end_ns(SteadyNowNs());
      Close();
      return Outcome::kDone;
    };
    Layer<kTls>& stream = *stream_;
    beast::get_lowest_layer(stream).expires_after(ctx.timeout);
    rec.set_start_ns(SteadyNowNs());
    auto [wec, written] = co_await net::async_write(stream, net::buffer(req.wire), kUse);
    if (wec) {
      if (!ctx.fresh && PeerClosed(wec)) {
        Close();
        co_return Outcome::kStale;
      }
      co_return fail(WriteErrorKind(wec));
    }
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer_, parser, kUse);
    if (hec) {
      if (!ctx.fresh && PeerClosed(hec) && buffer_.size() == 0) {
        Close();
        co_return Outcome::kStale;
      }
      co_return fail(ReadErrorKind(hec));
    }
    const int status = static_cast<int>(parser.get().result_int());
    rec.set_http_status(status);
    const bool ok_status = status >= 200 && status < 300;
    std::unique_ptr<ResponseDecoder> decoder;
    if (ok_status) {
      const auto content_type = parser.get()[http::field::content_type];
      auto d = ctx.dialect.NewDecoder(absl::string_view(content_type.data(), content_type.size()));
      if (!d.ok()) co_return fail(v1::ERROR_PROTOCOL);
      decoder = std::move(*d);
    }
    int64_t bytes = 0;
    ChunkTimeline timeline;
    v1::ErrorKind bad = v1::ERROR_NONE;
    while (!parser.is_done()) {
      parser.get().body().data = body_.get();
      parser.get().body().size = kBodyBufferBytes;
      auto [rec_ec, rn] = co_await http::async_read_some(stream, buffer_, parser, kUse);
      beast::error_code ec = rec_ec;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return fail(ReadErrorKind(ec));
      const size_t got = kBodyBufferBytes - parser.get().body().size;
      if (got == 0) continue;
      const int64_t t = SteadyNowNs();
      if (rec.first_byte_ns() == 0) rec.set_first_byte_ns(t);
      bytes += static_cast<int64_t>(got);
      if (decoder == nullptr || bad != v1::ERROR_NONE) continue;
      auto feed = decoder->OnBody(absl::string_view(body_.get(), got));
      if (!feed.ok()) {
        bad = DecoderErrorKind(feed.status());  // keep reading so the connection stays usable
        continue;
      }
      if (feed->audio_bytes > 0) timeline.Audio(t, feed->audio_s, rec, ctx.gaps_us);
    }
    const int64_t end = SteadyNowNs();
    rec.set_end_ns(end);
    rec.set_bytes(bytes);
    timeline.Fill(rec);
    if (!parser.keep_alive()) Close();
    if (!ok_status) {
      rec.set_error(StatusErrorKind(status));
      co_return Outcome::kDone;
    }
    if (bad != v1::ERROR_NONE) {
      rec.set_error(bad);
      co_return Outcome::kDone;
    }
    auto tail = decoder->Finish();
    if (!tail.ok()) {
      rec.set_error(DecoderErrorKind(tail.status()));
      co_return Outcome::kDone;
    }
    if (tail->audio_bytes > 0 && rec.first_audio_ns() == 0) {
      rec.set_first_audio_ns(end);  // audio inside a JSON envelope exists once the body is whole
      rec.set_chunks(1);
    }
    rec.set_audio_s(decoder->seconds());
    rec.set_sample_rate(decoder->sample_rate());
    if (decoder->seconds() <= 0) rec.set_error(v1::ERROR_EMPTY_AUDIO);
    co_return Outcome::kDone;
  }

 private:
  net::io_context& ioc_;
  const TransportSpec& spec_;
  net::ssl::context* tls_;
  std::unique_ptr<Layer<kTls>> stream_;
  beast::flat_buffer buffer_{kHeaderLimit};
  std::unique_ptr<char[]> body_;
  bool open_ = false;
};

}  // namespace

std::unique_ptr<ClientConnection> MakeHttpConnection(net::io_context& ioc,
                                                     const TransportSpec& spec,
                                                     net::ssl::context* tls) {
  if (spec.tls.enabled) return std::make_unique<HttpConnection<true>>(ioc, spec, tls);
  return std::make_unique<HttpConnection<false>>(ioc, spec, tls);
}

}  // namespace ttsbench::agent
