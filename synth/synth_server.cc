#include "synth/synth_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/escape.h"
#include "synth/audio_source.h"
#include "synth/paced_messages.h"

namespace ttsbench::synth {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
namespace json = boost::json;

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr std::string_view kServerName = "ttsbench-synth";
constexpr uint64_t kBodyLimit = 1 << 20;
// Long enough for benchmark texts well past OpenAI's 4096, short enough that one request cannot
// ask for gigabytes of audio.
constexpr size_t kMaxCharacters = 100000;
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kReadTimeout = std::chrono::seconds(30);
constexpr auto kWriteTimeout = std::chrono::seconds(60);
constexpr uint64_t kMaxWsMessage = 1 << 20;
constexpr std::string_view kElevenLabsPrefix = "/v1/text-to-speech/";

// ---------------------------------------------------------------------------------------------
// Slots

// A counting semaphore with a FIFO queue of suspended coroutines: the GPU's parallel slots.
// Waiters sleep on a timer that never expires; Release() hands the slot over directly and wakes
// the waiter by cancelling its timer on the waiter's own executor (strand), so no timer is touched
// from a foreign thread and nobody polls.
class SlotPool {
 public:
  explicit SlotPool(int slots) : slots_(slots), free_(slots) {}

  // For /metrics: slots in use, requests queued for one, slot uses finished.
  struct Snapshot {
    int busy = 0;
    size_t queued = 0;
    uint64_t done = 0;
  };
  Snapshot Read() {
    std::lock_guard<std::mutex> lock(mu_);
    return Snapshot{slots_ - free_, waiters_.size(), done_};
  }

  // True once the caller holds a slot; false when the server is shutting down. `*waited` says
  // whether the caller had to queue for it.
  net::awaitable<bool> Acquire(bool* waited = nullptr) {
    const net::any_io_executor ex = co_await net::this_coro::executor;
    std::shared_ptr<Waiter> waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shut_down_) co_return false;
      if (free_ > 0) {
        --free_;
        if (waited != nullptr) *waited = false;
        co_return true;
      }
      if (waited != nullptr) *waited = true;
      waiter = std::make_shared<Waiter>(ex);
      waiters_.push_back(waiter);
    }
    // The releaser's cancel is posted to this coroutine's strand, so it cannot run before this
    // wait is registered.
    co_await waiter->timer.async_wait(kUseTuple);
    std::lock_guard<std::mutex> lock(mu_);
    co_return waiter->granted;
  }

  void Release() {
    std::shared_ptr<Waiter> next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shut_down_) return;
      ++done_;
      if (waiters_.empty()) {
        ++free_;
        return;
      }
      next = std::move(waiters_.front());
      waiters_.pop_front();
      next->granted = true;
    }
    net::post(next->timer.get_executor(), [next] { next->timer.cancel(); });
  }

  // Drops the queue while the io_context still exists (the timers belong to it); releases after
  // this are ignored, so coroutines torn down with the io_context cannot touch the queue.
  void Shutdown() {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    waiters_.clear();
  }

 private:
  struct Waiter {
    explicit Waiter(const net::any_io_executor& ex) : timer(ex, Clock::time_point::max()) {}
    net::steady_timer timer;
    bool granted = false;
  };

  std::mutex mu_;
  const int slots_;
  int free_;
  uint64_t done_ = 0;
  bool shut_down_ = false;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

// Holds a slot until Release() or destruction, so every error path gives it back.
class SlotLease {
 public:
  explicit SlotLease(SlotPool& pool) : pool_(&pool) {}
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  ~SlotLease() { Release(); }
  void Release() {
    if (pool_ != nullptr) std::exchange(pool_, nullptr)->Release();
  }

 private:
  SlotPool* pool_;
};

// Counts an audio request in flight at the server (parsed, not yet answered in full) for its
// lifetime: the load that LatencyModel::degrade reacts to.
class InFlight {
 public:
  InFlight() = default;
  explicit InFlight(std::atomic<int>& counter)
      : counter_(&counter), count_(counter.fetch_add(1, std::memory_order_relaxed) + 1) {}
  InFlight(InFlight&& o) noexcept
      : counter_(std::exchange(o.counter_, nullptr)), count_(o.count_) {}
  InFlight& operator=(InFlight&& o) noexcept {
    std::swap(counter_, o.counter_);  // o releases what this held
    std::swap(count_, o.count_);
    return *this;
  }
  ~InFlight() {
    if (counter_ != nullptr) counter_->fetch_sub(1, std::memory_order_relaxed);
  }
  int count() const { return count_; }  // this request included, when it arrived

