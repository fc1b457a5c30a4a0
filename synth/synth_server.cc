#include "synth/synth_server.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <mutex>
#include <numbers>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ttsbench::synth {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr std::string_view kServerName = "ttsbench-synth";
constexpr uint64_t kBodyLimit = 1 << 20;
// Long enough for benchmark texts well past OpenAI's 4096, short enough that one request cannot
// ask for gigabytes of audio.
constexpr size_t kMaxCharacters = 100000;
constexpr double kToneHz = 440;
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kReadTimeout = std::chrono::seconds(30);
constexpr auto kWriteTimeout = std::chrono::seconds(60);
constexpr size_t kWavHeaderBytes = 44;

// ---------------------------------------------------------------------------------------------
// Audio

// One second of a 440 Hz tone as s16le. 440 whole cycles fit in a second at any integer rate, so
// the table loops seamlessly and every response is a list of slices of it, never a fresh copy.
class ToneTable {
 public:
  explicit ToneTable(int sample_rate) : sample_rate_(sample_rate), bytes_(2 * sample_rate, '\0') {
    for (int i = 0; i < sample_rate; ++i) {
      const double v = 0.3 * std::sin(2 * std::numbers::pi * kToneHz * i / sample_rate);
      const auto s = static_cast<uint16_t>(static_cast<int16_t>(std::lround(v * 32767)));
      bytes_[2 * i] = static_cast<char>(s & 0xFF);
      bytes_[2 * i + 1] = static_cast<char>(s >> 8);
    }
  }

  // Appends the bytes of samples [begin, end) of the endless tone to `out`.
  void Append(int64_t begin, int64_t end, std::vector<net::const_buffer>& out) const {
    int64_t pos = begin % sample_rate_;
    for (int64_t left = end - begin; left > 0;) {
      const int64_t n = std::min(left, sample_rate_ - pos);
      out.emplace_back(bytes_.data() + 2 * pos, static_cast<size_t>(2 * n));
      left -= n;
      pos = 0;
    }
  }

 private:
  int64_t sample_rate_;
  std::string bytes_;
};

void PutLe32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void PutLe16(unsigned char* p, uint16_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
}

// Canonical 44-byte PCM WAV header. Without a length (streaming) the RIFF and data sizes are
// 0xFFFFFFFF, as streaming TTS servers send them.
std::array<unsigned char, kWavHeaderBytes> WavHeader(int sample_rate,
                                                     std::optional<uint64_t> data_bytes) {
  std::array<unsigned char, kWavHeaderBytes> h{};
  // Sizes past 4 GiB cannot be stated; they get the streaming marker as well.
  const uint64_t kUnknown = 0xFFFFFFFFu;
  const auto data = static_cast<uint32_t>(data_bytes ? std::min(*data_bytes, kUnknown) : kUnknown);
  const auto riff =
      static_cast<uint32_t>(data_bytes ? std::min(36 + *data_bytes, kUnknown) : kUnknown);
  std::memcpy(h.data(), "RIFF", 4);
  PutLe32(h.data() + 4, riff);
  std::memcpy(h.data() + 8, "WAVEfmt ", 8);
  PutLe32(h.data() + 16, 16);  // fmt chunk size
  PutLe16(h.data() + 20, 1);   // PCM
  PutLe16(h.data() + 22, 1);   // mono
  PutLe32(h.data() + 24, static_cast<uint32_t>(sample_rate));
  PutLe32(h.data() + 28, static_cast<uint32_t>(sample_rate * 2));  // byte rate
  PutLe16(h.data() + 32, 2);                                       // block align
  PutLe16(h.data() + 34, 16);                                      // bits per sample
  std::memcpy(h.data() + 36, "data", 4);
  PutLe32(h.data() + 40, data);
  return h;
}

// ---------------------------------------------------------------------------------------------
// Slots

// A counting semaphore with a FIFO queue of suspended coroutines: the GPU's parallel slots.
// Waiters sleep on a timer that never expires; Release() hands the slot over directly and wakes
// the waiter by cancelling its timer on the waiter's own executor (strand), so no timer is touched
// from a foreign thread and nobody polls.
class SlotPool {
 public:
  explicit SlotPool(int slots) : free_(slots) {}

