#include "coordinator/discover/discover.h"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "agent/client/audio_events.h"
#include "agent/client/dialect.h"
#include "agent/client/one_shot.h"
#include "agent/client/sse.h"
#include "agent/client/tls.h"
#include "common/audio.h"
#include "common/escape.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/url.h"
#include "common/version.h"
#include "coordinator/discover/discover_riva.h"

namespace ttsbench::coordinator {
namespace {

namespace net = boost::asio;
namespace json = boost::json;
using agent::AnswerPiece;
using agent::AudioEventParser;
using agent::AudioEventSpec;
using agent::OneShotRequest;
using common::JsonText;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using Value = json::value;
// One exchange as it happened on the wire; classification is done afterwards, from this alone.
using Exchange = agent::RecordedAnswer;

// A few words: enough for every server to answer audio, cheap for a GPU server.
constexpr absl::string_view kText = "Hello from ttsbench discovery.";
// Server messages quoted in `why` are cut to this.
constexpr size_t kMaxWhy = 100;
// OpenAI formats tried after wav answered, to list what the endpoint serves.
constexpr std::array<absl::string_view, 3> kExtraOpenAiFormats = {"pcm", "mp3", "opus"};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A word for a shell command line: as is when plainly safe, else single-quoted.
std::string ShellWord(absl::string_view s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           absl::string_view("._-:/@%+=,").find(c) != absl::string_view::npos;
  });
  if (plain) return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::optional<Value> ParseJson(absl::string_view text) {
  boost::system::error_code ec;
  Value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return std::nullopt;
  return v;
}

// A member of an object, null counting as absent.
const Value* Field(const Value& v, const char* key) {
  const json::object* o = v.if_object();
  if (o == nullptr) return nullptr;
  const Value* f = o->if_contains(key);
  return f == nullptr || f->is_null() ? nullptr : f;
}

std::string StringField(const Value& v, const char* key) {
  const Value* f = Field(v, key);
  return f != nullptr && f->is_string() ? std::string(f->get_string()) : "";
}

// A server's error message in a JSON body: OpenAI {"error":{"message"}}, FastAPI {"detail"},
// ElevenLabs {"detail":{"message"}}, or {"error":"..."} / {"message":"..."}.
std::string ErrorMessage(absl::string_view body) {
  std::optional<Value> json = ParseJson(body);
  if (!json) return "";
  for (const char* key : {"error", "detail", "message"}) {
    const Value* f = Field(*json, key);
    if (f == nullptr) continue;
    if (f->is_string()) return std::string(f->get_string());
    if (std::string m = StringField(*f, "message"); !m.empty()) return m;
    if (f->is_array() && !f->get_array().empty()) {
      // FastAPI validation errors: [{"loc": [...], "msg": "..."}]
      if (std::string m = StringField(f->get_array()[0], "msg"); !m.empty()) return m;
    }
  }
  return "";
}

// One line of at most kMaxWhy bytes, cut between UTF-8 sequences.
std::string Shorten(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  if (s.size() > kMaxWhy) {
    size_t cut = kMaxWhy - 3;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = absl::StrCat(s.substr(0, cut), "...");
  }
  return s;
}

// Names in a list answer: strings, or objects named by voice_id/id/name/short_name; an object
// wrapping such a list (voices, data, models, engines); or, for `keyed_objects`, an object whose
// values are all objects keyed by name (OpenTTS /api/voices).
void CollectNames(const Value& v, bool keyed_objects, std::vector<std::string>& out) {
  if (v.is_array()) {
    for (const Value& item : v.get_array()) {
      if (item.is_string() && !item.get_string().empty()) {
        out.emplace_back(item.get_string());
        continue;
      }
      for (const char* key : {"voice_id", "id", "name", "short_name", "model_id"}) {
        if (std::string name = StringField(item, key); !name.empty()) {
          out.push_back(std::move(name));
          break;
        }
      }
    }
    return;
  }
  if (!v.is_object()) return;
  for (const char* key : {"voices", "data", "models", "engines", "speakers"}) {
    if (const Value* f = Field(v, key); f != nullptr) {
      CollectNames(*f, false, out);
      return;
    }
  }
  if (!keyed_objects || v.get_object().empty()) return;
  std::vector<std::string> keys;
  for (const json::key_value_pair& kv : v.get_object()) {
    if (!kv.value().is_object()) return;
    keys.emplace_back(kv.key());
  }
  std::sort(keys.begin(), keys.end());  // the same list whatever order the server wrote
  out.insert(out.end(), keys.begin(), keys.end());
}

void AppendUnique(const std::vector<std::string>& names, std::vector<std::string>& out) {
  for (const std::string& n : names) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
}

bool IsSuccess(int status) { return status >= 200 && status < 300; }

// Bodies of these types are never audio, whatever a raw-PCM meter would make of them.
bool IsTextual(absl::string_view content_type) {
  const std::string ct = absl::AsciiStrToLower(content_type);
  return absl::StartsWith(ct, "text/") || absl::StrContains(ct, "json") ||
         absl::StrContains(ct, "html") || absl::StrContains(ct, "xml");
}

// The streamed events of every dialect discover probes (OpenAI SSE, torch-inference
// WebSocket, ElevenLabs): base64 audio, the end markers and error reports of each.
AudioEventSpec EventSpec() {
  AudioEventSpec spec;
  spec.done_types = {"speech.audio.done", "tts_done", "done"};
  spec.error_types = {"error"};
  spec.error_field = "error";
  spec.final_field = "isFinal";
  return spec;
}

// A whole JSON answer with base64 audio (torch-inference).
AudioEventSpec JsonAnswerSpec(uint64_t max_bytes) {
  AudioEventSpec spec;
  spec.audio_fields = {"audio_base64", "audio_data", "audio"};
  spec.error_field = "error";
  spec.max_event_bytes = max_bytes;
  return spec;
}

// Why an event was refused, in the words of the table: the server's own message for an error
// it reported.
std::string EventWhy(const absl::Status& st, absl::string_view data) {
  if (absl::IsFailedPrecondition(st)) {
    const std::string m = ErrorMessage(data);
    return Shorten(absl::StrCat("error event", m.empty() ? "" : ": ", m));
  }
  return Shorten(std::string(st.message()));
}

// ---------------------------------------------------------------------------------------------
// Probe specifications and what came back

enum class Shape { kAudio, kJsonBase64, kSse, kWebSocket, kList, kHealth };

struct ProbeSpec {
  std::string dialect;
  std::string kind;  // speech | voices | models | health
  std::string variant;
  std::string method = "GET";
  std::string path;        // shown, below the base URL
  OneShotRequest request;  // as the dialect (or, for lists, a plain GET) asks
  v1::Target target;       // speech: what the request was prepared from
  Shape shape = Shape::kAudio;
  std::string voice;
  std::string meter_format = "auto";  // what the dialect's agent would measure the answer as
  int meter_rate = 24000;             // raw PCM rate when the answer does not say
  bool keyed_objects = false;         // list: an object keyed by name is a list
  std::string server_flags;
  bool extra_openai_formats = false;  // after success, try kExtraOpenAiFormats too
  bool rate_in_request = false;       // the request names the raw PCM rate (pcm_24000)
};

// Fills `out` from an HTTP status that is not success: "404", or "400: <server's message>".
void StatusWhy(const Exchange& ex, EndpointProbe& out) {
  out.why = std::to_string(ex.status);
  if (ex.status != 404 && ex.status != 405) {
    if (std::string m = ErrorMessage(ex.Body()); !m.empty()) {
      out.why = Shorten(absl::StrCat(ex.status, ": ", m));
    }
  }
}

// Transport and status checks common to every shape; false when `out` is already decided.
bool CheckAnswer(const Exchange& ex, EndpointProbe& out) {
  out.http_status = ex.status;
  out.content_type = ex.content_type;
  if (ex.status == 0 && !ex.error.empty()) {
    out.why = ex.error;
    return false;
  }
  if (ex.status != 0 && !IsSuccess(ex.status) && ex.status != 101) {
    StatusWhy(ex, out);
    return false;
  }
  return true;
}

void SetTiming(const Exchange& ex, std::optional<Clock::time_point> first_audio,
               EndpointProbe& out) {
  out.total_ms = Ms(ex.end - ex.sent);
  out.first_audio_ms = first_audio ? Ms(*first_audio - ex.sent) : 0;
}

// Feeds `bytes` to the meter, noting when audio first appeared.
absl::Status FeedMeter(common::AudioMeter& meter, absl::string_view bytes, Clock::time_point at,
                       std::optional<Clock::time_point>& first_audio) {
  ASSIGN_OR_RETURN(common::AudioFeed feed, meter.Feed(bytes));
  if (feed.audio_bytes > 0 && !first_audio) first_audio = at;
  return absl::OkStatus();
}

// The meter's verdict once the answer is complete (or cut short by `ex.error`).
void FinishAudio(const Exchange& ex, common::AudioMeter& meter,
                 std::optional<Clock::time_point> first_audio, EndpointProbe& out) {
  SetTiming(ex, first_audio, out);
  if (!ex.error.empty()) {
    out.why = ex.error;
    out.audio_s = meter.seconds();
    return;
  }
  if (absl::Status st = meter.Finish(); !st.ok()) {
    out.why = Shorten(absl::StrCat("invalid audio: ", st.message()));
    return;
  }
  out.audio_s = meter.seconds();
  out.sample_rate = meter.sample_rate();
  if (meter.format() != "pcm") {
    out.rate_source = "audio header";
  } else if (common::RateFromContentType(ex.content_type) > 0) {
    out.rate_source = "Content-Type";
  }  // else: what the caller found (metadata, the request), or nothing
  if (!meter.format().empty()) out.formats.push_back(std::string(meter.format()));
  if (out.audio_s <= 0) {
    out.why = "empty audio";
    return;
  }
  out.working = true;
}

absl::StatusOr<std::unique_ptr<common::AudioMeter>> NewMeter(const ProbeSpec& spec,
                                                             absl::string_view content_type,
                                                             int rate = 0) {
  return common::MakeMeter(common::MeterOptions{spec.meter_format, std::string(content_type),
                                                rate > 0 ? rate : spec.meter_rate, 1});
}

void ClassifyAudio(const ProbeSpec& spec, const Exchange& ex, EndpointProbe& out) {
  if (!CheckAnswer(ex, out)) return;
  if (IsTextual(ex.content_type)) {
    out.why = absl::StrCat("not audio (", ex.content_type, ")");
    return;
  }
  auto meter = NewMeter(spec, ex.content_type);
  if (!meter.ok()) {
    out.why = Shorten(std::string(meter.status().message()));
    return;
  }
  out.streaming = ex.incremental;
  std::optional<Clock::time_point> first_audio;
  for (const AnswerPiece& p : ex.pieces) {
    if (absl::Status st = FeedMeter(**meter, p.bytes, p.at, first_audio); !st.ok()) {
      SetTiming(ex, first_audio, out);
      out.why = Shorten(absl::StrCat("not audio: ", st.message()));
      return;
    }
  }
  FinishAudio(ex, **meter, first_audio, out);
}

// A JSON answer carrying base64 audio (torch-inference): the audio is known at the end.
void ClassifyJsonBase64(const ProbeSpec& spec, const Exchange& ex, EndpointProbe& out) {
  if (!CheckAnswer(ex, out)) return;
  SetTiming(ex, std::nullopt, out);
  if (!ex.error.empty()) {
    out.why = ex.error;
    return;
  }
  const std::string body = ex.Body();
  AudioEventParser parser(JsonAnswerSpec(spec.request.max_body));
  if (absl::Status st = parser.Parse(body); !st.ok()) {
    if (absl::IsFailedPrecondition(st)) {
      out.why = Shorten(absl::StrCat("error: ", ErrorMessage(body)));
    } else if (absl::StrContains(st.message(), "base64")) {
      out.why = "audio is not base64";
    } else {
      out.why =
          absl::StrCat("not JSON (", ex.content_type.empty() ? "no type" : ex.content_type, ")");
    }
    return;
  }
  const agent::AudioEvent& answer = parser.event();
  if (answer.audio.empty()) {
    std::string m = ErrorMessage(body);
    out.why = m.empty() ? "no audio in JSON" : Shorten(absl::StrCat("error: ", m));
    return;
  }
  if (answer.sample_rate > 0) out.rate_source = "JSON sample_rate";
  auto meter = NewMeter(spec, "", answer.sample_rate);
  if (!meter.ok()) {
    out.why = Shorten(std::string(meter.status().message()));
    return;
  }
  std::optional<Clock::time_point> first_audio;
  if (!FeedMeter(**meter, answer.audio, ex.end, first_audio).ok()) {
    out.why = "not audio";
    return;
  }
  FinishAudio(ex, **meter, ex.end, out);
}

// text/event-stream whose events carry base64 audio (OpenAI stream_format "sse").
void ClassifySse(const ProbeSpec& spec, const Exchange& ex, EndpointProbe& out) {
  if (!CheckAnswer(ex, out)) return;
  if (!absl::StartsWithIgnoreCase(absl::StripAsciiWhitespace(ex.content_type),
                                  "text/event-stream")) {
    SetTiming(ex, std::nullopt, out);
    out.why = absl::StrCat("not SSE (", ex.content_type.empty() ? "no type" : ex.content_type, ")");
    return;
  }
  auto meter = NewMeter(spec, "");
  if (!meter.ok()) {
    out.why = Shorten(std::string(meter.status().message()));
    return;
  }
  out.streaming = true;
  agent::SseParser sse;
  AudioEventParser events(EventSpec());
  std::optional<Clock::time_point> first_audio;
  std::string error;
  bool done = false;
  std::vector<agent::SseEvent> pending;
  auto handle = [&](Clock::time_point at) {
    for (const agent::SseEvent& e : pending) {
      if (done) break;
      if (absl::Status st = events.Parse(e.data); !st.ok()) {
        error = EventWhy(st, e.data);
      } else if (!FeedMeter(**meter, events.event().audio, at, first_audio).ok()) {
        error = "not audio";
      } else {
        done = events.event().done;
      }
      if (!error.empty()) done = true;
    }
    pending.clear();
  };
  for (const AnswerPiece& p : ex.pieces) {
    if (absl::Status st = sse.Feed(p.bytes, pending); !st.ok() && error.empty()) {
      error = Shorten(std::string(st.message()));
    }
    handle(p.at);
    if (done) break;
  }
  if (!done) {
    if (absl::Status st = sse.Finish(pending); !st.ok() && error.empty()) {
      error = Shorten(std::string(st.message()));
    }
    handle(ex.end);
  }
  if (!error.empty()) {
    SetTiming(ex, first_audio, out);
    out.why = error;
    return;
  }
  FinishAudio(ex, **meter, first_audio, out);
}

// WebSocket (torch-inference /audio/ws): a JSON meta message may give sample_rate and encoding;
// binary messages are audio; a done message ends the answer.
void ClassifyWebSocket(const ProbeSpec& spec, const Exchange& ex, EndpointProbe& out) {
  if (!CheckAnswer(ex, out)) return;
  out.streaming = true;
  std::unique_ptr<common::AudioMeter> meter;
  std::string format = spec.meter_format;
  int rate = 0;
  std::optional<Clock::time_point> first_audio;
  std::string error;
  AudioEventParser events(EventSpec());
  for (const AnswerPiece& p : ex.pieces) {
    absl::string_view audio = p.bytes;
    if (!p.binary) {
      if (absl::Status st = events.Parse(p.bytes); !st.ok()) {
        error = EventWhy(st, p.bytes);
        break;
      }
      const agent::AudioEvent& ev = events.event();
      if (ev.sample_rate > 0) {
        rate = ev.sample_rate;
        out.rate_source = "meta message";
      }
      if (!ev.encoding.empty()) format = ev.encoding == "pcm_s16le" ? "pcm" : ev.encoding;
      if (ev.audio.empty()) continue;
      audio = ev.audio;
    }
    if (meter == nullptr) {
      auto made =
          common::MakeMeter(common::MeterOptions{format, "", rate > 0 ? rate : spec.meter_rate, 1});
      if (!made.ok()) {
        error = Shorten(std::string(made.status().message()));
        break;
      }
      meter = std::move(*made);
    }
    if (absl::Status st = FeedMeter(*meter, audio, p.at, first_audio); !st.ok()) {
      error = Shorten(absl::StrCat("not audio: ", st.message()));
      break;
    }
  }
  if (!error.empty()) {
    SetTiming(ex, first_audio, out);
    out.why = error;
    return;
  }
  if (meter == nullptr) {
    SetTiming(ex, std::nullopt, out);
    out.why = ex.error.empty() ? "no audio" : ex.error;
    return;
  }
  FinishAudio(ex, *meter, first_audio, out);
}

// A list answer: its names go to `names`; working when it named at least one.
void ClassifyList(const ProbeSpec& spec, const Exchange& ex, EndpointProbe& out,
                  std::vector<std::string>& names) {
  if (!CheckAnswer(ex, out)) return;
  SetTiming(ex, std::nullopt, out);
  if (!ex.error.empty()) {
    out.why = ex.error;
    return;
  }
  std::optional<Value> json = ParseJson(ex.Body());
  if (!json) {
    out.why =
        absl::StrCat("not JSON (", ex.content_type.empty() ? "no type" : ex.content_type, ")");
    return;
  }
  CollectNames(*json, spec.keyed_objects, names);
  if (names.empty()) {
    out.why = "no list in answer";
    return;
  }
  out.working = true;
}

void ClassifyHealth(const Exchange& ex, EndpointProbe& out) {
  if (!CheckAnswer(ex, out)) return;
  SetTiming(ex, std::nullopt, out);
  if (!ex.error.empty()) {
    out.why = ex.error;
    return;
  }
  out.working = true;
}

// ---------------------------------------------------------------------------------------------
// The wire: the client layer's one-shot exchanges, scheduled on one io_context

class Prober {
 public:
  Prober(const DiscoverOptions& options, common::Url url)
      : options_(options), url_(std::move(url)) {
    tls_options_.enabled = url_.tls();
    tls_options_.host = url_.host;
    tls_options_.ca_file = options_.ca_file;
    tls_options_.insecure = options_.insecure;
  }