 private:
  std::atomic<int>* counter_ = nullptr;
  int count_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Strings

// Abseil here is built with its own string_view, distinct from std::string_view (Beast's).
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// A JSON string from any bytes: JSON text must be UTF-8, and messages quote what clients sent.
json::value JsonText(absl::string_view s) {
  const std::string valid = common::ValidUtf8(s);
  return json::value(json::string_view(valid.data(), valid.size()));
}

std::string ToJson(const json::object& o) { return json::serialize(o); }

// The JSON messages below are built in plain functions, never inside a coroutine: GCC 12 cannot
// keep a braced initializer list in a coroutine frame ("array used as initializer").

// torch-inference's base64 envelope (`torch`) or its older /synthesize answer.
std::string EnvelopeJson(bool torch, absl::string_view wav, int sample_rate, double duration_s) {
  json::object answer{{"success", true},
                      {torch ? "audio_base64" : "audio_data", absl::Base64Escape(wav)},
                      {"sample_rate", sample_rate},
                      {"duration", duration_s}};
  if (torch) answer["format"] = "wav";
  return ToJson(answer);
}

// One OpenAI SSE audio event, "data: " line and blank line included.
std::string SseAudioDelta(absl::string_view audio) {
  return absl::StrCat(
      "data: ", ToJson({{"type", "speech.audio.delta"}, {"audio", absl::Base64Escape(audio)}}),
      "\n\n");
}

// ElevenLabs WebSocket messages: an error, and a piece of audio.
std::string ElevenLabsWsError(absl::string_view message, absl::string_view error, int code) {
  return ToJson({{"message", JsonText(message)}, {"error", JsonText(error)}, {"code", code}});
}

std::string ElevenLabsWsAudio(absl::string_view audio) {
  return ToJson({{"audio", absl::Base64Escape(audio)},
                 {"isFinal", nullptr},
                 {"normalizedAlignment", nullptr}});
}

// torch-inference WebSocket messages.
std::string TorchWsError(absl::string_view message) {
  return ToJson({{"type", "error"}, {"msg", JsonText(message)}});
}

std::string TorchWsMeta(int sample_rate, bool f32) {
  return ToJson({{"type", "tts_meta"},
                 {"sample_rate", sample_rate},
                 {"encoding", f32 ? "pcm_f32le" : "pcm_s16le"}});
}

std::string TorchWsDone(int64_t duration_ms) {
  return ToJson({{"type", "tts_done"}, {"duration_ms", duration_ms}});
}

std::string ErrorJson(absl::string_view message, absl::string_view type) {
  return ToJson({{"error", json::object{{"message", JsonText(message)},
                                        {"type", JsonText(type)},
                                        {"code", nullptr}}}});
}

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) &&
               absl::ascii_isxdigit(s[i + 2])) {
      int v = 0;
      for (int k = 1; k <= 2; ++k) {
        const char c = absl::ascii_tolower(s[i + k]);
        v = v * 16 + (absl::ascii_isdigit(c) ? c - '0' : c - 'a' + 10);
      }
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// name=value&... as a query string or an application/x-www-form-urlencoded body.
std::map<std::string, std::string> ParseForm(std::string_view s) {
  std::map<std::string, std::string> out;
  for (absl::string_view pair : absl::StrSplit(Av(s), '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    const absl::string_view name = pair.substr(0, eq);
    const absl::string_view value = eq == absl::string_view::npos ? "" : pair.substr(eq + 1);
    out[PercentDecode(std::string_view(name.data(), name.size()), true)] =
        PercentDecode(std::string_view(value.data(), value.size()), true);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shared server state

// One request's random draws, taken together under one lock.
struct Draw {
  double jitter_u;
  bool error;
  bool truncate;
};

struct State {
  explicit State(const SynthOptions& opts)
      : options(opts),
        model(options.model),
        pool(opts.model.slots),
        jitter_rng(opts.model.seed),
        // A separate stream, so turning faults on does not change the jitter sequence.
        fault_rng(SeededRng(opts.model.seed ^ 0xD1B54A32D192ED03ULL).NextU64()) {
    json::array voices;
    for (const auto& [name, speed] : model.voice_speed) voices.push_back(JsonText(name));
    voices_json = ToJson({{"voices", std::move(voices)}});
  }

  // GET /stats: the server's own counters.
  std::string StatsJson() const {
    return ToJson({{"connections_accepted", connections_accepted.load()},
                   {"tls_connections", tls_connections.load()},
                   {"requests", requests.load()},
                   {"requests_streamed", requests_streamed.load()},
                   {"errors_injected", errors_injected.load()},
                   {"truncations_injected", truncations_injected.load()},
                   {"degraded_answers", degraded_answers.load()},
                   {"websocket_sessions", websocket_sessions.load()},
                   {"websocket_requests", websocket_requests.load()},
                   {"unauthorized", unauthorized.load()}});
  }

  // GET /metrics: the slot model in Prometheus text format (exposition 0.0.4), under the names
  // of the exporters a real deployment has, so ttsbench's telemetry reads it as it reads them:
  // vLLM's scheduler gauges, the DCGM exporter's GPU power and utilisation (power simulated as
  // idle_watts + watts_per_busy_slot x busy slots), and the synth's own request counter.
  std::string MetricsText() {
    const SlotPool::Snapshot snap = pool.Read();
    const int slots = options.model.slots;
    const double watts = options.idle_watts + options.watts_per_busy_slot * snap.busy;
    return absl::StrCat(
        "# HELP vllm:num_requests_running Requests holding a synthesis slot.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        "vllm:num_requests_running{model_name=\"synth-tts-1\"} ",
        snap.busy, "\n",
        "# HELP vllm:num_requests_waiting Requests queued for a slot.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        "vllm:num_requests_waiting{model_name=\"synth-tts-1\"} ",
        snap.queued, "\n",
        "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W), simulated.\n"
        "# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n"
        "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",modelName=\"ttsbench-synth\"} ",
        watts, "\n",
        "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %): busy slots / slots.\n"
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
        "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",modelName=\"ttsbench-synth\"} ",
        slots > 0 ? 100.0 * snap.busy / slots : 0.0, "\n",
        "# HELP ttsbench_synth_slots Parallel synthesis slots.\n"
        "# TYPE ttsbench_synth_slots gauge\n"
        "ttsbench_synth_slots ",
        slots, "\n",
        "# HELP ttsbench_synth_requests_total Syntheses finished (slot uses).\n"
        "# TYPE ttsbench_synth_requests_total counter\n"
        "ttsbench_synth_requests_total ",
        snap.done, "\n");
  }

  Draw NextDraw() {
    std::lock_guard<std::mutex> lock(rng_mu);
    Draw d;
    d.jitter_u = jitter_rng.NextSigned();
    d.error = fault_rng.NextUnit() < options.error_rate;
    d.truncate = fault_rng.NextUnit() < options.truncate_rate;
    return d;
  }

  // SynthOptions::log_first_event: one line per streamed answer, written as its first audio
  // leaves (a few thousand lines a second at most, so a locked unbuffered write is cheap).
  void LogFirstAudio(Clock::time_point received, Clock::time_point sent, absl::string_view text) {
    if (first_event_log == nullptr) return;
    std::string line = absl::StrCat(Ns(received), "\t", Ns(sent), "\t");
    for (const char c : text) line += (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
    line += '\n';
    std::lock_guard<std::mutex> lock(log_mu);
    std::fwrite(line.data(), 1, line.size(), first_event_log);
    std::fflush(first_event_log);
  }

  static int64_t Ns(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

  const SynthOptions options;
  const LatencyModel& model;
  AudioLibrary audio;
  SlotPool pool;
  std::mutex rng_mu;
  SeededRng jitter_rng;
  SeededRng fault_rng;
  std::string voices_json;
  std::optional<net::ssl::context> tls;
  std::mutex log_mu;
  std::FILE* first_event_log = nullptr;  // owned by SynthServer::Impl

  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> tls_connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> requests_streamed{0};
  std::atomic<uint64_t> errors_injected{0};
  std::atomic<uint64_t> truncations_injected{0};
  std::atomic<uint64_t> degraded_answers{0};  // shortened by model.degrade
  std::atomic<int> audio_in_flight{0};
  std::atomic<uint64_t> websocket_sessions{0};
  std::atomic<uint64_t> websocket_requests{0};
  std::atomic<uint64_t> unauthorized{0};
};

// ---------------------------------------------------------------------------------------------
// Request parsing

// How the audio goes back.
enum class Reply {
  kRaw,         // the body is the audio (streamed: chunked)
  kTorchJson,   // {"success":true,"audio_base64":<WAV>,...}
  kLegacyJson,  // torch-inference /synthesize: {"success":true,"audio_data":...,...}
  kSse,         // OpenAI stream_format "sse"
};

struct AudioRequest {
  std::string text;
  std::string voice = "default";
  double speed = 1.0;
  AudioFormat format = AudioFormat::kWav;
  int sample_rate = 0;  // 0: the model's
  Reply reply = Reply::kRaw;
  bool stream = false;
};

using Struct = json::object;
using Value = json::value;

absl::StatusOr<Struct> ParseJsonObject(std::string_view body) {
  boost::system::error_code ec;
  Value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("body is not a JSON object: ", ec.message()));
  if (!v.is_object()) return absl::InvalidArgumentError("body is not a JSON object");
  return std::move(v.get_object());
}

enum class Kind { kString, kNumber, kBool, kObject };

bool IsKind(const Value& v, Kind kind) {
  switch (kind) {
    case Kind::kString:
      return v.is_string();
    case Kind::kNumber:
      return v.is_number();
    case Kind::kBool:
      return v.is_bool();
    case Kind::kObject:
      return v.is_object();
  }
  return false;
}

// The value of `key` if present and not null; an error if present with another kind.
absl::StatusOr<const Value*> Field(const Struct& s, const char* key, Kind kind,
                                   const char* kind_name) {
  const Value* v = s.if_contains(key);
  if (v == nullptr || v->is_null()) return static_cast<const Value*>(nullptr);
  if (!IsKind(*v, kind)) {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' must be a ", kind_name));
  }
  return v;
}

std::string StringOf(const Value& v) { return std::string(v.get_string()); }

#define SYNTH_ASSIGN_FIELD(var, expr)           \
  auto var##_or = (expr);                       \
  if (!var##_or.ok()) return var##_or.status(); \
  const Value* var = *var##_or

absl::Status CheckText(const std::string& text, const char* key) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' is required"));
  }
  if (CountCharacters(text) > kMaxCharacters) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", key, "' is longer than ", kMaxCharacters, " characters"));
  }
  return absl::OkStatus();
}

absl::Status TakeText(const Struct& json, const char* key, AudioRequest& req) {
  SYNTH_ASSIGN_FIELD(text, Field(json, key, Kind::kString, "string"));
  req.text = text == nullptr ? "" : StringOf(*text);
  return CheckText(req.text, key);
}

absl::Status TakeVoice(const Struct& json, const char* key, AudioRequest& req) {
  SYNTH_ASSIGN_FIELD(voice, Field(json, key, Kind::kString, "string"));
  if (voice != nullptr && !voice->get_string().empty()) req.voice = StringOf(*voice);
  return absl::OkStatus();
}

absl::Status SetSpeed(double speed, AudioRequest& req) {
  // OpenAI's documented range; also keeps the audio length finite.
  if (!(speed >= 0.25 && speed <= 4.0)) {
    return absl::InvalidArgumentError("'speed' must be between 0.25 and 4.0");
  }
  req.speed = speed;
  return absl::OkStatus();
}

absl::Status TakeSpeed(const Struct& json, const char* key, AudioRequest& req) {
  SYNTH_ASSIGN_FIELD(speed, Field(json, key, Kind::kNumber, "number"));
  return speed == nullptr ? absl::OkStatus() : SetSpeed(speed->to_number<double>(), req);
}

absl::Status TakeFormat(const Struct& json, const char* key, AudioRequest& req) {
  SYNTH_ASSIGN_FIELD(format, Field(json, key, Kind::kString, "string"));
  if (format == nullptr) return absl::OkStatus();
  const std::optional<AudioFormat> f = ParseAudioFormat(StringOf(*format));
  if (!f) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported ", key, " '", StringOf(*format),
                     "': this server produces wav, pcm, mp3, flac, opus, aac, ulaw or vorbis"));
  }
  req.format = *f;
  return absl::OkStatus();
}

// POST /v1/audio/speech
absl::StatusOr<AudioRequest> ParseOpenAi(std::string_view body) {
  auto json = ParseJsonObject(body);
  if (!json.ok()) return json.status();
  AudioRequest req;
  if (auto st = TakeText(*json, "input", req); !st.ok()) return st;
  if (auto st = TakeVoice(*json, "voice", req); !st.ok()) return st;
  if (auto st = TakeSpeed(*json, "speed", req); !st.ok()) return st;
  // OpenAI defaults to mp3; wav keeps this server's answers readable by anything.
  if (auto st = TakeFormat(*json, "response_format", req); !st.ok()) return st;
  SYNTH_ASSIGN_FIELD(instructions, Field(*json, "instructions", Kind::kString, "string"));
  (void)instructions;  // accepted (gpt-4o-mini-tts); it does not change the tone
  SYNTH_ASSIGN_FIELD(stream, Field(*json, "stream", Kind::kBool, "boolean"));
  req.stream = stream != nullptr && stream->get_bool();
  SYNTH_ASSIGN_FIELD(stream_format, Field(*json, "stream_format", Kind::kString, "string"));
  if (stream_format != nullptr) {
    if (stream_format->get_string() == "sse") {
      req.reply = Reply::kSse;
      req.stream = true;
    } else if (stream_format->get_string() != "audio") {
      return absl::InvalidArgumentError("stream_format must be 'audio' or 'sse'");
    }
  }
  return req;
}

// POST /tts/synthesize (JSON with base64 WAV) and /tts/stream (chunked raw PCM).
absl::StatusOr<AudioRequest> ParseTorch(std::string_view body, bool stream) {
  auto json = ParseJsonObject(body);
  if (!json.ok()) return json.status();
  AudioRequest req;
  if (auto st = TakeText(*json, "text", req); !st.ok()) return st;
  if (auto st = TakeVoice(*json, "voice", req); !st.ok()) return st;
  if (auto st = TakeSpeed(*json, "speed", req); !st.ok()) return st;
  if (stream) {
    req.format = AudioFormat::kPcmS16;
    req.stream = true;
  } else {
    req.reply = Reply::kTorchJson;
  }
  return req;
}

// POST /synthesize: torch-inference's older API when the body has "inputs", Piper's otherwise.
absl::StatusOr<AudioRequest> ParseSynthesize(std::string_view body) {
  auto json = ParseJsonObject(body);
  if (!json.ok()) return json.status();
  AudioRequest req;
  if (json->contains("inputs")) {
    req.reply = Reply::kLegacyJson;
    SYNTH_ASSIGN_FIELD(model, Field(*json, "model_name", Kind::kString, "string"));
    if (model == nullptr || model->get_string().empty()) {
      return absl::InvalidArgumentError("'model_name' is required");
    }
    if (auto st = TakeText(*json, "inputs", req); !st.ok()) return st;
    if (auto st = TakeFormat(*json, "output_format", req); !st.ok()) return st;
  } else {
    if (auto st = TakeText(*json, "text", req); !st.ok()) return st;
    SYNTH_ASSIGN_FIELD(scale, Field(*json, "length_scale", Kind::kNumber, "number"));
    if (scale != nullptr && scale->to_number<double>() > 0) {
      if (auto st = SetSpeed(1 / scale->to_number<double>(), req); !st.ok()) return st;
    }
  }
  if (auto st = TakeVoice(*json, "voice", req); !st.ok()) return st;
  if (auto st = TakeSpeed(*json, "speed", req); !st.ok()) return st;
  return req;
}

// ElevenLabs output_format: mp3_<rate>_<kbps>, pcm_<rate>, ulaw_8000, opus_48000_<kbps>.
absl::Status TakeElevenLabsFormat(std::string_view output_format, AudioRequest& req) {
  std::vector<absl::string_view> parts = absl::StrSplit(Av(output_format), '_');
  int rate = 0;
  if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &rate) && rate >= 8000 && rate <= 48000) {
    const absl::string_view codec = parts[0];
    std::optional<AudioFormat> f;
    if (codec == "mp3" && parts.size() == 3) f = AudioFormat::kMp3;
    if (codec == "pcm" && parts.size() == 2) f = AudioFormat::kPcmS16;
    if (codec == "ulaw" && parts.size() == 2 && rate == 8000) f = AudioFormat::kUlaw;
    if (codec == "opus" && parts.size() == 3 && rate == 48000) f = AudioFormat::kOpus;
    if (f) {
      req.format = *f;
      req.sample_rate = rate;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid output_format '", Av(output_format), "'"));
}

// POST /v1/text-to-speech/{voice}[/stream]?output_format=...
absl::StatusOr<AudioRequest> ParseElevenLabs(std::string_view body, const std::string& voice,
                                             const std::map<std::string, std::string>& query,
                                             bool stream) {
  auto json = ParseJsonObject(body);
  if (!json.ok()) return json.status();
  AudioRequest req;
  req.voice = voice;
  req.stream = stream;
  if (auto st = TakeText(*json, "text", req); !st.ok()) return st;
  SYNTH_ASSIGN_FIELD(settings, Field(*json, "voice_settings", Kind::kObject, "object"));
  if (settings != nullptr) {
    if (auto st = TakeSpeed(settings->get_object(), "speed", req); !st.ok()) return st;
  }
  auto of = query.find("output_format");
  if (auto st = TakeElevenLabsFormat(of == query.end() ? "mp3_44100_128" : of->second, req);
      !st.ok()) {
    return st;
  }
  return req;
}

// GET|POST /api/tts: Coqui (text, speaker_id, language_id) and OpenTTS (voice, text).
absl::StatusOr<AudioRequest> ParseApiTts(const std::map<std::string, std::string>& params) {
  AudioRequest req;
  auto get = [&](const char* k) {
    auto it = params.find(k);
    return it == params.end() ? std::string() : it->second;
  };
  req.text = get("text");
  if (auto st = CheckText(req.text, "text"); !st.ok()) return st;
  std::string voice = get("speaker_id");
  if (voice.empty()) voice = get("voice");
  if (!voice.empty()) req.voice = voice;
  return req;
}

#undef SYNTH_ASSIGN_FIELD

// "/v1/text-to-speech/{voice}{suffix}": the decoded voice, or nullopt.
std::optional<std::string> ElevenLabsVoice(std::string_view path, std::string_view suffix) {
  if (path.substr(0, kElevenLabsPrefix.size()) != kElevenLabsPrefix) return std::nullopt;
  path.remove_prefix(kElevenLabsPrefix.size());
  if (path.size() <= suffix.size() || path.substr(path.size() - suffix.size()) != suffix) {
    return std::nullopt;
  }
  path.remove_suffix(suffix.size());
  if (path.empty() || path.find('/') != std::string_view::npos) return std::nullopt;
  return PercentDecode(path, false);
}

std::vector<net::const_buffer> Buffers(const std::vector<std::string_view>& parts) {
  std::vector<net::const_buffer> out;
  out.reserve(parts.size());
  for (std::string_view p : parts) out.emplace_back(p.data(), p.size());
  return out;
}

Clock::duration Ms(double ms) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

// ---------------------------------------------------------------------------------------------
// Connections

// One HTTP/1.1 connection over TCP or TLS: reads requests one after another (keep-alive) and
// answers each; an upgrade turns it into a WebSocket session. Lives in the frame of its
// coroutine, on its own strand.
template <class Stream>
class Connection {
 public:
  Connection(State& state, Stream stream, beast::flat_buffer buffer)
      : state_(state),
        stream_(std::move(stream)),
        buffer_(std::move(buffer)),
        timer_(stream_.get_executor()) {}

  net::awaitable<void> Run() {
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kBodyLimit);
      Lowest().expires_after(kIdleTimeout);
      auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, kUseTuple);
      if (ec) {
        co_await RejectUnreadable(ec);
        break;
      }
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        // curl waits a second for this before sending a body over 1 KiB.
        http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
        Lowest().expires_after(kWriteTimeout);
        std::tie(ec, n) = co_await http::async_write(stream_, cont, kUseTuple);
        if (ec) break;
      }
      Lowest().expires_after(kReadTimeout);
      std::tie(ec, n) = co_await http::async_read(stream_, buffer_, parser, kUseTuple);
      if (ec) {
        co_await RejectUnreadable(ec);
        break;
      }
      received_ = Clock::now();
      state_.requests.fetch_add(1, std::memory_order_relaxed);
      http::request<http::string_body> req = parser.release();
      if (!co_await Serve(req)) break;
    }
    if (upgraded_) co_return;  // the WebSocket owned (and closed) the stream
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

 private:
  using Request = http::request<http::string_body>;

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // Answers a request that could not be read when the peer is still there to hear it: 413 for
  // an oversized body (seen from Content-Length, before the body is read), 400 for bad syntax.
  // EOF, timeouts and resets end the connection silently.
  net::awaitable<void> RejectUnreadable(const beast::error_code& ec) {
    if (ec == http::error::body_limit) {
      co_await WriteError(http::status::payload_too_large, "request body over 1 MiB");
    } else if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      co_await WriteError(http::status::bad_request, ec.message());
    }
  }

  bool Authorized(const Request& req) const {
    const std::string& key = state_.options.api_key;
    if (key.empty()) return true;
    const std::string_view auth = req[http::field::authorization];
    if (auth == "Bearer " + key || auth == "Token " + key) return true;
    return req["X-API-Key"] == key || req["xi-api-key"] == key;
  }

  // Each returns whether the connection may serve another request.
  net::awaitable<bool> Serve(const Request& req) {
    const std::string_view full = req.target();
    const size_t q = full.find('?');
    const std::string_view target = full.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? "" : full.substr(q + 1);
    if (req.method() == http::verb::get) {
      if (target == "/health") {
        co_return co_await WriteJson(req, http::status::ok, R"({"status":"ok"})");
      }
      if (target == "/v1/models") {
        co_return co_await WriteJson(req, http::status::ok,
                                     R"({"object":"list","data":[{"id":"synth-tts-1",)"
                                     R"("object":"model","owned_by":"ttsbench"}]})");
      }
      if (target == "/v1/audio/voices") {
        co_return co_await WriteJson(req, http::status::ok, state_.voices_json);
      }
      if (target == "/metrics") {
        co_return co_await WriteJson(req, http::status::ok, state_.MetricsText(),
                                     "text/plain; version=0.0.4; charset=utf-8");
      }
      if (target == "/stats") {
        // The server's own counters, so tests can see load arrive and stop from the outside.
        co_return co_await WriteJson(req, http::status::ok, state_.StatsJson());
      }
    }
    const bool is_ws_route =
        target == "/audio/ws" || ElevenLabsVoice(target, "/stream-input").has_value() ||
        ElevenLabsVoice(target, "/multi-stream-input").has_value() || target == "/tts/websocket" ||
        target == "/v1/speak" || target == "/v1/audio/speech/stream";
    const bool is_audio_route =
        is_ws_route || target == "/v1/audio/speech" || target == "/tts/synthesize" ||
        target == "/tts/stream" || target == "/synthesize" || target == "/api/tts" ||
        ElevenLabsVoice(target, "").has_value() || ElevenLabsVoice(target, "/stream").has_value();
    if (is_audio_route && !Authorized(req)) {
      state_.unauthorized.fetch_add(1, std::memory_order_relaxed);
      co_return co_await WriteJson(req, http::status::unauthorized,
                                   ErrorJson("missing or invalid API key", "authentication_error"));
    }
    if (req.method() == http::verb::get && is_ws_route && websocket::is_upgrade(req)) {
      co_await ServeWebSocket(req, std::string(target), std::string(query));
      co_return false;
    }
    if (req.method() == http::verb::post) {
      if (target == "/v1/audio/speech") co_return co_await ServeAudio(req, ParseOpenAi(req.body()));
      if (target == "/tts/synthesize") {
        co_return co_await ServeAudio(req, ParseTorch(req.body(), false));
      }
      if (target == "/tts/stream") co_return co_await ServeAudio(req, ParseTorch(req.body(), true));
      if (target == "/synthesize") co_return co_await ServeAudio(req, ParseSynthesize(req.body()));
      for (const bool stream : {false, true}) {
        if (auto voice = ElevenLabsVoice(target, stream ? "/stream" : ""); voice) {
          co_return co_await ServeAudio(
              req, ParseElevenLabs(req.body(), *voice, ParseForm(query), stream));
        }
      }
    }
    if (target == "/api/tts" &&
        (req.method() == http::verb::get || req.method() == http::verb::post)) {
      // Query parameters, or for POST a form body (Coqui reads either).
      auto params = ParseForm(query);
      if (req.method() == http::verb::post) {
        for (auto& [k, v] : ParseForm(req.body())) params[k] = v;
      }
      co_return co_await ServeAudio(req, ParseApiTts(params));
    }
    co_return co_await WriteJson(
        req, http::status::not_found,
        ErrorJson(absl::StrCat("no route for ", Av(req.method_string()), " ", Av(target)),
                  "not_found_error"));
  }

  // The request's timing: its draw, sample count and synthesis time; it counts the request in
  // flight while it lives.
  struct Plan {
    Draw draw;
    int sample_rate;
    int64_t samples;
    int64_t silence;  // leading silent samples, before `samples` of tone
    double synthesis_ms;
    InFlight in_flight;
  };

  Plan MakePlan(const AudioRequest& audio) {
    const LatencyModel& m = state_.model;
    Plan p;
    p.draw = state_.NextDraw();
    const size_t chars = CountCharacters(audio.text);
    p.sample_rate = audio.sample_rate > 0 ? audio.sample_rate : m.sample_rate;
    p.samples = p.sample_rate == m.sample_rate
                    ? AudioSamples(m, chars, audio.speed)
                    : std::llround(AudioSeconds(m, chars, audio.speed) * p.sample_rate);
    p.synthesis_ms = SynthesisMs(m, chars, VoiceSpeed(m, audio.voice), p.draw.jitter_u);
    p.in_flight = InFlight(state_.audio_in_flight);
    if (const int64_t n = DegradedSamples(m.degrade, p.samples, p.in_flight.count());
        n != p.samples) {
      state_.degraded_answers.fetch_add(1, std::memory_order_relaxed);
      p.samples = n;
    }
    p.silence = std::llround(state_.options.leading_silence_ms * p.sample_rate / 1000.0);
    return p;
  }

  net::awaitable<bool> ServeAudio(const Request& req, absl::StatusOr<AudioRequest> parsed) {
    if (!parsed.ok()) {
      co_return co_await WriteJson(req, http::status::bad_request,
                                   ErrorJson(parsed.status().message(), "invalid_request_error"));
    }
    const std::string& misbehave = state_.options.misbehave;
    if (misbehave == "endless-sse-line" && parsed->reply == Reply::kSse) {
      co_return co_await SendEndless(req, "text/event-stream",
                                     R"(data: {"type":"speech.audio.delta","audio":")");
    }
    if (misbehave == "endless-json" &&
        (parsed->reply == Reply::kTorchJson || parsed->reply == Reply::kLegacyJson)) {
      co_return co_await SendEndless(req, "application/json",
                                     R"({"success":true,"audio_base64":")");
    }
    const Plan plan = MakePlan(*parsed);
    if (plan.draw.error) {
      state_.errors_injected.fetch_add(1, std::memory_order_relaxed);
      co_return co_await WriteJson(req, http::status::internal_server_error,
                                   ErrorJson("injected failure", "server_error"));
    }
    // JSON envelopes carry a whole WAV (torch-inference) unless the request named a format.
    const bool streamed_body = parsed->stream && parsed->reply != Reply::kSse;
    auto body = AudioBody::Make(state_.audio, parsed->format, plan.sample_rate, plan.samples,
                                streamed_body || parsed->reply == Reply::kSse, plan.silence);
    if (!body.ok()) {
      co_return co_await WriteJson(req, http::status::bad_request,
                                   ErrorJson(body.status().message(), "invalid_request_error"));
    }
    if (plan.draw.truncate) state_.truncations_injected.fetch_add(1, std::memory_order_relaxed);
    if (parsed->stream) {
      co_return co_await SendStream(req, *body, parsed->reply == Reply::kSse, plan, parsed->text);
    }
    co_return co_await SendWhole(req, *parsed, *body, plan);
  }

  // Non-streamed: the slot is held for the synthesis, then the whole body goes out.
  net::awaitable<bool> SendWhole(const Request& req, const AudioRequest& audio,
                                 const AudioBody& body, const Plan& plan) {
    bool waited = false;
    if (!co_await state_.pool.Acquire(&waited)) co_return false;
    {
      SlotLease lease(state_.pool);
      if (!co_await SleepUntil(SynthesisStart(waited) + Ms(plan.synthesis_ms))) co_return false;
    }
    std::vector<std::string_view> parts;
    std::string envelope_json;
    std::string content_type;
    const bool envelope = audio.reply == Reply::kTorchJson || audio.reply == Reply::kLegacyJson;
    if (envelope) {
      const double duration = static_cast<double>(body.samples()) / body.sample_rate();
      envelope_json = EnvelopeJson(audio.reply == Reply::kTorchJson, body.Copy(0, body.samples()),
                                   body.sample_rate(), duration);
      parts.emplace_back(envelope_json);
      content_type = "application/json";
    } else {
      body.Append(0, body.samples(), parts);
      content_type = ContentType(body.format(), body.sample_rate());
    }
    const std::vector<net::const_buffer> buffers = Buffers(parts);
    const size_t body_bytes = net::buffer_size(buffers);

    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, content_type);
    res.content_length(body_bytes);
    // Truncation mimics a crash: nothing in the headers announces it.
    res.keep_alive(req.keep_alive());
    http::response_serializer<http::empty_body> sr{res};
    Lowest().expires_after(kWriteTimeout);
    if (auto [ec, n] = co_await http::async_write_header(stream_, sr, kUseTuple); ec) {
      co_return false;
    }
    // Truncation cuts after the container header and about half of the audio (half of the JSON
    // envelope), so the client sees a Content-Length it never receives.
    const size_t send_bytes = !plan.draw.truncate ? body_bytes
                              : envelope
                                  ? body_bytes / 2
                                  : body.HeaderBytes() + (body_bytes - body.HeaderBytes()) / 2;
    Lowest().expires_after(kWriteTimeout);
    auto [ec, n] =
        co_await net::async_write(stream_, beast::buffers_prefix(send_bytes, buffers), kUseTuple);
    if (ec || plan.draw.truncate) {
      Abort();
      co_return false;
    }
    co_return res.keep_alive();
  }

  // Streamed: headers at once (as FastAPI/Starlette servers send them), then chunks on the
  // StreamPlan schedule counted from slot acquisition; the slot is released when synthesis ends.
  // SSE wraps each chunk in a speech.audio.delta event (base64) and ends with speech.audio.done;
  // it opens with a comment line, as servers do to get proxies to pass the stream at once.
  net::awaitable<bool> SendStream(const Request& req, const AudioBody& body, bool sse,
                                  const Plan& plan, const std::string& text) {
    state_.requests_streamed.fetch_add(1, std::memory_order_relaxed);
    // HTTP/1.0 has no chunked encoding: the body is delimited by closing the connection.
    const bool chunked = req.version() >= 11;
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, sse ? std::string("text/event-stream")
                                           : ContentType(body.format(), body.sample_rate()));
    if (sse) res.set(http::field::cache_control, "no-cache");
    res.keep_alive(chunked && req.keep_alive());
    res.chunked(chunked);
    http::response_serializer<http::empty_body> sr{res};
    Lowest().expires_after(kWriteTimeout);
    if (auto [ec, n] = co_await http::async_write_header(stream_, sr, kUseTuple); ec) {
      co_return false;
    }
    // (Buffer lists are built before co_await: GCC 12 miscompiles braced temporaries there.)
    std::vector<net::const_buffer> opening;
    static constexpr std::string_view kOpening = ": ttsbench-synth\n\n";
    opening.emplace_back(kOpening.data(), kOpening.size());
    if (sse && !co_await WriteChunk(chunked, std::move(opening))) {
      co_return false;
    }

    bool waited = false;
    if (!co_await state_.pool.Acquire(&waited)) co_return false;
    SlotLease lease(state_.pool);
    const Clock::time_point start = SynthesisStart(waited);
    const StreamPlan schedule = Schedule(body, plan.synthesis_ms);
    const int64_t cut = plan.draw.truncate ? body.samples() / 2 : body.samples();
    std::vector<std::string_view> parts;
    std::string event;
    bool logged = false;
    for (int k = 0; k < schedule.chunks(); ++k) {
      if (!co_await SleepUntil(start + Ms(schedule.DueMs(k)))) co_return false;
      if (k == schedule.chunks() - 1) lease.Release();
      const int64_t end = std::min(schedule.EndSample(k), cut);
      const int64_t begin = std::min(schedule.BeginSample(k), end);
      parts.clear();
      if (sse) {
        const std::string audio = body.Copy(begin, end);
        if (!audio.empty() || k == 0) {
          event = SseAudioDelta(audio);
          parts.emplace_back(event);
        }
      } else {
        body.Append(begin, end, parts);
      }
      if (!logged && !parts.empty()) {
        logged = true;
        state_.LogFirstAudio(received_, Clock::now(), text);
      }
      if (!co_await WriteChunk(chunked, Buffers(parts))) co_return false;
      if (plan.draw.truncate && end >= cut) {
        Abort();
        co_return false;
      }
    }
    if (sse) {
      event = R"(data: {"type":"speech.audio.done","usage":{"total_tokens":0}})"
              "\n\n";
      std::vector<net::const_buffer> done;
      done.emplace_back(event.data(), event.size());
      if (!co_await WriteChunk(chunked, std::move(done))) co_return false;
    }
    if (!chunked) co_return false;
    Lowest().expires_after(kWriteTimeout);
    auto [ec, n] = co_await net::async_write(stream_, http::make_chunk_last(), kUseTuple);
    co_return !ec && res.keep_alive();
  }

  // One piece of a streamed body: a chunk, or raw bytes under HTTP/1.0.
  net::awaitable<bool> WriteChunk(bool chunked, std::vector<net::const_buffer> buffers) {
    if (net::buffer_size(buffers) == 0) co_return true;  // an empty chunk would end the body
    Lowest().expires_after(kWriteTimeout);
    auto [ec, n] = chunked
                       ? co_await net::async_write(stream_, http::make_chunk(buffers), kUseTuple)
                       : co_await net::async_write(stream_, buffers, kUseTuple);
    co_return !ec;
  }

  // SynthOptions::misbehave: a 200 whose body starts with `opening` and then never ends (one
  // base64-looking run, so no line, event or JSON value is ever complete), sent as fast as the
  // client reads, until it closes the connection.
  net::awaitable<bool> SendEndless(const Request& req, std::string content_type,
                                   std::string opening) {
    state_.requests_streamed.fetch_add(1, std::memory_order_relaxed);
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, content_type);
    res.chunked(true);
    http::response_serializer<http::empty_body> sr{res};
    Lowest().expires_after(kWriteTimeout);
    if (auto [ec, n] = co_await http::async_write_header(stream_, sr, kUseTuple); ec) {
      co_return false;
    }
    std::vector<net::const_buffer> first;
    first.emplace_back(opening.data(), opening.size());
    if (!co_await WriteChunk(true, std::move(first))) co_return false;
    const std::string& filler = EndlessFiller();
    for (;;) {
      std::vector<net::const_buffer> more;
      more.emplace_back(filler.data(), filler.size());
      if (!co_await WriteChunk(true, std::move(more))) co_return false;
    }
  }

  static const std::string& EndlessFiller() {
    static const std::string* filler = new std::string(64 * 1024, 'A');
    return *filler;
  }

  // The chunk schedule of a body: the model's, at the body's sample rate.
  StreamPlan Schedule(const AudioBody& body, double synthesis_ms) const {
    LatencyModel m = state_.model;
    m.sample_rate = body.sample_rate();
    return StreamPlan(m, body.samples(), synthesis_ms);
  }

  // ------------------------------------------------------------------------------ WebSocket

  using Ws = websocket::stream<Stream>;

  net::awaitable<void> ServeWebSocket(const Request& req, std::string target, std::string query) {
    upgraded_ = true;
    Ws ws(std::move(stream_));
    beast::get_lowest_layer(ws).expires_never();
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, kServerName); }));
    ws.read_message_max(kMaxWsMessage);
    auto [ec] = co_await ws.async_accept(req, kUseTuple);
    if (ec) co_return;
    state_.websocket_sessions.fetch_add(1, std::memory_order_relaxed);
    net::steady_timer timer(ws.get_executor());
    if (target == "/audio/ws") {
      co_await TorchSession(ws, timer);
      co_return;
    }
    // Text over time (issue 13): ElevenLabs, Cartesia, Deepgram.
    const auto params = ParseForm(query);
    auto param = [&](const char* k, const char* fallback) {
      auto it = params.find(k);
      return it == params.end() ? std::string(fallback) : it->second;
    };
    AudioRequest base;
    PacedProtocol protocol = PacedProtocol::kElevenLabs;
    if (auto voice = ElevenLabsVoice(target, "/multi-stream-input"); voice) {
      protocol = PacedProtocol::kElevenLabsMulti;
      base.voice = *voice;
    } else if (auto v = ElevenLabsVoice(target, "/stream-input"); v) {
      base.voice = *v;
    } else if (target == "/tts/websocket") {
      protocol = PacedProtocol::kCartesia;
      base.format = AudioFormat::kPcmS16;
    } else if (target == "/v1/audio/speech/stream") {
      protocol = PacedProtocol::kVllmOmni;  // streamed pcm: s16le at the model's 24 kHz
      base.format = AudioFormat::kPcmS16;
      base.sample_rate = 24000;
    } else {
      protocol = PacedProtocol::kDeepgram;
      base.voice = param("model", "default");
      const std::string enc = param("encoding", "linear16");
      base.format = enc == "mulaw" ? AudioFormat::kUlaw : AudioFormat::kPcmS16;
      (void)absl::SimpleAtoi(param("sample_rate", "24000"), &base.sample_rate);
      if (enc != "linear16" && enc != "mulaw") {
        const std::string error = PacedError(protocol, "", "encoding must be linear16 or mulaw");
        co_await WsText(ws, error);
        co_await ws.async_close(websocket::close_code::policy_error, kUseTuple);
        co_return;
      }
    }
    if (protocol == PacedProtocol::kElevenLabs || protocol == PacedProtocol::kElevenLabsMulti) {
      if (auto st = TakeElevenLabsFormat(param("output_format", "mp3_44100_128"), base); !st.ok()) {
        co_await WsText(ws, ElevenLabsWsError(st.message(), "invalid_output_format", 1008));
        co_await ws.async_close(websocket::close_code::policy_error, kUseTuple);
        co_return;
      }
    }
    co_await PacedSession(ws, protocol, std::move(base));
  }

  static net::awaitable<bool> WsText(Ws& ws, const std::string& text) {
    ws.text(true);
    auto [ec, n] = co_await ws.async_write(net::buffer(text), kUseTuple);
    co_return !ec;
  }

  static net::awaitable<bool> Sleep(net::steady_timer& timer, Clock::time_point when) {
    timer.expires_at(when);
    auto [ec] = co_await timer.async_wait(kUseTuple);
    co_return !ec;
  }

  static void AbortWs(Ws& ws) {
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws).socket().close(ignored);
  }

  // torch-inference GET /audio/ws: {"type":"ready"}, then per {"type":"tts",...}: a tts_meta
  // message when a slot is taken, binary PCM frames on the chunk schedule, tts_done.
  net::awaitable<void> TorchSession(Ws& ws, net::steady_timer& timer) {
    const bool f32 = state_.options.ws_encoding != "pcm_s16le";
    if (!co_await WsText(ws, R"({"type":"ready"})")) co_return;
    beast::flat_buffer buf;
    for (;;) {
      buf.clear();
      auto [ec, n] = co_await ws.async_read(buf, kUseTuple);
      if (ec) co_return;
      const Clock::time_point received = Clock::now();
      if (!ws.got_text()) continue;  // binary frames are speech-to-text input on the real server
      auto request = ParseTorchWs(beast::buffers_to_string(buf.data()));
      if (!request.ok()) {
        if (!co_await WsText(ws, TorchWsError(request.status().message()))) {
          co_return;
        }
        continue;
      }
      state_.websocket_requests.fetch_add(1, std::memory_order_relaxed);
      request->format = f32 ? AudioFormat::kPcmF32 : AudioFormat::kPcmS16;
      const Plan plan = MakePlan(*request);
      if (plan.draw.error) {
        state_.errors_injected.fetch_add(1, std::memory_order_relaxed);
        if (!co_await WsText(ws, R"({"type":"error","msg":"injected failure"})")) co_return;
        continue;
      }
      auto body = AudioBody::Make(state_.audio, request->format, plan.sample_rate, plan.samples,
                                  true, plan.silence);
      if (!body.ok()) co_return;
      state_.requests_streamed.fetch_add(1, std::memory_order_relaxed);
      if (plan.draw.truncate) state_.truncations_injected.fetch_add(1, std::memory_order_relaxed);
      if (state_.options.misbehave == "endless-ws-text") {
        co_await EndlessWsText(ws);
        co_return;
      }
      if (!co_await state_.pool.Acquire()) co_return;
      SlotLease lease(state_.pool);
      const Clock::time_point start = Clock::now();
      if (!co_await WsText(ws, TorchWsMeta(body->sample_rate(), f32))) {
        co_return;
      }
      const StreamPlan schedule = Schedule(*body, plan.synthesis_ms);
      const int64_t cut = plan.draw.truncate ? body->samples() / 2 : body->samples();
      std::vector<std::string_view> parts;
      int first_audio = 0;  // the first chunk with samples (a later one if chunk 0 is empty)
      while (first_audio + 1 < schedule.chunks() &&
             schedule.EndSample(first_audio) <= schedule.BeginSample(first_audio)) {
        ++first_audio;
      }
      for (int k = 0; k < schedule.chunks(); ++k) {
        if (!co_await Sleep(timer, start + Ms(schedule.DueMs(k)))) co_return;
        if (k == schedule.chunks() - 1) lease.Release();
        const int64_t end = std::min(schedule.EndSample(k), cut);
        parts.clear();
        body->Append(std::min(schedule.BeginSample(k), end), end, parts);
        if (!parts.empty()) {
          if (k == first_audio) state_.LogFirstAudio(received, Clock::now(), request->text);
          ws.binary(true);
          auto [wec, wn] = co_await ws.async_write(Buffers(parts), kUseTuple);
          if (wec) co_return;
        }
        if (plan.draw.truncate && end >= cut) {
          AbortWs(ws);  // a crash mid-stream: no tts_done, no close frame
          co_return;
        }
      }
      const int64_t duration_ms = body->samples() * 1000 / body->sample_rate();
      if (!co_await WsText(ws, TorchWsDone(duration_ms))) {
        co_return;
      }
    }
  }

  // SynthOptions::misbehave "endless-ws-text": one text message, fragment after fragment,
  // never finished, until the client goes away.
  static net::awaitable<void> EndlessWsText(Ws& ws) {
    static constexpr std::string_view kOpening = R"({"type":"audio","audio":")";
    const std::string& filler = EndlessFiller();
    ws.text(true);
    auto [ec, n] = co_await ws.async_write_some(false, net::buffer(kOpening), kUseTuple);
    while (!ec) {
      std::tie(ec, n) = co_await ws.async_write_some(false, net::buffer(filler), kUseTuple);
    }
  }

  static absl::StatusOr<AudioRequest> ParseTorchWs(const std::string& message) {
    auto json = ParseJsonObject(message);
    if (!json.ok()) return json.status();
    const Value* type = json->if_contains("type");
    if (type == nullptr || !type->is_string() || type->get_string() != "tts") {
      return absl::InvalidArgumentError("unknown message type");
    }
    AudioRequest req;
    if (auto st = TakeText(*json, "text", req); !st.ok()) return st;
    if (auto st = TakeVoice(*json, "voice", req); !st.ok()) return st;
    if (auto st = TakeSpeed(*json, "speed", req); !st.ok()) return st;
    return req;
  }

  // ------------------------------------------------------------------------------ text over time

  // One session of a WebSocket that takes text over time (issue 13). The reader turns client
  // messages into text and events; the speaker, a second coroutine on the connection's strand,
  // speaks each stretch of text with the slot model and writes every message (Beast allows one
  // writer). One context at a time: a message naming another context starts it once the
  // previous one is done.
  struct PacedState {
    PacedState(const net::any_io_executor& ex, PacedProtocol p, AudioRequest b)
        : protocol(p), base(std::move(b)), wake(ex), done(ex) {}
    PacedProtocol protocol;
    AudioRequest base;  // voice, format, rate, speed
    std::string context_id;
    std::string pending;                        // text received, not yet cut into a stretch
    std::deque<std::string> segments;           // stretches to speak, in order
    std::deque<std::string> outbox;             // control messages (errors) to send first
    Clock::time_point received = Clock::now();  // the first text of the turn
    bool end = false;          // the end of input came: the end marker follows the audio
    bool close_after = false;  // close once the outbox is sent (an error, close_socket)
    bool reader_done = false;
    bool speaker_done = false;
    bool cancel_ack = false;  // send the cancel's answer once the stop delay passed
    Clock::time_point cancel_at = Clock::time_point::max();
    int sequence = 0;         // Deepgram sequence_id; vLLM-Omni sentence_index in the utterance
    int utterance = 0;        // vLLM-Omni utterance_index (input.done flushes)
    bool misbehaved = false;  // misbehave "unknown-message" / "close-mid-turn" done
    net::steady_timer wake;   // the speaker waits here; cancelled on news
    net::steady_timer done;   // the reader waits here for the speaker to end
  };

  static void Wake(PacedState& st) { st.wake.cancel(); }

  static bool IsStop(char c) {
    return c == '.' || c == ',' || c == '!' || c == '?' || c == ';' || c == ':';
  }

  // Moves the pending text into a stretch to speak when the model says so: honest, at
  // lookahead_chars characters or a punctuation mark; `all` (a flush, the end): whatever came.
  void Cut(PacedState& st, bool all) {
    const absl::string_view trimmed = absl::StripTrailingAsciiWhitespace(st.pending);
    if (trimmed.empty()) {
      if (all) st.pending.clear();
      return;
    }
    const bool ready =
        all ||
        (state_.options.paced_mode == "honest" &&
         (CountCharacters(st.pending) >= static_cast<size_t>(state_.options.lookahead_chars) ||
          IsStop(trimmed.back())));
    if (!ready) return;
    st.segments.emplace_back(absl::StripAsciiWhitespace(st.pending));
    st.pending.clear();
  }

  void OnPacedEvent(PacedState& st, const PacedEvent& ev) {
    if (!ev.context_id.empty()) st.context_id = ev.context_id;
    if (ev.speed > 0) (void)SetSpeed(ev.speed, st.base);
    if (!ev.encoding.empty()) {
      st.base.format = ev.encoding == "pcm_f32le"   ? AudioFormat::kPcmF32
                       : ev.encoding == "pcm_mulaw" ? AudioFormat::kUlaw
                                                    : AudioFormat::kPcmS16;
    }
    if (ev.sample_rate >= 8000 && ev.sample_rate <= 48000) st.base.sample_rate = ev.sample_rate;
    if (ev.cancel) {
      if (state_.options.misbehave == "talk-after-cancel") {
        st.cancel_ack = true;  // answered, but only once everything was spoken
        return;
      }
      st.pending.clear();
      st.segments.clear();
      st.end = false;
      st.cancel_at = Clock::now() + Ms(state_.options.stop_delay_ms);
      st.cancel_ack = true;
      return;
    }
    if (!ev.text.empty()) {
      if (absl::StripAsciiWhitespace(st.pending).empty() && st.segments.empty()) {
        st.received = Clock::now();
      }
      st.pending += ev.text;
      Cut(st, false);
    }
    // A buffering server ignores flushes: it speaks at the end of input only.
    if (ev.flush && state_.options.paced_mode == "honest") Cut(st, true);
    if (ev.end) {
      Cut(st, true);
      st.end = true;
      state_.websocket_requests.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // The protocol's error message.
  static std::string PacedError(PacedProtocol p, absl::string_view context,
                                absl::string_view message) {
    switch (p) {
      case PacedProtocol::kElevenLabs:
      case PacedProtocol::kElevenLabsMulti:
        return ElevenLabsWsError(message, "invalid_message", 1008);
      case PacedProtocol::kCartesia:
        return ToJson({{"type", "error"},
                       {"done", true},
                       {"title", "Invalid request"},
                       {"message", JsonText(message)},
                       {"status_code", 400},
                       {"context_id", JsonText(context)}});
      case PacedProtocol::kDeepgram:
        return ToJson({{"type", "Error"},
                       {"err_code", "INVALID_MESSAGE"},
                       {"description", JsonText(message)}});
      case PacedProtocol::kVllmOmni:
        return ToJson({{"type", "error"}, {"message", JsonText(message)}});
    }
    return "";
  }

  // A piece of audio, as the protocol sends it (Deepgram: binary, the others base64 in JSON).
  static std::string PacedAudio(const PacedState& st, absl::string_view audio) {
    switch (st.protocol) {
      case PacedProtocol::kElevenLabs:
        return ElevenLabsWsAudio(audio);
      case PacedProtocol::kElevenLabsMulti:
        return ToJson({{"audio", absl::Base64Escape(audio)},
                       {"isFinal", false},
                       {"contextId", JsonText(st.context_id)}});
      case PacedProtocol::kCartesia:
        return ToJson({{"type", "chunk"},
                       {"data", absl::Base64Escape(audio)},
                       {"done", false},
                       {"status_code", 206},
                       {"context_id", JsonText(st.context_id)}});
      case PacedProtocol::kDeepgram:
      case PacedProtocol::kVllmOmni:
        return std::string(audio);
    }
    return "";
  }

  static std::string Cleared(PacedState& st) {
    return ToJson({{"type", "Cleared"}, {"sequence_id", st.sequence++}});
  }

  // The end of a turn: isFinal, done, Flushed.
  static std::string PacedEnd(PacedState& st) {
    switch (st.protocol) {
      case PacedProtocol::kElevenLabs:
        return R"({"isFinal":true})";
      case PacedProtocol::kElevenLabsMulti:
        return ToJson({{"isFinal", true}, {"contextId", JsonText(st.context_id)}});
      case PacedProtocol::kCartesia:
        return ToJson({{"type", "done"},
                       {"done", true},
                       {"status_code", 206},
                       {"context_id", JsonText(st.context_id)}});
      case PacedProtocol::kDeepgram:
        return ToJson({{"type", "Flushed"}, {"sequence_id", st.sequence++}});
      case PacedProtocol::kVllmOmni: {
        std::string done = ToJson({{"type", "session.done"},
                                   {"utterance_index", st.utterance++},
                                   {"total_sentences", st.sequence}});
        st.sequence = 0;
        return done;
      }
    }
    return "";
  }

  net::awaitable<void> PacedSession(Ws& ws, PacedProtocol protocol, AudioRequest base) {
    PacedState st(ws.get_executor(), protocol, std::move(base));
    net::co_spawn(ws.get_executor(), Speaker(ws, st), [](std::exception_ptr) {});
    if (protocol == PacedProtocol::kDeepgram) {
      st.outbox.push_back(ToJson({{"type", "Metadata"}, {"request_id", "synth"}}));
      Wake(st);
    }
    beast::flat_buffer buf;
    while (!st.close_after) {
      buf.clear();
      auto [ec, n] = co_await ws.async_read(buf, kUseTuple);
      if (ec) break;  // the client closed (barge-in on stream-input) or went away
      if (!ws.got_text()) continue;
      auto ev = ParsePacedMessage(protocol, beast::buffers_to_string(buf.data()));
      if (!ev.ok()) {
        st.outbox.push_back(PacedError(protocol, st.context_id, ev.status().message()));
        // Cartesia and vLLM-Omni report a bad message and keep serving.
        st.close_after =
            protocol != PacedProtocol::kCartesia && protocol != PacedProtocol::kVllmOmni;
        Wake(st);
        continue;
      }
      OnPacedEvent(st, *ev);
      if (ev->close_socket) st.close_after = true;
      Wake(st);
    }
    st.reader_done = true;
    Wake(st);
    while (!st.speaker_done) {
      st.done.expires_at(Clock::time_point::max());
      co_await st.done.async_wait(kUseTuple);
    }
  }

  // Writes the outbox, speaks the stretches, answers the end of input and cancels.
  net::awaitable<void> Speaker(Ws& ws, PacedState& st) {
    const std::string& misbehave = state_.options.misbehave;
    for (;;) {
      if (!st.outbox.empty()) {
        const std::string m = std::move(st.outbox.front());
        st.outbox.pop_front();
        if (!co_await WsText(ws, m)) break;
        continue;
      }
      if (st.close_after) {
        co_await ws.async_close(websocket::close_code::policy_error, kUseTuple);
        break;
      }
      if (st.reader_done) break;
      const bool cancelling = st.cancel_at != Clock::time_point::max();
      if (cancelling && Clock::now() >= st.cancel_at) {
        st.cancel_at = Clock::time_point::max();
        st.cancel_ack = false;
        if (st.protocol == PacedProtocol::kDeepgram) {
          // Built before co_await: GCC 12 cannot keep a braced list's literals in a coroutine.
          const std::string cleared = Cleared(st);
          if (!co_await WsText(ws, cleared)) break;
        }
        continue;
      }
      if (!cancelling && !st.segments.empty()) {
        if (!co_await SpeakSegment(ws, st)) break;
        continue;
      }
      if (!cancelling && st.end && st.segments.empty()) {
        st.end = false;
        if (st.cancel_ack && st.protocol == PacedProtocol::kDeepgram) {  // talk-after-cancel
          st.cancel_ack = false;
          // Built before co_await: GCC 12 cannot keep a braced list's literals in a coroutine.
          const std::string cleared = Cleared(st);
          if (!co_await WsText(ws, cleared)) break;
          continue;
        }
        if (misbehave == "never-flush") continue;
        if (!co_await WsText(ws, PacedEnd(st))) break;
        if (st.protocol == PacedProtocol::kElevenLabs || misbehave == "close-after-turn") {
          co_await ws.async_close(websocket::close_code::normal, kUseTuple);
          break;
        }
        continue;
      }
      st.wake.expires_at(cancelling ? st.cancel_at : Clock::time_point::max());
      co_await st.wake.async_wait(kUseTuple);
    }
    st.speaker_done = true;
    st.done.cancel();
  }

  // One stretch of text through the slot model. False: the session is over.
  net::awaitable<bool> SpeakSegment(Ws& ws, PacedState& st) {
    AudioRequest request = st.base;
    request.text = std::move(st.segments.front());
    st.segments.pop_front();
    const Plan plan = MakePlan(request);
    if (plan.draw.error) {
      state_.errors_injected.fetch_add(1, std::memory_order_relaxed);
      const std::string failure =
          st.protocol == PacedProtocol::kElevenLabs
              ? std::string(R"({"message":"injected failure","error":"server_error","code":1011})")
              : PacedError(st.protocol, st.context_id, "injected failure");
      co_await WsText(ws, failure);
      co_await ws.async_close(websocket::close_code::internal_error, kUseTuple);
      co_return false;
    }
    auto body = AudioBody::Make(state_.audio, request.format, plan.sample_rate, plan.samples, true,
                                plan.silence);
    if (!body.ok()) co_return false;
    state_.requests_streamed.fetch_add(1, std::memory_order_relaxed);
    if (plan.draw.truncate) state_.truncations_injected.fetch_add(1, std::memory_order_relaxed);
    if (!co_await state_.pool.Acquire()) co_return false;
    SlotLease lease(state_.pool);
    const Clock::time_point start = Clock::now();
    const StreamPlan schedule = Schedule(*body, plan.synthesis_ms);
    const int64_t cut = plan.draw.truncate ? body->samples() / 2 : body->samples();
    const std::string& misbehave = state_.options.misbehave;
    bool logged = false;
    for (int k = 0; k < schedule.chunks(); ++k) {
      const Clock::time_point due = start + Ms(schedule.DueMs(k));
      // Wait for the chunk; a cancel wakes the wait, and past its stop delay nothing goes out.
      while (Clock::now() < due && !st.reader_done) {
        st.wake.expires_at(std::min(due, st.cancel_at));
        co_await st.wake.async_wait(kUseTuple);
        if (Clock::now() >= st.cancel_at) co_return true;
      }
      if (st.reader_done) co_return false;
      if (Clock::now() >= st.cancel_at) co_return true;
      if (k == schedule.chunks() - 1) lease.Release();
      const int64_t end = std::min(schedule.EndSample(k), cut);
      const std::string audio = body->Copy(std::min(schedule.BeginSample(k), end), end);
      if (!audio.empty()) {
        if (misbehave == "unknown-message" && !st.misbehaved) {
          st.misbehaved = true;
          const std::string surprise = R"({"type":"surprise","surprise":true})";
          if (!co_await WsText(ws, surprise)) co_return false;
        }
        if (st.protocol == PacedProtocol::kVllmOmni && !logged) {
          // The sentence's audio.start, sent with its first audio (stream_audio pcm).
          const std::string start = ToJson({{"type", "audio.start"},
                                            {"utterance_index", st.utterance},
                                            {"sentence_index", st.sequence},
                                            {"sentence_text", JsonText(request.text)},
                                            {"format", "pcm"},
                                            {"sample_rate", plan.sample_rate},
                                            {"channels", 1}});
          if (!co_await WsText(ws, start)) co_return false;
        }
        if (st.protocol == PacedProtocol::kDeepgram || st.protocol == PacedProtocol::kVllmOmni) {
          ws.binary(true);
          auto [wec, wn] = co_await ws.async_write(net::buffer(audio), kUseTuple);
          if (wec) co_return false;
        } else if (!co_await WsText(ws, PacedAudio(st, audio))) {
          co_return false;
        }
        if (!logged) state_.LogFirstAudio(st.received, Clock::now(), request.text);
        logged = true;
        if (misbehave == "close-mid-turn") {
          AbortWs(ws);
          co_return false;
        }
      }
      if (plan.draw.truncate && end >= cut) {
        AbortWs(ws);
        co_return false;
      }
    }
    if (st.protocol == PacedProtocol::kVllmOmni) {
      const std::string done = ToJson({{"type", "audio.done"},
                                       {"utterance_index", st.utterance},
                                       {"sentence_index", st.sequence}});
      ++st.sequence;
      if (!co_await WsText(ws, done)) co_return false;
    }
    co_return true;
  }

  // ------------------------------------------------------------------------------ helpers

  net::awaitable<bool> WriteJson(const Request& req, http::status status, std::string body,
                                 std::string_view content_type = "application/json") {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    Lowest().expires_after(kWriteTimeout);
    auto [ec, n] = co_await http::async_write(stream_, res, kUseTuple);
    co_return !ec && res.keep_alive();
  }

  // For requests that could not be read: answer, then the caller closes.
  net::awaitable<void> WriteError(http::status status, absl::string_view message) {
    http::response<http::string_body> res{status, 11};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, "application/json");
    res.keep_alive(false);
    res.body() = ErrorJson(message, "invalid_request_error");
    res.prepare_payload();
    Lowest().expires_after(kWriteTimeout);
    co_await http::async_write(stream_, res, kUseTuple);
  }

  net::awaitable<bool> SleepUntil(Clock::time_point when) { return Sleep(timer_, when); }

  // Synthesis starts when the request has arrived and a slot is free: at arrival when a slot was
  // free then, so the server's own parsing and bookkeeping are inside the modelled time rather
  // than added to it (a fixed 50 ms answer takes 50 ms from the last request byte read).
  Clock::time_point SynthesisStart(bool waited) const { return waited ? Clock::now() : received_; }

  // Closes mid-body for injected truncation; the client sees the peer close before the body ends.
  void Abort() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().socket().close(ignored);
  }

  State& state_;
  Stream stream_;
  beast::flat_buffer buffer_;
  net::steady_timer timer_;
  Clock::time_point received_ = Clock::now();  // when the last request was read whole
  bool upgraded_ = false;
};

