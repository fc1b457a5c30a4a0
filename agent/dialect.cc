#include "agent/dialect.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/texts.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace ttsbench::agent {
namespace {

// Bodies of a few MB of base64 audio are normal; refuse what no TTS answer needs.
constexpr size_t kMaxJsonBody = 256u << 20;

std::string JsonQuote(absl::string_view s) {
  google::protobuf::Value v;
  v.set_string_value(std::string(s));
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(v, &out);
  return out;
}

bool HeaderSafe(absl::string_view s) { return s.find_first_of("\r\n") == absl::string_view::npos; }

// Common request framing for JSON POSTs.
class HttpDialect : public Dialect {
 public:
  HttpDialect(v1::Target target, common::Url url, std::vector<v1::Header> secret_headers)
      : target_(std::move(target)), url_(std::move(url)) {
    host_header_ = url_.host;
    if (url_.port != (url_.tls() ? 443 : 80)) absl::StrAppend(&host_header_, ":", url_.port);
    for (const v1::Header& h : secret_headers) {
      absl::StrAppend(&extra_headers_, h.name(), ": ", h.value(), "\r\n");
    }
  }

 protected:
  PreparedRequest Post(absl::string_view path, absl::string_view body, absl::string_view accept,
                       int chars) const {
    PreparedRequest req;
    req.chars = chars;
    req.wire = absl::StrCat("POST ", url_.base_path, path, " HTTP/1.1\r\nHost: ", host_header_,
                            "\r\nUser-Agent: ttsbench/0.1\r\nAccept: ", accept,
                            "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                            "\r\n", extra_headers_, "\r\n", body);
    return req;
  }

  v1::Target target_;
  common::Url url_;
  std::string host_header_;
  std::string extra_headers_;
};

// Body bytes are audio (raw or WAV) as they arrive.
class StreamingAudioDecoder final : public ResponseDecoder {
 public:
  explicit StreamingAudioDecoder(std::unique_ptr<common::AudioMeter> meter)
      : meter_(std::move(meter)) {}
  absl::StatusOr<common::AudioFeed> OnBody(absl::string_view piece) override {
    return meter_->Feed(piece);
  }
  absl::StatusOr<common::AudioFeed> Finish() override {
    absl::Status st = meter_->Finish();
    if (!st.ok()) return st;
    return common::AudioFeed{};
  }
  double seconds() const override { return meter_->seconds(); }
  int sample_rate() const override { return meter_->sample_rate(); }

 private:
  std::unique_ptr<common::AudioMeter> meter_;
};

// JSON with base64 WAV in one of `fields`; audio is known only when the body is complete.
class JsonBase64Decoder final : public ResponseDecoder {
 public:
  explicit JsonBase64Decoder(std::vector<std::string> fields) : fields_(std::move(fields)) {}
  absl::StatusOr<common::AudioFeed> OnBody(absl::string_view piece) override {
    if (body_.size() + piece.size() > kMaxJsonBody) {
      return absl::InvalidArgumentError("JSON response too large");
    }
    body_.append(piece.data(), piece.size());
    return common::AudioFeed{};
  }
  absl::StatusOr<common::AudioFeed> Finish() override {
    google::protobuf::Struct doc;
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(body_, &doc, opts).ok()) {
      return absl::InvalidArgumentError("response is not JSON");
    }
    const google::protobuf::Value* field = nullptr;
    for (const std::string& name : fields_) {
      auto it = doc.fields().find(name);
      if (it != doc.fields().end() && it->second.has_string_value()) {
        field = &it->second;
        break;
      }
    }
    if (field == nullptr) return absl::InvalidArgumentError("JSON response has no audio field");
    std::string audio;
    if (!absl::Base64Unescape(field->string_value(), &audio)) {
      return absl::InvalidArgumentError("audio field is not base64");
    }
    body_.clear();
    // Servers put WAV here mostly, but MP3/Opus/FLAC too: the meter sniffs the bytes.
    auto meter = common::MakeMeter(common::MeterOptions{"auto", "", 0, 1});
    if (!meter.ok()) return meter.status();
    meter_ = std::move(*meter);
    auto feed = meter_->Feed(audio);
    if (!feed.ok()) return feed.status();
    absl::Status st = meter_->Finish();
    if (!st.ok()) return st;
    return feed;
  }
  double seconds() const override { return meter_ ? meter_->seconds() : 0; }
  int sample_rate() const override { return meter_ ? meter_->sample_rate() : 0; }

