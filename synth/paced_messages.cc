#include "synth/paced_messages.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/str_cat.h"

namespace ttsbench::synth {
namespace {

namespace json = boost::json;

absl::Status Bad(std::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

// The string at `key`, or null; `required` makes its absence (or another type) an error.
absl::StatusOr<const json::string*> String(const json::object& o, const char* key, bool required) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) return Bad(absl::StrCat("missing \"", key, "\""));
    return nullptr;
  }
  if (!v->is_string()) return Bad(absl::StrCat("\"", key, "\" must be a string"));
  return &v->get_string();
}

bool True(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->get_bool();
}

void Speed(const json::object& o, PacedEvent& e) {
  if (const json::value* s = o.if_contains("voice_settings"); s != nullptr && s->is_object()) {
    if (const json::value* sp = s->get_object().if_contains("speed");
        sp != nullptr && sp->is_number()) {
      e.speed = sp->to_number<double>();
    }
  }
}

}  // namespace

absl::StatusOr<PacedEvent> ParsePacedMessage(PacedProtocol protocol, std::string_view message) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(message.data(), message.size()), ec);
  if (ec || !v.is_object()) return Bad("expected a JSON object");
  const json::object& o = v.get_object();
  PacedEvent e;
  switch (protocol) {
    case PacedProtocol::kElevenLabs: {
      auto text = String(o, "text", true);
      if (!text.ok()) return text.status();
      e.text.assign((*text)->data(), (*text)->size());
      e.end = e.text.empty();
      e.flush = True(o, "flush");
      Speed(o, e);
      return e;
    }
    case PacedProtocol::kElevenLabsMulti: {
      if (True(o, "close_socket")) {
        e.close_socket = true;
        return e;
      }
      auto ctx = String(o, "context_id", false);
      if (!ctx.ok()) return ctx.status();
      if (*ctx != nullptr) e.context_id.assign((*ctx)->data(), (*ctx)->size());
      auto text = String(o, "text", false);
      if (!text.ok()) return text.status();
      if (*text != nullptr) e.text.assign((*text)->data(), (*text)->size());
      e.flush = True(o, "flush");
      e.end = True(o, "close_context");
      if (*text == nullptr && !e.flush && !e.end) {
        return Bad("expected \"text\", \"flush\", \"close_context\" or \"close_socket\"");
      }
      Speed(o, e);
      return e;
    }
    case PacedProtocol::kCartesia: {
      auto ctx = String(o, "context_id", true);
      if (!ctx.ok()) return ctx.status();
      e.context_id.assign((*ctx)->data(), (*ctx)->size());
      if (True(o, "cancel")) {
        e.cancel = true;
        return e;
      }
      auto text = String(o, "transcript", true);
      if (!text.ok()) return text.status();
      e.text.assign((*text)->data(), (*text)->size());
      const json::value* cont = o.if_contains("continue");
      if (cont != nullptr && !cont->is_bool()) return Bad("\"continue\" must be a boolean");
      e.end = cont == nullptr || !cont->get_bool();
      if (const json::value* f = o.if_contains("output_format"); f != nullptr && f->is_object()) {
        auto enc = String(f->get_object(), "encoding", false);
        if (!enc.ok()) return enc.status();
        if (*enc != nullptr) e.encoding.assign((*enc)->data(), (*enc)->size());
        if (const json::value* sr = f->get_object().if_contains("sample_rate");
            sr != nullptr && sr->is_int64()) {
          e.sample_rate = static_cast<int>(std::clamp<int64_t>(sr->get_int64(), 0, 1 << 20));
        }
      }
      return e;
    }
    case PacedProtocol::kDeepgram: {
      auto type = String(o, "type", true);
      if (!type.ok()) return type.status();
      const std::string_view t((*type)->data(), (*type)->size());
      if (t == "Speak") {
        auto text = String(o, "text", true);
        if (!text.ok()) return text.status();
        e.text.assign((*text)->data(), (*text)->size());
      } else if (t == "Flush") {
        e.flush = e.end = true;  // a turn ends with a flush, answered Flushed
      } else if (t == "Clear") {
        e.cancel = true;
      } else if (t == "Close") {
        e.close_socket = true;
      } else {
        return Bad("unknown message type");
      }
      return e;
    }
    case PacedProtocol::kVllmOmni: {
      auto type = String(o, "type", true);
      if (!type.ok()) return type.status();
      const std::string_view t((*type)->data(), (*type)->size());
      if (t == "session.config") {
        auto voice = String(o, "voice", false);
        if (!voice.ok()) return voice.status();
        auto format = String(o, "response_format", false);
        if (!format.ok()) return format.status();
        if (*format != nullptr && (*format)->size() > 0 && **format != "pcm") {
          return Bad("the synthetic server streams response_format pcm only");
        }
        if (const json::value* sp = o.if_contains("speed"); sp != nullptr && sp->is_number()) {
          e.speed = sp->to_number<double>();
        }
      } else if (t == "input.text") {
        auto text = String(o, "text", true);
        if (!text.ok()) return text.status();
        e.text.assign((*text)->data(), (*text)->size());
      } else if (t == "input.done") {
        e.flush = e.end = true;  // flushes the utterance; the connection stays open
      } else if (t == "session.close") {
        e.close_socket = true;
      } else {
        return Bad("unknown message type");
      }
      return e;
    }
  }
  return Bad("unknown protocol");
}

}  // namespace ttsbench::synth
