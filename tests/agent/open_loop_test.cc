// Open-loop scheduling against real servers on loopback: coordinated omission, drops, lateness.
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/load_runner.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "gtest/gtest.h"
#include "synth/synth_server.h"
#include "synth/tls_cert.h"

namespace ttsbench::agent {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
constexpr auto kUse = net::as_tuple(net::use_awaitable);

class Sink final : public RecordSink {
 public:
  void Push(std::vector<v1::RequestRecord>&& records) override {
    std::lock_guard lock(mu_);
    for (auto& r : records) {
      if (!r.warmup()) all_.push_back(std::move(r));
    }
  }
  std::vector<v1::RequestRecord> all_;
  std::mutex mu_;
};

// An HTTP server that answers every request with a short WAV after 5 ms, except that the
// `stall_at`-th request freezes every response for one second (a GC pause, a model reload).
class StallingServer {
 public:
  explicit StallingServer(int stall_at) : stall_at_(stall_at), acceptor_(ioc_, {tcp::v4(), 0}) {
    net::co_spawn(ioc_, Accept(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~StallingServer() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  net::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUse);
      if (ec) co_return;
      net::co_spawn(ioc_, Serve(std::move(socket)), net::detached);
    }
  }
  net::awaitable<void> Serve(tcp::socket socket) {
    net::streambuf buf;
    net::steady_timer timer(ioc_);
    for (;;) {
      auto [ec, n] = co_await net::async_read_until(socket, buf, "\r\n\r\n", kUse);
      if (ec) co_return;
      std::string head(net::buffers_begin(buf.data()), net::buffers_begin(buf.data()) + n);
      buf.consume(n);
      const size_t cl = head.find("Content-Length: ");
      const size_t body = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
      if (buf.size() < body) {
        auto [e2, m] =
            co_await net::async_read(socket, buf, net::transfer_exactly(body - buf.size()), kUse);
        if (e2) co_return;
      }
      buf.consume(body);
      const auto now = std::chrono::steady_clock::now();
      if (++requests_ == stall_at_) stall_until_ = now + std::chrono::seconds(1);
      timer.expires_at(std::max(now + std::chrono::milliseconds(5), stall_until_));
      co_await timer.async_wait(kUse);
      auto [e3, w] = co_await net::async_write(socket, net::buffer(Response()), kUse);
      if (e3) co_return;
    }
  }

 public:
  static const std::string& Response() {
    static const std::string r = [] {
      std::string wav = "RIFF";
      auto le = [&](uint32_t v, int n) {
        for (int i = 0; i < n; ++i) wav.push_back(static_cast<char>(v >> (8 * i)));
      };
      le(36 + 4800, 4);
      wav += "WAVEfmt ";
      le(16, 4);
      le(1, 2);
      le(1, 2);
      le(24000, 4);
      le(48000, 4);
      le(2, 2);
      le(16, 2);
      wav += "data";
      le(4800, 4);
      wav += std::string(4800, '\0');
      return "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: " +
             std::to_string(wav.size()) + "\r\n\r\n" + wav;
    }();
    return r;
  }

