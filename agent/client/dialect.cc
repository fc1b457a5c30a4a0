#include "agent/client/dialect.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "agent/client/audio_capture.h"
#include "agent/client/audio_events.h"
#include "agent/client/riva_transport.h"
#include "agent/client/sse.h"
#include "agent/client/tls.h"
#include "common/texts.h"

namespace ttsbench::agent {
namespace {

using common::JsonEscape;
using common::JsonQuote;

// A whole answer as base64 in JSON: 16 MiB holds 12 MiB of audio (over 4 minutes of 24 kHz
// 16-bit PCM, 13 of MP3 at 128 kbit/s); a larger body is refused as invalid audio, not buffered.
constexpr size_t kMaxJsonBody = size_t{16} << 20;
// Request lines beyond this are refused by common servers and proxies (nginx: 8 KiB buffers);
// coqui then gets its parameters as a form body instead of a query.
constexpr size_t kMaxQueryBytes = 4096;

std::string Number(double v) { return absl::StrFormat("%.6g", v); }

bool HeaderSafe(absl::string_view s) { return s.find_first_of("\r\n") == absl::string_view::npos; }

bool IsToken(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(c) || absl::StrContains("!#$%&'*+-.^_`|~", c);
  });
}

// ---------------------------------------------------------------------------------------------
// Decoders

// The meter of the answer being read, made at its first audio bytes (a metadata message may set
// its options first). It is kept for the next answer and reset when that one's options are the
// same, so a connection's answers after the first allocate no meter.
class MeterSlot {
 public:
  // Ready for another answer.
  void Release() { active_ = false; }
  bool active() const { return active_; }
  common::AudioMeter* get() const { return active_ ? meter_.get() : nullptr; }

  absl::StatusOr<common::AudioMeter*> Get(const common::MeterOptions& options) {
    if (active_) return meter_.get();
    if (meter_ == nullptr || !Same(options) || !meter_->Reset()) {
      auto meter = common::MakeMeter(options);
      if (!meter.ok()) return meter.status();
      meter_ = std::move(*meter);
      options_ = options;  // string assignment keeps the capacity already there
    }
    active_ = true;
    return meter_.get();
  }

 private:
  bool Same(const common::MeterOptions& o) const {
    return o.format == options_.format && o.content_type == options_.content_type &&
           o.sample_rate == options_.sample_rate && o.channels == options_.channels;
  }
  std::unique_ptr<common::AudioMeter> meter_;
  common::MeterOptions options_;  // meter_ was made for these
  bool active_ = false;
};

// Body bytes are audio (raw or in a container) as they arrive.
class StreamingAudioDecoder final : public ResponseDecoder {
 public:
  StreamingAudioDecoder(std::unique_ptr<common::AudioMeter> meter, common::MeterOptions options)
      : meter_(std::move(meter)), options_(std::move(options)) {}
  absl::StatusOr<common::AudioFeed> OnBody(absl::string_view piece) override {
    if (analyser_ != nullptr) analyser_->Audio(options_, piece);
    auto feed = meter_->Feed(piece);
    if (capture_ != nullptr) capture_->Append(piece, *meter_, options_);  // ASR sample
    return feed;
  }
  absl::StatusOr<common::AudioFeed> Finish() override {
    absl::Status st = meter_->Finish();
    if (!st.ok()) return st;
    return common::AudioFeed{};
  }
  double seconds() const override { return meter_->seconds(); }
  int sample_rate() const override { return meter_->sample_rate(); }
  bool Reset() override {
    if (meter_->Reset()) return true;
    auto meter = common::MakeMeter(options_);
    if (!meter.ok()) return false;
    meter_ = std::move(*meter);
    return true;
  }

 private:
  std::unique_ptr<common::AudioMeter> meter_;
  common::MeterOptions options_;
};

absl::StatusOr<std::unique_ptr<ResponseDecoder>> RawDecoder(common::MeterOptions options) {
  auto meter = common::MakeMeter(options);
  if (!meter.ok()) return meter.status();
  return std::unique_ptr<ResponseDecoder>(
      std::make_unique<StreamingAudioDecoder>(std::move(*meter), std::move(options)));
}

// A JSON body with base64 audio in it, parsed as it arrives: the audio is decoded into the
// meter part by part, so memory does not grow with the answer. Its audio counts at the end
// (a non-streamed answer: its first audio is its end).
class JsonBase64Decoder final : public ResponseDecoder {
 public:
  JsonBase64Decoder(AudioEventSpec spec, common::MeterOptions meter_options)
      : parser_(WholeBody(std::move(spec))), meter_options_(std::move(meter_options)) {}
  absl::StatusOr<common::AudioFeed> OnBody(absl::string_view piece) override {
    if (bytes_ + piece.size() > kMaxJsonBody) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON response larger than ", kMaxJsonBody >> 20, " MiB"));
    }
    bytes_ += piece.size();
    Start();
    // A bad answer is reported at its end, as when the body was read whole; past the error the
    // bytes are only counted.
    if (!error_.ok()) return common::AudioFeed{};
    error_ = parser_.Write(piece, [this](absl::string_view a) { return OnAudio(a); });
    return common::AudioFeed{};
  }
  absl::StatusOr<common::AudioFeed> Finish() override {
    Start();
    if (!error_.ok()) return error_;
    if (absl::Status st = parser_.End([this](absl::string_view a) { return OnAudio(a); });
        !st.ok()) {
      return st;
    }
    if (decoded_ == 0) return absl::InvalidArgumentError("JSON response has no audio field");
    parsed_ = true;
    absl::Status st = meter_.get()->Finish();
    if (!st.ok()) return st;
    return feed_;
  }
  // Audio counts once the answer is read whole, as when it was decoded at the end.
  double seconds() const override {
    return meter_.active() && parsed_ ? meter_.get()->seconds() : 0;
  }
  int sample_rate() const override {
    return meter_.active() && parsed_ ? meter_.get()->sample_rate() : 0;
  }
  bool Reset() override {
    started_ = false;
    parsed_ = false;
    error_ = absl::OkStatus();
    bytes_ = 0;
    decoded_ = 0;
    feed_ = common::AudioFeed{};
    meter_.Release();
    return true;
  }

 private:
  static AudioEventSpec WholeBody(AudioEventSpec spec) {
    spec.max_event_bytes = kMaxJsonBody;
    return spec;
  }
  void Start() {
    if (started_) return;
    started_ = true;
    parser_.Begin();
  }
  // Decoded audio into the meter. Servers put WAV here mostly, but MP3/Opus/FLAC too: the
  // meter sniffs the bytes.
  absl::Status OnAudio(absl::string_view audio) {
    auto meter = meter_.Get(meter_options_);
    if (!meter.ok()) return meter.status();
    decoded_ += audio.size();
    if (analyser_ != nullptr) analyser_->Audio(meter_options_, audio);
    auto feed = (*meter)->Feed(audio);
    if (capture_ != nullptr) capture_->Append(audio, **meter, meter_options_);  // ASR sample
    if (!feed.ok()) return feed.status();
    Add(feed_, *feed);
    return absl::OkStatus();
  }
  static void Add(common::AudioFeed& total, const common::AudioFeed& part) {
    total.audio_bytes += part.audio_bytes;
    total.audio_s += part.audio_s;
  }

  AudioEventParser parser_;
  common::MeterOptions meter_options_;
  bool started_ = false;
  bool parsed_ = false;  // the whole answer was read, with audio in it
  absl::Status error_;   // the first error, reported at the end
  size_t bytes_ = 0;
  size_t decoded_ = 0;
  common::AudioFeed feed_;  // of the whole answer, reported at the end
  MeterSlot meter_;
};

// Audio carried in JSON messages (SSE events or WebSocket messages) and, for WebSocket, in
// binary frames. A metadata message (sample_rate, encoding) before the first audio sets how raw
// PCM is read.
class EventAudio {
 public:
  // `analyser` is the owning decoder's analyser_ (null: none), read at each audio piece.
  EventAudio(AudioEventSpec spec, common::MeterOptions meter_options,
             common::AudioAnalyser* const& analyser)
      : known_(spec.known_types),
        acks_(spec.ack_types),
        parser_(std::move(spec)),
        base_options_(meter_options),
        options_(std::move(meter_options)),
        analyser_(analyser) {}

  // Ready for another answer (a metadata message may have changed the meter's options).
  void Reset() {
    options_.format.assign(base_options_.format);
    options_.content_type.assign(base_options_.content_type);
    options_.sample_rate = base_options_.sample_rate;
    options_.channels = base_options_.channels;
    meter_.Release();
  }

