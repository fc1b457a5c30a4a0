// api: riva. Request shapes from NVIDIA Riva's published interface (proto/riva/proto/*.proto,
// checked against github.com/nvidia-riva/common riva/proto/riva_tts.proto and riva_audio.proto);
// hosted endpoints (NVIDIA API catalog, NVCF) take `authorization: Bearer <API key>` and
// `function-id: <id>` as call metadata (docs.nvidia.com/nvcf/dev/g-rpc-function-invocation,
// "Metadata").
#include "agent/client/riva_transport.h"

#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/client/transport_internal.h"
#include "common/audio.h"
#include "common/clock.h"
#include "common/texts.h"
#include "riva/proto/riva_tts.grpc.pb.h"

namespace ttsbench::agent {

namespace net = boost::asio;
namespace tts = nvidia::riva::tts;
using common::SteadyNowNs;

absl::StatusOr<nvidia::riva::AudioEncoding> RivaEncoding(absl::string_view format) {
  if (format == "pcm") return nvidia::riva::LINEAR_PCM;
  if (format == "opus" || format == "ogg") return nvidia::riva::OGGOPUS;
  return absl::InvalidArgumentError(absl::StrCat(
      "format '", format, "' is not a Riva encoding (pcm: LINEAR_PCM, opus or ogg: OGGOPUS)"));
}

absl::StatusOr<tts::SynthesizeSpeechRequest> RivaRequest(const v1::Target& target,
                                                         absl::string_view text) {
  auto encoding = RivaEncoding(target.format().empty() ? "pcm" : target.format());
  if (!encoding.ok()) return encoding.status();
  tts::SynthesizeSpeechRequest req;
  req.set_text(std::string(text));
  req.set_language_code(target.language().empty() ? std::string(kRivaDefaultLanguage)
                                                  : target.language());
  req.set_encoding(*encoding);
  req.set_sample_rate_hz(target.sample_rate() > 0 ? target.sample_rate() : kRivaDefaultSampleRate);
  req.set_voice_name(target.voice());  // empty: the server's default voice
  return req;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> GrpcMetadata(
    const std::vector<v1::Header>& headers) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const v1::Header& h : headers) {
    if (!IsHeaderName(h.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata '", h.name(), "' is not a header name"));
    }
    for (const char c : h.value()) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u > 0x7e) {
        // Never echo the value: it may be a secret.
        return absl::InvalidArgumentError(
            absl::StrCat("metadata '", h.name(), "' has a value that is not printable ASCII"));
      }
    }
    out.emplace_back(absl::AsciiStrToLower(h.name()), h.value());
  }
  return out;
}

std::string GrpcStatusDetail(const grpc::Status& status) {
  static constexpr absl::string_view kNames[] = {"OK",
                                                 "CANCELLED",
                                                 "UNKNOWN",
                                                 "INVALID_ARGUMENT",
                                                 "DEADLINE_EXCEEDED",
                                                 "NOT_FOUND",
                                                 "ALREADY_EXISTS",
                                                 "PERMISSION_DENIED",
                                                 "RESOURCE_EXHAUSTED",
                                                 "FAILED_PRECONDITION",
                                                 "ABORTED",
                                                 "OUT_OF_RANGE",
                                                 "UNIMPLEMENTED",
                                                 "INTERNAL",
                                                 "UNAVAILABLE",
                                                 "DATA_LOSS",
                                                 "UNAUTHENTICATED"};
  const int code = static_cast<int>(status.error_code());
  const absl::string_view name =
      code >= 0 && code < static_cast<int>(std::size(kNames)) ? kNames[code] : "UNKNOWN_CODE";
  std::string out = absl::StrCat(name, " (", code, ")");
  const std::string& message = status.error_message();
  if (message.empty()) return out;
  out += ": ";
  // The server's words, printable and cut short, as for an HTTP error body.
  for (const char c : absl::string_view(message).substr(0, kErrorBodyBytes)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : (u < 0x80 ? c : '?'));
  }
  if (message.size() > kErrorBodyBytes) out += "...";
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcCredentials(const TlsOptions& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  if (tls.insecure) {
    grpc::experimental::TlsChannelCredentialsOptions options;
    options.set_verify_server_certs(false);
    options.set_check_call_host(false);
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
    return grpc::experimental::TlsCredentials(options);
  }
  grpc::SslCredentialsOptions options;
  if (!tls.ca_file.empty()) {
    // pem_root_certs replaces gRPC's roots: the system's go first, so ca_file adds to them.
    auto read = [](const std::string& path, std::string* out) {
      std::ifstream in(path, std::ios::binary);
      if (!in) return false;
      std::ostringstream s;
      s << in.rdbuf();
      *out += s.str();
      out->push_back('\n');
      return true;
    };
    read("/etc/ssl/certs/ca-certificates.crt", &options.pem_root_certs);
    if (!read(tls.ca_file, &options.pem_root_certs)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot read CA file ", tls.ca_file));
    }
  }
  return grpc::SslCredentials(options);
}