 private:
  int stall_at_;
  int requests_ = 0;
  std::chrono::steady_clock::time_point stall_until_{};
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

ShardConfig Config(uint16_t port, const Dialect& dialect) {
  ShardConfig cfg;
  cfg.url = *common::ParseUrl("http://127.0.0.1:" + std::to_string(port));
  cfg.threads = 1;
  cfg.timeout_s = 5;
  cfg.requests.push_back(*dialect.Prepare("Hello there."));
  return cfg;
}

std::unique_ptr<Dialect> OpenAi(uint16_t port) {
  v1::Target t;
  t.set_api("openai");
  t.set_format("wav");
  t.set_voice("default");
  return std::move(
      *MakeDialect(t, *common::ParseUrl("http://127.0.0.1:" + std::to_string(port)), {}));
}

TEST(OpenLoopTest, AServerStallShowsInLatencyFromIntendedButHidesInClosedLoop) {
  // Open loop, 50 requests/s for 2 s; the 20th request freezes the server for 1 s.
  StallingServer open_server(20);
  auto dialect = OpenAi(open_server.port());
  ShardConfig cfg = Config(open_server.port(), *dialect);
  cfg.open_loop = true;
  cfg.rate = 50;
  cfg.arrival = "constant";
  cfg.iterations = 100;
  Sink sink;
  LoadRunner runner(std::move(cfg), *dialect, sink, TimelineMap{});
  runner.Warmup();
  runner.Run(common::SteadyNowNs() + 20'000'000);
  ASSERT_EQ(sink.all_.size(), 100u);
  const v1::LevelStats open = common::ComputeLevelStats(0, sink.all_);
  EXPECT_EQ(open.successful(), 100u);
  // About 50 of the 100 arrivals fell inside the stall and waited out the rest of it (1000 ms
  // down to 0): the tail and the mean carry it.
  EXPECT_GT(open.latency_from_intended_ms().p95(), 700);
  EXPECT_GT(open.latency_from_intended_ms().mean(), 150);
  // Arrivals kept their schedule during the stall (sends were not held back).
  EXPECT_LT(open.sched_lag_ms().p95(), 50);

  // Closed loop, one user: the same stall delays only the one request in flight.
  StallingServer closed_server(20);
  auto dialect2 = OpenAi(closed_server.port());
  ShardConfig cfg2 = Config(closed_server.port(), *dialect2);
  cfg2.concurrency = 1;
  cfg2.iterations = 100;
  Sink sink2;
  LoadRunner runner2(std::move(cfg2), *dialect2, sink2, TimelineMap{});
  runner2.Warmup();
  runner2.Run(common::SteadyNowNs());
  const v1::LevelStats closed = common::ComputeLevelStats(1, sink2.all_);
  EXPECT_LT(closed.latency_ms().p95(), 100);  // coordinated omission: the stall is one sample
  EXPECT_GT(closed.latency_ms().max(), 900);
}

TEST(OpenLoopTest, InflightCapDropsAndCountsWhatCannotStart) {
  synth::SynthOptions so;
  so.model.slots = 1;
  so.model.base_ms = 100;
  auto server = *synth::SynthServer::Start(so);
  auto dialect = OpenAi(server->port());
  ShardConfig cfg = Config(server->port(), *dialect);
  cfg.open_loop = true;
  cfg.rate = 100;  // far beyond 10 requests/s of capacity
  cfg.arrival = "constant";
  cfg.iterations = 50;
  cfg.max_inflight = 2;
  Sink sink;
  LoadRunner runner(std::move(cfg), *dialect, sink, TimelineMap{});
  runner.Warmup();
  const PhaseCounters counters = runner.Run(common::SteadyNowNs());
  // Every arrival is either a record or a drop; nothing vanishes.
  EXPECT_EQ(sink.all_.size() + counters.dropped, 50u);
  EXPECT_GT(counters.dropped, 30u);
  EXPECT_GE(sink.all_.size(), 2u);
}

TEST(OpenLoopTest, DurationBoundLevelStopsOnTime) {
  synth::SynthOptions so;
  auto server = *synth::SynthServer::Start(so);
  auto dialect = OpenAi(server->port());
  ShardConfig cfg = Config(server->port(), *dialect);
  cfg.open_loop = true;
  cfg.rate = 40;
  cfg.arrival = "poisson";
  cfg.iterations = INT64_MAX / 2;
  cfg.duration_s = 1.0;
  Sink sink;
  LoadRunner runner(std::move(cfg), *dialect, sink, TimelineMap{});
  runner.Warmup();
  const auto began = std::chrono::steady_clock::now();
  runner.Run(common::SteadyNowNs());
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(2500));
  EXPECT_GT(sink.all_.size(), 20u);
  EXPECT_LT(sink.all_.size(), 70u);
}

TEST(ClosedLoopTest, ThinkTimeAndRampUpSpaceRequests) {
  synth::SynthOptions so;
  auto server = *synth::SynthServer::Start(so);
  auto dialect = OpenAi(server->port());
  ShardConfig cfg = Config(server->port(), *dialect);
  cfg.concurrency = 2;
  cfg.iterations = 6;
  cfg.think_time_s = 0.1;
  cfg.ramp_up_s = 0.2;
  Sink sink;
  LoadRunner runner(std::move(cfg), *dialect, sink, TimelineMap{});
  runner.Warmup();
  const int64_t t0 = common::SteadyNowNs();
  runner.Run(t0);
  ASSERT_EQ(sink.all_.size(), 6u);
  int64_t latest_first = 0;
  for (const auto& r : sink.all_) latest_first = std::max(latest_first, r.intended_ns() - t0);
  // The second user started ~100 ms in (ramp 200 ms over 2 users); with 100 ms think time,
  // three requests per user take at least 200 ms of thinking.
  EXPECT_GT(latest_first, 200'000'000);
}

TEST(ClosedLoopTest, PerRequestConnectionsRecordConnectTime) {
  synth::SynthOptions so;
  auto server = *synth::SynthServer::Start(so);
  auto dialect = OpenAi(server->port());
  ShardConfig cfg = Config(server->port(), *dialect);
  cfg.concurrency = 2;
  cfg.iterations = 6;
  cfg.keepalive = false;
  Sink sink;
  LoadRunner runner(std::move(cfg), *dialect, sink, TimelineMap{});
  runner.Warmup();
  runner.Run(common::SteadyNowNs());
  ASSERT_EQ(sink.all_.size(), 6u);
  for (const auto& r : sink.all_) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_GT(r.connect_ns(), 0);
  }
  EXPECT_GE(server->stats().connections_accepted, 6u);
}

