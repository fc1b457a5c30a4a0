// HTTP/1.1 over TCP or TLS: keep-alive, Content-Length and chunked bodies; the dialect's decoder
// sees body bytes as they arrive (raw audio, JSON, or SSE events).
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
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
namespace http = beast::http;
using common::SteadyNowNs;

constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr uint64_t kBodyLimit = uint64_t{1} << 32;
// Beast sizes each socket read by the flat_buffer's free capacity (512 bytes when empty), so
// an unreserved buffer turns a 200 KB body into 400 reads. 64 KiB reads a one-second answer
// (48-66 KB) in one or two reads instead of four or five: a fifth less agent CPU per streamed
// answer than 16 KiB. Only the pages a read fills become resident, so 10,000 slow streams
// still take 16 KB each (bench/concurrency_scale.py: 158 MB, was 156 MB with 16 KiB).
constexpr size_t kReadBufferBytes = 64 * 1024;

// Where the body's bytes go: straight from the read buffer to the dialect's decoder, without
// the copy into a body buffer that http::buffer_body makes (at 20,000 answers/s of 48 KB that
// copy was the agent's largest user-space cost).
struct BodySink {
  ResponseDecoder* decoder = nullptr;  // null: a non-2xx answer, counted but not decoded
  int64_t bytes = 0;
  // Audio met since the last read completed.
  int64_t audio_bytes = 0;
  double audio_s = 0;
  v1::ErrorKind bad = v1::ERROR_NONE;
  std::string bad_detail;  // the decoder's reason, set with `bad`
  // A non-2xx answer's first kErrorBodyBytes (+1, to tell a cut body): the server's reason.
  std::string error_body;

  void Put(const char* data, size_t n) {
    bytes += static_cast<int64_t>(n);
    if (decoder == nullptr) {
      const size_t room = kErrorBodyBytes + 1 - std::min(error_body.size(), kErrorBodyBytes + 1);
      error_body.append(data, std::min(n, room));
      return;
    }
    if (bad != v1::ERROR_NONE) return;
    auto feed = decoder->OnBody(absl::string_view(data, n));
    if (!feed.ok()) {
      bad = DecoderErrorKind(feed.status());  // keep reading so the connection stays usable
      bad_detail = std::string(feed.status().message());
      return;
    }
    audio_bytes += static_cast<int64_t>(feed->audio_bytes);
    audio_s += feed->audio_s;
  }
};

// Parses an HTTP response without storing its fields: the status, the Content-Type and the
// body are all an exchange needs, and http::response_parser allocated every header field of
// every answer (the agent's largest remaining allocation at 20,000 answers/s). Keep-alive and
// body framing (Content-Length, chunked, close-delimited) are basic_parser's own.
class ResponseReader final : public http::basic_parser<false> {
 public:
  // `content_type` belongs to the connection, so its capacity is reused from answer to answer.
  explicit ResponseReader(std::string& content_type) : content_type_(content_type) {
    content_type_.clear();
  }
  int status() const { return status_; }
  // The reason phrase of a non-2xx status line (not kept for a 2xx: nothing to explain).
  const std::string& reason() const { return reason_; }
  void set_sink(BodySink* sink) { sink_ = sink; }

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view reason, int, beast::error_code&) override {
    status_ = code;
    if (code < 200 || code >= 300) reason_.assign(reason.data(), reason.size());
  }
  void on_field_impl(http::field name, beast::string_view, beast::string_view value,
                     beast::error_code&) override {
    if (name == http::field::content_type) content_type_.assign(value.data(), value.size());
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    if (sink_ != nullptr) sink_->Put(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                            beast::error_code& ec) override {
    return on_body_impl(body, ec);
  }
  void on_finish_impl(beast::error_code&) override {}

  std::string& content_type_;
  std::string reason_;
  int status_ = 0;
  BodySink* sink_ = nullptr;
};

template <bool kTls>
class HttpConnection final : public ClientConnection {
 public:
  HttpConnection(net::io_context& ioc, const TransportSpec& spec, net::ssl::context* tls)
      : ioc_(ioc), spec_(spec), tls_(tls) {
    buffer_.reserve(kReadBufferBytes);
  }