  absl::StatusOr<common::AudioFeed> Audio(absl::string_view bytes) {
    if (bytes.empty()) return common::AudioFeed{};
    auto meter = meter_.Get(options_);
    if (!meter.ok()) return meter.status();
    if (analyser_ != nullptr) analyser_->Audio(options_, bytes);
    auto feed = (*meter)->Feed(bytes);
    if (capture_ != nullptr) capture_->Append(bytes, **meter, options_);  // ASR sample
    return feed;
  }

  void set_capture(AudioCapture* capture) { capture_ = capture; }

  // One JSON message; `done`/`ignored` report what it meant.
  absl::StatusOr<MessageResult> Json(absl::string_view json) {
    if (absl::Status st = parser_.Parse(json); !st.ok()) return st;
    const AudioEvent* ev = &parser_.event();
    if (absl::Status st = CheckKind(*ev); !st.ok()) return st;
    MessageResult r;
    r.ignored = ev->ignored;
    r.done = ev->done;
    r.acknowledged = Ack(*ev);
    if (!meter_.active()) Metadata(*ev);
    auto feed = Audio(ev->audio);
    if (!feed.ok()) return feed.status();
    r.feed = *feed;
    return r;
  }

  // One JSON message in pieces (an SSE event's data, as it arrives): Begin, Write..., End.
  void Begin() {
    parser_.Begin();
    feed_ = common::AudioFeed{};
  }
  absl::Status Write(absl::string_view part) {
    return parser_.Write(part, [this](absl::string_view a) { return OnAudio(a); });
  }
  absl::StatusOr<MessageResult> End() {
    if (absl::Status st = parser_.End([this](absl::string_view a) { return OnAudio(a); }); !st.ok())
      return st;
    const AudioEvent* ev = &parser_.event();
    if (absl::Status st = CheckKind(*ev); !st.ok()) return st;
    MessageResult r;
    r.ignored = ev->ignored;
    r.done = ev->done;
    r.acknowledged = Ack(*ev);
    if (!meter_.active()) Metadata(*ev);
    r.feed = feed_;
    return r;
  }

  // The audio of the message being read in pieces so far.
  double message_s() const { return feed_.audio_s; }

  absl::Status Finish() { return meter_.active() ? meter_.get()->Finish() : absl::OkStatus(); }
  double seconds() const { return meter_.active() ? meter_.get()->seconds() : 0; }
  int sample_rate() const { return meter_.active() ? meter_.get()->sample_rate() : 0; }

 private:
  // AudioEventSpec::known_types: a kind the protocol does not define is refused (its first 40
  // bytes named, printable ASCII only: it is the server's input).
  absl::Status CheckKind(const AudioEvent& ev) const {
    if (known_.empty() || ev.done || ev.ignored) return absl::OkStatus();
    if (std::find(known_.begin(), known_.end(), ev.type) != known_.end()) return absl::OkStatus();
    std::string shown = ev.type.substr(0, 40);
    for (char& c : shown) {
      if (c < 0x20 || c > 0x7E) c = '?';
    }
    return absl::UnimplementedError(absl::StrCat("unknown message type '", shown, "'"));
  }
  // A metadata message before the first audio sets how raw PCM is read.
  void Metadata(const AudioEvent& ev) {
    if (ev.sample_rate > 0) options_.sample_rate = ev.sample_rate;
    if (!ev.encoding.empty()) options_.format = ev.encoding;
  }
  // The decoded audio of a message in pieces, into the meter; counted in feed_.
  absl::Status OnAudio(absl::string_view audio) {
    if (!meter_.active()) Metadata(parser_.event());
    auto feed = Audio(audio);
    if (!feed.ok()) return feed.status();
    feed_.audio_bytes += feed->audio_bytes;
    feed_.audio_s += feed->audio_s;
    return absl::OkStatus();
  }

  bool Ack(const AudioEvent& ev) const {
    return ev.done && std::find(acks_.begin(), acks_.end(), ev.type) != acks_.end();
  }

  const std::vector<std::string> known_;
  const std::vector<std::string> acks_;
  AudioEventParser parser_;  // its buffers are reused event after event, answer after answer
  const common::MeterOptions base_options_;
  common::MeterOptions options_;
  MeterSlot meter_;
  common::AudioFeed feed_;  // of the message being read in pieces
  common::AudioAnalyser* const& analyser_;
  AudioCapture* capture_ = nullptr;  // the ASR sample (null: off)
};

void Add(common::AudioFeed& total, const common::AudioFeed& part) {
  total.audio_bytes += part.audio_bytes;
  total.audio_s += part.audio_s;
}

// text/event-stream whose events carry base64 audio (OpenAI stream_format "sse"). Each event's
// data goes to the JSON parser as it arrives, its audio into the meter: an event is not held
// whole, so memory does not grow with it.
class SseAudioDecoder final : public ResponseDecoder, private SseHandler {
 public:
  SseAudioDecoder(AudioEventSpec spec, common::MeterOptions meter_options)
      : marked_(!spec.done_types.empty() || !spec.final_field.empty()),
        parser_(spec.max_event_bytes),
        audio_(std::move(spec), std::move(meter_options), analyser_) {}
  absl::StatusOr<common::AudioFeed> OnBody(absl::string_view piece) override {
    if (!error_.ok()) return error_;
    Start();
    const absl::Status st = parser_.Feed(piece, *this);
    if (!st.ok()) Freeze();
    if (absl::Status bad = Settle(); !bad.ok()) return bad;
    if (!st.ok()) {
      // An event over the bound: the events completed before it in this piece were received.
      if (total_.audio_bytes == 0) return st;
      if (error_.ok()) error_ = st;
    }
    return total_;
  }
  absl::StatusOr<common::AudioFeed> Finish() override {
    if (!error_.ok()) return error_;
    Start();
    if (absl::Status st = parser_.Finish(*this); !st.ok()) {
      Freeze();
      return st;
    }
    if (absl::Status bad = Settle(); !bad.ok()) return bad;
    // A stream that names its end event but ended without it was cut short (a crashed worker,
    // a proxy's timeout): whatever audio came is kept, but the answer is not whole.
    if (marked_ && !done_) return absl::DataLossError("event stream ended before its end event");
    if (absl::Status st = audio_.Finish(); !st.ok()) return st;
    return total_;
  }
  double seconds() const override { return frozen_s_ >= 0 ? frozen_s_ : audio_.seconds(); }
  void set_capture(AudioCapture* capture) override { audio_.set_capture(capture); }
  int sample_rate() const override { return audio_.sample_rate(); }
  bool Reset() override {
    frozen_s_ = -1;
    parser_.Reset();
    audio_.Reset();
    done_ = false;
    in_event_ = false;
    skip_event_ = false;
    error_ = absl::OkStatus();
    return true;
  }

 private:
  void Start() {
    total_ = common::AudioFeed{};
    event_error_ = absl::OkStatus();
  }
  // Nothing after the end event is part of the answer, nor after a bad event.
  bool Skipping() const { return done_ || !event_error_.ok() || !error_.ok(); }
  // SseHandler: the event's data as it arrives. A bad event is recorded, not returned, so the
  // events before it in the piece count (Settle).
  absl::Status Data(absl::string_view part) override {
    if (Skipping() || skip_event_) return absl::OkStatus();
    if (!in_event_) {
      in_event_ = true;
      audio_.Begin();
    }
    if (absl::Status st = audio_.Write(part); !st.ok()) {
      Freeze();
      in_event_ = false;
      skip_event_ = true;  // the rest of its data, in later pieces too
      event_error_ = st;
    }
    return absl::OkStatus();
  }
  absl::Status Dispatch(absl::string_view) override {
    if (Skipping() || skip_event_) {
      in_event_ = false;
      skip_event_ = false;
      return absl::OkStatus();
    }
    if (!in_event_) {  // "data:" with nothing after it
      in_event_ = true;
      audio_.Begin();
    }
    auto r = audio_.End();
    if (!r.ok()) {
      Freeze();
      in_event_ = false;
      event_error_ = r.status();
      return absl::OkStatus();
    }
    in_event_ = false;
    Add(total_, r->feed);
    done_ = r->done;
    return absl::OkStatus();
  }
  // A refused event's audio, handed to the meter as it arrived, is not part of the answer: the
  // answer's seconds stay those of the events before it.
  void Freeze() {
    if (frozen_s_ < 0) {
      frozen_s_ = std::max(0.0, audio_.seconds() - (in_event_ ? audio_.message_s() : 0));
    }
  }
  // A bad event fails the piece, unless audio arrived in the same read before it: that audio
  // was received and is timed, and the error is reported with the next piece or at the end.
  absl::Status Settle() {
    if (event_error_.ok()) return absl::OkStatus();
    if (total_.audio_bytes == 0) return event_error_;
    error_ = event_error_;
    return absl::OkStatus();
  }