grpc::ChannelArguments RivaChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(kRivaMaxMessageBytes);
  // A retry would hide a server that fails requests.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetUserAgentPrefix("ttsbench/0.1");
  return args;
}

namespace {

// ---------------------------------------------------------------------------------------------
// The dialect: a text becomes a serialized SynthesizeSpeechRequest, prepared before the level.

class RivaDecoder final : public ResponseDecoder {
 public:
  explicit RivaDecoder(std::unique_ptr<common::AudioMeter> meter, common::MeterOptions options)
      : meter_(std::move(meter)), options_(std::move(options)) {}
  absl::StatusOr<common::AudioFeed> OnBody(absl::string_view piece) override {
    return meter_->Feed(piece);
  }
  absl::StatusOr<common::AudioFeed> Finish() override {
    if (absl::Status st = meter_->Finish(); !st.ok()) return st;
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

class RivaDialect final : public Dialect {
 public:
  RivaDialect(v1::Target target, TransportSpec transport)
      : target_(std::move(target)), transport_(std::move(transport)) {}

  absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const override {
    auto req = RivaRequest(target_, text);
    if (!req.ok()) return req.status();
    PreparedRequest out;
    out.chars = common::CountCharacters(text);
    out.wire = req->SerializeAsString();
    return out;
  }

  absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(absl::string_view) const override {
    common::MeterOptions options;
    // LINEAR_PCM is 16-bit mono at the rate asked for; Ogg Opus carries its own timeline.
    options.format = target_.format() == "pcm" || target_.format().empty() ? "pcm" : "opus";
    options.sample_rate =
        target_.sample_rate() > 0 ? target_.sample_rate() : kRivaDefaultSampleRate;
    options.channels = 1;
    auto meter = common::MakeMeter(options);
    if (!meter.ok()) return meter.status();
    return std::unique_ptr<ResponseDecoder>(
        std::make_unique<RivaDecoder>(std::move(*meter), std::move(options)));
  }

  const TransportSpec& transport() const override { return transport_; }

 private:
  v1::Target target_;
  TransportSpec transport_;
};

// ---------------------------------------------------------------------------------------------
// The connection.

// Where gRPC's threads hand events to the connection: the worker's io_context while the
// connection lives. The connection's destructor detaches it, so a late gRPC callback (a
// connectivity watch that ends after a cancelled open) posts nothing.
struct Mailbox {
  std::mutex mu;
  net::io_context* ioc = nullptr;
  template <class F>
  void Post(F&& f) {
    std::lock_guard<std::mutex> lock(mu);
    if (ioc != nullptr) net::post(*ioc, std::forward<F>(f));
  }
};

// One completion queue and one thread for the process's channel connectivity watches (gRPC's
// callback API has none for them). Each tag is a heap callback, run on that thread. Never
// destroyed: the thread lives as long as the process.
class StateWatcher {
 public:
  static StateWatcher& Get() {
    static StateWatcher* watcher = new StateWatcher();
    return *watcher;
  }
  // `done(changed)` runs on the watcher's thread: true when the state left `last`, false when
  // the deadline came first.
  void Watch(const std::shared_ptr<grpc::Channel>& channel, grpc_connectivity_state last,
             std::chrono::system_clock::time_point deadline, std::function<void(bool)> done) {
    auto* tag =
        new std::function<void(bool)>([channel, done = std::move(done)](bool ok) { done(ok); });
    channel->NotifyOnStateChange(last, deadline, &cq_, tag);
  }

 private:
  StateWatcher() {
    std::thread([this] {
      void* tag = nullptr;
      bool ok = false;
      while (cq_.Next(&tag, &ok)) {
        auto* done = static_cast<std::function<void(bool)>*>(tag);
        (*done)(ok);
        delete done;
      }
    }).detach();
  }
  grpc::CompletionQueue cq_;
};

class RivaConnection;

// One call: gRPC's reactor for SynthesizeOnline, or the state of a unary Synthesize. Owned by
// the connection, freed on the worker's thread once its Done event has been handled (gRPC uses
// it no more after OnDone), so TryCancel from the worker never races its deletion.
class RivaCall final : public grpc::ClientReadReactor<tts::SynthesizeSpeechResponse> {
 public:
  RivaCall(std::shared_ptr<Mailbox> box, RivaConnection* conn, uint64_t generation)
      : box_(std::move(box)), conn_(conn), generation_(generation) {}

  void StartStream(tts::RivaSpeechSynthesis::Stub& stub) {
    stub.async()->SynthesizeOnline(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }

  void StartUnary(tts::RivaSpeechSynthesis::Stub& stub);

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows with its status
    Message(SteadyNowNs());
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override;

  grpc::ClientContext context_;
  tts::SynthesizeSpeechRequest request_;
  tts::SynthesizeSpeechResponse response_;

 private:
  void Message(int64_t t);

  std::shared_ptr<Mailbox> box_;
  RivaConnection* conn_;
  uint64_t generation_;
};

class RivaConnection final : public ClientConnection {
 public:
  RivaConnection(net::io_context& ioc, const TransportSpec& spec)
      : ioc_(ioc), spec_(spec), box_(std::make_shared<Mailbox>()), wake_(ioc) {
    box_->ioc = &ioc;
    auto creds = GrpcCredentials(spec.tls);
    if (creds.ok()) {
      creds_ = std::move(*creds);
    } else {
      creds_error_ = std::string(creds.status().message());
    }
    auto md = GrpcMetadata(spec.ws_headers);
    if (md.ok()) metadata_ = std::move(*md);
  }

  ~RivaConnection() override {
    {
      std::lock_guard<std::mutex> lock(box_->mu);
      box_->ioc = nullptr;
    }
    // Exchange waits for every call's end, so none is left unless the worker was torn down
    // mid-call: then it is cancelled and left to gRPC (freeing it could race its OnDone).
    if (call_ != nullptr) {
      call_->context_.TryCancel();
      (void)call_.release();
    }
  }

  net::awaitable<OpenResult> Open(const Endpoints& endpoints,
                                  std::chrono::nanoseconds timeout) override {
    open_began_ns_ = SteadyNowNs();
    closing_ = false;
    open_ = false;
    if (creds_ == nullptr) co_return OpenResult{v1::ERROR_TLS, 0, creds_error_};
    channel_ = grpc::CreateCustomChannel(spec_.grpc_target, creds_, RivaChannelArguments());
    stub_ = tts::RivaSpeechSynthesis::NewStub(channel_);
    const auto deadline = std::chrono::system_clock::now() +
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout);
    grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY) {
      if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
        co_return co_await Failed(endpoints, open_began_ns_ + timeout.count());
      }
      const uint64_t generation = ++generation_;
      watch_done_ = false;
      StateWatcher::Get().Watch(channel_, state, deadline, [box = box_, this, generation](bool ok) {
        box->Post([this, generation, ok] {
          if (generation != generation_) return;
          watch_done_ = true;
          watch_changed_ = ok;
          wake_.cancel();
        });
      });
      while (!watch_done_ && !closing_) {
        wake_.expires_at(net::steady_timer::time_point::max());
        co_await wake_.async_wait(internal::kUse);
      }
      if (closing_) {
        ++generation_;  // the watch's end is of no interest now
        Drop();
        co_return OpenResult{v1::ERROR_CONNECT, 0, "connect cancelled by the run"};
      }
      if (!watch_changed_) {
        Drop();
        co_return OpenResult{v1::ERROR_TIMEOUT, 0, "connect timed out (--timeout)"};
      }
      state = channel_->GetState(/*try_to_connect=*/true);
    }
    open_ = true;
    co_return OpenResult{};
  }