// Serves the short WAV over TLS, one request per connection, but only after holding every
// TLS handshake for `handshake_delay`: connection set-up that is slow and has nothing to do with
// when a send was decided.
class SlowHandshakeTlsServer {
 public:
  explicit SlowHandshakeTlsServer(std::chrono::milliseconds handshake_delay)
      : delay_(handshake_delay), acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
    auto pem = synth::MakeSelfSignedCertificate({"127.0.0.1"});
    EXPECT_TRUE(pem.ok()) << pem.status();
    tls_.use_certificate_chain(net::buffer(pem->cert));
    tls_.use_private_key(net::buffer(pem->key), net::ssl::context::pem);
    net::co_spawn(ioc_, Accept(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~SlowHandshakeTlsServer() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  net::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUse);
      if (ec) co_return;
      net::co_spawn(ioc_, Serve(std::move(socket)), net::detached);
    }
  }
  net::awaitable<void> Serve(tcp::socket socket) {
    net::steady_timer timer(ioc_);
    timer.expires_after(delay_);
    co_await timer.async_wait(kUse);
    net::ssl::stream<tcp::socket> stream(std::move(socket), tls_);
    auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server, kUse);
    if (ec) co_return;
    net::streambuf buf;
    auto [e1, n] = co_await net::async_read_until(stream, buf, "\r\n\r\n", kUse);
    if (e1) co_return;
    std::string head(net::buffers_begin(buf.data()), net::buffers_begin(buf.data()) + n);
    buf.consume(n);
    const size_t cl = head.find("Content-Length: ");
    const size_t body = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
    if (buf.size() < body) {
      auto [e2, m] =
          co_await net::async_read(stream, buf, net::transfer_exactly(body - buf.size()), kUse);
      if (e2) co_return;
    }
    auto [e3, w] = co_await net::async_write(stream, net::buffer(StallingServer::Response()), kUse);
    if (e3) co_return;
    co_await stream.async_shutdown(kUse);
  }

  std::chrono::milliseconds delay_;
  net::io_context ioc_;
  net::ssl::context tls_{net::ssl::context::tls_server};
  tcp::acceptor acceptor_;
  std::thread thread_;
};

TEST(OpenLoopTest, LatenessIsTheSendDecisionNotTheConnectionSetUp) {
  // A new TLS connection per request whose handshake takes 30 ms: every request's first byte
  // leaves ~30 ms after it was due, yet every send was decided on time. That is connect time
  // (recorded as such), not scheduling lateness.
  SlowHandshakeTlsServer server(std::chrono::milliseconds(30));
  v1::Target t;
  t.set_api("openai");
  t.set_format("wav");
  t.set_voice("default");
  t.set_insecure(true);
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port());
  auto dialect = std::move(*MakeDialect(t, *common::ParseUrl(url), {}));
  ShardConfig cfg;
  cfg.url = *common::ParseUrl(url);
  cfg.threads = 1;
  cfg.timeout_s = 5;
  cfg.requests.push_back(*dialect->Prepare("Hello there."));
  cfg.open_loop = true;
  cfg.rate = 20;
  cfg.arrival = "constant";
  cfg.iterations = 10;
  cfg.keepalive = false;
  Sink sink;
  LoadRunner runner(std::move(cfg), *dialect, sink, TimelineMap{});
  runner.Warmup();
  const PhaseCounters counters = runner.Run(common::SteadyNowNs() + 20'000'000);
  ASSERT_EQ(sink.all_.size(), 10u);
  // A send decided late was also late to start connecting: the connection set-up began after
  // the decision. So no more sends are late than requests whose first byte, less their connect
  // time, left over 1 ms after they were due; counting first bytes made every one late.
  uint64_t late_before_connecting = 0;
  for (const auto& r : sink.all_) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE) << r.DebugString();
    EXPECT_GE(r.connect_ns(), 25'000'000);
    EXPECT_GE(r.start_ns() - r.intended_ns(), 25'000'000);
    late_before_connecting += r.start_ns() - r.connect_ns() - r.intended_ns() > 1'000'000;
  }
  EXPECT_LE(counters.late, late_before_connecting);
}

