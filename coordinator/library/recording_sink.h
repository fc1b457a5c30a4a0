// The AudioSink of one library request: stamps and measures the engine's audio into the
// request's record exactly as the agent's transports do for an HTTP answer (the audio meters,
// ChunkTimeline's gaps and underrun, the same error kinds), so the statistics mean the same.
#ifndef TTSBENCH_COORDINATOR_LIBRARY_RECORDING_SINK_H_
#define TTSBENCH_COORDINATOR_LIBRARY_RECORDING_SINK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/audio.h"
#include "common/histogram.h"
#include "ttsbench/engine.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::library {

class RecordingSink final : public AudioSink {
 public:
  // `rec` has its start_ns set; times are this process's steady clock. `deadline_ns` is the
  // request's timeout instant; `stop` ends the request early (level limit, user stop).
  // `gaps_ns` is scratch for the answer's inter-chunk gaps, reused from request to request.
  RecordingSink(v1::RequestRecord& rec, int64_t deadline_ns, const std::atomic<bool>& stop,
                std::vector<int64_t>& gaps_ns);
  ~RecordingSink() override;

  void Begin(const AudioFormat& format) override;
  bool Write(const void* data, size_t size) override;
  void WriteWhole(const AudioFormat& format, const void* data, size_t size) override;
  bool cancelled() const override;

  // Ends the request: the engine returned `status` at `return_ns`. Fills the record's end, audio,
  // chunk timing and error (the first failure seen wins); the gaps of a measured streamed
  // success go to `gaps_us` (null in warm-up).
  void Finish(int64_t return_ns, const EngineStatus& status, common::LogHistogram* gaps_us);

 private:
  enum class State { kIdle, kStreaming, kWhole, kOver };
  // Records the request's first failure; `end_ns` is when it ended (0: when the engine returns).
  void Fail(v1::ErrorKind kind, std::string detail, int64_t end_ns = 0);
  // The timeout or a stop, seen at `now_ns`: the request is over. False if neither.
  bool Over(int64_t now_ns);
  bool OpenMeter(const AudioFormat& format);
  void Feed(int64_t now_ns, const void* data, size_t size, bool streamed);

  v1::RequestRecord& rec_;
  const int64_t deadline_ns_;
  const std::atomic<bool>& stop_;
  std::vector<int64_t>& gaps_ns_;
  std::unique_ptr<common::AudioMeter> meter_;
  // ChunkTimeline lives with the transports; held through a pointer so that its header (and
  // Boost's) stays out of this one.
  struct Timeline;
  std::unique_ptr<Timeline> timeline_;
  State state_ = State::kIdle;
  bool streamed_ = false;  // Begin, not WriteWhole
  int64_t bytes_ = 0;
  v1::ErrorKind error_ = v1::ERROR_NONE;
  std::string detail_;
  int64_t failed_end_ns_ = 0;
};

}  // namespace ttsbench::library

#endif  // TTSBENCH_COORDINATOR_LIBRARY_RECORDING_SINK_H_
