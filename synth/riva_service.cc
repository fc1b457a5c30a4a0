#include "synth/riva_service.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "riva/proto/riva_tts.grpc.pb.h"
#include "synth/audio_source.h"

namespace ttsbench::synth {

namespace net = boost::asio;
namespace tts = nvidia::riva::tts;
using Clock = std::chrono::steady_clock;

namespace {

// The parallel slots, FIFO. Used on the service's io_context thread only.
class Slots {
 public:
  explicit Slots(int n) : free_(n) {}
  // `granted(true)` once a slot is held (at once when one is free); `granted(false)` when the
  // server stops first.
  void Acquire(std::function<void(bool)> granted) {
    if (free_ > 0) {
      --free_;
      granted(true);
      return;
    }
    waiters_.push_back(std::move(granted));
  }
  void Release() {
    if (waiters_.empty()) {
      ++free_;
      return;
    }
    auto next = std::move(waiters_.front());
    waiters_.pop_front();
    next(true);  // the slot passes straight on
  }
  void Abort() {
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& w : waiters) w(false);
  }

 private:
  int free_;
  std::deque<std::function<void(bool)>> waiters_;
};

// The part of the Riva voice name the latency model knows: "ttsbench-synth.fast" -> "fast".
std::string ModelVoice(const std::string& voice) {
  const size_t dot = voice.rfind('.');
  return dot == std::string::npos ? voice : voice.substr(dot + 1);
}

}  // namespace

class RivaServer::Impl final : public tts::RivaSpeechSynthesis::CallbackService {
 public:
  explicit Impl(const RivaOptions& options)
      : options_(options), slots_(options.model.slots), rng_(options.model.seed * 31 + 7) {}