  bool marked_;  // the dialect names an end event: a stream without one is truncated
  SseParser parser_;
  EventAudio audio_;
  bool done_ = false;
  bool in_event_ = false;    // audio_ has begun the event whose data is arriving
  bool skip_event_ = false;  // the event whose data is arriving went bad
  double frozen_s_ = -1;     // the answer's seconds once an event was refused, else -1
  absl::Status error_;
  common::AudioFeed total_;   // of the piece being read
  absl::Status event_error_;  // the first bad event of the piece being read
};

// WebSocket answers: binary frames of audio and JSON text messages (metadata, base64 audio, an
// end marker, errors).
class WsAudioDecoder final : public ResponseDecoder {
 public:
  WsAudioDecoder(AudioEventSpec spec, common::MeterOptions meter_options)
      : audio_(std::move(spec), std::move(meter_options), analyser_) {}
  absl::StatusOr<common::AudioFeed> OnBody(absl::string_view) override {
    return absl::UnimplementedError("a WebSocket answer has no HTTP body");
  }
  absl::StatusOr<MessageResult> OnMessage(absl::string_view payload, bool binary) override {
    if (!binary) return audio_.Json(payload);
    auto feed = audio_.Audio(payload);
    if (!feed.ok()) return feed.status();
    MessageResult r;
    r.feed = *feed;
    return r;
  }
  absl::StatusOr<MessageResult> OnMessagePart(absl::string_view piece, bool binary, bool first,
                                              bool last) override {
    if (binary) {
      auto feed = audio_.Audio(piece);
      if (!feed.ok()) return feed.status();
      MessageResult r;
      r.feed = *feed;
      return r;
    }
    if (first) audio_.Begin();
    if (absl::Status st = audio_.Write(piece); !st.ok()) return st;
    if (!last) return MessageResult{};
    // A text message's audio is reported with its last piece, as a whole.
    auto r = audio_.End();
    if (!r.ok()) return r.status();
    return r;
  }
  absl::StatusOr<common::AudioFeed> Finish() override {
    if (absl::Status st = audio_.Finish(); !st.ok()) return st;
    return common::AudioFeed{};
  }
  double seconds() const override { return audio_.seconds(); }
  int sample_rate() const override { return audio_.sample_rate(); }
  bool Reset() override {
    audio_.Reset();
    return true;
  }
  void set_capture(AudioCapture* capture) override { audio_.set_capture(capture); }

 private:
  EventAudio audio_;
};

template <class D, class... Args>
absl::StatusOr<std::unique_ptr<ResponseDecoder>> Decoder(Args&&... args) {
  return std::unique_ptr<ResponseDecoder>(std::make_unique<D>(std::forward<Args>(args)...));
}

bool IsEventStream(absl::string_view content_type) {
  return absl::StartsWithIgnoreCase(absl::StripAsciiWhitespace(content_type), "text/event-stream");
}

// ---------------------------------------------------------------------------------------------
// Dialects

// Request framing and transport settings shared by every dialect.
class DialectBase : public Dialect {
 public:
  DialectBase(v1::Target target, common::Url url, std::vector<v1::Header> secret_headers)
      : target_(std::move(target)), url_(std::move(url)), host_header_(HostHeader(url_)) {
    const bool tls = url_.scheme == "https" || url_.scheme == "wss";
    transport_.ws_headers = std::move(secret_headers);
    transport_.ws_headers.insert(transport_.ws_headers.end(), target_.headers().begin(),
                                 target_.headers().end());
    extra_headers_ = HeaderLines(transport_.ws_headers);
    transport_.tls.enabled = tls;
    transport_.tls.host = url_.host;
    transport_.tls.ca_file = target_.ca_file();
    transport_.tls.insecure = target_.insecure();
    transport_.ws_host = host_header_;
    if (target_.max_event_bytes() > 0) transport_.max_event_bytes = target_.max_event_bytes();
  }

  const TransportSpec& transport() const override { return transport_; }

 protected:
  int Chars(absl::string_view text) const { return common::CountCharacters(text); }

  // An event spec bounded by target.max_event_bytes.
  AudioEventSpec Events() const {
    AudioEventSpec spec;
    spec.max_event_bytes = transport_.max_event_bytes;
    return spec;
  }

  // `target` is the path (with query) below the base URL.
  PreparedRequest Http(absl::string_view method, absl::string_view target, absl::string_view body,
                       absl::string_view content_type, absl::string_view accept, int chars) const {
    PreparedRequest req;
    req.chars = chars;
    req.wire = HttpRequestWire(url_, method, target, accept, extra_headers_, body, content_type);
    return req;
  }

  PreparedRequest PostJson(absl::string_view target, absl::string_view body,
                           absl::string_view accept, int chars) const {
    return Http("POST", target, body, "application/json", accept, chars);
  }

  void UseWebSocket(std::string target, bool reuse, bool ends_on_close) {
    transport_.kind = TransportSpec::Kind::kWebSocket;
    transport_.streamed = true;
    transport_.ws_target = absl::StrCat(url_.base_path, target);
    transport_.ws_reuse = reuse;
    transport_.ws_ends_on_close = ends_on_close;
  }

  // Raw PCM's rate when neither the server nor the plan says: 24 kHz (OpenAI's pcm, Kokoro,
  // torch-inference); mu-law is conventionally 8 kHz.
  int DefaultRate() const {
    if (target_.sample_rate() > 0) return target_.sample_rate();
    return target_.format() == "ulaw" ? 8000 : 24000;
  }

  common::MeterOptions Meter(std::string format, absl::string_view content_type = "") const {
    return common::MeterOptions{std::move(format), std::string(content_type), DefaultRate(), 1};
  }

  // The dialect's path, or the plan's override.
  std::string PathOr(absl::string_view fallback) const {
    return target_.path().empty() ? std::string(fallback) : target_.path();
  }

  v1::Target target_;
  common::Url url_;
  std::string host_header_;
  std::string extra_headers_;
  TransportSpec transport_;
};

// OpenAI /v1/audio/speech (Kokoro-FastAPI, openedai-speech, vLLM-Omni, ...): raw audio, streamed
// or not, or SSE events with base64 audio deltas.
class OpenAiDialect final : public DialectBase {
 public:
  OpenAiDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret)
      : DialectBase(std::move(target), std::move(url), std::move(secret)) {
    transport_.streamed = target_.stream_format() == "sse";
  }
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    const bool sse = target_.stream_format() == "sse";
    std::string body =
        absl::StrCat("{\"model\":", JsonQuote(target_.model().empty() ? "tts-1" : target_.model()),
                     ",\"input\":", JsonQuote(text), ",\"voice\":", JsonQuote(target_.voice()),
                     ",\"response_format\":", JsonQuote(target_.format()));
    if (target_.speed() > 0) absl::StrAppend(&body, ",\"speed\":", Number(target_.speed()));
    if (!target_.instructions().empty()) {
      absl::StrAppend(&body, ",\"instructions\":", JsonQuote(target_.instructions()));
    }
    if (sse) absl::StrAppend(&body, ",\"stream_format\":\"sse\"");
    absl::StrAppend(&body, ",\"stream\":", target_.streaming() || sse ? "true" : "false", "}");
    return PostJson(PathOr("/v1/audio/speech"), body, sse ? "text/event-stream" : "*/*",
                    Chars(text));
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const override {
    // A server that ignores stream_format answers with raw audio: read what was sent.
    if (IsEventStream(content_type)) {
      AudioEventSpec spec = Events();
      spec.done_types = {"speech.audio.done"};
      spec.error_types = {"error"};
      spec.error_field = "error";
      return Decoder<SseAudioDecoder>(spec, Meter(target_.format()));
    }
    return RawDecoder(Meter(target_.format(), content_type));
  }
};