  // True once the caller holds a slot; false when the server is shutting down.
  net::awaitable<bool> Acquire() {
    const net::any_io_executor ex = co_await net::this_coro::executor;
    std::shared_ptr<Waiter> waiter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shut_down_) co_return false;
      if (free_ > 0) {
        --free_;
        co_return true;
      }
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
  int free_;
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

// ---------------------------------------------------------------------------------------------
// Strings

// Abseil here is built with its own string_view, distinct from std::string_view (Beast's).
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// JSON string literal with the escapes JSON requires (CEscape's \x.. and octal are not JSON).
std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
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
          out += absl::StrFormat("\\u%04x", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
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
        tone(opts.model.sample_rate),
        pool(opts.model.slots),
        jitter_rng(opts.model.seed),
        // A separate stream, so turning faults on does not change the jitter sequence.
        fault_rng(SeededRng(opts.model.seed ^ 0xD1B54A32D192ED03ULL).NextU64()),
        pcm_content_type(absl::StrCat("audio/pcm;rate=", opts.model.sample_rate)) {
    voices_json = R"({"voices":[)";
    const char* sep = "";
    for (const auto& [name, speed] : model.voice_speed) {
      absl::StrAppend(&voices_json, sep, JsonQuote(name));
      sep = ",";
    }
    voices_json += "]}";
  }

  Draw NextDraw() {
    std::lock_guard<std::mutex> lock(rng_mu);
    Draw d;
    d.jitter_u = jitter_rng.NextSigned();
    d.error = fault_rng.NextUnit() < options.error_rate;
    d.truncate = fault_rng.NextUnit() < options.truncate_rate;
    return d;
  }

  const SynthOptions options;
  const LatencyModel& model;
  const ToneTable tone;
  SlotPool pool;
  std::mutex rng_mu;
  SeededRng jitter_rng;
  SeededRng fault_rng;
  std::string pcm_content_type;
  std::string voices_json;

  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> requests_streamed{0};
  std::atomic<uint64_t> errors_injected{0};
  std::atomic<uint64_t> truncations_injected{0};
};

// ---------------------------------------------------------------------------------------------
// Request parsing

enum class Api { kOpenAi, kTorchSynthesize, kTorchStream };
enum class Format { kWav, kPcm };

struct AudioRequest {
  std::string text;
  std::string voice = "default";
  double speed = 1.0;
  Format format = Format::kWav;
  bool stream = false;
};

using google::protobuf::Struct;
using google::protobuf::Value;

// The value of `key` if present and not null; an error if present with another kind.
absl::StatusOr<const Value*> Field(const Struct& s, const char* key, Value::KindCase kind,
                                   const char* kind_name) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || it->second.kind_case() == Value::kNullValue) {
    return static_cast<const Value*>(nullptr);
  }
  if (it->second.kind_case() != kind) {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' must be a ", kind_name));
  }
  return &it->second;
}

#define SYNTH_ASSIGN_FIELD(var, expr)           \
  auto var##_or = (expr);                       \
  if (!var##_or.ok()) return var##_or.status(); \
  const Value* var = *var##_or

absl::StatusOr<AudioRequest> ParseAudioRequest(Api api, std::string_view body) {
  Struct json;
  if (auto st = google::protobuf::util::JsonStringToMessage(
          google::protobuf::StringPiece(body.data(), body.size()), &json);
      !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("body is not a JSON object: ",
                     absl::string_view(st.message().data(), st.message().size())));
  }
  AudioRequest req;
  const char* text_key = api == Api::kOpenAi ? "input" : "text";
  SYNTH_ASSIGN_FIELD(text, Field(json, text_key, Value::kStringValue, "string"));
  if (text == nullptr || text->string_value().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text_key, "' is required"));
  }
  req.text = text->string_value();
  if (CountCharacters(req.text) > kMaxCharacters) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text_key, "' is longer than ", kMaxCharacters, " characters"));
  }
  SYNTH_ASSIGN_FIELD(voice, Field(json, "voice", Value::kStringValue, "string"));
  if (voice != nullptr && !voice->string_value().empty()) req.voice = voice->string_value();
  SYNTH_ASSIGN_FIELD(speed, Field(json, "speed", Value::kNumberValue, "number"));
  if (speed != nullptr) {
    req.speed = speed->number_value();
    // OpenAI's documented range; also keeps the audio length finite.
    if (!(req.speed >= 0.25 && req.speed <= 4.0)) {
      return absl::InvalidArgumentError("'speed' must be between 0.25 and 4.0");
    }
  }
  switch (api) {
    case Api::kOpenAi: {
      SYNTH_ASSIGN_FIELD(format, Field(json, "response_format", Value::kStringValue, "string"));
      // OpenAI defaults to mp3, which this server cannot encode; wav is the useful default here.
      if (format != nullptr && format->string_value() == "pcm") {
        req.format = Format::kPcm;
      } else if (format != nullptr && format->string_value() != "wav") {
        return absl::InvalidArgumentError(absl::StrCat("unsupported response_format '",
                                                       format->string_value(),
                                                       "': this server produces wav or pcm"));
      }
      SYNTH_ASSIGN_FIELD(stream, Field(json, "stream", Value::kBoolValue, "boolean"));
      req.stream = stream != nullptr && stream->bool_value();
      SYNTH_ASSIGN_FIELD(stream_format,
                         Field(json, "stream_format", Value::kStringValue, "string"));
      if (stream_format != nullptr && stream_format->string_value() != "audio") {
        return absl::InvalidArgumentError("only stream_format 'audio' is supported");
      }
      break;
    }
    case Api::kTorchSynthesize:
      break;
    case Api::kTorchStream:
      req.format = Format::kPcm;
      req.stream = true;
      break;
  }
  return req;
}