  net::awaitable<OpenResult> Open(const Endpoints& endpoints,
                                  std::chrono::nanoseconds timeout) override {
    open_began_ns_ = SteadyNowNs();
    Close();
    endpoints_ = endpoints;
    if (kTls && tls_ == nullptr) co_return OpenResult{v1::ERROR_TLS, 0, "no TLS client context"};
    // A TLS stream cannot be reconnected: every connection gets a fresh one.
    stream_ = NewStream<Layer<kTls>, kTls>(ioc_, tls_);
    beast::get_lowest_layer(*stream_).expires_after(timeout);
    std::string detail;
    const v1::ErrorKind kind = co_await ConnectLayer<kTls>(*stream_, endpoints, spec_.tls, &detail);
    if (kind != v1::ERROR_NONE) {
      Close();
      co_return OpenResult{kind, 0, std::move(detail)};
    }
    open_ = true;
    co_return OpenResult{};
  }

  void Close() override {
    open_ = false;
    buffer_.clear();
    if (stream_ != nullptr) ShutdownAndClose(*stream_);
  }

  bool is_open() const override { return open_; }

  net::awaitable<Outcome> Exchange(const PreparedRequest& req, ExchangeContext& ctx) override {
    v1::RequestRecord& rec = ctx.rec;
    auto fail = [&](v1::ErrorKind kind, std::string detail) {
      return FailExchange(ctx, kind, *this, std::move(detail));
    };
    // A failed read, explained by the bytes the server sent instead of an answer, if any.
    auto fail_read = [&](const beast::error_code& ec, absl::string_view received,
                         absl::string_view while_doing) {
      const v1::ErrorKind kind = ReadErrorKind(ec);
      return fail(kind, kind == v1::ERROR_TIMEOUT ? TimeoutDetail(ctx, while_doing)
                                                  : ReadDetail(ec, received));
    };
    const int64_t began = SteadyNowNs();
    const Deadline deadline(ctx.fresh ? open_began_ns_ : began, ctx.timeout);
    rec.set_start_ns(began);
    // A kept connection is replaced, and the request sent again, only when nothing of it can
    // have reached the server: closed while idle, or not one byte written. A server that drops
    // a request it accepted is an error, never hidden by a retry.
    bool reused = !ctx.fresh;
    if (reused && PeerHungUp(beast::get_lowest_layer(*stream_).socket())) {
      reused = false;
      if (!co_await Reopen(*this, endpoints_, ctx, deadline)) co_return Outcome::kDone;
    }
    for (;;) {
      deadline.Arm(*stream_);
      auto [wec, written] = co_await net::async_write(*stream_, net::buffer(req.wire), kUse);
      if (!wec) break;
      if (!reused || written != 0 || !PeerClosed(wec)) {
        const v1::ErrorKind kind = WriteErrorKind(wec);
        co_return fail(kind, kind == v1::ERROR_TIMEOUT ? TimeoutDetail(ctx, "sending the request")
                                                       : absl::StrCat("write: ", wec.message()));
      }
      reused = false;
      if (!co_await Reopen(*this, endpoints_, ctx, deadline)) co_return Outcome::kDone;
    }
    Layer<kTls>& stream = *stream_;
    ResponseReader parser(content_type_);
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer_, parser, kUse);
    // Known as soon as the status line is, even if the rest of the head breaks a limit.
    if (parser.status() != 0) rec.set_http_status(parser.status());
    if (hec) {
      const auto head = buffer_.data();
      co_return fail_read(
          hec,
          parser.status() != 0
              ? absl::string_view()
              : absl::string_view(static_cast<const char*>(head.data()), head.size()),
          "waiting for the answer");
    }
    if (deadline.Passed(SteadyNowNs())) {
      co_return fail(v1::ERROR_TIMEOUT, TimeoutDetail(ctx, "waiting for the answer"));
    }
    const int status = parser.status();
    const bool ok_status = status >= 200 && status < 300;
    ResponseDecoder* decoder = nullptr;
    if (ok_status) {
      auto d = Decoder(ctx.dialect);
      if (!d.ok()) co_return fail(v1::ERROR_PROTOCOL, std::string(d.status().message()));
      decoder = *d;
      decoder->set_analyser(ctx.analyser);
      decoder->set_capture(ctx.capture);  // the ASR sample, or null
    }
    BodySink sink;
    sink.decoder = decoder;
    parser.set_sink(&sink);
    ChunkTimeline timeline(gaps_ns_);
    const bool streamed = rec.streamed();
    while (!parser.is_done()) {
      const int64_t before = sink.bytes;
      auto [ec, rn] = co_await http::async_read_some(stream, buffer_, parser, kUse);
      // One timestamp per read: the bytes of one read arrived together.
      const int64_t t = SteadyNowNs();
      if (sink.bytes != before) {
        if (rec.first_byte_ns() == 0) rec.set_first_byte_ns(t);
        if (streamed && sink.audio_bytes > 0) timeline.Audio(t, sink.audio_s, rec);
        if (ctx.analyser != nullptr) ctx.analyser->Arrived(t);
        sink.audio_bytes = 0;
        sink.audio_s = 0;
      }
      if (sink.bad != v1::ERROR_NONE) {
        // The answer is refused (an event over the cap, audio that is not audio): the rest of
        // the body may never end, so it is not read; the connection closes with the failure.
        KeepReceived(rec, sink.bytes, timeline, decoder);
        co_return fail(sink.bad, std::move(sink.bad_detail));
      }
      if (ec || deadline.Passed(t)) {
        KeepReceived(rec, sink.bytes, timeline, decoder);
        if (!ec) co_return fail(v1::ERROR_TIMEOUT, TimeoutDetail(ctx, "reading the answer"));
        if (ReadErrorKind(ec) == v1::ERROR_TIMEOUT) {
          co_return fail(v1::ERROR_TIMEOUT, TimeoutDetail(ctx, "reading the answer"));
        }
        co_return fail(ReadErrorKind(ec), absl::StrCat("answer cut off after ", sink.bytes,
                                                       " body bytes: ", ec.message()));
      }
    }
    rec.set_end_ns(SteadyNowNs());
    rec.set_bytes(sink.bytes);
    if (!parser.keep_alive()) Close();
    if (!ok_status) {
      timeline.Fill(rec);
      rec.set_error(StatusErrorKind(status));
      rec.set_error_detail(StatusDetail(status, parser.reason(), sink.error_body));
      co_return Outcome::kDone;
    }
    co_return CompleteAnswer(ctx, *decoder, timeline, sink.bad, std::move(sink.bad_detail));
  }

 private:
  // The decoder of this answer: the last answer's, reset, when the dialect and Content-Type
  // are the same (steady state), else a new one.
  absl::StatusOr<ResponseDecoder*> Decoder(const Dialect& dialect) {
    if (decoder_ == nullptr || decoder_dialect_ != &dialect || decoder_type_ != content_type_ ||
        !decoder_->Reset()) {
      decoder_ = nullptr;
      auto d = dialect.NewDecoder(content_type_);
      if (!d.ok()) return d.status();
      decoder_ = std::move(*d);
      decoder_dialect_ = &dialect;
      decoder_type_.assign(content_type_);
    }
    return decoder_.get();
  }

  net::io_context& ioc_;
  const TransportSpec& spec_;
  net::ssl::context* tls_;
  std::unique_ptr<Layer<kTls>> stream_;
  Endpoints endpoints_;  // of the last Open: where a stale kept connection is reopened
  std::unique_ptr<ResponseDecoder> decoder_;
  const Dialect* decoder_dialect_ = nullptr;
  std::string decoder_type_;  // the Content-Type decoder_ was made for
  int64_t open_began_ns_ = 0;
  beast::flat_buffer buffer_{kHeaderLimit};
  std::string content_type_;
  std::vector<int64_t> gaps_ns_;  // the answer's inter-chunk gaps, capacity kept
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