  absl::Status Init() {
    for (const v1::Header& h : options_.headers) {
      if (!agent::IsHeaderName(h.name()) || !agent::IsHeaderValue(h.value())) {
        // Never the value: it is likely a secret.
        return absl::InvalidArgumentError(
            absl::StrCat("header '", Shorten(h.name()), "' has an invalid name or value"));
      }
    }
    if (!url_.tls()) return absl::OkStatus();
    ASSIGN_OR_RETURN(ssl_, agent::MakeClientTlsContext(tls_options_));
    return absl::OkStatus();
  }

  const agent::TlsOptions& tls_options() const { return tls_options_; }

  // Resolves the host and checks that it accepts a connection (and a TLS handshake) before
  // `deadline`: Unavailable otherwise.
  absl::Status CheckReachable(Clock::time_point deadline) {
    const std::string where = absl::StrCat(url_.scheme, "://", agent::HostHeader(url_));
    std::optional<boost::system::error_code> resolved;
    tcp::resolver resolver(ioc_);
    resolver.async_resolve(url_.host, std::to_string(url_.port),
                           [&](const boost::system::error_code& ec, agent::Endpoints r) {
                             resolved = ec;
                             endpoints_ = std::move(r);
                           });
    ioc_.run_until(deadline);
    if (!resolved) {
      resolver.cancel();
      ioc_.restart();
      ioc_.run_for(std::chrono::milliseconds(100));
      return absl::UnavailableError(absl::StrCat("cannot resolve ", url_.host, ": timeout"));
    }
    if (*resolved || endpoints_.empty()) {
      return absl::UnavailableError(
          absl::StrCat("cannot resolve ", url_.host, ": ", resolved->message()));
    }
    ioc_.restart();
    // Shared with the coroutine: if it outlived this call it must not write into a dead frame.
    auto why = std::make_shared<std::string>("timeout");
    net::co_spawn(
        ioc_,
        [](net::io_context& ioc, agent::Endpoints endpoints, agent::TlsOptions tls,
           net::ssl::context* ctx, Clock::time_point deadline,
           std::shared_ptr<std::string> why) -> net::awaitable<void> {
          *why = co_await agent::CheckConnect(ioc, std::move(endpoints), std::move(tls), ctx,
                                              deadline);
        }(ioc_, endpoints_, tls_options_, ssl_.get(), deadline, why),
        net::detached);
    Drain(deadline);
    if (!why->empty()) {
      return absl::UnavailableError(absl::StrCat("cannot reach ", where, ": ", *why));
    }
    return absl::OkStatus();
  }

