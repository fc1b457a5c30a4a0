// The load engine's connections: one implementation per transport (HTTP/1.1, WebSocket), each
// over TCP or TLS. A connection belongs to one virtual user on one worker thread; it writes a
// prepared request, reads the answer through the dialect's decoder and fills the request record.
#ifndef TTSBENCH_AGENT_TRANSPORT_H_
#define TTSBENCH_AGENT_TRANSPORT_H_

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/client/dialect.h"
#include "common/histogram.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent {

using Endpoints = boost::asio::ip::tcp::resolver::results_type;

struct OpenResult {
  v1::ErrorKind error = v1::ERROR_NONE;
  int http_status = 0;  // a refused WebSocket handshake's status
  std::string detail;   // why it failed, for the record's error_detail (empty on success)
};

// How an exchange ended. The record is always complete (success or a classified error): a kept
// connection the server had closed while idle is replaced by the transport itself, inside the
// request's deadline, so the caller never retries.
enum class Outcome { kDone };

// What one exchange needs besides the request.
struct ExchangeContext {
  const Dialect& dialect;
  v1::RequestRecord& rec;  // streamed() set by the caller
  // Inter-chunk gaps of measured streamed requests that succeed; null in warm-up.
  common::LogHistogram* gaps_us;
  bool fresh = false;  // opened for this request (by Open just before): never stale
  const std::atomic<bool>& stopping;
  // The request's deadline, measured from the start of Open for a fresh connection, else from
  // the exchange's start: connect, TLS, send and the whole answer fit inside it.
  std::chrono::nanoseconds timeout;
  // The analyser of this request's audio (plan audio_checks, begun by the caller), or null:
  // the answer is not analysed. CompleteAnswer fills rec.analysis from it.
  common::AudioAnalyser* analyser = nullptr;
  // The ASR check's sample (plan asr): the answer's audio is kept there; null when off.
  AudioCapture* capture = nullptr;
  // Paced text (plan pacing; null: the request's messages are sent at once). The WebSocket
  // transport sends the request's pieces on `pace_seed`'s schedule and fills the record's
  // first_text_ns, end_of_input_ns, lateness and barge-in fields.
  const v1::TextPacing* pacing = nullptr;
  uint64_t pace_seed = 0;
  bool interrupt = false;                 // barge-in: interrupt this answer (ShouldInterrupt)
  v1::PacedTimeline* timeline = nullptr;  // sampled request: pieces and audio, local clock
};

class ClientConnection {
 public:
  virtual ~ClientConnection() = default;
  // TCP connect, TLS handshake, and the WebSocket handshake where the transport has one, under
  // one deadline.
  virtual boost::asio::awaitable<OpenResult> Open(const Endpoints& endpoints,
                                                  std::chrono::nanoseconds timeout) = 0;
  // Writes the request and reads the whole answer; start_ns is when the exchange began (the
  // first byte written, unless a stale kept connection had to be replaced first).
  virtual boost::asio::awaitable<Outcome> Exchange(const PreparedRequest& req,
                                                   ExchangeContext& ctx) = 0;
  // Closes the socket, which cancels pending operations. Only on the connection's own thread.
  virtual void Close() = 0;
  virtual bool is_open() const = 0;
};

// `tls` is the worker's client context, required when spec.tls.enabled (null: every open fails
// as a tls error).
std::unique_ptr<ClientConnection> MakeConnection(boost::asio::io_context& ioc,
                                                 const TransportSpec& spec,
                                                 boost::asio::ssl::context* tls);

// Whether connections of this transport are kept for the next request.
bool Reusable(const TransportSpec& spec);

// Arrival times of one answer's audio: first audio, inter-chunk gaps and playback underrun.
// Playback starts at the first audio; a chunk arriving after the audio received so far has
// finished playing is a stall: stall_k = max(0, t_k - E_{k-1}), E_k = max(t_k, E_{k-1}) + d_k.
class ChunkTimeline {
 public:
  // `gaps_ns` keeps this answer's inter-chunk gaps until Commit; it belongs to the connection,
  // so its capacity is reused from answer to answer.
  explicit ChunkTimeline(std::vector<int64_t>& gaps_ns) : gaps_(gaps_ns) { gaps_.clear(); }
  void Audio(int64_t t_ns, double audio_s, v1::RequestRecord& rec);
  void Fill(v1::RequestRecord& rec) const;  // chunks, max gap, underrun, worst stall
  // Adds the gaps to the level's histogram (null: none). Only for a streamed answer that
  // succeeded: a failed or non-streamed answer's gaps say nothing about streaming continuity.
  void Commit(common::LogHistogram* gaps_us) const;

 private:
  std::vector<int64_t>& gaps_;
  int chunks_ = 0;
  int64_t last_ = 0;
  int64_t playback_end_ = 0;
  int64_t underrun_ = 0;
  int64_t max_gap_ = 0;
  int64_t worst_ = 0;
};

// Error kinds of failed socket operations.
v1::ErrorKind ReadErrorKind(const boost::beast::error_code& ec);
v1::ErrorKind WriteErrorKind(const boost::beast::error_code& ec);
v1::ErrorKind StatusErrorKind(int status);
// The peer closed the connection (EOF, reset, TLS truncation).
bool PeerClosed(const boost::beast::error_code& ec);

// Error details (RequestRecord.error_detail): built on failure only, so a successful request
// allocates nothing for them. At most this many bytes of a server's error body are kept.
inline constexpr size_t kErrorBodyBytes = 200;
// "404 Not Found: {body...}": the status line and the start of the error body (control
// characters and invalid UTF-8 replaced, cut at kErrorBodyBytes).
std::string StatusDetail(int status, absl::string_view reason, absl::string_view body);
// A failed read: the socket error, and what the bytes the server sent instead of an HTTP
// answer were (`received`: the unparsed start of the answer; TLS records start 0x15 or 0x16).
std::string ReadDetail(const boost::beast::error_code& ec, absl::string_view received);
// Whether `received` begins like a TLS record (alert 0x15, handshake 0x16, then version 3.x).
bool LooksLikeTls(absl::string_view received);
// A decoder's error: invalid_audio for InvalidArgument, unknown_message for Unimplemented (a
// message kind the protocol does not define: "unknown message type ..."), protocol otherwise.
v1::ErrorKind DecoderErrorKind(const absl::Status& status);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_TRANSPORT_H_
