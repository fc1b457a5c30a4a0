#include "coordinator/run/preflight.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"

namespace ttsbench::coordinator {

absl::Status CheckReachable(const common::Url& url, double timeout_s) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", url.host, ": ", ec.message()));
  }
  tcp::socket socket(ioc);
  boost::system::error_code result = net::error::timed_out;
  net::async_connect(socket, endpoints,
                     [&](const boost::system::error_code& e, const tcp::endpoint&) { result = e; });
  ioc.run_for(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  if (result) {
    return absl::UnavailableError(absl::StrCat("cannot reach ", url.scheme, "://", url.host, ":",
                                               url.port, ": ", result.message()));
  }
  return absl::OkStatus();
}

}  // namespace ttsbench::coordinator