// Handlers report errors as error_codes; only allocation failure could throw, and then the one
// connection (or the accept loop) ends rather than the process.
void IgnoreException(std::exception_ptr) {}

// Plain HTTP, or TLS when a certificate is configured and the client opens with a ClientHello.
net::awaitable<void> ServeConnection(State& state, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  if (state.tls) {
    stream.expires_after(kReadTimeout);
    auto [ec, is_tls] = co_await beast::async_detect_ssl(stream, buffer, kUseTuple);
    if (ec) co_return;
    if (is_tls) {
      state.tls_connections.fetch_add(1, std::memory_order_relaxed);
      TlsStream tls(std::move(stream), *state.tls);
      beast::get_lowest_layer(tls).expires_after(kReadTimeout);
      auto [hec, used] =
          co_await tls.async_handshake(net::ssl::stream_base::server, buffer.data(), kUseTuple);
      if (hec) co_return;
      buffer.consume(used);
      Connection<TlsStream> connection(state, std::move(tls), std::move(buffer));
      co_await connection.Run();
      co_return;
    }
  }
  Connection<beast::tcp_stream> connection(state, std::move(stream), std::move(buffer));
  co_await connection.Run();
}

net::awaitable<void> AcceptLoop(State& state, net::io_context& ioc, tcp::acceptor& acceptor) {
  net::steady_timer backoff(ioc);
  for (;;) {
    // One strand per connection: with several io threads a connection's handlers never overlap.
    tcp::socket socket(net::make_strand(ioc));
    auto [ec] = co_await acceptor.async_accept(socket, kUseTuple);
    if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: back off instead of spinning on the error.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(kUseTuple);
      continue;
    }
    state.connections_accepted.fetch_add(1, std::memory_order_relaxed);
    beast::error_code ignored;
    // Small writes (headers, chunks) must leave at once, not wait for the client's delayed ACK.
    socket.set_option(tcp::no_delay(true), ignored);
    auto ex = socket.get_executor();
    net::co_spawn(ex, ServeConnection(state, std::move(socket)), IgnoreException);
  }
}

