// WebSocket over TCP or TLS (Beast): the handshake is made when the connection opens (so its
// time is connect time); a request is the dialect's text messages, its answer the messages that
// follow until the decoder sees the end (or the server closes, where the dialect says so).
// Paced text (plan pacing): a second coroutine on the same strand writes the request's pieces
// at their due times while the answer is read (Beast allows one read and one write at once),
// then the flush and end of input, and for barge-in the interrupt; it never touches the stream's
// timer (that would cancel the pending read's timeout) and enforces its own bounds (flush
// answered, silence after the interrupt) by closing the socket.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/client/text_pacing.h"
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
// Barge-in: audio later than this after the interrupt is audio_after_cancel (plan default).
constexpr double kDefaultSilenceLimitMs = 500;

net::steady_timer::time_point At(int64_t ns) {
  return net::steady_timer::time_point(std::chrono::nanoseconds(ns));
}

// What the paced writer did and decided, read by the reader (same strand: no locking).
struct PaceState {
  bool running = false;
  bool stop = false;  // the reader is done: the writer returns
  int64_t first_text_ns = 0;
  int64_t end_of_input_ns = 0;
  int64_t last_text_ns = 0;  // the last text piece written (the last token's)
  int64_t late_max_ns = 0;
  int64_t late_total_ns = 0;
  int pieces = 0;
  // Barge-in: when the interrupt is due (set by the reader at the first audio), and was sent.
  int64_t interrupt_due_ns = 0;
  int64_t interrupt_ns = 0;
  // Which bound of the writer's closed the socket: its error kind and detail.
  v1::ErrorKind bound = v1::ERROR_NONE;
  std::string bound_detail;
  beast::error_code write_ec;
};

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
    if (req.context_marker) ContextId(rec.request_id());
    const bool paced = ctx.pacing != nullptr && !req.pieces.empty();
    pace_ = PaceState{};
    // Unpaced: the pieces and the closing messages go at once, after the opening ones.
    const size_t total = req.messages.size() + (paced ? 0 : req.pieces.size() + req.closing.size());
    auto message = [&](size_t i) -> const std::string& {
      if (i < req.messages.size()) return req.messages[i];
      i -= req.messages.size();
      if (i < req.pieces.size()) return req.pieces[i].message;
      return req.closing[i - req.pieces.size()];
    };
    // As over HTTP: a kept socket is replaced only when nothing of the request can have reached
    // the server.
    bool reused = !ctx.fresh;
    // Unread bytes on a kept socket before a request are outside any answer: a server that hung
    // up between requests (its close frame waiting, a conversation's server dropping the
    // session between turns), replaced like a socket whose peer is gone.
    if (reused && PeerHungUp(beast::get_lowest_layer(*ws_).socket())) {
      reused = false;
      if (!co_await Reopen(*this, endpoints_, ctx, deadline)) co_return Outcome::kDone;
    }
    for (size_t i = 0; i < total;) {
      deadline.Arm(*ws_);
      ws_->text(true);
      const std::string& m = Stamp(message(i), req.context_marker, scratch_);
      auto [ec, n] = co_await ws_->async_write(net::buffer(m), UseWith(memory_));
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
    if (!paced) co_return co_await ReadAnswer(ctx, deadline, false, false);
    deadline.Arm(*ws_);  // the writer never arms the timer: this bound holds for both
    pace_.running = true;
    if (pace_timer_ == nullptr) {
      pace_timer_ = std::make_unique<net::steady_timer>(ioc_);
      joined_ = std::make_unique<net::steady_timer>(ioc_);
    }
    net::co_spawn(ioc_, SendPaced(req, ctx, began), net::detached);
    const Outcome out = co_await ReadAnswer(ctx, deadline, true, ctx.interrupt);
    pace_.stop = true;
    pace_timer_->cancel();
    while (pace_.running) {
      joined_->expires_at(net::steady_timer::time_point::max());
      co_await joined_->async_wait(kUse);
    }
    rec.set_first_text_ns(pace_.first_text_ns);
    // The record's end of input is the end of the text: when its last piece went, once the
    // input was ended (flush / end message, end_delay_ms later). LTLA is measured from it, so a
    // server that spoke the last token before the delayed end of input is not "negative": no
    // honest server can finish before the last token reaches it. The timeline keeps the end
    // message's own time (the plot's mark).
    rec.set_end_of_input_ns(pace_.end_of_input_ns != 0 ? pace_.last_text_ns : 0);
    rec.set_pacing_late_max_ns(pace_.late_max_ns);
    rec.set_pacing_late_total_ns(pace_.late_total_ns);
    rec.set_text_pieces(pace_.pieces);
    rec.set_interrupt_ns(pace_.interrupt_ns);
    // After an interrupt the socket may still carry its answer (a Cleared that lost the race
    // with the turn's own end): the next request must not read it as its own. Only an answer
    // ended by the interrupt's acknowledgment (Deepgram's Cleared) leaves it clean, so the next
    // turn of a conversation goes on with it.
    if (pace_.interrupt_ns != 0 && !acknowledged_) Close();
    if (ctx.timeline != nullptr) {
      ctx.timeline->set_end_of_input_ns(pace_.end_of_input_ns);
      ctx.timeline->set_interrupt_ns(pace_.interrupt_ns);
    }
    co_return out;
  }

 private:
  // Reads the answer to its end. `paced`: the paced writer runs beside (its bounds and errors
  // count); `barge_in`: it interrupts the answer once audio came.
  net::awaitable<Outcome> ReadAnswer(ExchangeContext& ctx, const Deadline& deadline, bool paced,
                                     bool barge_in) {
    v1::RequestRecord& rec = ctx.rec;
    auto fail = [&](v1::ErrorKind kind, std::string detail) {
      return FailExchange(ctx, kind, *this, std::move(detail));
    };
    Ws& ws = *ws_;
    acknowledged_ = false;
    auto d = Decoder(ctx.dialect);
    if (!d.ok()) co_return fail(v1::ERROR_PROTOCOL, std::string(d.status().message()));
    ResponseDecoder* const decoder = *d;
    decoder->set_analyser(ctx.analyser);
    decoder->set_capture(ctx.capture);  // the ASR sample, or null
    int64_t bytes = 0;
    ChunkTimeline timeline(gaps_ns_);
    const bool streamed = rec.streamed();
    const int64_t silence_limit_ns =
        static_cast<int64_t>((ctx.pacing != nullptr && ctx.pacing->silence_limit_ms() > 0
                                  ? ctx.pacing->silence_limit_ms()
                                  : kDefaultSilenceLimitMs) *
                             1e6);
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
        message.acknowledged = r->acknowledged;
      } while (!ws.is_message_done());
      if (ec) {
        if (ec == websocket::error::closed && spec_.ws_ends_on_close) {
          open_ = false;
          break;
        }
        bytes += static_cast<int64_t>(n);
        if (paced && pace_.interrupt_ns != 0 && ReadErrorKind(ec) != v1::ERROR_TIMEOUT) {
          // After the interrupt: the server closing (the interrupt was a close frame) or the
          // writer's silence bound passing ends the answer (audio past the limit failed it
          // when it came).
          Close();
          break;
        }
        if (paced && pace_.bound != v1::ERROR_NONE) {
          co_return fail_keeping(pace_.bound, pace_.bound_detail);
        }
        if (paced && pace_.write_ec && !PeerClosed(ec) && ec != websocket::error::closed) {
          co_return fail_keeping(WriteErrorKind(pace_.write_ec),
                                 absl::StrCat("write: ", pace_.write_ec.message()));
        }
        // Closed before the end marker: a read error (paced text: closed mid-turn).
        v1::ErrorKind kind = ReadErrorKind(ec);
        if (paced && kind != v1::ERROR_TIMEOUT &&
            (PeerClosed(ec) || ec == websocket::error::closed)) {
          kind = v1::ERROR_CLOSED_MID_TURN;
        }
        co_return fail_keeping(kind,
                               kind == v1::ERROR_TIMEOUT
                                   ? TimeoutDetail(ctx, "reading the answer")
                                   : absl::StrCat(kind == v1::ERROR_CLOSED_MID_TURN
                                                      ? "server closed the socket mid-turn after "
                                                      : "answer cut off after ",
                                                  bytes, " bytes: ", ec.message()));
      }
      const int64_t t = SteadyNowNs();
      if (message.ignored) continue;
      if (rec.first_byte_ns() == 0) rec.set_first_byte_ns(t);
      bytes += static_cast<int64_t>(n);
      if (message.feed.audio_bytes > 0) {
        if (streamed) timeline.Audio(t, message.feed.audio_s, rec);
        rec.set_last_audio_ns(t);
        if (ctx.timeline != nullptr) {
          ctx.timeline->add_audio_ns(t);
          ctx.timeline->add_audio_s(message.feed.audio_s);
        }
        if (barge_in && pace_.interrupt_due_ns == 0) {
          // The caller speaks interrupt_after_ms into the answer: wake the writer to interrupt.
          pace_.interrupt_due_ns = t + static_cast<int64_t>(ctx.pacing->interrupt_after_ms() * 1e6);
          pace_timer_->cancel();
        }
        if (pace_.interrupt_ns != 0) {
          rec.set_bytes_after_interrupt(rec.bytes_after_interrupt() + message.feed.audio_bytes);
          if (t - pace_.interrupt_ns > silence_limit_ns) {
            co_return fail_keeping(
                v1::ERROR_AUDIO_AFTER_CANCEL,
                absl::StrFormat("audio %.1f ms after the interrupt (silence_limit_ms %.0f)",
                                static_cast<double>(t - pace_.interrupt_ns) / 1e6,
                                static_cast<double>(silence_limit_ns) / 1e6));
          }
        }
      }
      if (ctx.analyser != nullptr) ctx.analyser->Arrived(t);
      done = message.done;
      acknowledged_ = message.done && message.acknowledged;
    }
    rec.set_end_ns(SteadyNowNs());
    rec.set_bytes(bytes);
    // A socket per request: the server ends it after the answer; nothing more to wait for.
    if (!spec_.ws_reuse) Close();
    co_return CompleteAnswer(ctx, *decoder, timeline, v1::ERROR_NONE);
  }

  // Waits until `ns` (local clock) or a wake-up (pace_timer_ cancelled). False: stop.
  net::awaitable<bool> WaitUntil(int64_t ns) {
    // The reader may have finished while the writer was busy writing: its wake-up is gone.
    if (pace_.stop) co_return false;
    if (SteadyNowNs() < ns) {
      pace_timer_->expires_at(At(ns));
      co_await pace_timer_->async_wait(kUse);
    }
    co_return !pace_.stop;
  }

  // The writer of a paced request: pieces at their due times, then the end of input, the
  // flush bound and, for barge-in, the interrupt. Ends when the reader is done (pace_.stop).
  net::awaitable<void> SendPaced(const PreparedRequest& req, ExchangeContext& ctx, int64_t began) {
    const v1::TextPacing& p = *ctx.pacing;
    PaceSchedule schedule(p, ctx.pace_seed);
    auto write = [&](const std::string& m) -> net::awaitable<bool> {
      ws_->text(true);
      auto [ec, n] =
          co_await ws_->async_write(net::buffer(Stamp(m, req.context_marker, pace_scratch_)), kUse);
      if (ec && !pace_.write_ec) pace_.write_ec = ec;
      co_return !ec;
    };
    // The interrupt, when due before `ns`: sent, and true returned.
    auto interrupt_before = [&](int64_t ns) -> net::awaitable<bool> {
      for (;;) {
        const int64_t due = pace_.interrupt_due_ns;
        const int64_t until = due != 0 ? std::min(due, ns) : ns;
        if (!co_await WaitUntil(until)) co_return false;
        if (due != 0 && SteadyNowNs() >= due) break;
        if (pace_.interrupt_due_ns == due && SteadyNowNs() >= ns) co_return false;
      }
      pace_.interrupt_ns = SteadyNowNs();
      if (ctx.timeline != nullptr) ctx.timeline->set_interrupt_ns(pace_.interrupt_ns);
      if (req.interrupt.empty()) {
        auto [ec] = co_await ws_->async_close(websocket::close_code::normal, kUse);
        (void)ec;
      } else {
        co_await write(req.interrupt);
      }
      co_return true;
    };
    bool interrupted = false;
    for (size_t i = 0; i < req.pieces.size() && !pace_.stop && !pace_.write_ec; ++i) {
      const PreparedRequest::Piece& piece = req.pieces[i];
      const int64_t due = began + schedule.NextPieceDueNs(piece.tokens);
      if (ctx.interrupt) {
        if (co_await interrupt_before(due)) {
          interrupted = true;
          break;
        }
      } else if (!co_await WaitUntil(due)) {
        break;
      }
      if (pace_.stop) break;
      const int64_t now = SteadyNowNs();
      const int64_t late = std::max<int64_t>(0, now - due);
      pace_.late_max_ns = std::max(pace_.late_max_ns, late);
      pace_.late_total_ns += late;
      if (pace_.first_text_ns == 0) pace_.first_text_ns = now;
      if (ctx.timeline != nullptr) {
        ctx.timeline->add_text_ns(now);
        ctx.timeline->add_text_chars(piece.chars);
      }
      if (!co_await write(piece.message)) break;
      ++pace_.pieces;
      pace_.last_text_ns = now;
    }
    if (!interrupted && !pace_.stop && !pace_.write_ec &&
        pace_.pieces == static_cast<int>(req.pieces.size())) {
      const int64_t end_due = began + schedule.EndDueNs();
      bool go = true;
      if (ctx.interrupt) {
        interrupted = co_await interrupt_before(end_due);
        go = !interrupted && !pace_.stop;
      } else {
        go = co_await WaitUntil(end_due);
      }
      if (go) {
        pace_.end_of_input_ns = SteadyNowNs();
        for (const std::string& m : req.closing) {
          if (!co_await write(m)) break;
        }
        if (ctx.interrupt && !pace_.stop && !pace_.write_ec) {
          interrupted = co_await interrupt_before(INT64_MAX);
        }
      }
    }
    if (interrupted) {
      // The answer must fall silent: past the silence limit (and a margin for the end marker),
      // the socket is closed and the answer ends; later audio is an error (the reader's check).
      const double limit = p.silence_limit_ms() > 0 ? p.silence_limit_ms() : kDefaultSilenceLimitMs;
      if (co_await WaitUntil(pace_.interrupt_ns + static_cast<int64_t>(limit * 2e6))) {
        ShutdownAndClose(*ws_);  // not Close(): the reader still owns buffer_
      }
    } else if (p.flush_timeout_ms() > 0 && pace_.end_of_input_ns != 0) {
      // The end of input must be answered: silence (no audio) for flush_timeout_ms after it,
      // or after the last audio, without the end marker is flush_unanswered.
      const int64_t bound = static_cast<int64_t>(p.flush_timeout_ms() * 1e6);
      for (;;) {
        const int64_t at = std::max(pace_.end_of_input_ns, ctx.rec.last_audio_ns()) + bound;
        if (!co_await WaitUntil(at)) break;
        if (SteadyNowNs() < std::max(pace_.end_of_input_ns, ctx.rec.last_audio_ns()) + bound) {
          continue;
        }
        pace_.bound = v1::ERROR_FLUSH_UNANSWERED;
        pace_.bound_detail = absl::StrFormat(
            "no end of the answer within flush_timeout_ms %.0f of the end of input or the last "
            "audio",
            p.flush_timeout_ms());
        ShutdownAndClose(*ws_);
        break;
      }
    } else if (pace_.write_ec) {
      ShutdownAndClose(*ws_);  // the reader learns of it from the closed socket
    }
    pace_.running = false;
    joined_->cancel();
  }

  // A fresh context id for the request (PreparedRequest::context_marker): the request id and
  // this connection's count, as 16 hex digits.
  void ContextId(uint64_t request_id) {
    ++contexts_;
    absl::SNPrintF(context_id_, sizeof(context_id_), "ctx%016x", (request_id << 20) ^ contexts_);
  }

  // `m` with every kContextMarker replaced by the request's context id (in `scratch`, whose
  // capacity is reused), or `m` itself when it has none.
  const std::string& Stamp(const std::string& m, bool marker, std::string& scratch) const {
    if (!marker) return m;
    const std::string_view mark(kContextMarker.data(), kContextMarker.size());
    size_t at = m.find(mark);
    if (at == std::string::npos) return m;
    scratch.assign(m);
    for (; at != std::string::npos; at = scratch.find(mark, at)) {
      scratch.replace(at, mark.size(), context_id_, mark.size());
    }
    return scratch;
  }

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
  bool acknowledged_ = false;  // the last answer ended by an interrupt's acknowledgment
  // Paced text: the writer's state and timers, and the request's context id.
  PaceState pace_;
  std::unique_ptr<net::steady_timer> pace_timer_;
  std::unique_ptr<net::steady_timer> joined_;  // cancelled when the writer ends
  std::string scratch_;
  std::string pace_scratch_;
  uint64_t contexts_ = 0;
  char context_id_[24] = {};
};

}  // namespace

std::unique_ptr<ClientConnection> MakeWebSocketConnection(net::io_context& ioc,
                                                          const TransportSpec& spec,
                                                          net::ssl::context* tls) {
  if (spec.tls.enabled) return std::make_unique<WsConnection<true>>(ioc, spec, tls);
  return std::make_unique<WsConnection<false>>(ioc, spec, tls);
}

}  // namespace ttsbench::agent
