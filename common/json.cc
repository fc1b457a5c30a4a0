#include "common/json.h"

#include <boost/json.hpp>
#include <cmath>

#include "common/escape.h"

namespace ttsbench::common {
namespace {

namespace json = boost::json;

void Pretty(const json::value& v, int indent, std::string* out) {
  const std::string pad(static_cast<size_t>(indent + 2), ' ');
  if (v.is_object()) {
    const json::object& o = v.get_object();
    if (o.empty()) {
      out->append("{}");
      return;
    }
    out->append("{\n");
    bool first = true;
    for (const json::key_value_pair& kv : o) {
      if (!first) out->append(",\n");
      first = false;
      out->append(pad);
      out->append(json::serialize(json::string_view(kv.key())));
      out->append(": ");
      Pretty(kv.value(), indent + 2, out);
    }
    out->append("\n").append(static_cast<size_t>(indent), ' ').append("}");
  } else if (v.is_array()) {
    const json::array& a = v.get_array();
    if (a.empty()) {
      out->append("[]");
      return;
    }
    out->append("[\n");
    bool first = true;
    for (const json::value& item : a) {
      if (!first) out->append(",\n");
      first = false;
      out->append(pad);
      Pretty(item, indent + 2, out);
    }
    out->append("\n").append(static_cast<size_t>(indent), ' ').append("]");
  } else {
    out->append(json::serialize(v));
  }
}

}  // namespace

std::string PrettyJson(const json::value& v) {
  std::string out;
  Pretty(v, 0, &out);
  out.push_back('\n');
  return out;
}

json::value JsonText(absl::string_view s) {
  const std::string valid = ValidUtf8(s);
  return json::value(json::string_view(valid.data(), valid.size()));
}

json::value JsonNumber(double v) {
  if (std::isnan(v) || std::isinf(v)) return json::value(nullptr);
  return json::value(v);
}

}  // namespace ttsbench::common