// torch-inference: POST /tts/synthesize (JSON with base64 WAV), POST /tts/stream (chunked raw
// PCM), GET /audio/ws (WebSocket session: a JSON meta message, binary PCM frames, tts_done),
// and the older POST /synthesize ({model_name, inputs, ...} -> {audio_data, ...}).
class TorchInferenceDialect final : public DialectBase {
 public:
  TorchInferenceDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret)
      : DialectBase(std::move(target), std::move(url), std::move(secret)) {
    if (target_.stream_format() == "ws") {
      mode_ = Mode::kWebSocket;
      // One session serves request after request, as the server's protocol intends.
      UseWebSocket(PathOr("/audio/ws"), /*reuse=*/true, /*ends_on_close=*/false);
    } else if (target_.path() == "/synthesize") {
      mode_ = Mode::kLegacy;
    } else {
      mode_ = target_.streaming() ? Mode::kStream : Mode::kJson;
    }
  }
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    std::string speed;
    if (target_.speed() > 0) speed = absl::StrCat(",\"speed\":", Number(target_.speed()));
    switch (mode_) {
      case Mode::kWebSocket: {
        PreparedRequest req;
        req.chars = Chars(text);
        std::string msg = absl::StrCat("{\"type\":\"tts\",\"text\":", JsonQuote(text));
        if (!target_.voice().empty())
          absl::StrAppend(&msg, ",\"voice\":", JsonQuote(target_.voice()));
        absl::StrAppend(&msg, speed, "}");
        req.messages.push_back(std::move(msg));
        return req;
      }
      case Mode::kLegacy: {
        std::string body = absl::StrCat(
            "{\"model_name\":", JsonQuote(target_.model().empty() ? "default" : target_.model()),
            ",\"inputs\":", JsonQuote(text), ",\"voice\":", JsonQuote(target_.voice()),
            ",\"output_format\":", JsonQuote(target_.format().empty() ? "wav" : target_.format()),
            speed, "}");
        return PostJson("/synthesize", body, "application/json", Chars(text));
      }
      case Mode::kStream:
      case Mode::kJson: {
        std::string body = absl::StrCat("{\"text\":", JsonQuote(text),
                                        ",\"voice\":", JsonQuote(target_.voice()), speed, "}");
        const bool stream = mode_ == Mode::kStream;
        return PostJson(PathOr(stream ? "/tts/stream" : "/tts/synthesize"), body,
                        stream ? "*/*" : "application/json", Chars(text));
      }
    }
    return absl::InternalError("unreachable");
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const override {
    AudioEventSpec spec = Events();
    switch (mode_) {
      case Mode::kWebSocket:
        spec.done_types = {"tts_done"};
        spec.error_types = {"error"};
        spec.ignore_types = {"ready"};
        // pcm_s16le unless the meta message says otherwise (the server sends pcm_f32le).
        return Decoder<WsAudioDecoder>(spec, Meter("pcm"));
      case Mode::kLegacy:
      case Mode::kJson:
        spec.audio_fields = {"audio_base64", "audio_data", "audio"};
        spec.error_field = "error";
        return Decoder<JsonBase64Decoder>(spec, Meter("auto"));
      case Mode::kStream:
        return RawDecoder(Meter("pcm", content_type));
    }
    return absl::InternalError("unreachable");
  }

 private:
  enum class Mode { kJson, kStream, kWebSocket, kLegacy };
  Mode mode_ = Mode::kJson;
};

// Coqui TTS server: GET /api/tts?text=&speaker_id=&language_id= -> WAV. Texts too long for a
// request line go as a form body (the server reads request.values, i.e. query or form).
class CoquiDialect final : public DialectBase {
 public:
  using DialectBase::DialectBase;
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    std::string params = absl::StrCat("text=", UrlEncode(text));
    if (!target_.voice().empty())
      absl::StrAppend(&params, "&speaker_id=", UrlEncode(target_.voice()));
    if (!target_.language().empty()) {
      absl::StrAppend(&params, "&language_id=", UrlEncode(target_.language()));
    }
    const std::string path = PathOr("/api/tts");
    if (params.size() <= kMaxQueryBytes) {
      return Http("GET", absl::StrCat(path, "?", params), "", "", "audio/wav", Chars(text));
    }
    return Http("POST", path, params, "application/x-www-form-urlencoded", "audio/wav",
                Chars(text));
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const override {
    return RawDecoder(Meter("wav", content_type));
  }
};

// OpenTTS: GET /api/tts?voice=&text= -> WAV.
class OpenTtsDialect final : public DialectBase {
 public:
  using DialectBase::DialectBase;
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    std::string target = absl::StrCat(PathOr("/api/tts"), "?");
    if (!target_.voice().empty())
      absl::StrAppend(&target, "voice=", UrlEncode(target_.voice()), "&");
    absl::StrAppend(&target, "text=", UrlEncode(text));
    return Http("GET", target, "", "", "audio/wav", Chars(text));
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const override {
    return RawDecoder(Meter("wav", content_type));
  }
};

// Piper's HTTP server: POST /synthesize {text, voice} -> WAV. What the body is comes from its
// bytes (RIFF), whatever the Content-Type says.
class PiperDialect final : public DialectBase {
 public:
  using DialectBase::DialectBase;
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    std::string body = absl::StrCat("{\"text\":", JsonQuote(text));
    if (!target_.voice().empty()) absl::StrAppend(&body, ",\"voice\":", JsonQuote(target_.voice()));
    // Piper's speed is a phoneme length scale: 2x speed is half the length.
    if (target_.speed() > 0)
      absl::StrAppend(&body, ",\"length_scale\":", Number(1 / target_.speed()));
    body += "}";
    return PostJson(PathOr("/synthesize"), body, "audio/wav", Chars(text));
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(absl::string_view) const override {
    return RawDecoder(Meter("wav"));
  }
};

// ElevenLabs output_format for a plan format; "" when it has none.
std::string ElevenLabsFormat(const v1::Target& t) {
  const std::string& f = t.format();
  if (f == "mp3") return "mp3_44100_128";
  if (f == "ulaw") return "ulaw_8000";
  if (f == "pcm") return absl::StrCat("pcm_", t.sample_rate() > 0 ? t.sample_rate() : 24000);
  // Their own names pass through: mp3_22050_32, pcm_16000, ulaw_8000, ...
  std::vector<absl::string_view> parts = absl::StrSplit(f, '_');
  int n = 0;
  if ((parts.size() == 2 || parts.size() == 3) &&
      (parts[0] == "mp3" || parts[0] == "pcm" || parts[0] == "ulaw") &&
      absl::SimpleAtoi(parts[1], &n) && n > 0) {
    return f;
  }
  return "";
}