  // Runs the probes concurrently (lists: cheap, and nothing is measured) or one after another
  // (speech: so that first-audio times are not inflated by each other).
  void RunConcurrently(const std::vector<ProbeSpec>& specs, std::vector<Exchange>& out,
                       Clock::time_point budget_end) {
    const Clock::time_point deadline = std::min(Clock::now() + Timeout(), budget_end);
    std::vector<std::shared_ptr<Exchange>> answers;
    for (const ProbeSpec& spec : specs) {
      answers.push_back(std::make_shared<Exchange>());
      Spawn(spec, answers.back(), deadline);
    }
    Drain(deadline);
    out.clear();
    for (const auto& a : answers) out.push_back(*a);
  }

  // One probe; false when the budget is spent (nothing sent).
  bool RunOne(const ProbeSpec& spec, Exchange& out, Clock::time_point budget_end) {
    const Clock::time_point now = Clock::now();
    if (now >= budget_end) return false;
    const Clock::time_point deadline = std::min(now + Timeout(), budget_end);
    auto answer = std::make_shared<Exchange>();
    Spawn(spec, answer, deadline);
    Drain(deadline);
    out = *answer;
    return true;
  }

 private:
  Clock::duration Timeout() const {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options_.timeout_s));
  }

  // The request is copied into the exchange and `out` shared, so that a probe cut off by Drain
  // and resumed later touches only its own state.
  void Spawn(const ProbeSpec& spec, std::shared_ptr<Exchange> out, Clock::time_point deadline) {
    net::co_spawn(
        ioc_,
        agent::RecordExchange(ioc_, endpoints_, spec.request, ssl_.get(), deadline, std::move(out)),
        net::detached);
  }

  // Runs what was spawned; every operation is bounded by its stream's deadline, and a small
  // grace past it covers closing.
  void Drain(Clock::time_point deadline) {
    ioc_.restart();
    ioc_.run_until(deadline + std::chrono::milliseconds(200));
    if (!ioc_.stopped()) {
      // Something ignored its deadline: drop it rather than wait.
      ioc_.stop();
    }
  }

  const DiscoverOptions& options_;
  common::Url url_;
  agent::TlsOptions tls_options_;
  net::io_context ioc_;
  std::unique_ptr<net::ssl::context> ssl_;
  agent::Endpoints endpoints_;
};

