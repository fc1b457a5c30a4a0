// The agent's own limit on where it may send load, whatever a plan asks: without it an agent
// that accepts plans from a coordinator would be an open relay. Default: loopback only.
#ifndef TTSBENCH_AGENT_ALLOWLIST_H_
#define TTSBENCH_AGENT_ALLOWLIST_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ttsbench::agent {

class TargetAllowlist {
 public:
  // Entries: an address ("10.1.2.3", "::1"), a CIDR ("10.0.0.0/8", "fd00::/8") or a host name
  // ("tts.internal", matched by name). No entries: 127.0.0.0/8 and ::1.
  static absl::StatusOr<TargetAllowlist> Parse(const std::vector<std::string>& entries);

  // OK when `host` is listed by name, or it resolves and every address lies in a listed
  // network. PermissionDenied naming the host and the allowlist otherwise.
  absl::Status Check(const std::string& host, unsigned short port) const;

  // Same, for already resolved addresses (tests, and callers that resolved themselves).
  absl::Status CheckAddresses(const std::string& host, const std::vector<std::string>& addrs) const;

  std::string Describe() const;

 private:
  std::vector<std::string> names_;
  std::vector<std::string> networks_;  // canonical CIDR text
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_ALLOWLIST_H_
