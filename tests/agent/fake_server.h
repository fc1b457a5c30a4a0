// A loopback server for agent tests: records every request (HTTP head and body, or a WebSocket
// handshake and the messages that follow) and answers with what the test scripts, including
// malformed answers no real server library would produce, late ones, and slow TLS handshakes.
#ifndef TTSBENCH_TESTS_AGENT_FAKE_SERVER_H_
#define TTSBENCH_TESTS_AGENT_FAKE_SERVER_H_

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace ttsbench::agent::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

struct Recorded {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;
  bool websocket = false;
  std::vector<std::string> messages;  // WebSocket messages received, in order
  int on_connection = 0;              // HTTP: 0 for a connection's first request, 1 next, ...

  // Case-insensitive; "" when absent.
  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (beast::iequals(k, name)) return v;
    }
    return "";
  }
  bool HasHeader(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (beast::iequals(k, name)) return true;
    }
    return false;
  }
};

// Raw bytes written after an HTTP request was read; `close` ends the connection after them.
struct HttpAnswer {
  HttpAnswer() = default;
  HttpAnswer(std::string b, bool c = false) : bytes(std::move(b)), close(c) {}  // NOLINT: implicit

  std::string bytes;
  bool close = false;
  std::vector<std::string> more;  // written after `bytes`, `every` apart
  std::string forever;            // then written again and again until the client goes away
  std::chrono::milliseconds every{0};
  std::chrono::nanoseconds delay{0};  // before `bytes`, counted from when the request was read
  bool reset = false;  // instead of answering: a TCP reset (SO_LINGER 0), nothing written
};

struct WsFrame {
  std::string payload;
  bool binary = false;
};

// What to send after a received WebSocket message.
struct WsAnswer {
  std::vector<WsFrame> frames;
  bool close_abruptly = false;  // TCP close, no close frame
  bool close_normally = false;  // a close frame
  bool forever = false;         // the frames again and again until the client goes away
};

