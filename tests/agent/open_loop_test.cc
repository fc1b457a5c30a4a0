// Open-loop scheduling against real servers on loopback: coordinated omission, drops, lateness.
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
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

}  // namespace
}  // namespace ttsbench::agent