// ElevenLabs: POST /v1/text-to-speech/{voice}[/stream]?output_format=..., and the WebSockets
// (https://elevenlabs.io/docs/api-reference/websocket): .../stream-input, one socket per request
// (the server closes it after isFinal): {"text":" ", voice_settings} opens the stream, each piece
// is {"text": piece, "try_trigger_generation": true}, {"text":" ","flush":true} flushes and
// {"text":""} ends the input; answers {"audio": base64, "isFinal": null} then {"isFinal": true}.
// target.ws_endpoint multi-stream-input (https://elevenlabs.io/docs/api-reference/text-to-speech/
// v-1-text-to-speech-voice-id-multi-stream-input): one socket for many requests, each its own
// context: {"text", "context_id"}, {"context_id","flush":true}, {"context_id","close_context":
// true} ends it (barge-in closes the socket); answers carry "contextId" and end with
// {"isFinal": true}. Unconfirmed: whether a closed context answers isFinal (the synthetic
// server does) and the answers' exact spelling (isFinal vs is_final) on that endpoint.
// Unconfirmed too: whether today's stream-input still honours try_trigger_generation (sent anyway).
class ElevenLabsDialect final : public DialectBase {
 public:
  ElevenLabsDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret,
                    std::string output_format)
      : DialectBase(std::move(target), std::move(url), std::move(secret)),
        output_format_(std::move(output_format)) {
    std::vector<absl::string_view> parts = absl::StrSplit(output_format_, '_');
    meter_format_ = std::string(parts[0]);
    if (meter_format_ != "mp3") (void)absl::SimpleAtoi(parts[1], &rate_);
    query_ = absl::StrCat("?output_format=", output_format_);
    const std::string base = absl::StrCat("/v1/text-to-speech/", UrlEncode(target_.voice()));
    if (target_.stream_format() == "ws") {
      if (!target_.model().empty())
        absl::StrAppend(&query_, "&model_id=", UrlEncode(target_.model()));
      multi_ = target_.ws_endpoint() == "multi-stream-input";
      UseWebSocket(
          absl::StrCat(PathOr(absl::StrCat(base, multi_ ? "/multi-stream-input" : "/stream-input")),
                       query_),
          /*reuse=*/multi_, /*ends_on_close=*/false);
    } else {
      path_ = PathOr(target_.streaming() ? absl::StrCat(base, "/stream") : base);
    }
  }
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    std::string settings;
    if (target_.speed() > 0) {
      settings = absl::StrCat(",\"voice_settings\":{\"speed\":", Number(target_.speed()), "}");
    }
    if (transport_.kind == TransportSpec::Kind::kWebSocket && multi_) {
      return PreparePaced(text, {std::string(text)}, /*flush=*/true);
    }
    if (transport_.kind == TransportSpec::Kind::kWebSocket) {
      // Open the stream (a single space), send the text and flush it, then end the input.
      PreparedRequest req;
      req.chars = Chars(text);
      req.messages.push_back(absl::StrCat("{\"text\":\" \"", settings, "}"));
      req.messages.push_back(
          absl::StrCat("{\"text\":", JsonQuote(absl::StrCat(text, " ")), ",\"flush\":true}"));
      req.messages.push_back("{\"text\":\"\"}");
      return req;
    }
    std::string body = absl::StrCat("{\"text\":", JsonQuote(text));
    if (!target_.model().empty())
      absl::StrAppend(&body, ",\"model_id\":", JsonQuote(target_.model()));
    absl::StrAppend(&body, settings, "}");
    return PostJson(absl::StrCat(path_, query_), body,
                    meter_format_ == "mp3" ? "audio/mpeg" : "*/*", Chars(text));
  }
  absl::StatusOr<PreparedRequest> PreparePaced(absl::string_view text,
                                               const std::vector<std::string>& pieces,
                                               bool flush) const override {
    if (transport_.kind != TransportSpec::Kind::kWebSocket) {
      return absl::InvalidArgumentError(
          "pacing: api elevenlabs takes text over time only on its WebSocket (stream_format ws)");
    }
    std::string settings;
    if (target_.speed() > 0) {
      settings = absl::StrCat(",\"voice_settings\":{\"speed\":", Number(target_.speed()), "}");
    }
    PreparedRequest req;
    req.chars = Chars(text);
    if (multi_) {
      const std::string ctx = absl::StrCat(",\"context_id\":\"", kContextMarker, "\"");
      req.context_marker = true;
      req.messages.push_back(absl::StrCat("{\"text\":\" \"", ctx, settings, "}"));
      for (const std::string& p : pieces) {
        req.pieces.push_back({absl::StrCat("{\"text\":", JsonQuote(p), ctx, "}"), 1, Chars(p)});
      }
      // Flushed first so that the text still buffered is spoken before the context closes.
      req.closing.push_back(absl::StrCat("{\"flush\":true", ctx, "}"));
      req.closing.push_back(absl::StrCat("{\"close_context\":true", ctx, "}"));
      // Barge-in: a close frame (empty interrupt). close_context is this dialect's end of input,
      // so it cannot also be the interrupt.
      return req;
    }
    req.messages.push_back(absl::StrCat("{\"text\":\" \"", settings, "}"));
    for (const std::string& p : pieces) {
      req.pieces.push_back(
          {absl::StrCat("{\"text\":", JsonQuote(p), ",\"try_trigger_generation\":true}"), 1,
           Chars(p)});
    }
    if (flush) req.closing.push_back("{\"text\":\" \",\"flush\":true}");
    req.closing.push_back("{\"text\":\"\"}");
    // stream-input has no cancel: barge-in closes the socket (empty interrupt: a close frame).
    return req;
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const override {
    common::MeterOptions options{meter_format_, std::string(content_type), rate_, 1};
    if (transport_.kind == TransportSpec::Kind::kWebSocket) {
      AudioEventSpec spec = Events();
      spec.final_field = "isFinal";
      spec.error_field = "error";
      options.content_type.clear();
      return Decoder<WsAudioDecoder>(spec, options);
    }
    return RawDecoder(options);
  }

 private:
  std::string output_format_;
  std::string meter_format_;
  int rate_ = 0;
  std::string path_;
  std::string query_;
  bool multi_ = false;  // multi-stream-input
};

// The PCM encodings the WebSocket dialects below ask for, by plan format.
std::string PcmEncoding(absl::string_view format) {
  if (format == "pcm" || format == "pcm_s16le") return "pcm_s16le";
  if (format == "pcm_f32le") return "pcm_f32le";
  return "";
}

// Cartesia's TTS WebSocket (https://docs.cartesia.ai/api-reference/tts/websocket, contexts:
// https://docs.cartesia.ai/use-the-api/tts-websocket/contexts): one socket for many requests,
// each a context. A generation request {model_id, transcript, voice: {mode: id, id}, language,
// context_id, output_format: {container: raw, encoding, sample_rate}, continue} per piece
// (continue true), then one with an empty transcript and continue false ends the input;
// {context_id, cancel: true} interrupts. Answers: {"type":"chunk","data": base64}, then
// {"type":"done","done":true}; "error" fails; "timestamps", "phoneme_timestamps" and
// "flush_done" are known kinds. No flush message is sent (Cartesia flushes by flush_id, which
// ttsbench does not use). Auth: X-API-Key (--auth-header), version: cartesia_version in the query.
class CartesiaDialect final : public DialectBase {
 public:
  CartesiaDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret)
      : DialectBase(std::move(target), std::move(url), std::move(secret)) {
    UseWebSocket(PathOr("/tts/websocket?cartesia_version=2024-11-13"), /*reuse=*/true,
                 /*ends_on_close=*/false);
  }
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    return PreparePaced(text, {std::string(text)}, false);
  }
  absl::StatusOr<PreparedRequest> PreparePaced(absl::string_view text,
                                               const std::vector<std::string>& pieces,
                                               bool) const override {
    const std::string head = absl::StrCat(
        "{\"model_id\":", JsonQuote(target_.model().empty() ? "sonic-2" : target_.model()),
        ",\"voice\":{\"mode\":\"id\",\"id\":", JsonQuote(target_.voice()),
        "},\"language\":", JsonQuote(target_.language().empty() ? "en" : target_.language()),
        ",\"context_id\":\"", kContextMarker,
        "\",\"output_format\":{\"container\":\"raw\",\"encoding\":\"",
        PcmEncoding(target_.format()), "\",\"sample_rate\":", DefaultRate(), "},\"transcript\":");
    PreparedRequest req;
    req.chars = Chars(text);
    req.context_marker = true;
    for (const std::string& p : pieces) {
      req.pieces.push_back({absl::StrCat(head, JsonQuote(p), ",\"continue\":true}"), 1, Chars(p)});
    }
    req.closing.push_back(absl::StrCat(head, "\"\",\"continue\":false}"));
    req.interrupt = absl::StrCat("{\"context_id\":\"", kContextMarker, "\",\"cancel\":true}");
    return req;
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(absl::string_view) const override {
    AudioEventSpec spec = Events();
    spec.audio_fields = {"data"};
    spec.done_types = {"done"};
    spec.error_types = {"error"};
    spec.known_types = {"chunk", "timestamps", "phoneme_timestamps", "flush_done"};
    return Decoder<WsAudioDecoder>(spec, Meter(PcmEncoding(target_.format())));
  }
};

// Deepgram Aura's TTS WebSocket (https://developers.deepgram.com/reference/text-to-speech/
// speak-streaming; Flush: https://developers.deepgram.com/docs/tts-ws-flush; Clear:
// https://developers.deepgram.com/docs/tts-ws-clear): GET /v1/speak?model=&encoding=linear16&
// sample_rate=, one socket for many requests. {"type":"Speak","text": piece} per piece, then
// {"type":"Flush"} ends the input (always: Flushed is what ends the answer); {"type":"Clear"}
// interrupts and is answered {"type":"Cleared"}. Audio comes as binary frames of raw PCM;
// "Metadata" is ignored, "Warning" is a known kind, "Error" fails. The shape of Deepgram's error
// message ({"type":"Error", ...}) is taken from its SDKs, not confirmed on the reference page.
class DeepgramDialect final : public DialectBase {
 public:
  DeepgramDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret)
      : DialectBase(std::move(target), std::move(url), std::move(secret)) {
    const std::string model = !target_.model().empty() ? target_.model() : target_.voice();
    UseWebSocket(PathOr(absl::StrCat(
                     "/v1/speak?model=", UrlEncode(model.empty() ? "aura-asteria-en" : model),
                     "&encoding=linear16&sample_rate=", DefaultRate())),
                 /*reuse=*/true, /*ends_on_close=*/false);
  }
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    return PreparePaced(text, {std::string(text)}, true);
  }
  absl::StatusOr<PreparedRequest> PreparePaced(absl::string_view text,
                                               const std::vector<std::string>& pieces,
                                               bool) const override {
    PreparedRequest req;
    req.chars = Chars(text);
    for (const std::string& p : pieces) {
      req.pieces.push_back(
          {absl::StrCat("{\"type\":\"Speak\",\"text\":", JsonQuote(p), "}"), 1, Chars(p)});
    }
    req.closing.push_back("{\"type\":\"Flush\"}");
    req.interrupt = "{\"type\":\"Clear\"}";
    return req;
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(absl::string_view) const override {
    AudioEventSpec spec = Events();
    spec.audio_fields = {};
    spec.done_types = {"Flushed", "Cleared"};
    spec.ack_types = {"Cleared"};  // the turn's socket is clean: a conversation goes on with it
    spec.error_types = {"Error"};
    spec.ignore_types = {"Metadata"};
    spec.known_types = {"Warning"};
    return Decoder<WsAudioDecoder>(spec, Meter("pcm"));
  }
};

