// Escaping for the text ttsbench writes into requests and commands: JSON string literals and
// URL components. Header-only: the agent, the coordinator and the synthetic server all use it.
#ifndef TTSBENCH_COMMON_ESCAPE_H_
#define TTSBENCH_COMMON_ESCAPE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace ttsbench::common {

// The inside of a JSON string literal: the escapes JSON requires (absl::CEscape's \x.. and
// octal are not JSON); bytes >= 0x80 pass through, so UTF-8 stays UTF-8.
inline std::string JsonEscape(absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xF];
          out += kHex[c & 0xF];
        } else {
          out += c;
        }
    }
  }
  return out;
}

// A JSON string literal, quotes included.
inline std::string JsonQuote(absl::string_view s) { return "\"" + JsonEscape(s) + "\""; }

// Percent-encodes everything but RFC 3986 unreserved characters (a query value, a path segment).
inline std::string UrlEncode(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_ESCAPE_H_