// ---------------------------------------------------------------------------------------------
// What to ask

std::string First(const std::vector<std::string>& names, absl::string_view fallback) {
  return names.empty() ? std::string(fallback) : names.front();
}

std::vector<ProbeSpec> ListSpecs(const common::Url& url, const DiscoverOptions& options,
                                 const agent::TlsOptions& tls) {
  std::vector<ProbeSpec> specs;
  const std::string headers = agent::HeaderLines(options.headers);
  auto add = [&](const char* dialect, const char* kind, const char* path, Shape shape,
                 bool keyed = false) {
    ProbeSpec s;
    s.dialect = dialect;
    s.kind = kind;
    s.variant = "list";
    s.path = path;
    s.request.transport.tls = tls;
    s.request.request.wire = agent::HttpRequestWire(url, "GET", path, "application/json", headers);
    s.shape = shape;
    s.keyed_objects = keyed;
    specs.push_back(std::move(s));
  };
  add("openai", "models", "/v1/models", Shape::kList);
  add("openai", "voices", "/v1/audio/voices", Shape::kList);
  add("torch-inference", "health", "/health", Shape::kHealth);
  specs.back().variant = "get";
  add("torch-inference", "models", "/tts/engines", Shape::kList);
  add("opentts", "voices", "/api/voices", Shape::kList, /*keyed=*/true);
  add("elevenlabs", "voices", "/v1/voices", Shape::kList);
  return specs;
}

