// The reference WebSocket client of bench/ws_vs_reference.py: as little as a client can do and
// still follow torch-inference's /audio/ws protocol. One thread, --connections sessions; each
// sends {"type":"tts","text":...} and reads messages until one containing "tts_done", request
// after request, for --seconds. No JSON parsing, no audio decoding, no timing per request.
// Prints one line: requests, messages, binary (audio) messages, seconds.
//   ws_ref_client HOST PORT CONNECTIONS SECONDS TEXT
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kUse = net::as_tuple(net::use_awaitable);

struct Counts {
  long requests = 0;
  long messages = 0;
  long binary = 0;
};

net::awaitable<void> Session(tcp::endpoint ep, std::string host, std::string request,
                             Clock::time_point end, Counts& counts) {
  websocket::stream<beast::tcp_stream> ws(co_await net::this_coro::executor);
  auto [cec] = co_await beast::get_lowest_layer(ws).async_connect(ep, kUse);
  if (cec) co_return;
  beast::get_lowest_layer(ws).socket().set_option(tcp::no_delay(true));
  beast::get_lowest_layer(ws).expires_never();
  auto [hec] = co_await ws.async_handshake(host, "/audio/ws", kUse);
  if (hec) co_return;
  beast::flat_buffer buf;
  auto [rec, rn] = co_await ws.async_read(buf, kUse);  // {"type":"ready"}
  if (rec) co_return;
  while (Clock::now() < end) {
    ws.text(true);
    auto [wec, wn] = co_await ws.async_write(net::buffer(request), kUse);
    if (wec) co_return;
    for (;;) {
      buf.clear();
      auto [ec, n] = co_await ws.async_read(buf, kUse);
      if (ec) co_return;
      ++counts.messages;
      if (ws.got_binary()) {
        ++counts.binary;
        continue;
      }
      const auto d = buf.cdata();
      if (std::string_view(static_cast<const char*>(d.data()), d.size()).find("tts_done") !=
          std::string_view::npos) {
        break;
      }
    }
    ++counts.requests;
  }
  beast::error_code ignored;
  beast::get_lowest_layer(ws).socket().close(ignored);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: ws_ref_client HOST PORT CONNECTIONS SECONDS TEXT\n");
    return 1;
  }
  const std::string host = argv[1];
  const auto port = static_cast<unsigned short>(std::atoi(argv[2]));
  const int connections = std::atoi(argv[3]);
  const double seconds = std::atof(argv[4]);
  const std::string request = std::string(R"({"type":"tts","text":")") + argv[5] + "\"}";
  net::io_context ioc(1);
  const tcp::endpoint ep(net::ip::make_address(host), port);
  Counts counts;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int i = 0; i < connections; ++i) {
    net::co_spawn(ioc, Session(ep, host + ":" + argv[2], request, end, counts), net::detached);
  }
  ioc.run();
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("requests %ld messages %ld binary %ld seconds %.3f\n", counts.requests,
              counts.messages, counts.binary, took);
  return 0;
}