absl::Status ValidateOptions(const SynthOptions& options) {
  if (auto st = ValidateLatencyModel(options.model); !st.ok()) return st;
  if (options.threads < 1 || options.threads > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads must be in [1, 256], got ", options.threads));
  }
  if (!(options.idle_watts >= 0 && options.idle_watts < 1e7 && options.watts_per_busy_slot >= 0 &&
        options.watts_per_busy_slot < 1e7)) {
    return absl::InvalidArgumentError("idle_watts and watts_per_busy_slot must be in [0, 1e7) W");
  }
  if (!(options.error_rate >= 0 && options.error_rate <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("error_rate must be in [0, 1], got ", options.error_rate));
  }
  if (!(options.truncate_rate >= 0 && options.truncate_rate <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncate_rate must be in [0, 1], got ", options.truncate_rate));
  }
  if (!(options.leading_silence_ms >= 0 && options.leading_silence_ms <= 60'000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("leading_silence_ms must be in [0, 60000], got ", options.leading_silence_ms));
  }
  if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
    return absl::InvalidArgumentError("a TLS certificate needs its key, and a key its certificate");
  }
  static constexpr std::string_view kMisbehave[] = {"",
                                                    "endless-sse-line",
                                                    "endless-json",
                                                    "endless-ws-text",
                                                    "never-flush",
                                                    "close-mid-turn",
                                                    "unknown-message",
                                                    "talk-after-cancel",
                                                    "close-after-turn"};
  if (std::find(std::begin(kMisbehave), std::end(kMisbehave), options.misbehave) ==
      std::end(kMisbehave)) {
    return absl::InvalidArgumentError(
        absl::StrCat("misbehave must be endless-sse-line, endless-json, endless-ws-text, "
                     "never-flush, close-mid-turn, unknown-message, talk-after-cancel or "
                     "close-after-turn, got ",
                     options.misbehave));
  }
  if (options.paced_mode != "honest" && options.paced_mode != "buffering") {
    return absl::InvalidArgumentError(
        absl::StrCat("paced_mode must be honest or buffering, got ", options.paced_mode));
  }
  if (options.lookahead_chars < 1 || options.lookahead_chars > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("lookahead_chars must be in [1, 100000], got ", options.lookahead_chars));
  }
  if (!(options.stop_delay_ms >= 0 && options.stop_delay_ms <= 60000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("stop_delay_ms must be in [0, 60000], got ", options.stop_delay_ms));
  }
  if (options.ws_encoding != "pcm_f32le" && options.ws_encoding != "pcm_s16le") {
    return absl::InvalidArgumentError(
        absl::StrCat("ws_encoding must be pcm_f32le or pcm_s16le, got ", options.ws_encoding));
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

class SynthServer::Impl {
 public:
  explicit Impl(const SynthOptions& options)
      : state_(options), ioc_(std::make_unique<net::io_context>(options.threads)) {}

  ~Impl() {
    Stop();
    if (state_.first_event_log != nullptr) std::fclose(state_.first_event_log);
  }

  absl::Status Listen() {
    const SynthOptions& o = state_.options;
    beast::error_code ec;
    if (!o.log_first_event.empty()) {
      state_.first_event_log = std::fopen(o.log_first_event.c_str(), "w");
      if (state_.first_event_log == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot write the first-event log ", o.log_first_event));
      }
    }
    if (!o.tls_cert_pem.empty()) {
      state_.tls.emplace(net::ssl::context::tls_server);
      state_.tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                              net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                              net::ssl::context::no_tlsv1_1);
      state_.tls->use_certificate_chain(net::buffer(o.tls_cert_pem), ec);
      if (!ec) state_.tls->use_private_key(net::buffer(o.tls_key_pem), net::ssl::context::pem, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat("TLS certificate or key not usable: ", ec.message()));
      }
    }
    tcp::resolver resolver(*ioc_);
    auto results = resolver.resolve(o.listen_host, std::to_string(o.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot resolve listen host '", o.listen_host, "': ", ec.message()));
    }
    const tcp::endpoint endpoint = results.begin()->endpoint();
    const std::string where = absl::StrCat(o.listen_host, ":", o.port);
    acceptor_.emplace(*ioc_);
    if (acceptor_->open(endpoint.protocol(), ec); ec) {
      return absl::UnavailableError(absl::StrCat("open socket for ", where, ": ", ec.message()));
    }
    // Lets a restarted server rebind while old connections sit in TIME_WAIT; a live listener
    // on the port still makes bind fail.
    acceptor_->set_option(net::socket_base::reuse_address(true), ec);
    if (acceptor_->bind(endpoint, ec); ec) {
      return absl::UnavailableError(absl::StrCat("bind ", where, ": ", ec.message()));
    }
    if (acceptor_->listen(net::socket_base::max_listen_connections, ec); ec) {
      return absl::UnavailableError(absl::StrCat("listen on ", where, ": ", ec.message()));
    }
    port_ = acceptor_->local_endpoint(ec).port();
    return absl::OkStatus();
  }

  void Run() {
    work_.emplace(ioc_->get_executor());
    net::co_spawn(*ioc_, AcceptLoop(state_, *ioc_, *acceptor_), IgnoreException);
    for (int i = 0; i < state_.options.threads; ++i) {
      threads_.emplace_back([this] { ioc_->run(); });
    }
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!ioc_) return;
    work_.reset();
    ioc_->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    // Order matters: I/O objects and queued waiters go before the io_context they belong to;
    // the coroutine frames (and their sockets) are destroyed with the io_context itself.
    acceptor_.reset();
    state_.pool.Shutdown();
    ioc_.reset();
  }

  uint16_t port() const { return port_; }

  SynthStats stats() const {
    SynthStats s;
    s.connections_accepted = state_.connections_accepted.load(std::memory_order_relaxed);
    s.tls_connections = state_.tls_connections.load(std::memory_order_relaxed);
    s.requests = state_.requests.load(std::memory_order_relaxed);
    s.requests_streamed = state_.requests_streamed.load(std::memory_order_relaxed);
    s.errors_injected = state_.errors_injected.load(std::memory_order_relaxed);
    s.truncations_injected = state_.truncations_injected.load(std::memory_order_relaxed);
    s.degraded_answers = state_.degraded_answers.load(std::memory_order_relaxed);
    s.websocket_sessions = state_.websocket_sessions.load(std::memory_order_relaxed);
    s.websocket_requests = state_.websocket_requests.load(std::memory_order_relaxed);
    s.unauthorized = state_.unauthorized.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // Declared first so it outlives the io_context: coroutine frames destroyed with the io_context
  // still hold references into it.
  State state_;
  std::unique_ptr<net::io_context> ioc_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;
  uint16_t port_ = 0;
};

absl::StatusOr<std::unique_ptr<SynthServer>> SynthServer::Start(const SynthOptions& options) {
  if (auto st = ValidateOptions(options); !st.ok()) return st;
  auto impl = std::make_unique<Impl>(options);
  if (auto st = impl->Listen(); !st.ok()) return st;
  impl->Run();
  return std::unique_ptr<SynthServer>(new SynthServer(std::move(impl)));
}

SynthServer::SynthServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SynthServer::~SynthServer() { Stop(); }

uint16_t SynthServer::port() const { return impl_->port(); }

SynthStats SynthServer::stats() const { return impl_->stats(); }

void SynthServer::Stop() { impl_->Stop(); }

}  // namespace ttsbench::synth