// Names each list probe found, by path.
struct Lists {
  std::vector<std::string> openai_models, openai_voices, torch_engines, opentts_voices,
      elevenlabs_voices, all_voices;
};

// The request the dialect itself makes for `spec.target` (what `ttsbench server` with
// spec.server_flags would send), over the dialect's transport.
absl::Status Prepare(const common::Url& url, const DiscoverOptions& options, ProbeSpec& spec) {
  spec.target.set_ca_file(options.ca_file);
  spec.target.set_insecure(options.insecure);
  ASSIGN_OR_RETURN(std::unique_ptr<agent::Dialect> dialect,
                   agent::MakeDialect(spec.target, url, options.headers));
  ASSIGN_OR_RETURN(spec.request.request, dialect->Prepare(kText));
  spec.request.transport = dialect->transport();
  spec.request.events = EventSpec();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ProbeSpec>> SpeechSpecs(const common::Url& url,
                                                   const DiscoverOptions& options,
                                                   const Lists& lists) {
  std::vector<ProbeSpec> specs;
  auto add = [&](const char* dialect, const char* variant, std::string path, Shape shape,
                 absl::string_view format, bool streaming, absl::string_view voice) {
    ProbeSpec s;
    s.dialect = dialect;
    s.kind = "speech";
    s.variant = variant;
    s.method = "POST";
    s.path = std::move(path);
    s.shape = shape;
    s.voice = std::string(voice);
    s.target.set_api(dialect);
    s.target.set_format(std::string(format));
    s.target.set_streaming(streaming);
    s.target.set_voice(s.voice);
    specs.push_back(std::move(s));
    return &specs.back();
  };
  auto flags = [](const ProbeSpec& s, absl::string_view model, absl::string_view format) {
    std::string f = absl::StrCat("--api ", s.dialect);
    if (!model.empty()) absl::StrAppend(&f, " --model ", ShellWord(model));
    if (!s.voice.empty()) absl::StrAppend(&f, " --voice ", ShellWord(s.voice));
    absl::StrAppend(&f, " --format ", format);
    if (s.target.streaming()) absl::StrAppend(&f, " --streaming");
    return f;
  };

  // OpenAI. The model only when the server listed one: "tts-1" is what clients send otherwise.
  const std::string model = First(lists.openai_models, "");
  const std::string openai_voice =
      First(lists.openai_voices, lists.all_voices.empty() ? "alloy" : lists.all_voices.front());
  ProbeSpec* s =
      add("openai", "wav", "/v1/audio/speech", Shape::kAudio, "wav", false, openai_voice);
  s->target.set_model(model);
  s->meter_format = "wav";
  s->server_flags = flags(*s, model, "wav");
  s->extra_openai_formats = true;
  s = add("openai", "stream", "/v1/audio/speech", Shape::kAudio, "wav", true, openai_voice);
  s->target.set_model(model);
  s->meter_format = "wav";
  s->server_flags = flags(*s, model, "wav");
  s = add("openai", "sse", "/v1/audio/speech", Shape::kSse, "pcm", false, openai_voice);
  s->target.set_model(model);
  s->target.set_stream_format("sse");
  s->meter_format = "pcm";
  s->server_flags = absl::StrCat(flags(*s, model, "pcm"), " --stream-format sse");

  // torch-inference.
  const std::string torch_voice = First(lists.all_voices, "default");
  s = add("torch-inference", "base64", "/tts/synthesize", Shape::kJsonBase64, "wav", false,
          torch_voice);
  s->server_flags = flags(*s, "", "wav");
  s = add("torch-inference", "stream", "/tts/stream", Shape::kAudio, "pcm", true, torch_voice);
  s->meter_format = "pcm";
  s->server_flags = flags(*s, "", "pcm");
  s = add("torch-inference", "websocket", "/audio/ws", Shape::kWebSocket, "pcm", true, torch_voice);
  s->method = "GET";
  s->target.set_stream_format("ws");
  s->meter_format = "pcm";
  s->server_flags = absl::StrCat(flags(*s, "", "pcm"), " --stream-format ws");
  s = add("torch-inference", "base64", "/synthesize", Shape::kJsonBase64, "wav", false,
          torch_voice);
  s->target.set_path("/synthesize");
  s->target.set_model(First(lists.torch_engines, "default"));
  s->server_flags = absl::StrCat(flags(*s, "", "wav"), " --path /synthesize");
  if (!lists.torch_engines.empty()) {
    absl::StrAppend(&s->server_flags, " --model ", ShellWord(lists.torch_engines.front()));
  }

  // Coqui: no speaker, since single-speaker models reject one and nothing lists them.
  s = add("coqui", "wav", "/api/tts", Shape::kAudio, "wav", false, "");
  s->method = "GET";
  s->meter_format = "wav";
  s->server_flags = flags(*s, "", "wav");

  // OpenTTS: a voice it listed, else its own default.
  s = add("opentts", "wav", "/api/tts", Shape::kAudio, "wav", false,
          First(lists.opentts_voices, ""));
  s->method = "GET";
  s->meter_format = "wav";
  s->server_flags = flags(*s, "", "wav");

  // Piper: WAV whatever the Content-Type says; its default voice.
  s = add("piper", "wav", "/synthesize", Shape::kAudio, "wav", false, "");
  s->meter_format = "wav";
  s->server_flags = flags(*s, "", "wav");

  // ElevenLabs: raw 24 kHz PCM (every plan has it; mp3 would be measured as well).
  const std::string el_voice = First(lists.elevenlabs_voices, First(lists.all_voices, "default"));
  s = add("elevenlabs", "stream",
          absl::StrCat("/v1/text-to-speech/", common::UrlEncode(el_voice), "/stream"),
          Shape::kAudio, "pcm", true, el_voice);
  s->meter_format = "pcm";
  s->rate_in_request = true;
  s->server_flags = flags(*s, "", "pcm");

  for (ProbeSpec& spec : specs) RETURN_IF_ERROR(Prepare(url, options, spec));
  return specs;
}

EndpointProbe NewProbe(const ProbeSpec& spec) {
  EndpointProbe p;
  p.dialect = spec.dialect;
  p.kind = spec.kind;
  p.variant = spec.variant;
  p.method = spec.method;
  p.path = spec.path;
  p.voice = spec.voice;
  p.server_flags = spec.server_flags;
  if (spec.rate_in_request) p.rate_source = "request";
  return p;
}

void Classify(const ProbeSpec& spec, const Exchange& ex, EndpointProbe& out,
              std::vector<std::string>& names) {
  switch (spec.shape) {
    case Shape::kAudio:
      return ClassifyAudio(spec, ex, out);
    case Shape::kJsonBase64:
      return ClassifyJsonBase64(spec, ex, out);
    case Shape::kSse:
      return ClassifySse(spec, ex, out);
    case Shape::kWebSocket:
      return ClassifyWebSocket(spec, ex, out);
    case Shape::kList:
      return ClassifyList(spec, ex, out, names);
    case Shape::kHealth:
      return ClassifyHealth(ex, out);
  }
}

// Where each dialect's probes go in the table: dialect by dialect, lists before speech.
int DialectOrder(absl::string_view dialect) {
  static constexpr absl::string_view kOrder[] = {"openai",  "torch-inference", "coqui",
                                                 "opentts", "piper",           "elevenlabs"};
  for (int i = 0; i < static_cast<int>(std::size(kOrder)); ++i) {
    if (kOrder[i] == dialect) return i;
  }
  return static_cast<int>(std::size(kOrder));
}

const EndpointProbe* FindProbe(const std::vector<EndpointProbe>& probes, absl::string_view dialect,
                               absl::string_view path) {
  for (const EndpointProbe& p : probes) {
    if (p.dialect == dialect && p.path == path) return &p;
  }
  return nullptr;
}

// Protocol preference among streamed answers: plain HTTP bodies carry the audio as it is, a
// WebSocket frames it, SSE adds base64 and JSON; whole answers come last.
int ProtocolRank(const EndpointProbe& p) {
  if (!p.streaming) return 3;
  if (p.variant == "websocket") return 1;
  if (p.variant == "sse") return 2;
  return 0;
}

// The best match by a fixed rule (DiscoveryResult::best_probe): first-audio times are not
// compared at all, so a rerun suggests the same thing. GET /api/tts answers both Coqui's and
// OpenTTS's request; a server listing voices at /api/voices is OpenTTS.
int PickBest(const std::vector<EndpointProbe>& probes) {
  const EndpointProbe* opentts_voices = FindProbe(probes, "opentts", "/api/voices");
  const EndpointProbe* opentts_tts = FindProbe(probes, "opentts", "/api/tts");
  const bool is_opentts = opentts_voices != nullptr && opentts_voices->working &&
                          opentts_tts != nullptr && opentts_tts->working;
  auto key = [](const EndpointProbe& p) {
    return std::make_tuple(p.rate_source.empty(), !p.streaming, ProtocolRank(p));
  };
  int best = -1;
  for (int i = 0; i < static_cast<int>(probes.size()); ++i) {
    const EndpointProbe& p = probes[i];
    if (!p.working || p.kind != "speech" || p.server_flags.empty()) continue;
    if (p.dialect == "coqui" && is_opentts) continue;
    if (best < 0 || key(p) < key(probes[best])) best = i;
  }
  return best;
}

// Raw PCM that stated no rate was measured at the assumed 24000 Hz. The WAV answer of the same
// endpoint says the server's rate: durations are rescaled to it and the suggested flags name it.
// Without one the probe keeps its assumed rate and a note says which flag to set.
void ResolveAssumedRates(DiscoveryResult& result) {
  for (EndpointProbe& p : result.probes) {
    if (!p.working || p.kind != "speech" || !p.rate_source.empty()) continue;
    const EndpointProbe* wav = nullptr;
    for (const EndpointProbe& q : result.probes) {
      if (q.working && q.dialect == p.dialect && q.path == p.path && q.sample_rate > 0 &&
          q.rate_source == "audio header") {
        wav = &q;
        break;
      }
    }
    if (wav == nullptr) {
      result.notes.push_back(
          absl::StrCat(p.dialect, " ", p.method, " ", p.path, " (", p.variant,
                       "): raw PCM with no stated "
                       "sample rate; measured as ",
                       p.sample_rate,
                       " Hz. If the server's rate differs, every "
                       "duration is off: benchmark it with --sample-rate RATE."));
      continue;
    }
    if (p.sample_rate > 0 && wav->sample_rate != p.sample_rate) {
      p.audio_s *= static_cast<double>(p.sample_rate) / wav->sample_rate;
    }
    p.sample_rate = wav->sample_rate;
    p.rate_source = "WAV answer of the same endpoint";
    absl::StrAppend(&p.server_flags, " --sample-rate ", p.sample_rate);
  }
}

std::string CanonicalUrl(const common::Url& url) {
  return absl::StrCat(url.scheme, "://", agent::HostHeader(url), url.base_path);
}

}  // namespace

