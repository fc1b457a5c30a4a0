// Self-signed certificates made on the spot, so the synthetic server (and tests) can serve TLS
// without files: a test trusts exactly the certificate it made.
#ifndef TTSBENCH_SYNTH_TLS_CERT_H_
#define TTSBENCH_SYNTH_TLS_CERT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ttsbench::synth {

struct CertificatePem {
  std::string cert;
  std::string key;
};

// An EC P-256 certificate for `names` (host names and IP addresses, all put in
// subjectAltName; the first is also the common name), its own CA, valid from an hour ago for
// `days`.
absl::StatusOr<CertificatePem> MakeSelfSignedCertificate(const std::vector<std::string>& names,
                                                         int days = 7);

}  // namespace ttsbench::synth

#endif  // TTSBENCH_SYNTH_TLS_CERT_H_
