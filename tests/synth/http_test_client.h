// A small Beast HTTP/1.1 client for the synth server tests: records when headers and body bytes
// arrive, and bounds every exchange in time.
#ifndef TTSBENCH_TESTS_SYNTH_HTTP_TEST_CLIENT_H_
#define TTSBENCH_TESTS_SYNTH_HTTP_TEST_CLIENT_H_

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ttsbench::synth::httptest {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

inline constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
inline constexpr auto kExchangeLimit = std::chrono::seconds(10);

inline double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Arrival {
  double at_ms;  // since the request was written
  size_t bytes;  // body bytes that arrived in this read
};

struct Reply {
  beast::error_code ec;  // first failure; http::error::partial_message for a cut-off body
  http::response<http::string_body> res;
  bool chunked = false;
  double header_ms = -1;
  double total_ms = -1;
  double finished_ms = -1;  // set by tests that time a batch of requests from one origin
  std::vector<Arrival> arrivals;

  unsigned status() const { return res.result_int(); }
  const std::string& body() const { return res.body(); }
  std::string header(http::field f) const { return std::string(res[f]); }
};

inline Reply Failed(beast::error_code ec) {
  Reply r;
  r.ec = ec;
  return r;
}

class Client {
 public:
  explicit Client(net::io_context& ioc) : stream_(ioc) {}

  net::awaitable<beast::error_code> Connect(uint16_t port) {
    stream_.expires_after(kExchangeLimit);
    auto [ec] = co_await stream_.async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port), kUseTuple);
    co_return ec;
  }

  net::awaitable<Reply> Fetch(http::verb verb, std::string target, std::string body = "",
                              bool keep_alive = true) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.keep_alive(keep_alive);
    req.prepare_payload();
    const Clock::time_point t0 = Clock::now();
    stream_.expires_after(kExchangeLimit);
    auto [ec, n] = co_await http::async_write(stream_, req, kUseTuple);
    if (ec) co_return Failed(ec);
    co_return co_await ReadReply(t0);
  }

  // Writes `bytes` as they are (for malformed requests) and reads one response.
  net::awaitable<Reply> SendRaw(std::string bytes) {
    const Clock::time_point t0 = Clock::now();
    stream_.expires_after(kExchangeLimit);
    auto [ec, n] = co_await net::async_write(stream_, net::buffer(bytes), kUseTuple);
    if (ec) co_return Failed(ec);
    co_return co_await ReadReply(t0);
  }

 private:
  net::awaitable<Reply> ReadReply(Clock::time_point t0) {
    Reply reply;
    beast::error_code ec;
    size_t n = 0;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    size_t seen = 0;
    while (!parser.is_done()) {
      std::tie(ec, n) = co_await http::async_read_some(stream_, buffer_, parser, kUseTuple);
      if (ec) {
        reply.ec = ec;
        break;
      }
      if (parser.is_header_done() && reply.header_ms < 0) reply.header_ms = MsSince(t0);
      const size_t size = parser.get().body().size();
      if (size > seen) reply.arrivals.push_back({MsSince(t0), size - seen});
      seen = size;
    }
    reply.total_ms = MsSince(t0);
    reply.chunked = parser.is_header_done() && parser.chunked();
    reply.res = parser.release();
    co_return reply;
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

// Runs a coroutine on `ioc` for at most `limit`; nullopt if it did not finish in time.
template <typename T>
std::optional<T> RunBounded(net::io_context& ioc, net::awaitable<T> task,
                            Clock::duration limit = std::chrono::seconds(20)) {
  // Shared, so a task that outlives this call (timed out) never writes to a dead frame.
  auto result = std::make_shared<std::optional<T>>();
  auto error = std::make_shared<std::exception_ptr>();
  net::co_spawn(ioc, std::move(task), [result, error](std::exception_ptr e, T value) {
    *error = e;
    if (!e) *result = std::move(value);
  });
  ioc.restart();
  ioc.run_for(limit);
  if (*error) std::rethrow_exception(*error);
  return *result;
}

// One request on a fresh connection.
inline Reply FetchOnce(uint16_t port, http::verb verb, std::string target, std::string body = "") {
  net::io_context ioc;
  Client client(ioc);
  auto reply = RunBounded<Reply>(ioc,
                                 [](Client& c, uint16_t p, http::verb v, std::string t,
                                    std::string b) -> net::awaitable<Reply> {
                                   if (auto ec = co_await c.Connect(p); ec) {
                                     co_return Failed(ec);
                                   }
                                   co_return co_await c.Fetch(v, std::move(t), std::move(b));
                                 }(client, port, verb, std::move(target), std::move(body)));
  if (!reply) return Failed(beast::error::timeout);
  return std::move(*reply);
}

inline Reply Post(uint16_t port, std::string target, std::string body) {
  return FetchOnce(port, http::verb::post, std::move(target), std::move(body));
}

inline Reply Get(uint16_t port, std::string target) {
  return FetchOnce(port, http::verb::get, std::move(target));
}

inline uint32_t Le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

inline uint16_t Le16(const std::string& s, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) |
                               (static_cast<unsigned char>(s[at + 1]) << 8));
}

}  // namespace ttsbench::synth::httptest

#endif  // TTSBENCH_TESTS_SYNTH_HTTP_TEST_CLIENT_H_