absl::StatusOr<DiscoveryResult> Discover(const DiscoverOptions& options) {
  if (!(options.timeout_s > 0) || !(options.budget_s > 0)) {
    return absl::InvalidArgumentError("discover: timeout and budget must be positive");
  }
  ASSIGN_OR_RETURN(common::Url url, common::ParseUrl(options.url));
  if (url.grpc()) return DiscoverRiva(options, url);  // NVIDIA Riva (discover_riva.cc)
  const Clock::time_point start = Clock::now();
  const Clock::time_point budget_end = start + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(options.budget_s));
  Prober prober(options, url);
  RETURN_IF_ERROR(prober.Init());
  const Clock::time_point reach_deadline =
      std::min(budget_end, start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(options.timeout_s)));
  RETURN_IF_ERROR(prober.CheckReachable(reach_deadline));

  DiscoveryResult result;
  result.url = CanonicalUrl(url);
  std::vector<std::pair<ProbeSpec, EndpointProbe>> done;

  // Lists first: they name the voices and models the speech probes ask for.
  const std::vector<ProbeSpec> list_specs = ListSpecs(url, options, prober.tls_options());
  std::vector<Exchange> list_answers;
  prober.RunConcurrently(list_specs, list_answers, budget_end);
  Lists lists;
  for (size_t i = 0; i < list_specs.size(); ++i) {
    const ProbeSpec& spec = list_specs[i];
    EndpointProbe probe = NewProbe(spec);
    std::vector<std::string> names;
    Classify(spec, list_answers[i], probe, names);
    if (spec.path == "/v1/models") lists.openai_models = names;
    if (spec.path == "/v1/audio/voices") lists.openai_voices = names;
    if (spec.path == "/tts/engines") lists.torch_engines = names;
    if (spec.path == "/api/voices") lists.opentts_voices = names;
    if (spec.path == "/v1/voices") lists.elevenlabs_voices = names;
    AppendUnique(names, spec.kind == "voices" ? result.voices : result.models);
    done.emplace_back(spec, std::move(probe));
  }
  lists.all_voices = result.voices;

  ASSIGN_OR_RETURN(const std::vector<ProbeSpec> speech_specs, SpeechSpecs(url, options, lists));
  for (const ProbeSpec& spec : speech_specs) {
    EndpointProbe probe = NewProbe(spec);
    Exchange ex;
    if (!prober.RunOne(spec, ex, budget_end)) {
      probe.why = "skipped: time budget spent";
      done.emplace_back(spec, std::move(probe));
      continue;
    }
    std::vector<std::string> unused;
    Classify(spec, ex, probe, unused);
    if (probe.working && spec.extra_openai_formats) {
      for (absl::string_view format : kExtraOpenAiFormats) {
        ProbeSpec extra = spec;
        extra.target.set_format(std::string(format));
        extra.meter_format = std::string(format);
        RETURN_IF_ERROR(Prepare(url, options, extra));
        if (!prober.RunOne(extra, ex, budget_end)) break;
        EndpointProbe check = NewProbe(extra);
        Classify(extra, ex, check, unused);
        if (check.working) AppendUnique(check.formats, probe.formats);
      }
    }
    done.emplace_back(spec, std::move(probe));
  }

  std::stable_sort(done.begin(), done.end(), [](const auto& a, const auto& b) {
    const int da = DialectOrder(a.first.dialect), db = DialectOrder(b.first.dialect);
    if (da != db) return da < db;
    return (a.first.kind == "speech") < (b.first.kind == "speech");
  });
  for (auto& [spec, probe] : done) result.probes.push_back(std::move(probe));

  ResolveAssumedRates(result);
  result.best_probe = PickBest(result.probes);
  if (result.best_probe >= 0) {
    const EndpointProbe& best = result.probes[result.best_probe];
    result.best_dialect = best.dialect;
    result.suggested_command =
        absl::StrCat("ttsbench server --url ", ShellWord(result.url), " ", best.server_flags);
    if (url.tls() && !options.ca_file.empty()) {
      absl::StrAppend(&result.suggested_command, " --ca-file ", ShellWord(options.ca_file));
    }
    if (url.tls() && options.insecure) absl::StrAppend(&result.suggested_command, " --insecure");
    if (!options.auth_flags.empty()) {
      absl::StrAppend(&result.suggested_command, " ", options.auth_flags);
    }
  }
  return result;
}

