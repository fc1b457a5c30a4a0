// Target URLs: parsed strictly once, so that bad input fails before any load is sent.
#ifndef TTSBENCH_COMMON_URL_H_
#define TTSBENCH_COMMON_URL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::common {

struct Url {
  std::string scheme;  // http | https | grpc | grpcs
  std::string host;
  uint16_t port = 0;
  std::string base_path;  // without trailing slash; "" for the root
  bool tls() const { return scheme == "https" || scheme == "grpcs"; }
  bool grpc() const { return scheme == "grpc" || scheme == "grpcs"; }
};

absl::StatusOr<Url> ParseUrl(absl::string_view text);

// HOST:PORT with a numeric port (gRPC listen/dial addresses).
absl::Status ValidateHostPort(absl::string_view text);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_URL_H_