  net::awaitable<Outcome> Exchange(const PreparedRequest& req, ExchangeContext& ctx) override {
    v1::RequestRecord& rec = ctx.rec;
    const int64_t began = SteadyNowNs();
    const int64_t deadline_ns = (ctx.fresh ? open_began_ns_ : began) + ctx.timeout.count();
    rec.set_start_ns(began);
    if (!open_ || stub_ == nullptr) {
      rec.set_end_ns(began);
      rec.set_error(ctx.stopping.load() ? v1::ERROR_CANCELLED : v1::ERROR_CONNECT);
      rec.set_error_detail("the gRPC channel is not connected");
      co_return Outcome::kDone;
    }
    if (decoder_ == nullptr || !decoder_->Reset()) {
      auto decoder = ctx.dialect.NewDecoder("");
      if (!decoder.ok()) {
        rec.set_end_ns(began);
        rec.set_error(v1::ERROR_PROTOCOL);
        rec.set_error_detail(std::string(decoder.status().message()));
        co_return Outcome::kDone;
      }
      decoder_ = std::move(*decoder);
    }
    const uint64_t generation = ++generation_;
    call_ = std::make_unique<RivaCall>(box_, this, generation);
    if (!call_->request_.ParseFromString(req.wire)) {
      call_.reset();
      rec.set_end_ns(began);
      rec.set_error(v1::ERROR_PROTOCOL);
      rec.set_error_detail("the prepared Riva request does not parse");
      co_return Outcome::kDone;
    }
    for (const auto& [name, value] : metadata_) call_->context_.AddMetadata(name, value);
    call_->context_.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(std::max<int64_t>(0, deadline_ns - SteadyNowNs()))));
    ChunkTimeline timeline(gaps_ns_);
    Current current{ctx, timeline, deadline_ns, 0, absl::OkStatus(), false};
    current_ = &current;
    if (rec.streamed()) {
      call_->StartStream(*stub_);
    } else {
      call_->StartUnary(*stub_);
    }
    while (!current.done) {
      wake_.expires_at(net::steady_timer::time_point::max());
      co_await wake_.async_wait(internal::kUse);
    }
    current_ = nullptr;
    call_.reset();
    if (!open_) Drop();  // closed while the call ran
    co_return Outcome::kDone;
  }

  // Cancels a call in flight (it ends with its Done event) or an open under way; the next
  // request opens a new channel.
  void Close() override {
    closing_ = true;
    open_ = false;
    if (call_ != nullptr) {
      call_->context_.TryCancel();
    } else {
      Drop();
    }
    wake_.cancel();
  }

  bool is_open() const override { return open_; }

  // Events from gRPC's threads, run on the worker's thread.
  void OnMessage(uint64_t generation, int64_t t, const std::string& audio) {
    if (generation != generation_ || current_ == nullptr) return;
    Current& c = *current_;
    v1::RequestRecord& rec = c.ctx.rec;
    if (rec.first_byte_ns() == 0) rec.set_first_byte_ns(t);
    c.bytes += static_cast<int64_t>(audio.size());
    if (!c.decode_error.ok() || audio.empty()) return;
    auto feed = decoder_->OnBody(audio);
    if (!feed.ok()) {
      // Not audio: nothing the server sends next can make it audio.
      c.decode_error = feed.status();
      call_->context_.TryCancel();
      return;
    }
    if (rec.streamed() && feed->audio_bytes > 0) c.timeline.Audio(t, feed->audio_s, rec);
  }

  void OnDone(uint64_t generation, int64_t t, const grpc::Status& status) {
    if (generation != generation_ || current_ == nullptr) return;
    Current& c = *current_;
    ExchangeContext& ctx = c.ctx;
    v1::RequestRecord& rec = ctx.rec;
    rec.set_end_ns(t);
    rec.set_bytes(c.bytes);
    v1::ErrorKind error = v1::ERROR_NONE;
    std::string detail;
    if (!c.decode_error.ok()) {
      error = DecoderErrorKind(c.decode_error);
      detail = std::string(c.decode_error.message());
    } else if (!status.ok()) {
      const bool past_deadline = t >= c.deadline_ns - kDeadlineSlackNs;
      if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && past_deadline) {
        // The request's own deadline (gRPC's timer ran it), not a status the server chose.
        error = v1::ERROR_TIMEOUT;
        detail = internal::TimeoutDetail(ctx, "waiting for the answer");
      } else if (ctx.stopping.load() && status.error_code() == grpc::StatusCode::CANCELLED) {
        error = v1::ERROR_CANCELLED;
        detail = "cancelled by the run (level end or lease)";
      } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                 absl::StrContains(status.error_message(), "larger than max")) {
        // The agent's own cap on a message, as for an SSE event or JSON answer.
        error = v1::ERROR_INVALID_AUDIO;
        detail = absl::StrCat("a gRPC message larger than ", kRivaMaxMessageBytes >> 20,
                              " MiB: ", GrpcStatusDetail(status));
      } else {
        error = v1::ERROR_GRPC_STATUS;
        rec.set_grpc_status(static_cast<int>(status.error_code()));
        detail = GrpcStatusDetail(status);
      }
    }
    if (error != v1::ERROR_NONE) {
      internal::KeepReceived(rec, c.bytes, c.timeline, decoder_.get());
      rec.set_error(error);
      rec.set_error_detail(std::move(detail));
    } else {
      internal::CompleteAnswer(ctx, *decoder_, c.timeline, v1::ERROR_NONE);
    }
    c.done = true;
    wake_.cancel();
  }

 private:
  // gRPC's deadline timer and the agent's clock may disagree by a hair.
  static constexpr int64_t kDeadlineSlackNs = 20'000'000;

  // The exchange in flight.
  struct Current {
    ExchangeContext& ctx;
    ChunkTimeline& timeline;
    int64_t deadline_ns;
    int64_t bytes = 0;
    absl::Status decode_error;
    bool done = false;
  };

  void Drop() {
    stub_.reset();
    channel_.reset();
  }

  // The channel failed to connect: a TCP connect of our own says whether the host listens (then
  // TLS or HTTP/2 failed) or not. Nothing is sent on it.
  net::awaitable<OpenResult> Failed(const Endpoints& endpoints, int64_t deadline_ns) {
    Drop();
    const std::string where = spec_.grpc_target;
    if (endpoints.empty()) co_return OpenResult{v1::ERROR_CONNECT, 0, "no address to connect to"};
    using namespace net::experimental::awaitable_operators;
    net::ip::tcp::socket socket(ioc_);
    net::steady_timer timer(ioc_);
    timer.expires_at(net::steady_timer::time_point(std::chrono::nanoseconds(deadline_ns)));
    auto done = co_await (net::async_connect(socket, endpoints, internal::kUse) ||
                          timer.async_wait(internal::kUse));
    boost::system::error_code ignored;
    socket.close(ignored);
    if (done.index() == 1) {
      co_return OpenResult{v1::ERROR_TIMEOUT, 0, "connect timed out (--timeout)"};
    }
    const boost::system::error_code ec = std::get<0>(std::get<0>(done));
    if (ec) {
      co_return OpenResult{v1::ERROR_CONNECT, 0,
                           absl::StrCat("gRPC channel to ", where, ": connect: ", ec.message())};
    }
    if (spec_.tls.enabled) {
      co_return OpenResult{
          v1::ERROR_TLS, 0,
          absl::StrCat("gRPC channel to ", where,
                       ": TCP connects but the TLS handshake failed (an untrusted or mismatched "
                       "certificate, or the port does not speak TLS)")};
    }
    co_return OpenResult{v1::ERROR_PROTOCOL, 0,
                         absl::StrCat("gRPC channel to ", where,
                                      ": TCP connects but HTTP/2 set-up failed (the port may "
                                      "speak TLS: grpcs://, or not gRPC)")};
  }

  net::io_context& ioc_;
  const TransportSpec& spec_;
  std::shared_ptr<Mailbox> box_;
  net::steady_timer wake_;  // the coroutine sleeps on it; events cancel it
  std::shared_ptr<grpc::ChannelCredentials> creds_;
  std::string creds_error_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tts::RivaSpeechSynthesis::Stub> stub_;
  std::unique_ptr<RivaCall> call_;
  std::unique_ptr<ResponseDecoder> decoder_;
  std::vector<int64_t> gaps_ns_;
  Current* current_ = nullptr;
  uint64_t generation_ = 0;
  int64_t open_began_ns_ = 0;
  bool open_ = false;
  bool closing_ = false;
  bool watch_done_ = false;
  bool watch_changed_ = false;
};