namespace {

std::string Millis(double ms) {
  return ms < 10 ? absl::StrFormat("%.1f ms", ms) : absl::StrFormat("%.0f ms", ms);
}

std::string Cell(const EndpointProbe& p, absl::string_view column) {
  if (column == "dialect") return p.dialect;
  if (column == "endpoint") return absl::StrCat(p.method, " ", p.path);
  if (column == "kind") return p.kind == "speech" ? p.variant : p.kind;
  if (column == "result") return p.working ? "ok" : p.why;
  const bool audio = p.working && p.kind == "speech";
  if (column == "format") return audio ? absl::StrJoin(p.formats, ",") : "";
  if (column == "stream") return audio ? (p.streaming ? "yes" : "no") : "";
  if (column == "rate") {
    if (!audio || p.sample_rate <= 0) return "";
    // "22050*": taken from the WAV answer of the same endpoint; "24000?": assumed.
    return absl::StrCat(p.sample_rate, p.rate_source.empty()                           ? "?"
                                       : absl::StartsWith(p.rate_source, "WAV answer") ? "*"
                                                                                       : "");
  }
  if (column == "first audio") {
    return audio       ? absl::StrFormat("%.0f ms", p.first_audio_ms)
           : p.working ? absl::StrFormat("%.0f ms", p.total_ms)
                       : "";
  }
  if (column == "audio") return audio ? absl::StrFormat("%.2f s", p.audio_s) : "";
  return "";
}

std::string NameList(const std::vector<std::string>& names) {
  constexpr size_t kShown = 20;
  std::vector<std::string> shown(names.begin(),
                                 names.begin() + static_cast<long>(std::min(names.size(), kShown)));
  std::string out = absl::StrJoin(shown, ", ");
  if (names.size() > kShown) absl::StrAppend(&out, ", ... (", names.size(), " in all)");
  return out;
}

}  // namespace

