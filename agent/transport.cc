#include "agent/transport.h"

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>

namespace ttsbench::agent {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

void ChunkTimeline::Audio(int64_t t, double audio_s, v1::RequestRecord& rec,
                          common::LogHistogram* gaps_us) {
  const int64_t d = static_cast<int64_t>(audio_s * 1e9);
  if (chunks_ == 0) {
    rec.set_first_audio_ns(t);
    playback_end_ = t + d;
  } else {
    const int64_t gap = t - last_;
    const int64_t stall = std::max<int64_t>(0, t - playback_end_);
    max_gap_ = std::max(max_gap_, gap);
    if (gaps_us != nullptr) gaps_us->Add(static_cast<uint64_t>(gap / 1000));
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

v1::ErrorKind DecoderErrorKind(const absl::Status& status) {
  return absl::IsInvalidArgument(status) ? v1::ERROR_INVALID_AUDIO : v1::ERROR_PROTOCOL;
}

bool Reusable(const TransportSpec& spec) {
  return spec.kind == TransportSpec::Kind::kHttp || spec.ws_reuse;
}

std::unique_ptr<ClientConnection> MakeHttpConnection(net::io_context& ioc,
                                                     const TransportSpec& spec,
                                                     net::ssl::context* tls);
std::unique_ptr<ClientConnection> MakeWebSocketConnection(net::io_context& ioc,
                                                          const TransportSpec& spec,
                                                          net::ssl::context* tls);

std::unique_ptr<ClientConnection> MakeConnection(net::io_context& ioc, const TransportSpec& spec,
                                                 net::ssl::context* tls) {
  return spec.kind == TransportSpec::Kind::kWebSocket ? MakeWebSocketConnection(ioc, spec, tls)
                                                      : MakeHttpConnection(ioc, spec, tls);
}

}  // namespace ttsbench::agent
