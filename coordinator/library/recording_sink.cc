#include "coordinator/library/recording_sink.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/client/transport.h"
#include "common/clock.h"

namespace ttsbench::library {

struct RecordingSink::Timeline {
  explicit Timeline(std::vector<int64_t>& gaps_ns) : timeline(gaps_ns) {}
  agent::ChunkTimeline timeline;
};

RecordingSink::RecordingSink(v1::RequestRecord& rec, int64_t deadline_ns,
                             const std::atomic<bool>& stop, std::vector<int64_t>& gaps_ns)
    : rec_(rec),
      deadline_ns_(deadline_ns),
      stop_(stop),
      gaps_ns_(gaps_ns),
      timeline_(std::make_unique<Timeline>(gaps_ns)) {}

RecordingSink::~RecordingSink() = default;

void RecordingSink::Fail(v1::ErrorKind kind, std::string detail, int64_t end_ns) {
  if (error_ != v1::ERROR_NONE) return;
  error_ = kind;
  detail_ = std::move(detail);
  failed_end_ns_ = end_ns;
  state_ = State::kOver;
}

bool RecordingSink::Over(int64_t now_ns) {
  if (state_ == State::kOver) return true;
  if (now_ns >= deadline_ns_) {
    // As an HTTP client's deadline: the request ends at its deadline, whatever came later.
    Fail(v1::ERROR_TIMEOUT,
         absl::StrFormat("the request deadline (timeout %gs) passed while the engine was "
                         "synthesizing",
                         static_cast<double>(deadline_ns_ - rec_.start_ns()) / 1e9),
         deadline_ns_);
    return true;
  }
  if (stop_.load(std::memory_order_relaxed)) {
    Fail(v1::ERROR_CANCELLED, "the run stopped the request (level time limit or stop)", now_ns);
    return true;
  }
  return false;
}

bool RecordingSink::cancelled() const {
  return state_ == State::kOver || common::SteadyNowNs() >= deadline_ns_ ||
         stop_.load(std::memory_order_relaxed);
}

bool RecordingSink::OpenMeter(const AudioFormat& format) {
  common::MeterOptions options;
  options.format = format.encoding == "auto" ? "" : format.encoding;
  options.sample_rate = format.sample_rate;
  options.channels = format.channels;
  auto meter = common::MakeMeter(options);
  if (!meter.ok()) {
    Fail(v1::ERROR_INVALID_AUDIO, absl::StrCat("AudioSink format: ", meter.status().message()));
    return false;
  }
  meter_ = std::move(*meter);
  return true;
}

void RecordingSink::Begin(const AudioFormat& format) {
  if (state_ == State::kOver) return;
  if (state_ != State::kIdle) {
    Fail(v1::ERROR_PROTOCOL, "AudioSink::Begin called twice, or after WriteWhole");
    return;
  }
  if (!OpenMeter(format)) return;
  state_ = State::kStreaming;
  streamed_ = true;
}

void RecordingSink::Feed(int64_t now_ns, const void* data, size_t size, bool streamed) {
  bytes_ += static_cast<int64_t>(size);
  if (rec_.first_byte_ns() == 0) rec_.set_first_byte_ns(now_ns);
  auto feed = meter_->Feed(absl::string_view(static_cast<const char*>(data), size));
  if (!feed.ok()) {
    Fail(agent::DecoderErrorKind(feed.status()), std::string(feed.status().message()));
    return;
  }
  if (streamed && feed->audio_bytes > 0) timeline_->timeline.Audio(now_ns, feed->audio_s, rec_);
}

bool RecordingSink::Write(const void* data, size_t size) {
  const int64_t now = common::SteadyNowNs();
  if (Over(now)) return false;
  if (state_ != State::kStreaming) {
    Fail(v1::ERROR_PROTOCOL, state_ == State::kWhole
                                 ? "AudioSink::Write after WriteWhole"
                                 : "audio written before its format (AudioSink::Begin)");
    return false;
  }
  if (size > 0) Feed(now, data, size, true);
  return state_ != State::kOver;
}

void RecordingSink::WriteWhole(const AudioFormat& format, const void* data, size_t size) {
  const int64_t now = common::SteadyNowNs();
  if (Over(now)) return;
  if (state_ != State::kIdle) {
    Fail(v1::ERROR_PROTOCOL, "AudioSink::WriteWhole after Begin or a first WriteWhole");
    return;
  }
  if (!OpenMeter(format)) return;
  state_ = State::kWhole;
  Feed(now, data, size, false);
}

void RecordingSink::Finish(int64_t return_ns, const EngineStatus& status,
                           common::LogHistogram* gaps_us) {
  rec_.set_streamed(streamed_);
  // The deadline passed before the engine returned: a timeout, whatever it returned. A stop only
  // explains a failure (the engine gave up when told): an answer completed is a success.
  if (error_ == v1::ERROR_NONE && return_ns >= deadline_ns_) Over(return_ns);
  if (error_ == v1::ERROR_NONE && !status.ok() && stop_.load(std::memory_order_relaxed)) {
    Fail(v1::ERROR_CANCELLED, "the run stopped the request (level time limit or stop)");
  }
  if (error_ == v1::ERROR_NONE && !status.ok()) {
    Fail(v1::ERROR_ENGINE, status.message().empty()
                               ? "the engine returned an error without a message"
                               : status.message());
  }
  rec_.set_end_ns(error_ != v1::ERROR_NONE && failed_end_ns_ != 0 ? failed_end_ns_ : return_ns);
  rec_.set_bytes(bytes_);
  if (error_ == v1::ERROR_NONE && meter_ != nullptr) {
    if (auto st = meter_->Finish(); !st.ok()) {
      Fail(agent::DecoderErrorKind(st), std::string(st.message()));
    }
  }
  timeline_->timeline.Fill(rec_);
  if (meter_ != nullptr) {
    rec_.set_audio_s(meter_->seconds());
    rec_.set_sample_rate(meter_->sample_rate());
  }
  if (error_ == v1::ERROR_NONE && rec_.audio_s() <= 0) {
    Fail(v1::ERROR_EMPTY_AUDIO, absl::StrCat("the engine delivered no audio (", bytes_, " bytes)"));
  }
  rec_.set_error(error_);
  if (error_ != v1::ERROR_NONE) {
    rec_.set_error_detail(detail_);
    return;
  }
  if (streamed_) {
    timeline_->timeline.Commit(gaps_us);
  } else {
    // The audio is one piece, in hand when the engine returns it.
    rec_.set_first_audio_ns(rec_.end_ns());
    rec_.set_chunks(1);
  }
}

}  // namespace ttsbench::library