  absl::Status Start() {
    if (options_.error_rate < 0 || options_.error_rate > 1) {
      return absl::InvalidArgumentError("riva error rate must be within [0, 1]");
    }
    if (absl::Status st = ValidateLatencyModel(options_.model); !st.ok()) return st;
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (!options_.tls_cert_pem.empty()) {
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({options_.tls_key_pem, options_.tls_cert_pem});
      creds = grpc::SslServerCredentials(ssl);
    }
    const bool v6 = options_.listen_host.find(':') != std::string::npos;
    const std::string address =
        absl::StrCat(v6 ? "[" : "", options_.listen_host, v6 ? "]" : "", ":", options_.port);
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, creds, &port);
    builder.RegisterService(this);
    builder.SetMaxSendMessageSize(64 << 20);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) {
      return absl::UnavailableError(absl::StrCat("riva: cannot listen on ", address));
    }
    port_ = static_cast<uint16_t>(port);
    thread_ = std::thread([this] { ioc_.run(); });
    return absl::OkStatus();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    // Calls waiting for a slot or a chunk's time end now, so that Shutdown has nothing to wait
    // for; then the server, then the timers' thread.
    net::post(ioc_, [this] {
      stopping_ = true;
      slots_.Abort();
      for (Call* c : calls_) c->timer.cancel();
    });
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  uint16_t port() const { return port_; }

  RivaStats stats() const {
    RivaStats s;
    s.calls = calls_count_.load();
    s.unauthenticated = unauthenticated_.load();
    s.errors_injected = errors_injected_.load();
    s.cancelled = cancelled_.load();
    return s;
  }

  grpc::ServerUnaryReactor* Synthesize(grpc::CallbackServerContext* context,
                                       const tts::SynthesizeSpeechRequest* request,
                                       tts::SynthesizeSpeechResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    calls_count_.fetch_add(1);
    if (grpc::Status st = Admit(*context, *request); !st.ok()) {
      reactor->Finish(st);
      return reactor;
    }
    auto call = std::make_shared<Call>(ioc_, *request);
    call->finish = [reactor](const grpc::Status& st) { reactor->Finish(st); };
    call->whole = response;
    net::post(ioc_, [this, call] { Begin(call); });
    return reactor;
  }

  grpc::ServerWriteReactor<tts::SynthesizeSpeechResponse>* SynthesizeOnline(
      grpc::CallbackServerContext* context, const tts::SynthesizeSpeechRequest* request) override {
    calls_count_.fetch_add(1);
    auto* reactor = new Online(this, *request);
    if (grpc::Status st = Admit(*context, *request); !st.ok()) {
      reactor->call()->finished = true;  // a later OnCancel finds nothing to finish
      reactor->Finish(st);
      return reactor;
    }
    net::post(ioc_, [this, call = reactor->call()] { Begin(call); });
    return reactor;
  }

  grpc::ServerUnaryReactor* GetRivaSynthesisConfig(
      grpc::CallbackServerContext* context, const tts::RivaSynthesisConfigRequest*,
      tts::RivaSynthesisConfigResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (grpc::Status st = CheckMetadata(*context); !st.ok()) {
      reactor->Finish(st);
      return reactor;
    }
    // One model with its voices as subvoices, in the shape Riva's config uses
    // (voice_name + subvoices "NAME:...", voices named "<voice_name>.<NAME>").
    auto* config = response->add_model_config();
    config->set_model_name("ttsbench-synth");
    auto& params = *config->mutable_parameters();
    params["voice_name"] = "ttsbench-synth";
    params["language_code"] = "en-US";
    params["sample_rate"] = absl::StrCat(options_.model.sample_rate);
    std::string subvoices;
    for (const auto& [voice, speed] : options_.model.voice_speed) {
      absl::StrAppend(&subvoices, subvoices.empty() ? "" : ",", voice, ":", speed);
    }
    params["subvoices"] = subvoices;
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  // One call's state, on the io_context thread. `finish`/`write` reach the gRPC reactor; they
  // are used only before `finished` is set (after Finish gRPC may free the reactor).
  struct Call {
    Call(net::io_context& ioc, const tts::SynthesizeSpeechRequest& req)
        : timer(ioc), request(req) {}
    net::steady_timer timer;
    tts::SynthesizeSpeechRequest request;
    std::function<void(const grpc::Status&)> finish;
    std::function<void(const tts::SynthesizeSpeechResponse&)> write;  // streaming only
    tts::SynthesizeSpeechResponse* whole = nullptr;                   // unary only
    tts::SynthesizeSpeechResponse piece;                              // the chunk being written
    AudioBody body;
    std::unique_ptr<StreamPlan> plan;
    Clock::time_point slot_at;
    int next_chunk = 0;
    bool holds_slot = false;
    bool finished = false;
    bool cancelled = false;
  };

  class Online final : public grpc::ServerWriteReactor<tts::SynthesizeSpeechResponse> {
   public:
    Online(Impl* impl, const tts::SynthesizeSpeechRequest& req)
        : impl_(impl), call_(std::make_shared<Call>(impl->ioc_, req)) {
      call_->finish = [this](const grpc::Status& st) { Finish(st); };
      call_->write = [this](const tts::SynthesizeSpeechResponse& r) { StartWrite(&r); };
    }
    std::shared_ptr<Call> call() { return call_; }
    void OnWriteDone(bool ok) override {
      net::post(impl_->ioc_, [impl = impl_, call = call_, ok] { impl->Written(call, ok); });
    }
    void OnCancel() override {
      net::post(impl_->ioc_, [impl = impl_, call = call_] { impl->Cancelled(call); });
    }
    void OnDone() override { delete this; }

   private:
    Impl* impl_;
    std::shared_ptr<Call> call_;
  };

  grpc::Status CheckMetadata(const grpc::CallbackServerContext& context) {
    if (options_.api_key.empty() && options_.function_id.empty()) return grpc::Status::OK;
    const auto& md = context.client_metadata();
    auto value = [&md](const char* name) -> std::string {
      auto it = md.find(name);
      return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
    };
    if (!options_.api_key.empty() && value("authorization") != "Bearer " + options_.api_key) {
      unauthenticated_.fetch_add(1);
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "missing or invalid authorization (Bearer API key)");
    }
    if (!options_.function_id.empty() && value("function-id") != options_.function_id) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown or missing function-id");
    }
    return grpc::Status::OK;
  }

  grpc::Status Admit(const grpc::CallbackServerContext& context,
                     const tts::SynthesizeSpeechRequest& req) {
    if (grpc::Status st = CheckMetadata(context); !st.ok()) return st;
    if (req.text().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "text is empty");
    }
    if (req.encoding() != nvidia::riva::LINEAR_PCM && req.encoding() != nvidia::riva::OGGOPUS) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "encoding must be LINEAR_PCM or OGGOPUS");
    }
    if (req.sample_rate_hz() < 0 || req.sample_rate_hz() > 192000) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "sample_rate_hz out of range");
    }
    return grpc::Status::OK;
  }

  void Finish(const std::shared_ptr<Call>& call, const grpc::Status& status) {
    if (call->finished) return;
    call->finished = true;
    calls_.erase(call.get());
    call->timer.cancel();
    if (call->holds_slot) {
      call->holds_slot = false;
      slots_.Release();
    }
    call->finish(status);
  }

  // On the io_context: fault draw, the audio, then a slot.
  void Begin(const std::shared_ptr<Call>& call) {
    if (stopping_) {
      call->finished = true;
      call->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server stopping"));
      return;
    }
    calls_.insert(call.get());
    if (options_.error_rate > 0 && rng_.NextUnit() < options_.error_rate) {
      errors_injected_.fetch_add(1);
      Finish(call, grpc::Status(grpc::StatusCode::INTERNAL, "injected error (--error-rate)"));
      return;
    }
    const tts::SynthesizeSpeechRequest& req = call->request;
    LatencyModel model = options_.model;
    if (req.sample_rate_hz() > 0) model.sample_rate = req.sample_rate_hz();
    const size_t chars = CountCharacters(req.text());
    const int64_t samples = AudioSamples(model, chars);
    const AudioFormat format =
        req.encoding() == nvidia::riva::OGGOPUS ? AudioFormat::kOpus : AudioFormat::kPcmS16;
    auto body = AudioBody::Make(library_, format, model.sample_rate, samples, /*streamed=*/true);
    if (!body.ok()) {
      Finish(call, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                std::string(body.status().message())));
      return;
    }
    call->body = std::move(*body);
    const double synthesis_ms = SynthesisMs(
        model, chars, VoiceSpeed(model, ModelVoice(req.voice_name())), rng_.NextSigned());
    call->plan = std::make_unique<StreamPlan>(model, samples, synthesis_ms);
    slots_.Acquire([this, call, synthesis_ms](bool ok) {
      if (call->finished) {
        if (ok) slots_.Release();  // cancelled while it waited
        return;
      }
      if (!ok) {
        Finish(call, grpc::Status(grpc::StatusCode::UNAVAILABLE, "server stopping"));
        return;
      }
      call->holds_slot = true;
      call->slot_at = Clock::now();
      if (call->whole != nullptr) {
        // Unary: the slot is held for the synthesis, then the whole audio goes out.
        call->timer.expires_at(call->slot_at + Ms(synthesis_ms));
        call->timer.async_wait([this, call](const boost::system::error_code& ec) {
          if (call->finished) return;
          if (ec || stopping_) {
            Finish(call, grpc::Status(grpc::StatusCode::UNAVAILABLE, "server stopping"));
            return;
          }
          call->whole->set_audio(call->body.Copy(0, call->body.samples()));
          Finish(call, grpc::Status::OK);
        });
        return;
      }
      NextChunk(call);
    });
  }

  static Clock::duration Ms(double ms) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double, std::milli>(ms));
  }

  // Streaming: chunk k goes out at its due time after slot acquisition (StreamPlan).
  void NextChunk(const std::shared_ptr<Call>& call) {
    call->timer.expires_at(call->slot_at + Ms(call->plan->DueMs(call->next_chunk)));
    call->timer.async_wait([this, call](const boost::system::error_code& ec) {
      if (call->finished) return;
      if (ec || stopping_) {
        Finish(call, grpc::Status(grpc::StatusCode::UNAVAILABLE, "server stopping"));
        return;
      }
      const int k = call->next_chunk;
      call->piece.set_audio(call->body.Copy(call->plan->BeginSample(k), call->plan->EndSample(k)));
      if (k + 1 == call->plan->chunks() && call->holds_slot) {
        // The last chunk is due when synthesis ends: the slot is free for the next request.
        call->holds_slot = false;
        slots_.Release();
      }
      call->write(call->piece);
    });
  }

  void Written(const std::shared_ptr<Call>& call, bool ok) {
    if (call->finished) return;
    if (!ok) {
      cancelled_.fetch_add(1);
      Finish(call, grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    if (++call->next_chunk >= call->plan->chunks()) {
      Finish(call, grpc::Status::OK);
      return;
    }
    NextChunk(call);
  }

  void Cancelled(const std::shared_ptr<Call>& call) {
    if (call->finished) return;
    cancelled_.fetch_add(1);
    call->cancelled = true;
    Finish(call, grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  const RivaOptions options_;
  net::io_context ioc_{1};
  std::unique_ptr<net::executor_work_guard<net::io_context::executor_type>> work_ =
      std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(
          ioc_.get_executor());
  Slots slots_;
  SeededRng rng_;
  AudioLibrary library_;
  std::set<Call*> calls_;  // unfinished, on the io_context thread
  bool stopping_ = false;  // io_context thread
  std::unique_ptr<grpc::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> calls_count_{0};
  std::atomic<uint64_t> unauthenticated_{0};
  std::atomic<uint64_t> errors_injected_{0};
  std::atomic<uint64_t> cancelled_{0};
};

absl::StatusOr<std::unique_ptr<RivaServer>> RivaServer::Start(const RivaOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  if (absl::Status st = impl->Start(); !st.ok()) return st;
  return std::unique_ptr<RivaServer>(new RivaServer(std::move(impl)));
}

RivaServer::RivaServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RivaServer::~RivaServer() { Stop(); }
uint16_t RivaServer::port() const { return impl_->port(); }
RivaStats RivaServer::stats() const { return impl_->stats(); }
void RivaServer::Stop() { impl_->Stop(); }

}  // namespace ttsbench::synth