void RivaCall::StartUnary(tts::RivaSpeechSynthesis::Stub& stub) {
  stub.async()->Synthesize(&context_, &request_, &response_, [this](grpc::Status status) {
    const int64_t t = SteadyNowNs();
    if (status.ok()) Message(t);
    OnDone(status);
  });
}

void RivaCall::Message(int64_t t) {
  // The audio moves to the worker with the event; the response is free for the next read.
  std::string audio;
  audio.swap(*response_.mutable_audio());
  box_->Post([conn = conn_, generation = generation_, t, audio = std::move(audio)] {
    conn->OnMessage(generation, t, audio);
  });
}

void RivaCall::OnDone(const grpc::Status& status) {
  const int64_t t = SteadyNowNs();
  box_->Post(
      [conn = conn_, generation = generation_, t, status] { conn->OnDone(generation, t, status); });
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dialect>> MakeRivaDialect(const v1::Target& target,
                                                         const common::Url& url,
                                                         std::vector<v1::Header> secret_headers) {
  if (!url.grpc()) {
    return absl::InvalidArgumentError(
        absl::StrCat("api riva needs a grpc:// or grpcs:// URL, got ", url.scheme, "://"));
  }
  if (!url.base_path.empty()) {
    return absl::InvalidArgumentError("a grpc:// URL has no path (grpc://host:port)");
  }
  if (!target.stream_format().empty()) {
    return absl::InvalidArgumentError(
        "api riva takes no stream_format (--stream: SynthesizeOnline)");
  }
  if (!target.path().empty()) return absl::InvalidArgumentError("api riva takes no path");
  if (auto enc = RivaEncoding(target.format().empty() ? "pcm" : target.format()); !enc.ok()) {
    return enc.status();
  }
  TransportSpec spec;
  spec.kind = TransportSpec::Kind::kGrpc;
  spec.streamed = target.streaming();
  spec.tls.enabled = url.tls();
  spec.tls.host = url.host;
  spec.tls.ca_file = target.ca_file();
  spec.tls.insecure = target.insecure();
  const bool v6 = url.host.find(':') != std::string::npos;
  spec.grpc_target = absl::StrCat(v6 ? "[" : "", url.host, v6 ? "]" : "", ":", url.port);
  spec.ws_headers = std::move(secret_headers);
  spec.ws_headers.insert(spec.ws_headers.end(), target.headers().begin(), target.headers().end());
  if (auto md = GrpcMetadata(spec.ws_headers); !md.ok()) return md.status();
  if (auto creds = GrpcCredentials(spec.tls); !creds.ok()) return creds.status();
  return std::unique_ptr<Dialect>(std::make_unique<RivaDialect>(target, std::move(spec)));
}

std::unique_ptr<ClientConnection> MakeRivaConnection(net::io_context& ioc,
                                                     const TransportSpec& spec) {
  return std::make_unique<RivaConnection>(ioc, spec);
}

}  // namespace ttsbench::agent
