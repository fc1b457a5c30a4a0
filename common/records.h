// Names of request error kinds as they appear in CSV, JSON and the console.
#ifndef TTSBENCH_COMMON_RECORDS_H_
#define TTSBENCH_COMMON_RECORDS_H_

#include "absl/strings/string_view.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::common {

// "" for ERROR_NONE; otherwise DESIGN.md's names: connect, tls, write, read, timeout, http_4xx, ...
absl::string_view ErrorKindName(v1::ErrorKind kind);

inline bool Succeeded(const v1::RequestRecord& r) { return r.error() == v1::ERROR_NONE; }

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_RECORDS_H_