#undef SYNTH_ASSIGN_FIELD

std::string ErrorJson(absl::string_view message, absl::string_view type) {
  return absl::StrCat(R"({"error":{"message":)", JsonQuote(message), R"(,"type":")", type,
                      R"(","code":null}})");
}

// ---------------------------------------------------------------------------------------------
// Connections

// One HTTP/1.1 connection: reads requests one after another (keep-alive) and answers each.
// Lives in the frame of its coroutine, on its own strand.
class Connection {
 public:
  Connection(State& state, tcp::socket socket)
      : state_(state), stream_(std::move(socket)), timer_(stream_.get_executor()) {}

  net::awaitable<void> Run() {
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kBodyLimit);
      stream_.expires_after(kIdleTimeout);
      auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, kUseTuple);
      if (ec) {
        co_await RejectUnreadable(ec);
        break;
      }
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        // curl waits a second for this before sending a body over 1 KiB.
        http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
        stream_.expires_after(kWriteTimeout);
        std::tie(ec, n) = co_await http::async_write(stream_, cont, kUseTuple);
        if (ec) break;
      }
      stream_.expires_after(kReadTimeout);
      std::tie(ec, n) = co_await http::async_read(stream_, buffer_, parser, kUseTuple);
      if (ec) {
        co_await RejectUnreadable(ec);
        break;
      }
      state_.requests.fetch_add(1, std::memory_order_relaxed);
      http::request<http::string_body> req = parser.release();
      if (!co_await Serve(req)) break;
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

 private:
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

  // Each returns whether the connection may serve another request.
  net::awaitable<bool> Serve(const http::request<http::string_body>& req) {
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
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
      if (target == "/stats") {
        // The server's own counters, so tests can see load arrive and stop from the outside.
        co_return co_await WriteJson(
            req, http::status::ok,
            absl::StrCat("{\"connections_accepted\":", state_.connections_accepted.load(),
                         ",\"requests\":", state_.requests.load(),
                         ",\"requests_streamed\":", state_.requests_streamed.load(),
                         ",\"errors_injected\":", state_.errors_injected.load(),
                         ",\"truncations_injected\":", state_.truncations_injected.load(), "}"));
      }
    } else if (req.method() == http::verb::post) {
      if (target == "/v1/audio/speech") co_return co_await ServeAudio(req, Api::kOpenAi);
      if (target == "/tts/synthesize") co_return co_await ServeAudio(req, Api::kTorchSynthesize);
      if (target == "/tts/stream") co_return co_await ServeAudio(req, Api::kTorchStream);
    }
    co_return co_await WriteJson(
        req, http::status::not_found,
        ErrorJson(absl::StrCat("no route for ", Av(req.method_string()), " ", Av(target)),
                  "not_found_error"));
  }

  net::awaitable<bool> ServeAudio(const http::request<http::string_body>& req, Api api) {
    absl::StatusOr<AudioRequest> parsed = ParseAudioRequest(api, req.body());
    if (!parsed.ok()) {
      co_return co_await WriteJson(req, http::status::bad_request,
                                   ErrorJson(parsed.status().message(), "invalid_request_error"));
    }
    const Draw draw = state_.NextDraw();
    if (draw.error) {
      state_.errors_injected.fetch_add(1, std::memory_order_relaxed);
      co_return co_await WriteJson(req, http::status::internal_server_error,
                                   ErrorJson("injected failure", "server_error"));
    }
    const LatencyModel& m = state_.model;
    const size_t chars = CountCharacters(parsed->text);
    const int64_t samples = AudioSamples(m, chars, parsed->speed);
    const double synthesis_ms = SynthesisMs(m, chars, VoiceSpeed(m, parsed->voice), draw.jitter_u);
    if (draw.truncate) state_.truncations_injected.fetch_add(1, std::memory_order_relaxed);
    if (parsed->stream) {
      co_return co_await SendStream(req, *parsed, samples, synthesis_ms, draw.truncate);
    }
    co_return co_await SendWhole(req, api, *parsed, samples, synthesis_ms, draw.truncate);
  }

  // Non-streamed: the slot is held for the synthesis, then the whole body goes out.
  net::awaitable<bool> SendWhole(const http::request<http::string_body>& req, Api api,
                                 const AudioRequest& audio, int64_t samples, double synthesis_ms,
                                 bool truncate) {
    if (!co_await state_.pool.Acquire()) co_return false;
    {
      SlotLease lease(state_.pool);
      if (!co_await SleepUntil(Clock::now() + Ms(synthesis_ms))) co_return false;
    }
    const int rate = state_.model.sample_rate;
    const uint64_t pcm_bytes = 2 * static_cast<uint64_t>(samples);
    std::vector<net::const_buffer> buffers;
    std::array<unsigned char, kWavHeaderBytes> header{};
    std::string json;
    std::string_view content_type;
    if (api == Api::kTorchSynthesize) {
      header = WavHeader(rate, pcm_bytes);
      std::string wav(reinterpret_cast<const char*>(header.data()), header.size());
      wav.reserve(header.size() + pcm_bytes);
      state_.tone.Append(0, samples, buffers);
      for (const auto& b : buffers) wav.append(static_cast<const char*>(b.data()), b.size());
      buffers.clear();
      json = absl::StrCat(R"({"success":true,"audio_base64":")", absl::Base64Escape(wav),
                          R"(","sample_rate":)", rate, R"(,"duration":)",
                          absl::StrFormat("%.9g", static_cast<double>(samples) / rate),
                          R"(,"format":"wav"})");
      buffers.emplace_back(json.data(), json.size());
      content_type = "application/json";
    } else {
      if (audio.format == Format::kWav) {
        header = WavHeader(rate, pcm_bytes);
        buffers.emplace_back(header.data(), header.size());
        content_type = "audio/wav";
      } else {
        content_type = state_.pcm_content_type;
      }
      state_.tone.Append(0, samples, buffers);
    }
    const size_t body_bytes = net::buffer_size(buffers);

    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, content_type);
    res.content_length(body_bytes);
    // Truncation mimics a crash: nothing in the headers announces it.
    res.keep_alive(req.keep_alive());
    http::response_serializer<http::empty_body> sr{res};
    stream_.expires_after(kWriteTimeout);
    if (auto [ec, n] = co_await http::async_write_header(stream_, sr, kUseTuple); ec) {
      co_return false;
    }
    // Truncation cuts after the container header and about half of the audio (half of the JSON
    // for torch-inference), so the client sees a Content-Length it never receives.
    const size_t send_bytes = !truncate ? body_bytes
                              : api == Api::kTorchSynthesize
                                  ? body_bytes / 2
                                  : body_bytes - pcm_bytes + 2 * static_cast<uint64_t>(samples / 2);
    stream_.expires_after(kWriteTimeout);
    auto [ec, n] =
        co_await net::async_write(stream_, beast::buffers_prefix(send_bytes, buffers), kUseTuple);
    if (ec || truncate) {
      Abort();
      co_return false;
    }
    co_return res.keep_alive();
  }

  // Streamed: headers at once (as FastAPI/Starlette servers send them), then chunks on the
  // StreamPlan schedule counted from slot acquisition; the slot is released when synthesis ends.
  net::awaitable<bool> SendStream(const http::request<http::string_body>& req,
                                  const AudioRequest& audio, int64_t samples, double synthesis_ms,
                                  bool truncate) {
    state_.requests_streamed.fetch_add(1, std::memory_order_relaxed);
    const LatencyModel& m = state_.model;
    // HTTP/1.0 has no chunked encoding: the body is delimited by closing the connection.
    const bool chunked = req.version() >= 11;
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, audio.format == Format::kWav
                                           ? std::string_view("audio/wav")
                                           : std::string_view(state_.pcm_content_type));
    res.keep_alive(chunked && req.keep_alive());
    res.chunked(chunked);
    http::response_serializer<http::empty_body> sr{res};
    stream_.expires_after(kWriteTimeout);
    if (auto [ec, n] = co_await http::async_write_header(stream_, sr, kUseTuple); ec) {
      co_return false;
    }

    if (!co_await state_.pool.Acquire()) co_return false;
    SlotLease lease(state_.pool);
    const Clock::time_point start = Clock::now();
    const StreamPlan plan(m, samples, synthesis_ms);
    const int64_t cut = truncate ? samples / 2 : samples;
    const auto header = WavHeader(m.sample_rate, std::nullopt);
    std::vector<net::const_buffer> buffers;
    for (int k = 0; k < plan.chunks(); ++k) {
      if (!co_await SleepUntil(start + Ms(plan.DueMs(k)))) co_return false;
      if (k == plan.chunks() - 1) lease.Release();
      buffers.clear();
      if (k == 0 && audio.format == Format::kWav) {
        buffers.emplace_back(header.data(), header.size());
      }
      const int64_t end = std::min(plan.EndSample(k), cut);
      state_.tone.Append(std::min(plan.BeginSample(k), end), end, buffers);
      if (net::buffer_size(buffers) > 0) {  // an empty chunk would end the body
        stream_.expires_after(kWriteTimeout);
        auto [ec, n] =
            chunked ? co_await net::async_write(stream_, http::make_chunk(buffers), kUseTuple)
                    : co_await net::async_write(stream_, buffers, kUseTuple);
        if (ec) co_return false;
      }
      if (truncate && end >= cut) {
        Abort();
        co_return false;
      }
    }
    if (!chunked) co_return false;
    stream_.expires_after(kWriteTimeout);
    auto [ec, n] = co_await net::async_write(stream_, http::make_chunk_last(), kUseTuple);
    co_return !ec && res.keep_alive();
  }

  net::awaitable<bool> WriteJson(const http::request<http::string_body>& req, http::status status,
                                 std::string body) {
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    stream_.expires_after(kWriteTimeout);
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
    stream_.expires_after(kWriteTimeout);
    co_await http::async_write(stream_, res, kUseTuple);
  }

  net::awaitable<bool> SleepUntil(Clock::time_point when) {
    timer_.expires_at(when);
    auto [ec] = co_await timer_.async_wait(kUseTuple);
    co_return !ec;
  }

  // Closes mid-body for injected truncation; the client sees the peer close before the body ends.
  void Abort() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  static Clock::duration Ms(double ms) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double, std::milli>(ms));
  }

  State& state_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  net::steady_timer timer_;
};

// Handlers report errors as error_codes; only allocation failure could throw, and then the one
// connection (or the accept loop) ends rather than the process.
void IgnoreException(std::exception_ptr) {}

net::awaitable<void> ServeConnection(State& state, tcp::socket socket) {
  Connection connection(state, std::move(socket));
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
  if (!(options.error_rate >= 0 && options.error_rate <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("error_rate must be in [0, 1], got ", options.error_rate));
  }
  if (!(options.truncate_rate >= 0 && options.truncate_rate <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncate_rate must be in [0, 1], got ", options.truncate_rate));
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

class SynthServer::Impl {
 public:
  explicit Impl(const SynthOptions& options)
      : state_(options), ioc_(std::make_unique<net::io_context>(options.threads)) {}

  ~Impl() { Stop(); }

  absl::Status Listen() {
    const SynthOptions& o = state_.options;
    beast::error_code ec;
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
    s.requests = state_.requests.load(std::memory_order_relaxed);
    s.requests_streamed = state_.requests_streamed.load(std::memory_order_relaxed);
    s.errors_injected = state_.errors_injected.load(std::memory_order_relaxed);
    s.truncations_injected = state_.truncations_injected.load(std::memory_order_relaxed);
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