// vLLM-Omni's streaming-text speech WebSocket, WS /v1/audio/speech/stream (docs/serving/
// speech_api.md "Streaming Text Input (WebSocket)" and vllm_omni/entrypoints/openai/
// serving_speech_stream.py in github.com/vllm-project/vllm-omni): one socket for many requests
// (input.done flushes an utterance and the connection stays open). Each request sends
// {"type":"session.config", model, voice, response_format: pcm, stream_audio: true,
// split_granularity: sentence, language, speed} (sticky, replaceable between utterances), then
// {"type":"input.text","text": piece} per piece and {"type":"input.done"}. Answers: per sentence
// {"type":"audio.start", sample_rate (pcm), ...}, binary frames of PCM s16le, {"type":
// "audio.done"}; {"type":"session.done"} ends the utterance; {"type":"error","message"} fails.
// "audio.chunk" (base64 "audio_b64", word timestamps only) is a known kind. The protocol has no
// cancel: barge-in closes the socket. SGLang-Omni: no speech WebSocket of its own could be
// confirmed in its public docs or code; this dialect targets vLLM-Omni's shape only.
class VllmOmniDialect final : public DialectBase {
 public:
  VllmOmniDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret)
      : DialectBase(std::move(target), std::move(url), std::move(secret)) {
    UseWebSocket(PathOr("/v1/audio/speech/stream"), /*reuse=*/true, /*ends_on_close=*/false);
  }
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    return PreparePaced(text, {std::string(text)}, false);
  }
  absl::StatusOr<PreparedRequest> PreparePaced(absl::string_view text,
                                               const std::vector<std::string>& pieces,
                                               bool) const override {
    std::string config = "{\"type\":\"session.config\"";
    if (!target_.model().empty())
      absl::StrAppend(&config, ",\"model\":", JsonQuote(target_.model()));
    if (!target_.voice().empty())
      absl::StrAppend(&config, ",\"voice\":", JsonQuote(target_.voice()));
    if (!target_.language().empty()) {
      absl::StrAppend(&config, ",\"language\":", JsonQuote(target_.language()));
    }
    if (target_.speed() > 0) absl::StrAppend(&config, ",\"speed\":", Number(target_.speed()));
    absl::StrAppend(&config,
                    ",\"response_format\":\"pcm\",\"stream_audio\":true,"
                    "\"split_granularity\":\"sentence\"}");
    PreparedRequest req;
    req.chars = Chars(text);
    req.messages.push_back(std::move(config));
    for (const std::string& p : pieces) {
      req.pieces.push_back(
          {absl::StrCat("{\"type\":\"input.text\",\"text\":", JsonQuote(p), "}"), 1, Chars(p)});
    }
    req.closing.push_back("{\"type\":\"input.done\"}");
    return req;  // no cancel message: barge-in is a close frame (empty interrupt)
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(absl::string_view) const override {
    AudioEventSpec spec = Events();
    spec.audio_fields = {"audio_b64"};
    spec.done_types = {"session.done"};
    spec.error_types = {"error"};
    spec.known_types = {"audio.start", "audio.done", "audio.chunk"};
    return Decoder<WsAudioDecoder>(spec, Meter("pcm"));
  }
};

// ---------------------------------------------------------------------------------------------
// Templates

enum class Escape { kUrl, kJson, kRaw };

struct TemplateVars {
  std::string voice, format, model, speed, sample_rate;
};

std::string Expand(absl::string_view tmpl, const TemplateVars& v, absl::string_view text,
                   Escape escape) {
  auto esc = [escape](absl::string_view s) {
    switch (escape) {
      case Escape::kUrl:
        return UrlEncode(s);
      case Escape::kJson:
        return JsonEscape(s);
      case Escape::kRaw:
        break;
    }
    return std::string(s);
  };
  return absl::StrReplaceAll(tmpl, {{"{text}", esc(text)},
                                    {"{voice}", esc(v.voice)},
                                    {"{format}", esc(v.format)},
                                    {"{model}", esc(v.model)},
                                    {"{speed}", v.speed},
                                    {"{sample_rate}", v.sample_rate}});
}

bool IsJsonContentType(absl::string_view ct) {
  return absl::StrContains(absl::AsciiStrToLower(ct), "json");
}

class TemplateDialect final : public DialectBase {
 public:
  TemplateDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret)
      : DialectBase(std::move(target), std::move(url), std::move(secret)),
        t_(WithTemplateDefaults(target_.request_template())) {
    const v1::RequestTemplate& t = t_;
    vars_.voice = target_.voice();
    vars_.format = target_.format();
    vars_.model = target_.model();
    vars_.speed = Number(target_.speed() > 0 ? target_.speed() : 1.0);
    vars_.sample_rate = absl::StrCat(DefaultRate());
    spec_ = Events();
    spec_.audio_fields = {t.audio_field()};
    if (const size_t eq = t.done().find('='); eq != std::string::npos) {
      spec_.type_field = t.done().substr(0, eq);
      spec_.done_types = {t.done().substr(eq + 1)};
    } else {
      spec_.final_field = t.done();
    }
    transport_.streamed = t.audio() == "sse";
    if (t.audio() == "websocket") {
      // Without an end marker only the server's close ends an answer: a socket per request.
      const bool marked = !t.done().empty();
      UseWebSocket(Target(""), /*reuse=*/marked, /*ends_on_close=*/!marked);
    }
  }

  absl::Status Validate() const {
    if (std::optional<TemplateIssue> issue = FindTemplateIssue(t_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("template ", issue->field, ": ", issue->problem));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    const v1::RequestTemplate& t = t_;
    if (transport_.kind == TransportSpec::Kind::kWebSocket) {
      PreparedRequest req;
      req.chars = Chars(text);
      for (const std::string& m : t.messages()) {
        req.messages.push_back(Expand(m, vars_, text, Escape::kJson));
      }
      return req;
    }
    std::string body = Expand(t.body(), vars_, text,
                              IsJsonContentType(t.content_type()) ? Escape::kJson : Escape::kRaw);
    PreparedRequest req = Http(t.method(), Target(text), body, t.content_type(),
                               t.audio() == "sse" ? "text/event-stream" : "*/*", Chars(text));
    if (!t.headers().empty()) {
      // Template headers go before the blank line that ends the head.
      std::string extra;
      for (const v1::Header& h : t.headers()) {
        const std::string value = Expand(h.value(), vars_, text, Escape::kRaw);
        if (!HeaderSafe(value)) return absl::InvalidArgumentError("header value has a line break");
        absl::StrAppend(&extra, h.name(), ": ", value, "\r\n");
      }
      const size_t head_end = req.wire.find("\r\n\r\n");
      req.wire.insert(head_end + 2, extra);
    }
    return req;
  }

  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const override {
    const v1::RequestTemplate& t = t_;
    if (t.audio() == "websocket") return Decoder<WsAudioDecoder>(spec_, Meter(target_.format()));
    if (t.audio() == "sse" && IsEventStream(content_type)) {
      return Decoder<SseAudioDecoder>(spec_, Meter(target_.format()));
    }
    if (t.audio() == "json") {
      AudioEventSpec spec = spec_;
      spec.error_field = "error";
      return Decoder<JsonBase64Decoder>(spec, Meter(target_.format()));
    }
    return RawDecoder(Meter(target_.format(), content_type));
  }

 private:
  // Path and query, filled in ({text} in the query for GET APIs).
  std::string Target(absl::string_view text) const {
    const v1::RequestTemplate& t = t_;
    std::string out = Expand(t.path(), vars_, text, Escape::kUrl);
    const char* sep = out.find('?') == std::string::npos ? "?" : "&";
    for (const v1::Header& q : t.query()) {
      absl::StrAppend(&out, sep, UrlEncode(q.name()), "=",
                      Expand(q.value(), vars_, text, Escape::kUrl));
      sep = "&";
    }
    return out;
  }

  // The template with its defaults: the dialect's compiled form of target.request_template.
  v1::RequestTemplate t_;
  TemplateVars vars_;
  AudioEventSpec spec_;
};

