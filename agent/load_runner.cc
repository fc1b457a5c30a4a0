#include "agent/load_runner.h"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>

#include "common/clock.h"
#include "common/texts.h"

namespace ttsbench::agent {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using common::SteadyNowNs;

namespace {

constexpr auto kUse = net::as_tuple(net::use_awaitable);
constexpr size_t kBodyBufferBytes = 16 * 1024;
constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr uint64_t kBodyLimit = uint64_t{1} << 32;
constexpr auto kFlushInterval = std::chrono::milliseconds(100);
// Beast sizes each socket read by the flat_buffer's free capacity (512 bytes when empty), so
// an unreserved buffer turns a 200 KB body into 400 reads.
constexpr size_t kReadBufferBytes = 16 * 1024;

net::steady_timer::time_point LocalTimePoint(int64_t local_ns) {
  return net::steady_timer::time_point(std::chrono::nanoseconds(local_ns));
}

bool PeerClosed(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

v1::ErrorKind ReadErrorKind(const beast::error_code& ec, bool stopping) {
  if (stopping) return v1::ERROR_CANCELLED;
  if (ec == beast::error::timeout) return v1::ERROR_TIMEOUT;
  if (PeerClosed(ec) || ec == http::error::partial_message) return v1::ERROR_READ;
  if (ec.category() == beast::error_code(http::error::bad_version).category()) {
    return v1::ERROR_PROTOCOL;
  }
  return v1::ERROR_READ;
}

v1::ErrorKind StatusErrorKind(int status) {
  if (status == 429) return v1::ERROR_HTTP_429;
  if (status >= 500) return v1::ERROR_HTTP_5XX;
  if (status >= 400) return v1::ERROR_HTTP_4XX;
  return v1::ERROR_PROTOCOL;  // 1xx/3xx: a TTS endpoint must answer with audio
}

}  // namespace

struct LoadRunner::VirtualUser {
  explicit VirtualUser(net::io_context& ioc)
      : stream(ioc), wait_timer(ioc), body(std::make_unique<char[]>(kBodyBufferBytes)) {
    buffer.reserve(kReadBufferBytes);
  }
  void Close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    connected = false;
    buffer.clear();
  }
  beast::tcp_stream stream;
  net::steady_timer wait_timer;
  beast::flat_buffer buffer{kHeaderLimit};
  std::unique_ptr<char[]> body;
  bool connected = false;
};

struct LoadRunner::Worker {
  net::io_context ioc{1};
  std::vector<std::unique_ptr<VirtualUser>> vus;
  std::vector<v1::RequestRecord> local;
  int active = 0;
  std::unique_ptr<net::steady_timer> flush_timer;
};

class LoadRunner::Impl {
 public:
  Impl(ShardConfig config, const Dialect& dialect, RecordSink& sink, TimelineMap timeline)
      : config_(std::move(config)), dialect_(dialect), sink_(sink), timeline_(timeline) {
    const int threads = std::max(1, std::min(config_.threads, std::max(1, config_.concurrency)));
    for (int i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
    for (int v = 0; v < config_.concurrency; ++v) {
      Worker& w = *workers_[static_cast<size_t>(v) % workers_.size()];
      w.vus.push_back(std::make_unique<VirtualUser>(w.ioc));
    }
    // Resolve once: name lookups are not part of any request's latency.
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    endpoints_ = resolver.resolve(config_.url.host, std::to_string(config_.url.port), ec);
  }

  int Warmup() {
    next_.store(0);
    total_ = config_.warmup;
    RunPhase(/*warmup=*/true, 0);
    int open = 0;
    for (auto& w : workers_) {
      for (auto& vu : w->vus) open += vu->connected ? 1 : 0;
    }
    return open;
  }

  void Run(int64_t start_local_ns) {
    next_.store(0);
    total_ = config_.iterations;
    RunPhase(/*warmup=*/false, start_local_ns);
  }

  void ExtendLease(int64_t until) { lease_until_.store(until); }

  void Stop() {
    if (stopping_.exchange(true)) return;
    for (auto& w : workers_) {
      Worker* wp = w.get();
      net::post(wp->ioc, [wp] {
        for (auto& vu : wp->vus) {
          vu->Close();
          vu->wait_timer.cancel();
        }
      });
    }
  }

  uint64_t records() const { return records_.load(); }

 private:
  void RunPhase(bool warmup, int64_t start_local_ns) {
    if (stopping_.load()) return;
    for (auto& w : workers_) {
      w->active = static_cast<int>(w->vus.size());
      w->flush_timer = std::make_unique<net::steady_timer>(w->ioc);
      net::co_spawn(w->ioc, Flusher(*w), net::detached);
      for (auto& vu : w->vus) {
        net::co_spawn(w->ioc, VuLoop(*w, *vu, warmup, start_local_ns), net::detached);
      }
    }
    std::vector<std::thread> threads;
    for (size_t i = 1; i < workers_.size(); ++i) {
      threads.emplace_back([w = workers_[i].get()] { w->ioc.run(); });
    }
    workers_[0]->ioc.run();
    for (auto& t : threads) t.join();
    for (auto& w : workers_) w->ioc.restart();
  }

  bool LeaseLapsed() const { return SteadyNowNs() > lease_until_.load(std::memory_order_relaxed); }

  void Flush(Worker& w) {
    if (w.local.empty()) return;
    records_.fetch_add(w.local.size());
    sink_.Push(std::move(w.local));
    w.local.clear();
  }

  net::awaitable<void> Flusher(Worker& w) {
    while (w.active > 0) {
      w.flush_timer->expires_after(kFlushInterval);
      co_await w.flush_timer->async_wait(kUse);
      Flush(w);
      if (LeaseLapsed() && !stopping_.load()) Stop();
    }
    Flush(w);
  }

  net::awaitable<void> VuLoop(Worker& w, VirtualUser& vu, bool warmup, int64_t start_local_ns) {
    if (!vu.connected && !stopping_.load()) co_await Connect(vu, nullptr);
    if (!warmup && start_local_ns > SteadyNowNs()) {
      vu.wait_timer.expires_at(LocalTimePoint(start_local_ns));
      co_await vu.wait_timer.async_wait(kUse);
    }
    int64_t intended = warmup ? SteadyNowNs() : std::max(start_local_ns, SteadyNowNs());
    while (!stopping_.load(std::memory_order_relaxed) && !LeaseLapsed()) {
      const int64_t n = next_.fetch_add(1, std::memory_order_relaxed);
      if (n >= total_) break;
      const uint64_t stream = uint64_t{config_.agent_index} * 2 + (warmup ? 1 : 0);
      const PreparedRequest& req = config_.requests[common::PickText(
          config_.seed, stream, static_cast<uint64_t>(n), config_.requests.size())];
      v1::RequestRecord rec;
      // Warm-up requests are numbered first, measured ones after them: one id space per agent.
      rec.set_request_id(static_cast<uint64_t>(n + (warmup ? 0 : config_.warmup)));
      rec.set_warmup(warmup);
      rec.set_intended_ns(intended);
      co_await Execute(vu, req, rec);
      intended = SteadyNowNs();  // closed loop: the next request is due when this one ends
      ToTimeline(rec);
      w.local.push_back(std::move(rec));
    }
    if (--w.active == 0) w.flush_timer->cancel();
  }

  void ToTimeline(v1::RequestRecord& r) const {
    r.set_intended_ns(timeline_.ToTimeline(r.intended_ns()));
    r.set_start_ns(timeline_.ToTimeline(r.start_ns()));
    r.set_first_byte_ns(timeline_.ToTimeline(r.first_byte_ns()));
    r.set_first_audio_ns(timeline_.ToTimeline(r.first_audio_ns()));
    r.set_end_ns(timeline_.ToTimeline(r.end_ns()));
  }

  // Opens the connection; on failure fills rec (if any) with the error.
  net::awaitable<bool> Connect(VirtualUser& vu, v1::RequestRecord* rec) {
    const int64_t t0 = SteadyNowNs();
    beast::error_code ec;
    if (endpoints_.empty()) {
      ec = net::error::host_not_found;
    } else {
      vu.stream.expires_after(Timeout());
      auto [err, ep] = co_await vu.stream.async_connect(endpoints_, kUse);
      ec = err;
    }
    const int64_t t1 = SteadyNowNs();
    if (rec != nullptr) rec->set_connect_ns(rec->connect_ns() + (t1 - t0));
    if (ec) {
      vu.Close();
      if (rec != nullptr) {
        rec->set_start_ns(t0);
        rec->set_end_ns(t1);
        rec->set_error(stopping_.load()              ? v1::ERROR_CANCELLED
                       : ec == beast::error::timeout ? v1::ERROR_TIMEOUT
                                                     : v1::ERROR_CONNECT);
      }
      co_return false;
    }
    vu.stream.socket().set_option(tcp::no_delay(true), ec);
    vu.connected = true;
    co_return true;
  }

  std::chrono::nanoseconds Timeout() const {
    return std::chrono::nanoseconds(static_cast<int64_t>(config_.timeout_s * 1e9));
  }

  enum class Outcome { kDone, kStale };

  net::awaitable<void> Execute(VirtualUser& vu, const PreparedRequest& req,
                               v1::RequestRecord& rec) {
    rec.set_chars(req.chars);
    rec.set_streamed(config_.streamed);
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool fresh = false;
      if (!vu.connected) {
        if (!co_await Connect(vu, &rec)) co_return;
        fresh = true;
      }
      if (co_await Exchange(vu, req, rec, fresh) == Outcome::kDone) co_return;
      // A kept-alive connection the server had already closed: one retry on a new one, the
      // way every HTTP client treats a stale pooled connection.
      const int64_t connect_ns = rec.connect_ns();
      const v1::RequestRecord keep = rec;
      rec.Clear();
      rec.set_request_id(keep.request_id());
      rec.set_warmup(keep.warmup());
      rec.set_intended_ns(keep.intended_ns());
      rec.set_chars(keep.chars());
      rec.set_streamed(keep.streamed());
      rec.set_connect_ns(connect_ns);
    }
  }

