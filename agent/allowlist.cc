#include "agent/allowlist.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ttsbench::agent {
namespace {

namespace ip = boost::asio::ip;

// An address belongs to a network text "A/N" (v4 or v6); mismatched families never match.
bool InNetwork(const ip::address& addr, const std::string& network) {
  boost::system::error_code ec;
  if (addr.is_v4()) {
    const ip::network_v4 net = ip::make_network_v4(network, ec);
    if (ec) return false;
    return (addr.to_v4().to_uint() & net.netmask().to_uint()) == net.network().to_uint();
  }
  const ip::network_v6 net = ip::make_network_v6(network, ec);
  if (ec) return false;
  const ip::address_v6 a = addr.to_v6();
  if (a.is_v4_mapped()) return false;
  return ip::make_network_v6(a, net.prefix_length()).canonical() == net.canonical();
}

}  // namespace

absl::StatusOr<TargetAllowlist> TargetAllowlist::Parse(const std::vector<std::string>& entries) {
  TargetAllowlist list;
  if (entries.empty()) {
    list.networks_ = {"127.0.0.0/8", "::1/128"};
    return list;
  }
  for (const std::string& raw : entries) {
    const std::string e = absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw));
    if (e.empty()) return absl::InvalidArgumentError("--allow-target: empty entry");
    boost::system::error_code ec;
    if (e.find('/') != std::string::npos) {
      if (e.find(':') != std::string::npos) {
        const auto net = ip::make_network_v6(e, ec);
        if (!ec) list.networks_.push_back(net.canonical().to_string());
      } else {
        const auto net = ip::make_network_v4(e, ec);
        if (!ec) list.networks_.push_back(net.canonical().to_string());
      }
      if (ec)
        return absl::InvalidArgumentError(absl::StrCat("--allow-target: bad network '", raw, "'"));
      continue;
    }
    const ip::address addr = ip::make_address(e, ec);
    if (!ec) {
      list.networks_.push_back(absl::StrCat(addr.to_string(), addr.is_v4() ? "/32" : "/128"));
    } else {
      list.names_.push_back(e);
    }
  }
  return list;
}

absl::Status TargetAllowlist::CheckAddresses(const std::string& host,
                                             const std::vector<std::string>& addrs) const {
  const std::string lower = absl::AsciiStrToLower(host);
  for (const std::string& name : names_) {
    if (name == lower) return absl::OkStatus();
  }
  bool all = !addrs.empty();
  for (const std::string& text : addrs) {
    boost::system::error_code ec;
    const ip::address addr = ip::make_address(text, ec);
    bool in = false;
    for (const std::string& net : networks_) in = in || (!ec && InNetwork(addr, net));
    all = all && in;
  }
  if (all) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("target ", host, addrs.empty() ? "" : " (", absl::StrJoin(addrs, ", "),
                   addrs.empty() ? "" : ")", " is not allowed by this agent's --allow-target (",
                   Describe(), ")"));
}

absl::Status TargetAllowlist::Check(const std::string& host, unsigned short port) const {
  boost::asio::io_context ioc;
  ip::tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  std::vector<std::string> addrs;
  for (const auto& entry : resolver.resolve(host, std::to_string(port), ec)) {
    addrs.push_back(entry.endpoint().address().to_string());
  }
  return CheckAddresses(host, addrs);
}

std::string TargetAllowlist::Describe() const {
  std::vector<std::string> all = networks_;
  all.insert(all.end(), names_.begin(), names_.end());
  return absl::StrJoin(all, ", ");
}

}  // namespace ttsbench::agent