std::string DiscoveryTable(const DiscoveryResult& result) {
  static constexpr absl::string_view kColumns[] = {
      "dialect", "endpoint", "kind", "result", "format", "stream", "rate", "first audio", "audio"};
  std::vector<size_t> width;
  for (absl::string_view c : kColumns) width.push_back(c.size());
  for (const EndpointProbe& p : result.probes) {
    for (size_t i = 0; i < std::size(kColumns); ++i) {
      width[i] = std::max(width[i], Cell(p, kColumns[i]).size());
    }
  }
  auto row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      absl::StrAppend(&line, cells[i], std::string(width[i] - cells[i].size() + 2, ' '));
    }
    return absl::StrCat(absl::StripTrailingAsciiWhitespace(line), "\n");
  };
  std::string out = absl::StrCat("discovery of ", result.url, "\n\n");
  out += row(std::vector<std::string>(std::begin(kColumns), std::end(kColumns)));
  for (const EndpointProbe& p : result.probes) {
    std::vector<std::string> cells;
    for (absl::string_view c : kColumns) cells.push_back(Cell(p, c));
    out += row(cells);
  }
  out += "\n";
  if (!result.voices.empty()) absl::StrAppend(&out, "voices: ", NameList(result.voices), "\n");
  if (!result.models.empty()) absl::StrAppend(&out, "models: ", NameList(result.models), "\n");
  const bool rate_from_wav = std::any_of(
      result.probes.begin(), result.probes.end(),
      [](const EndpointProbe& p) { return absl::StartsWith(p.rate_source, "WAV answer"); });
  if (rate_from_wav) {
    absl::StrAppend(&out,
                    "rate*: raw PCM that named no rate, at the rate of the same endpoint's "
                    "WAV answer\n");
  }
  for (const std::string& note : result.notes) absl::StrAppend(&out, "note: ", note, "\n");
  if (result.best_probe < 0) {
    absl::StrAppend(&out, "no TTS endpoint found at ", result.url, " (", result.probes.size(),
                    " endpoint shapes probed)\n");
    return out;
  }
  const EndpointProbe& best = result.probes[result.best_probe];
  absl::StrAppend(&out, "best match: ", best.dialect, " ", best.method, " ", best.path, " (",
                  best.streaming ? "streamed " : "", absl::StrJoin(best.formats, ","),
                  ", first audio ", Millis(best.first_audio_ms), ")\n  ", result.suggested_command,
                  "\n");
  return out;
}

std::string DiscoveryJson(const DiscoveryResult& result) {
  // Keys in a stable, readable order: a json::object keeps the order of insertion.
  auto strings = [](const std::vector<std::string>& v) {
    json::array out;
    for (const std::string& s : v) out.push_back(JsonText(s));
    return out;
  };
  auto number = [](double v) { return common::JsonNumber(std::round(v * 1e6) / 1e6); };
  json::array probes;
  for (const EndpointProbe& p : result.probes) {
    probes.push_back(json::object{{"dialect", JsonText(p.dialect)},
                                  {"kind", JsonText(p.kind)},
                                  {"variant", JsonText(p.variant)},
                                  {"method", JsonText(p.method)},
                                  {"path", JsonText(p.path)},
                                  {"working", p.working},
                                  {"why", JsonText(p.why)},
                                  {"http_status", p.http_status},
                                  {"content_type", JsonText(p.content_type)},
                                  {"voice", JsonText(p.voice)},
                                  {"formats", strings(p.formats)},
                                  {"streaming", p.streaming},
                                  {"sample_rate", p.sample_rate},
                                  {"rate_source", JsonText(p.rate_source)},
                                  {"first_audio_ms", number(p.first_audio_ms)},
                                  {"total_ms", number(p.total_ms)},
                                  {"audio_s", number(p.audio_s)},
                                  {"server_flags", JsonText(p.server_flags)}});
  }
  return common::PrettyJson(json::object{{"ttsbench_version", JsonText(common::kVersion)},
                                         {"url", JsonText(result.url)},
                                         {"tts_endpoint_found", result.best_probe >= 0},
                                         {"best_dialect", JsonText(result.best_dialect)},
                                         {"best_probe", result.best_probe},
                                         {"suggested_command", JsonText(result.suggested_command)},
                                         {"voices", strings(result.voices)},
                                         {"models", strings(result.models)},
                                         {"notes", strings(result.notes)},
                                         {"probes", std::move(probes)}});
}

absl::Status WriteDiscoveryJson(const std::string& path, const DiscoveryResult& result) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  file << DiscoveryJson(result);
  file.close();
  if (!file) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string ShellQuote(absl::string_view word) { return ShellWord(word); }

}  // namespace ttsbench::coordinator
