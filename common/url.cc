#include "common/url.h"

#include <boost/url/parse.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ttsbench::common {
namespace {

absl::string_view Abs(boost::core::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

absl::StatusOr<Url> ParseUrl(absl::string_view text) {
  if (!absl::StrContains(text, "://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid URL '", text, "': no scheme; write http://", text, " (or https://", text, ")"));
  }
  auto parsed = boost::urls::parse_absolute_uri(boost::core::string_view(text.data(), text.size()));
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid URL '", text, "': ", parsed.error().message()));
  }
  Url url;
  url.scheme = std::string(Abs(parsed->scheme()));
  // grpc/grpcs: gRPC targets (api: riva), plaintext HTTP/2 or TLS.
  if (url.scheme != "http" && url.scheme != "https" && url.scheme != "grpc" &&
      url.scheme != "grpcs") {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid URL '", text, "': scheme must be http or https (grpc or grpcs for api riva)"));
  }
  url.host = std::string(Abs(parsed->encoded_host()));
  if (url.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid URL '", text, "': no host"));
  }
  // Bracketed IPv6 literals are passed to the resolver without brackets.
  if (url.host.front() == '[' && url.host.back() == ']') {
    url.host = url.host.substr(1, url.host.size() - 2);
  }
  if (parsed->has_port()) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(Abs(parsed->port()), &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("invalid URL '", text, "': bad port"));
    }
    url.port = static_cast<uint16_t>(port);
  } else {
    // Riva's own default port for plaintext gRPC.
    url.port = url.tls() ? 443 : url.scheme == "grpc" ? 50051 : 80;
  }
  if (parsed->has_query() || parsed->has_fragment()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid URL '", text, "': give the server's base URL, no query"));
  }
  absl::string_view path = Abs(parsed->encoded_path());
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.base_path = std::string(path);
  return url;
}

absl::Status ValidateHostPort(absl::string_view text) {
  const size_t colon = text.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(text.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("invalid address '", text, "' (HOST:PORT)"));
  }
  return absl::OkStatus();
}

}  // namespace ttsbench::common