// ---------------------------------------------------------------------------------------------
// Command: a local program per request; the arguments are filled in word by word (no shell).

class CommandDialect final : public DialectBase {
 public:
  CommandDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret)
      : DialectBase(std::move(target), std::move(url), std::move(secret)) {
    vars_.voice = target_.voice();
    vars_.format = Format();
    vars_.model = target_.model();
    vars_.speed = Number(target_.speed() > 0 ? target_.speed() : 1.0);
    vars_.sample_rate = absl::StrCat(DefaultRate());
    as_argument_ = CommandTextAsArgument(target_.command());
    transport_.kind = TransportSpec::Kind::kCommand;
    // Standard output is a stream: first audio is its first audio bytes, each read a chunk.
    transport_.streamed = true;
  }

  absl::Status Validate() const {
    if (std::optional<TemplateIssue> issue = FindCommandIssue(target_.command())) {
      return absl::InvalidArgumentError(
          absl::StrCat("command ", issue->field, ": ", issue->problem));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    PreparedRequest req;
    req.chars = Chars(text);
    const auto& argv = target_.command().argv();
    req.argv.reserve(static_cast<size_t>(argv.size()));
    req.argv.push_back(argv[0]);  // the program: never a template
    for (int i = 1; i < argv.size(); ++i)
      req.argv.push_back(Expand(argv[i], vars_, text, Escape::kRaw));
    if (!as_argument_) req.wire = absl::StrCat(text, "\n");
    return req;
  }

  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(absl::string_view) const override {
    common::MeterOptions options = Meter(Format());
    options.channels = target_.command().channels() > 0 ? target_.command().channels() : 1;
    return RawDecoder(options);
  }

 private:
  std::string Format() const { return target_.format().empty() ? "wav" : target_.format(); }

  TemplateVars vars_;
  bool as_argument_ = false;
};

constexpr absl::string_view kApis[] = {"openai", "torch-inference", "coqui",    "opentts",
                                       "piper",  "elevenlabs",      "template", "command",
                                       "riva",   "cartesia",        "deepgram", "vllm-omni"};

}  // namespace

absl::StatusOr<PreparedRequest> Dialect::PreparePaced(absl::string_view,
                                                      const std::vector<std::string>&, bool) const {
  return absl::InvalidArgumentError(
      "pacing needs a WebSocket API that takes text over time (elevenlabs with stream_format "
      "ws, cartesia, deepgram, vllm-omni)");
}

absl::StatusOr<MessageResult> ResponseDecoder::OnMessage(absl::string_view, bool) {
  return absl::UnimplementedError("this answer is not read as WebSocket messages");
}

absl::StatusOr<MessageResult> ResponseDecoder::OnMessagePart(absl::string_view, bool, bool, bool) {
  return absl::UnimplementedError("this answer is not read as WebSocket messages");
}

namespace {

absl::StatusOr<std::unique_ptr<Dialect>> NewDialect(const v1::Target& target,
                                                    const common::Url& url,
                                                    std::vector<v1::Header> secret_headers) {
  for (const v1::Header& h : secret_headers) {
    // Never echo a secret value: name the header only.
    if (!IsToken(h.name()) || !HeaderSafe(h.value())) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth header '", h.name(), "' has an invalid name or a line break"));
    }
  }
  for (const v1::Header& h : target.headers()) {
    if (!IsToken(h.name()) || !HeaderSafe(h.value())) {
      return absl::InvalidArgumentError(
          absl::StrCat("header '", h.name(), "' has an invalid name or a line break"));
    }
  }
  if (const std::string& path = target.path();
      !path.empty() &&
      (path[0] != '/' || !HeaderSafe(path) || path.find(' ') != std::string::npos)) {
    return absl::InvalidArgumentError("path must start with / and hold no spaces");
  }
  const std::string& api = target.api();
  const std::string& sf = target.stream_format();
  if (sf != "" && sf != "sse" && sf != "ws") {
    return absl::InvalidArgumentError(
        absl::StrCat("stream_format '", sf, "' must be empty, sse or ws"));
  }
  if (sf == "sse" && api != "openai") {
    return absl::InvalidArgumentError("stream_format sse is only for api openai");
  }
  if (sf == "ws" && api != "torch-inference" && api != "elevenlabs") {
    return absl::InvalidArgumentError(
        "stream_format ws is only for api torch-inference or elevenlabs (template: audio "
        "websocket)");
  }
  auto make = [&](auto* tag) -> std::unique_ptr<Dialect> {
    using D = std::remove_pointer_t<decltype(tag)>;
    return std::make_unique<D>(target, url, std::move(secret_headers));
  };
  if (api == "openai") {
    static constexpr absl::string_view kFormats[] = {"wav", "pcm",  "mp3", "opus",
                                                     "aac", "flac", "ulaw"};
    if (std::find(std::begin(kFormats), std::end(kFormats), target.format()) ==
        std::end(kFormats)) {
      return absl::InvalidArgumentError(
          absl::StrCat("format '", target.format(),
                       "' is not supported (wav, pcm, mp3, opus, aac, flac, ulaw)"));
    }
    return make(static_cast<OpenAiDialect*>(nullptr));
  }
  if (api == "torch-inference") return make(static_cast<TorchInferenceDialect*>(nullptr));
  if (api == "cartesia" || api == "deepgram") {
    if (PcmEncoding(target.format()).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("format '", target.format(), "' is not supported by api ", api,
                       api == "cartesia" ? " (pcm, pcm_f32le)" : " (pcm: linear16)"));
    }
    if (api == "deepgram" && target.format() == "pcm_f32le") {
      return absl::InvalidArgumentError("api deepgram sends pcm (linear16), not pcm_f32le");
    }
    if (api == "cartesia" && target.voice().empty()) {
      return absl::InvalidArgumentError("api cartesia needs a voice (its voice id)");
    }
    if (api == "cartesia") return make(static_cast<CartesiaDialect*>(nullptr));
    return make(static_cast<DeepgramDialect*>(nullptr));
  }
  if (api == "vllm-omni") {
    if (target.format() != "pcm") {
      return absl::InvalidArgumentError(absl::StrCat(
          "format '", target.format(),
          "' is not supported by api vllm-omni (pcm: ", "its streamed audio is PCM s16le)"));
    }
    return make(static_cast<VllmOmniDialect*>(nullptr));
  }
  if (api == "coqui") return make(static_cast<CoquiDialect*>(nullptr));
  if (api == "opentts") return make(static_cast<OpenTtsDialect*>(nullptr));
  if (api == "piper") return make(static_cast<PiperDialect*>(nullptr));
  if (api == "elevenlabs") {
    if (target.voice().empty()) {
      return absl::InvalidArgumentError("api elevenlabs needs a voice (its voice id)");
    }
    std::string output_format = ElevenLabsFormat(target);
    if (output_format.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("format '", target.format(),
                       "' is not an ElevenLabs output format (mp3, pcm, ulaw, or their own names "
                       "such as mp3_44100_128, pcm_16000)"));
    }
    return std::unique_ptr<Dialect>(std::make_unique<ElevenLabsDialect>(
        target, url, std::move(secret_headers), std::move(output_format)));
  }
  if (api == "command") {
    auto d = std::make_unique<CommandDialect>(target, url, std::move(secret_headers));
    if (absl::Status st = d->Validate(); !st.ok()) return st;
    return std::unique_ptr<Dialect>(std::move(d));
  }
  if (api == "riva") return MakeRivaDialect(target, url, std::move(secret_headers));
  if (api == "template") {
    auto d = std::make_unique<TemplateDialect>(target, url, std::move(secret_headers));
    if (absl::Status st = d->Validate(); !st.ok()) return st;
    return std::unique_ptr<Dialect>(std::move(d));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown api '", api, "' (", absl::StrJoin(kApis, ", "), ")"));
}

}  // namespace

v1::RequestTemplate WithTemplateDefaults(v1::RequestTemplate t) {
  if (t.method().empty()) t.set_method("POST");
  if (t.content_type().empty()) t.set_content_type("application/json");
  if (t.audio().empty()) t.set_audio("body");
  if (t.audio_field().empty()) t.set_audio_field("audio");
  return t;
}