  net::awaitable<Outcome> Exchange(VirtualUser& vu, const PreparedRequest& req,
                                   v1::RequestRecord& rec, bool fresh) {
    auto fail = [&](v1::ErrorKind kind) {
      rec.set_error(stopping_.load() ? v1::ERROR_CANCELLED : kind);
      rec.set_end_ns(SteadyNowNs());
      vu.Close();
      return Outcome::kDone;
    };
    vu.stream.expires_after(Timeout());  // one deadline for the whole exchange
    rec.set_start_ns(SteadyNowNs());
    auto [wec, written] = co_await net::async_write(vu.stream, net::buffer(req.wire), kUse);
    if (wec) {
      if (!fresh && PeerClosed(wec)) {
        vu.Close();
        co_return Outcome::kStale;
      }
      co_return fail(wec == beast::error::timeout ? v1::ERROR_TIMEOUT : v1::ERROR_WRITE);
    }
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    auto [hec, hn] = co_await http::async_read_header(vu.stream, vu.buffer, parser, kUse);
    if (hec) {
      if (!fresh && PeerClosed(hec) && vu.buffer.size() == 0) {
        vu.Close();
        co_return Outcome::kStale;
      }
      co_return fail(ReadErrorKind(hec, stopping_.load()));
    }
    const int status = static_cast<int>(parser.get().result_int());
    rec.set_http_status(status);
    const bool ok_status = status >= 200 && status < 300;
    std::unique_ptr<ResponseDecoder> decoder;
    if (ok_status) {
      const auto content_type = parser.get()[http::field::content_type];
      auto d = dialect_.NewDecoder(absl::string_view(content_type.data(), content_type.size()));
      if (!d.ok()) co_return fail(v1::ERROR_PROTOCOL);
      decoder = std::move(*d);
    }
    int64_t bytes = 0, last_chunk = 0, playback_end = 0, underrun = 0, max_gap = 0;
    int chunks = 0;
    bool bad_audio = false;
    while (!parser.is_done()) {
      parser.get().body().data = vu.body.get();
      parser.get().body().size = kBodyBufferBytes;
      auto [rec_ec, rn] = co_await http::async_read_some(vu.stream, vu.buffer, parser, kUse);
      beast::error_code ec = rec_ec;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return fail(ReadErrorKind(ec, stopping_.load()));
      const size_t got = kBodyBufferBytes - parser.get().body().size;
      if (got == 0) continue;
      const int64_t t = SteadyNowNs();
      if (rec.first_byte_ns() == 0) rec.set_first_byte_ns(t);
      bytes += static_cast<int64_t>(got);
      if (decoder == nullptr || bad_audio) continue;
      auto feed = decoder->OnBody(absl::string_view(vu.body.get(), got));
      if (!feed.ok()) {
        bad_audio = true;  // keep reading so the connection stays usable
        continue;
      }
      if (feed->audio_bytes == 0) continue;
      // Playback model: audio plays from the first chunk; a chunk arriving after the audio
      // already received has finished playing is a stall.
      const int64_t d = static_cast<int64_t>(feed->audio_s * 1e9);
      if (chunks == 0) {
        rec.set_first_audio_ns(t);
        playback_end = t + d;
      } else {
        max_gap = std::max(max_gap, t - last_chunk);
        underrun += std::max<int64_t>(0, t - playback_end);
        playback_end = std::max(t, playback_end) + d;
      }
      last_chunk = t;
      ++chunks;
    }
    const int64_t end = SteadyNowNs();
    rec.set_end_ns(end);
    rec.set_bytes(bytes);
    rec.set_chunks(chunks);
    rec.set_max_gap_ms(static_cast<double>(max_gap) / 1e6);
    rec.set_underrun_ms(static_cast<double>(underrun) / 1e6);
    if (!parser.keep_alive()) vu.Close();
    if (!ok_status) {
      rec.set_error(StatusErrorKind(status));
      co_return Outcome::kDone;
    }
    if (bad_audio) {
      rec.set_error(v1::ERROR_INVALID_AUDIO);
      co_return Outcome::kDone;
    }
    auto tail = decoder->Finish();
    if (!tail.ok()) {
      rec.set_error(v1::ERROR_INVALID_AUDIO);
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

  ShardConfig config_;
  const Dialect& dialect_;
  RecordSink& sink_;
  TimelineMap timeline_;
  tcp::resolver::results_type endpoints_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int64_t> next_{0};
  int64_t total_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> lease_until_{INT64_MAX};
  std::atomic<uint64_t> records_{0};
};

LoadRunner::LoadRunner(ShardConfig config, const Dialect& dialect, RecordSink& sink,
                       TimelineMap timeline)
    : impl_(std::make_unique<Impl>(std::move(config), dialect, sink, timeline)) {}
LoadRunner::~LoadRunner() = default;
int LoadRunner::Warmup() { return impl_->Warmup(); }
void LoadRunner::Run(int64_t start_local_ns) { impl_->Run(start_local_ns); }
void LoadRunner::ExtendLease(int64_t until_local_ns) { impl_->ExtendLease(until_local_ns); }
void LoadRunner::Stop() { impl_->Stop(); }
uint64_t LoadRunner::records() const { return impl_->records(); }

}  // namespace ttsbench::agent