TEST(OpenLoopTest, InflightCapIsOneCapForTheAgentWhateverItsThreads) {
  // Four threads, a cap of 2: never more than 2 requests in flight (a per-thread split made it
  // one per thread, 4 in all), and no arrival dropped while the cap still had room.
  synth::SynthOptions so;
  so.model.slots = 16;
  so.model.base_ms = 150;
  auto server = *synth::SynthServer::Start(so);
  auto dialect = OpenAi(server->port());
  ShardConfig cfg = Config(server->port(), *dialect);
  cfg.open_loop = true;
  cfg.threads = 4;
  cfg.rate = 40;
  cfg.arrival = "constant";
  cfg.iterations = 40;
  cfg.max_inflight = 2;
  Sink sink;
  LoadRunner runner(std::move(cfg), *dialect, sink, TimelineMap{});
  runner.Warmup();
  const PhaseCounters counters = runner.Run(common::SteadyNowNs() + 20'000'000);
  EXPECT_EQ(sink.all_.size() + counters.dropped, 40u);
  // Sweep the requests' [start, end] intervals: the most that overlapped.
  std::vector<std::pair<int64_t, int>> edges;
  for (const auto& r : sink.all_) {
    edges.push_back({r.start_ns(), +1});
    edges.push_back({r.end_ns(), -1});
  }
  std::sort(edges.begin(), edges.end());
  int now = 0, most = 0;
  for (const auto& [t, d] : edges) most = std::max(most, now += d);
  EXPECT_EQ(most, 2);
  // 150 ms per request, 2 at a time, an arrival every 25 ms: about a third get through.
  EXPECT_GE(sink.all_.size(), 8u);
  EXPECT_LE(sink.all_.size(), 20u);
}

TEST(OpenLoopTest, TwoAgentsSendOneEvenlySpacedConstantSchedule) {
  // Two agents, each with two threads, share one constant 100/s schedule: the merged sends are
  // 10 ms apart (they once came in pairs, every 20 ms).
  synth::SynthOptions so;
  so.model.slots = 16;
  auto server = *synth::SynthServer::Start(so);
  auto dialect = OpenAi(server->port());
  Sink sink;
  std::vector<std::unique_ptr<LoadRunner>> agents;
  for (int a = 0; a < 2; ++a) {
    ShardConfig cfg = Config(server->port(), *dialect);
    cfg.open_loop = true;
    cfg.threads = 2;
    cfg.rate = 50;
    cfg.level_rate = 100;
    cfg.share_begin = a * 0.5;
    cfg.share_end = (a + 1) * 0.5;
    cfg.arrival = "constant";
    cfg.iterations = 60;  // the level's
    cfg.agent_index = static_cast<uint32_t>(a);
    agents.push_back(std::make_unique<LoadRunner>(std::move(cfg), *dialect, sink, TimelineMap{}));
    agents.back()->Warmup();
  }
  const int64_t start = common::SteadyNowNs() + 50'000'000;
  std::thread other([&] { agents[1]->Run(start); });
  agents[0]->Run(start);
  other.join();
  ASSERT_EQ(sink.all_.size(), 60u);
  std::vector<int64_t> intended;
  for (const auto& r : sink.all_) intended.push_back(r.intended_ns());
  std::sort(intended.begin(), intended.end());
  for (size_t i = 1; i < intended.size(); ++i) {
    EXPECT_EQ(intended[i] - intended[i - 1], 10'000'000) << i;
  }
  EXPECT_EQ(intended.front(), start);
}

}  // namespace
}  // namespace ttsbench::agent