 private:
  std::vector<std::string> fields_;
  std::string body_;
  std::unique_ptr<common::AudioMeter> meter_;
};

class OpenAiDialect final : public HttpDialect {
 public:
  using HttpDialect::HttpDialect;
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    std::string body =
        absl::StrCat("{\"model\":", JsonQuote(target_.model().empty() ? "tts-1" : target_.model()),
                     ",\"input\":", JsonQuote(text), ",\"voice\":", JsonQuote(target_.voice()),
                     ",\"response_format\":", JsonQuote(target_.format()),
                     ",\"stream\":", target_.streaming() ? "true" : "false", "}");
    return Post("/v1/audio/speech", body, "*/*", common::CountCharacters(text));
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const override {
    // OpenAI's pcm is 24 kHz s16le mono unless the server or the plan says otherwise; mu-law
    // is conventionally 8 kHz.
    const int rate = target_.sample_rate() > 0    ? target_.sample_rate()
                     : target_.format() == "ulaw" ? 8000
                                                  : 24000;
    auto meter = common::MakeMeter(
        common::MeterOptions{target_.format(), std::string(content_type), rate, 1});
    if (!meter.ok()) return meter.status();
    return std::unique_ptr<ResponseDecoder>(
        std::make_unique<StreamingAudioDecoder>(std::move(*meter)));
  }
};

// torch-inference: /tts/stream (chunked raw PCM) when streaming, /tts/synthesize (JSON) if not.
class TorchInferenceDialect final : public HttpDialect {
 public:
  using HttpDialect::HttpDialect;
  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    std::string body =
        absl::StrCat("{\"text\":", JsonQuote(text), ",\"voice\":", JsonQuote(target_.voice()), "}");
    return Post(target_.streaming() ? "/tts/stream" : "/tts/synthesize", body,
                target_.streaming() ? "*/*" : "application/json", common::CountCharacters(text));
  }
  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const override {
    if (!target_.streaming()) {
      return std::unique_ptr<ResponseDecoder>(std::make_unique<JsonBase64Decoder>(
          std::vector<std::string>{"audio_base64", "audio_data", "audio"}));
    }
    auto meter = common::MakeMeterFor("pcm", content_type,
                                      target_.sample_rate() > 0 ? target_.sample_rate() : 24000);
    if (!meter.ok()) return meter.status();
    return std::unique_ptr<ResponseDecoder>(
        std::make_unique<StreamingAudioDecoder>(std::move(*meter)));
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Dialect>> MakeDialect(const v1::Target& target,
                                                     const common::Url& url,
                                                     std::vector<v1::Header> secret_headers) {
  for (const v1::Header& h : secret_headers) {
    if (!HeaderSafe(h.name()) || !HeaderSafe(h.value()) || h.name().empty()) {
      return absl::InvalidArgumentError("a header name or value contains a line break");
    }
  }
  if (target.api() == "openai") {
    static constexpr absl::string_view kFormats[] = {"wav", "pcm",  "mp3", "opus",
                                                     "aac", "flac", "ulaw"};
    if (std::find(std::begin(kFormats), std::end(kFormats), target.format()) ==
        std::end(kFormats)) {
      return absl::InvalidArgumentError(
          absl::StrCat("format '", target.format(),
                       "' is not supported (wav, pcm, mp3, opus, aac, flac, ulaw)"));
    }
    return std::unique_ptr<Dialect>(new OpenAiDialect(target, url, std::move(secret_headers)));
  }
  if (target.api() == "torch-inference") {
    return std::unique_ptr<Dialect>(
        new TorchInferenceDialect(target, url, std::move(secret_headers)));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown api '", target.api(), "' (openai or torch-inference)"));
}

}  // namespace ttsbench::agent