std::optional<TemplateIssue> FindTemplateIssue(const v1::RequestTemplate& t) {
  auto issue = [](std::string field, std::string problem) {
    return std::optional<TemplateIssue>(TemplateIssue{std::move(field), std::move(problem)});
  };
  auto one_of = [](const auto& values, const std::string& v) {
    return std::find(std::begin(values), std::end(values), v) != std::end(values);
  };
  if (!one_of(kTemplateAudio, t.audio())) {
    return issue("audio", absl::StrCat("must be ", absl::StrJoin(kTemplateAudio, ", "), ", got '",
                                       t.audio(), "'"));
  }
  if (t.path().empty() || t.path()[0] != '/') {
    return issue("path", "required for api: template, and must start with /");
  }
  if (!one_of(kTemplateMethods, t.method())) {
    return issue("method", absl::StrCat("must be ", absl::StrJoin(kTemplateMethods, ", "),
                                        ", got '", t.method(), "'"));
  }
  if (t.method() == "GET" && !t.body().empty()) return issue("body", "needs method POST or PUT");
  if (!HeaderSafe(t.content_type())) return issue("content_type", "contains a line break");
  for (int i = 0; i < t.headers_size(); ++i) {
    if (!IsToken(t.headers(i).name())) {
      return issue(absl::StrCat("headers[", i, "].name"), "is not a valid header name");
    }
    if (!HeaderSafe(t.headers(i).value())) {
      return issue(absl::StrCat("headers[", i, "].value"), "contains a line break");
    }
  }
  if (t.audio() == "websocket") {
    if (t.messages().empty()) return issue("messages", "audio: websocket needs messages to send");
    if (absl::StrContains(t.path(), "{text}")) {
      return issue("path", "a websocket template sends {text} in messages, not in the path");
    }
    for (int i = 0; i < t.query_size(); ++i) {
      if (absl::StrContains(t.query(i).value(), "{text}")) {
        return issue(absl::StrCat("query[", i, "].value"),
                     "a websocket template sends {text} in messages, not in the query");
      }
    }
  }
  // A body that is not JSON once filled in is caught now, not as 4xx under load.
  if (!t.body().empty() && IsJsonContentType(t.content_type())) {
    const TemplateVars sample{"voice", "wav", "model", "1", "24000"};
    const std::string body = Expand(t.body(), sample, "a \"quoted\"\nline", Escape::kJson);
    boost::json::error_code ec;
    boost::json::parse(body, ec);
    if (ec) return issue("body", "is not JSON once filled in (write \"{text}\" inside quotes)");
  }
  return std::nullopt;
}

std::optional<TemplateIssue> FindCommandIssue(const v1::CommandTemplate& c) {
  auto issue = [](std::string field, std::string problem) {
    return std::optional<TemplateIssue>(TemplateIssue{std::move(field), std::move(problem)});
  };
  if (c.argv().empty() || c.argv(0).empty()) {
    return issue("argv", "required for api: command: the program and its arguments");
  }
  if (c.argv(0).find('{') != std::string::npos) {
    return issue("argv[0]", "the program is a fixed name, not a template");
  }
  static constexpr absl::string_view kPlaceholders[] = {"text",  "voice", "format",
                                                        "model", "speed", "sample_rate"};
  for (int i = 0; i < c.argv_size(); ++i) {
    const std::string& arg = c.argv(i);
    if (arg.find('\0') != std::string::npos) {
      return issue(absl::StrCat("argv[", i, "]"), "contains a NUL byte");
    }
    // A mistyped placeholder would go to the program as it is, and every request would still
    // "succeed" with the wrong input: refused instead.
    for (size_t open = arg.find('{'); open != std::string::npos; open = arg.find('{', open + 1)) {
      const size_t close = arg.find('}', open);
      if (close == std::string::npos) break;
      const absl::string_view name = absl::string_view(arg).substr(open + 1, close - open - 1);
      const bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
        return absl::ascii_islower(static_cast<unsigned char>(ch)) || ch == '_';
      });
      if (word && std::find(std::begin(kPlaceholders), std::end(kPlaceholders), name) ==
                      std::end(kPlaceholders)) {
        return issue(absl::StrCat("argv[", i, "]"),
                     absl::StrCat("unknown placeholder {", name,
                                  "}; known: {text} {voice} {format} {model} {speed} "
                                  "{sample_rate}"));
      }
    }
  }
  if (!c.input().empty() && std::find(std::begin(kCommandInputs), std::end(kCommandInputs),
                                      c.input()) == std::end(kCommandInputs)) {
    return issue("input", absl::StrCat("must be ", absl::StrJoin(kCommandInputs, ", "), ", got '",
                                       c.input(), "'"));
  }
  const bool text_in_args = std::any_of(c.argv().begin() + 1, c.argv().end(), [](const auto& a) {
    return absl::StrContains(a, "{text}");
  });
  if (c.input() == "argument" && !text_in_args) {
    return issue("input", "argument needs an argument holding {text}");
  }
  if (c.input() == "stdin" && text_in_args) {
    return issue("input", "stdin, but an argument holds {text} too (the text would go twice)");
  }
  if (c.channels() < 0 || c.channels() > 64) return issue("channels", "must be within 1 and 64");
  return std::nullopt;
}

bool CommandTextAsArgument(const v1::CommandTemplate& c) {
  if (!c.input().empty()) return c.input() == "argument";
  return std::any_of(c.argv().begin(), c.argv().end(),
                     [](const auto& a) { return absl::StrContains(a, "{text}"); });
}

absl::StatusOr<std::vector<std::string>> SplitCommandWords(absl::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  enum class Quote { kNone, kSingle, kDouble } quote = Quote::kNone;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    switch (quote) {
      case Quote::kSingle:
        if (c == '\'') {
          quote = Quote::kNone;
        } else {
          word.push_back(c);
        }
        continue;
      case Quote::kDouble:
        if (c == '"') {
          quote = Quote::kNone;
        } else if (c == '\\' && i + 1 < line.size() && absl::StrContains("\"\\$`", line[i + 1])) {
          word.push_back(line[++i]);
        } else {
          word.push_back(c);
        }
        continue;
      case Quote::kNone:
        break;
    }
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      quote = Quote::kSingle;
    } else if (c == '"') {
      quote = Quote::kDouble;
    } else if (c == '\\') {
      if (i + 1 == line.size()) return absl::InvalidArgumentError("command ends with a backslash");
      word.push_back(line[++i]);
    } else {
      word.push_back(c);
    }
  }
  if (quote != Quote::kNone) {
    return absl::InvalidArgumentError(
        absl::StrCat("command has an unclosed ", quote == Quote::kSingle ? "'" : "\"", " quote"));
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return absl::InvalidArgumentError("command is empty");
  return words;
}

bool IsHeaderName(absl::string_view name) { return IsToken(name); }

bool IsHeaderValue(absl::string_view value) { return HeaderSafe(value); }

std::string HostHeader(const common::Url& url) {
  const bool tls = url.scheme == "https" || url.scheme == "wss";
  std::string host =
      url.host.find(':') != std::string::npos ? absl::StrCat("[", url.host, "]") : url.host;
  if (url.port != (tls ? 443 : 80)) absl::StrAppend(&host, ":", url.port);
  return host;
}

std::string HeaderLines(const std::vector<v1::Header>& headers) {
  std::string lines;
  for (const v1::Header& h : headers) absl::StrAppend(&lines, h.name(), ": ", h.value(), "\r\n");
  return lines;
}

std::string HttpRequestWire(const common::Url& url, absl::string_view method,
                            absl::string_view target, absl::string_view accept,
                            absl::string_view header_lines, absl::string_view body,
                            absl::string_view content_type) {
  std::string wire =
      absl::StrCat(method, " ", url.base_path, target, " HTTP/1.1\r\nHost: ", HostHeader(url),
                   "\r\nUser-Agent: ttsbench/0.1\r\nAccept: ", accept, "\r\n");
  if (!body.empty() || method != "GET") {
    absl::StrAppend(&wire, "Content-Type: ", content_type, "\r\nContent-Length: ", body.size(),
                    "\r\n");
  }
  absl::StrAppend(&wire, header_lines, "\r\n", body);
  return wire;
}

absl::StatusOr<std::unique_ptr<Dialect>> MakeDialect(const v1::Target& target,
                                                     const common::Url& url,
                                                     std::vector<v1::Header> secret_headers) {
  auto dialect = NewDialect(target, url, std::move(secret_headers));
  if (!dialect.ok()) return dialect.status();
  // A CA file that cannot be read fails the level before any load, not every request.
  if (const TlsOptions& tls = (*dialect)->transport().tls; tls.enabled) {
    auto ctx = MakeClientTlsContext(tls);
    if (!ctx.ok()) return ctx.status();
  }
  return dialect;
}

}  // namespace ttsbench::agent
