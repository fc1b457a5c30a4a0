// JSON as ttsbench writes it, through Boost.JSON: indented text for files people read, and
// strings made safe for JSON whatever bytes they came from.
#ifndef TTSBENCH_COMMON_JSON_H_
#define TTSBENCH_COMMON_JSON_H_

#include <boost/json/fwd.hpp>
#include <string>

#include "absl/strings/string_view.h"

namespace ttsbench::common {

// `v` as JSON indented by two spaces, keys in the object's own order, ending in a newline.
std::string PrettyJson(const boost::json::value& v);

// A JSON string value holding `s`, bytes that are not well-formed UTF-8 replaced by U+FFFD (JSON
// text must be UTF-8; names come from argv and servers' answers).
boost::json::value JsonText(absl::string_view s);

// A JSON number, or null for NaN and infinities (which JSON cannot hold).
boost::json::value JsonNumber(double v);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_JSON_H_
