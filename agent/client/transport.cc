#include "agent/client/transport.h"

#include <poll.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/client/riva_transport.h"
#include "agent/client/transport_internal.h"

namespace ttsbench::agent {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

void ChunkTimeline::Audio(int64_t t, double audio_s, v1::RequestRecord& rec) {
  const int64_t d = static_cast<int64_t>(audio_s * 1e9);
  if (chunks_ == 0) {
    rec.set_first_audio_ns(t);
    playback_end_ = t + d;
  } else {
    const int64_t gap = t - last_;
    const int64_t stall = std::max<int64_t>(0, t - playback_end_);
    max_gap_ = std::max(max_gap_, gap);
    gaps_.push_back(gap);
    underrun_ += stall;
    worst_ = std::max(worst_, stall);
    playback_end_ = std::max(t, playback_end_) + d;
  }
  last_ = t;
  ++chunks_;
}

void ChunkTimeline::Fill(v1::RequestRecord& rec) const {
  rec.set_chunks(chunks_);
  rec.set_max_gap_ms(static_cast<double>(max_gap_) / 1e6);
  rec.set_underrun_ms(static_cast<double>(underrun_) / 1e6);
  rec.set_worst_stall_ms(static_cast<double>(worst_) / 1e6);
}

void ChunkTimeline::Commit(common::LogHistogram* gaps_us) const {
  if (gaps_us == nullptr) return;
  for (const int64_t gap : gaps_) gaps_us->Add(static_cast<uint64_t>(gap / 1000));
}

bool PeerClosed(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::ssl::error::stream_truncated;
}

namespace {

bool IsTlsError(const beast::error_code& ec) {
  return ec.category() == net::error::get_ssl_category() ||
         (ec.category() == net::ssl::error::get_stream_category() &&
          ec != net::ssl::error::stream_truncated);
}

}  // namespace

v1::ErrorKind ReadErrorKind(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return v1::ERROR_TIMEOUT;
  if (PeerClosed(ec) || ec == http::error::partial_message) return v1::ERROR_READ;
  if (IsTlsError(ec)) return v1::ERROR_TLS;
  if (ec.category() == beast::error_code(http::error::bad_version).category()) {
    return v1::ERROR_PROTOCOL;
  }
  if (ec.category() == beast::error_code(beast::websocket::error::closed).category()) {
    // The server closed the socket (closed), or broke the framing (everything else).
    return ec == beast::websocket::error::closed ? v1::ERROR_READ : v1::ERROR_PROTOCOL;
  }
  return v1::ERROR_READ;
}

v1::ErrorKind WriteErrorKind(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return v1::ERROR_TIMEOUT;
  if (IsTlsError(ec)) return v1::ERROR_TLS;
  return v1::ERROR_WRITE;
}

v1::ErrorKind StatusErrorKind(int status) {
  if (status == 429) return v1::ERROR_HTTP_429;
  if (status >= 500) return v1::ERROR_HTTP_5XX;
  if (status >= 400) return v1::ERROR_HTTP_4XX;
  return v1::ERROR_PROTOCOL;  // 1xx/3xx: a TTS endpoint must answer with audio
}

namespace {

// Up to `limit` bytes of `text` fit for one console line: control characters become spaces
// (runs collapsed), bytes outside printable ASCII become '?', so a binary body stays readable.
std::string Printable(absl::string_view text, size_t limit) {
  std::string out;
  out.reserve(std::min(text.size(), limit) + 3);
  for (const char ch : text.substr(0, limit)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c < 0x80 ? ch : '?');
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (text.size() > limit) out += "...";
  return out;
}

}  // namespace

std::string StatusDetail(int status, absl::string_view reason, absl::string_view body) {
  std::string out = absl::StrCat(status);
  if (!reason.empty()) absl::StrAppend(&out, " ", Printable(reason, 80));
  const std::string text = Printable(body, kErrorBodyBytes);
  if (!text.empty()) absl::StrAppend(&out, ": ", text);
  return out;
}

bool LooksLikeTls(absl::string_view received) {
  return received.size() >= 2 && (received[0] == 0x15 || received[0] == 0x16) &&
         received[1] == 0x03;
}

std::string ReadDetail(const beast::error_code& ec, absl::string_view received) {
  if (LooksLikeTls(received)) {
    std::string hex;
    for (const char c : received.substr(0, 5)) {
      absl::StrAppend(&hex, hex.empty() ? "" : " ",
                      absl::StrFormat("%02x", static_cast<unsigned char>(c)));
    }
    return absl::StrCat("the server answered with TLS bytes (", hex,
                        "), not HTTP: the port speaks TLS");
  }
  if (PeerClosed(ec) && received.empty()) {
    return absl::StrCat("the server closed the connection without answering (", ec.message(), ")");
  }
  if (!received.empty() &&
      ec.category() == beast::error_code(http::error::bad_version).category()) {
    return absl::StrCat("not an HTTP answer (", ec.message(), "): \"", Printable(received, 60),
                        "\"");
  }
  return ec.message();
}

v1::ErrorKind DecoderErrorKind(const absl::Status& status) {
  // AudioEventSpec::known_types: a message kind the protocol does not define.
  if (absl::IsUnimplemented(status) && absl::StartsWith(status.message(), "unknown message type")) {
    return v1::ERROR_UNKNOWN_MESSAGE;
  }
  return absl::IsInvalidArgument(status) ? v1::ERROR_INVALID_AUDIO : v1::ERROR_PROTOCOL;
}

namespace internal {

bool PeerHungUp(tcp::socket& socket) {
  pollfd p{};
  p.fd = socket.native_handle();
  p.events = POLLIN | POLLRDHUP;
  if (::poll(&p, 1, 0) != 1) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void KeepReceived(v1::RequestRecord& rec, int64_t bytes, const ChunkTimeline& timeline,
                  const ResponseDecoder* decoder) {
  rec.set_bytes(bytes);
  timeline.Fill(rec);
  if (decoder == nullptr) return;
  rec.set_audio_s(decoder->seconds());
  rec.set_sample_rate(decoder->sample_rate());
}

std::string TimeoutDetail(const ExchangeContext& ctx, absl::string_view what) {
  return absl::StrFormat("the request deadline (--timeout %gs) passed while %s",
                         static_cast<double>(ctx.timeout.count()) / 1e9, what);
}

Outcome CompleteAnswer(ExchangeContext& ctx, ResponseDecoder& decoder, ChunkTimeline& timeline,
                       v1::ErrorKind error, std::string detail) {
  v1::RequestRecord& rec = ctx.rec;
  const bool streamed = rec.streamed();
  if (error == v1::ERROR_NONE) {
    auto tail = decoder.Finish();
    if (!tail.ok()) {
      error = DecoderErrorKind(tail.status());
      detail = std::string(tail.status().message());
    } else if (streamed && tail->audio_bytes > 0) {
      timeline.Audio(rec.end_ns(), tail->audio_s, rec);  // e.g. a last SSE event never ended
    }
  }
  timeline.Fill(rec);
  rec.set_audio_s(decoder.seconds());
  rec.set_sample_rate(decoder.sample_rate());
  decoder.set_analyser(nullptr);
  if (error == v1::ERROR_NONE && decoder.seconds() <= 0) {
    error = v1::ERROR_EMPTY_AUDIO;
    detail = absl::StrCat("the answer held no audio (", rec.bytes(), " bytes)");
  }
  rec.set_error(error);
  if (error != v1::ERROR_NONE) {
    rec.set_error_detail(std::move(detail));
    Analyse(ctx);
    return Outcome::kDone;
  }
  if (streamed) {
    timeline.Commit(ctx.gaps_us);
  } else {
    // The audio is one piece, in hand once the body is whole.
    rec.set_first_audio_ns(rec.end_ns());
    rec.set_chunks(1);
  }
  Analyse(ctx);
  return Outcome::kDone;
}

void Analyse(ExchangeContext& ctx) {
  if (ctx.analyser == nullptr || ctx.analyser->empty()) return;
  v1::RequestRecord& rec = ctx.rec;
  ctx.analyser->Finish(rec.first_audio_ns(), rec.end_ns(), rec.mutable_analysis());
}

}  // namespace internal

bool Reusable(const TransportSpec& spec) {
  return spec.kind == TransportSpec::Kind::kHttp || spec.kind == TransportSpec::Kind::kGrpc ||
         spec.ws_reuse;
}

std::unique_ptr<ClientConnection> MakeHttpConnection(net::io_context& ioc,
                                                     const TransportSpec& spec,
                                                     net::ssl::context* tls);
std::unique_ptr<ClientConnection> MakeWebSocketConnection(net::io_context& ioc,
                                                          const TransportSpec& spec,
                                                          net::ssl::context* tls);

std::unique_ptr<ClientConnection> MakeCommandConnection(net::io_context& ioc);

std::unique_ptr<ClientConnection> MakeConnection(net::io_context& ioc, const TransportSpec& spec,
                                                 net::ssl::context* tls) {
  if (spec.kind == TransportSpec::Kind::kCommand) return MakeCommandConnection(ioc);
  if (spec.kind == TransportSpec::Kind::kGrpc) return MakeRivaConnection(ioc, spec);
  return spec.kind == TransportSpec::Kind::kWebSocket ? MakeWebSocketConnection(ioc, spec, tls)
                                                      : MakeHttpConnection(ioc, spec, tls);
}

}  // namespace ttsbench::agent
