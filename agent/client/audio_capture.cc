#include "agent/client/audio_capture.h"

#include <algorithm>

namespace ttsbench::agent {

void AudioCapture::Begin() {
  bytes_.clear();
  received_ = 0;
  format_ = {};
  sample_rate_ = 0;
  channels_ = 0;
}

void AudioCapture::Append(absl::string_view bytes, const common::AudioMeter& meter,
                          const common::MeterOptions& options) {
  received_ += bytes.size();
  const size_t room = max_bytes_ - std::min(max_bytes_, bytes_.size());
  bytes_.append(bytes.data(), std::min(room, bytes.size()));
  // Raw samples say nothing of themselves: their encoding comes from what the meter was made
  // for (the requested format, the Content-Type, a stream's metadata).
  const absl::string_view format = meter.format();
  if (format == "pcm") {
    format_ = common::RawPcmFormat(options);
  } else if (!format.empty()) {
    format_ = format;
  }
  if (meter.sample_rate() > 0) sample_rate_ = meter.sample_rate();
  if (meter.channels() > 0) channels_ = meter.channels();
}

void AudioCapture::MoveInto(v1::RequestRecord& rec) {
  v1::AsrAudioFormat* f = rec.mutable_asr_format();
  f->set_format(std::string(format_));
  f->set_sample_rate(sample_rate_);
  f->set_channels(channels_);
  f->set_capped(received_ > bytes_.size());
  f->set_received_bytes(received_);
  rec.set_asr_audio(std::move(bytes_));
  bytes_ = std::string();
}

}  // namespace ttsbench::agent