inline std::string HttpOk(const std::string& content_type, const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A mono 16-bit PCM WAV of `samples` zero samples.
inline std::string WavBytes(int rate, int samples) {
  std::string w = "RIFF";
  auto le = [&w](uint32_t v, int n) {
    for (int i = 0; i < n; ++i) w.push_back(static_cast<char>(v >> (8 * i)));
  };
  le(36 + 2 * static_cast<uint32_t>(samples), 4);
  w += "WAVEfmt ";
  le(16, 4);
  le(1, 2);
  le(1, 2);
  le(static_cast<uint32_t>(rate), 4);
  le(static_cast<uint32_t>(rate) * 2, 4);
  le(2, 2);
  le(16, 2);
  w += "data";
  le(2 * static_cast<uint32_t>(samples), 4);
  w += std::string(2 * static_cast<size_t>(samples), '\0');
  return w;
}

// Every request answered with `answer`.
inline std::function<HttpAnswer(const Recorded&)> AlwaysAnswer(HttpAnswer answer) {
  return [answer = std::move(answer)](const Recorded&) { return answer; };
}

class FakeServer {
 public:
  struct Options {
    // Default: a 0.1 s WAV at 8 kHz.
    std::function<HttpAnswer(const Recorded&)> http = {};
    // Set: upgrade requests become WebSocket sessions answered by this.
    std::function<WsAnswer(const Recorded&, const std::string&)> ws = {};
    std::vector<WsFrame> ws_greeting = {};         // sent as soon as the socket is accepted
    int ws_refuse_status = 0;                      // answer upgrades with this status instead
    std::chrono::milliseconds ws_accept_delay{0};  // before the upgrade is answered
    // Set: HTTPS only, with this certificate chain and key (PEM).
    std::string tls_cert_pem = {};
    std::string tls_key_pem = {};
    std::chrono::milliseconds connect_delay{0};  // after accepting, before the TLS handshake
  };

  explicit FakeServer(Options options)
      : options_(std::move(options)),
        acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    if (!options_.tls_cert_pem.empty()) {
      tls_.use_certificate_chain(net::buffer(options_.tls_cert_pem));
      tls_.use_private_key(net::buffer(options_.tls_key_pem), net::ssl::context::pem);
    }
    net::co_spawn(ioc_, Accept(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~FakeServer() {
    net::post(ioc_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      ioc_.stop();
    });
    thread_.join();
  }

  uint16_t port() const { return port_; }
  std::string url() const {
    return (options_.tls_cert_pem.empty() ? "http://127.0.0.1:" : "https://127.0.0.1:") +
           std::to_string(port_);
  }
  std::vector<Recorded> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  static constexpr auto kUse = net::as_tuple(net::use_awaitable);

  using TlsStream = beast::ssl_stream<beast::tcp_stream>;
  template <class Stream>
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  net::awaitable<void> Accept() {
    for (;;) {
      tcp::socket socket(ioc_);
      auto [ec] = co_await acceptor_.async_accept(socket, kUse);
      if (ec) co_return;
      net::co_spawn(ioc_, Connection(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> Connection(tcp::socket socket) {
    if (options_.connect_delay.count() > 0) {
      net::steady_timer timer(ioc_, options_.connect_delay);
      co_await timer.async_wait(kUse);
    }
    if (options_.tls_cert_pem.empty()) {
      co_await Serve(beast::tcp_stream(std::move(socket)));
      co_return;
    }
    TlsStream stream(beast::tcp_stream(std::move(socket)), tls_);
    auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server, kUse);
    if (!ec) co_await Serve(std::move(stream));
  }

  size_t Record(Recorded r) {
    std::lock_guard lock(mu_);
    requests_.push_back(std::move(r));
    return requests_.size() - 1;
  }

  template <class Stream>
  net::awaitable<void> Serve(Stream stream) {
    beast::flat_buffer buffer;
    for (int on_connection = 0;; ++on_connection) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(16 << 20);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kUse);
      if (ec) co_return;
      http::request<http::string_body> req = parser.release();
      Recorded r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());
      r.body = req.body();
      r.on_connection = on_connection;
      if (websocket::is_upgrade(req) && (options_.ws || options_.ws_refuse_status != 0)) {
        r.websocket = true;
        if (options_.ws_refuse_status != 0) {
          Record(r);
          const std::string refuse = "HTTP/1.1 " + std::to_string(options_.ws_refuse_status) +
                                     " Refused\r\nContent-Length: 0\r\n\r\n";
          co_await net::async_write(stream, net::buffer(refuse), kUse);
          continue;
        }
        co_await ServeWebSocket(std::move(stream), std::move(req), Record(r));
        co_return;
      }
      Record(r);
      const HttpAnswer answer =
          options_.http ? options_.http(r) : HttpAnswer{HttpOk("audio/wav", WavBytes(8000, 800))};
      beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
      if (answer.reset) {
        beast::error_code ignored;
        lowest.socket().set_option(net::socket_base::linger(true, 0), ignored);
        lowest.close();
        co_return;
      }
      if (answer.delay.count() > 0) {
        net::steady_timer timer(ioc_, answer.delay);
        co_await timer.async_wait(kUse);
      }
      auto [wec, wn] = co_await net::async_write(stream, net::buffer(answer.bytes), kUse);
      if (!wec) wec = co_await WriteMore(stream, answer);
      if (wec || answer.close) {
        if constexpr (kTls<Stream>) {
          if (!wec) co_await stream.async_shutdown(kUse);
        }
        beast::error_code ignored;
        lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest.close();
        co_return;
      }
    }
  }

  // The answer's later pieces, paced by `every`; the first error ends it.
  template <class Stream>
  net::awaitable<beast::error_code> WriteMore(Stream& stream, const HttpAnswer& answer) {
    net::steady_timer timer(ioc_);
    auto pause = [&]() -> net::awaitable<void> {
      if (answer.every.count() == 0) co_return;
      timer.expires_after(answer.every);
      co_await timer.async_wait(kUse);
    };
    for (const std::string& piece : answer.more) {
      co_await pause();
      auto [ec, n] = co_await net::async_write(stream, net::buffer(piece), kUse);
      if (ec) co_return ec;
    }
    while (!answer.forever.empty()) {
      co_await pause();
      auto [ec, n] = co_await net::async_write(stream, net::buffer(answer.forever), kUse);
      if (ec) co_return ec;
    }
    co_return beast::error_code{};
  }

  template <class Stream>
  net::awaitable<void> ServeWebSocket(Stream stream, http::request<http::string_body> req,
                                      size_t index) {
    if (options_.ws_accept_delay.count() > 0) {
      net::steady_timer timer(ioc_, options_.ws_accept_delay);
      co_await timer.async_wait(kUse);
    }
    websocket::stream<Stream> ws(std::move(stream));
    auto [aec] = co_await ws.async_accept(req, kUse);
    if (aec) co_return;
    for (const WsFrame& f : options_.ws_greeting) {
      ws.binary(f.binary);
      co_await ws.async_write(net::buffer(f.payload), kUse);
    }
    beast::flat_buffer buf;
    for (;;) {
      buf.clear();
      auto [ec, n] = co_await ws.async_read(buf, kUse);
      if (ec) co_return;
      const std::string msg = beast::buffers_to_string(buf.data());
      Recorded snapshot;
      {
        std::lock_guard lock(mu_);
        requests_[index].messages.push_back(msg);
        snapshot = requests_[index];
      }
      const WsAnswer answer = options_.ws(snapshot, msg);
      do {
        for (const WsFrame& f : answer.frames) {
          ws.binary(f.binary);
          auto [wec, wn] = co_await ws.async_write(net::buffer(f.payload), kUse);
          if (wec) co_return;
        }
      } while (answer.forever);
      if (answer.close_abruptly) {
        beast::error_code ignored;
        beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(ws).socket().close(ignored);
        co_return;
      }
      if (answer.close_normally) {
        co_await ws.async_close(websocket::close_code::normal, kUse);
        co_return;
      }
    }
  }

  Options options_;
  net::io_context ioc_;
  net::ssl::context tls_{net::ssl::context::tls_server};
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Recorded> requests_;
};

}  // namespace ttsbench::agent::testing

#endif  // TTSBENCH_TESTS_AGENT_FAKE_SERVER_H_
