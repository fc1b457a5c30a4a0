// Benchmarks a fake in-process TTS engine with the ttsbench library at concurrency 1, 2 and 4.
// The engine "synthesizes" 60 ms of 24 kHz speech per character, in 200 ms chunks: 30 ms of
// text analysis per request (in parallel, on the caller's thread), then 2 ms of compute per
// character on one shared "accelerator" (so users queue for it), each chunk streamed as soon as
// it is made. The level table shows ASPS rising with concurrency until the accelerator is
// saturated, and TTFA growing with the queue.
//
//   fake_engine_bench [OUTPUT_DIR]   (with OUTPUT_DIR, the session folder is written there)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "ttsbench/ttsbench.h"

namespace {

class FakeEngine : public ttsbench::TtsClient {
 public:
  ttsbench::EngineStatus Synthesize(const ttsbench::SynthesisRequest& request,
                                    ttsbench::AudioSink& sink) override {
    if (request.text.empty()) return ttsbench::EngineStatus::Error("empty text");
    constexpr int kRate = 24000;
    constexpr int kAudioMsPerChar = 60;
    constexpr int kChunkMs = 200;
    constexpr int kComputeUsPerChar = 2000;
    constexpr int kFrontEndMs = 30;
    std::this_thread::sleep_for(std::chrono::milliseconds(kFrontEndMs));
    sink.Begin(ttsbench::AudioFormat{"pcm", kRate, 1});  // 16-bit mono samples
    const int total_ms = static_cast<int>(request.text.size()) * kAudioMsPerChar;
    for (int done_ms = 0; done_ms < total_ms; done_ms += kChunkMs) {
      const int chunk_ms = std::min(kChunkMs, total_ms - done_ms);
      {
        // One accelerator: a chunk's compute holds it.
        std::lock_guard<std::mutex> lock(accelerator_);
        std::this_thread::sleep_for(
            std::chrono::microseconds(chunk_ms * kComputeUsPerChar / kAudioMsPerChar));
      }
      const std::string pcm(static_cast<size_t>(kRate) * chunk_ms / 1000 * 2, '\0');
      if (!sink.Write(pcm)) break;  // timed out or stopping
    }
    return ttsbench::EngineStatus::Ok();
  }

 private:
  std::mutex accelerator_;
};

}  // namespace

int main(int argc, char** argv) {
  ttsbench::BenchmarkPlan plan;
  plan.Concurrency({1, 2, 4})
      .Iterations(12)
      .Warmup(2)
      .TextLength("short")
      .Timeout(10)
      .Slo("ttfa_p95=2s")
      .EngineName("fake-engine");
  if (argc > 1) plan.OutputDir(argv[1]).SessionName("fake_engine");

  FakeEngine engine;
  const ttsbench::BenchmarkResult result = ttsbench::RunBenchmark(plan, engine);
  if (!result.ok()) {
    std::fprintf(stderr, "fake_engine_bench: %s\n", result.error.c_str());
    return 1;
  }
  std::fputs(result.Table("Fake in-process engine").c_str(), stdout);
  for (const ttsbench::LevelResult& level : result.levels) {
    std::printf("c=%d: %u/%u ok, %.2f audio s in %.2f s, TTFA p50 %.1f ms, underrun p95 %.1f ms\n",
                level.concurrency, level.successful, level.attempted, level.audio_seconds,
                level.t_wall_s, level.ttfa_ms.p50, level.underrun_ms.p95);
  }
  if (!result.session_dir.empty())
    std::printf("Session written to %s/\n", result.session_dir.c_str());
  if (!result.slo_passed) {
    std::fprintf(stderr, "fake_engine_bench: %s\n", result.SloFailureLine().c_str());
    return 3;
  }
  return 0;
}
