// Decode throughput of streamed answers through the agent's own decoder path (dialect →
// ResponseDecoder), CPU only: an OpenAI SSE body of 20 `speech.audio.delta` events with 2,400
// bytes of base64 PCM each and a `speech.audio.done`, fed in 16 KiB pieces (one socket read),
// and a torch-inference JSON answer with 64 KiB of base64 WAV. Figures in docs/BENCHMARKS.md.
//   build/bin/sse_decode_bench --benchmark_min_time=1
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent/client/dialect.h"
#include "benchmark/benchmark.h"
#include "tests/common/wav_builder.h"

namespace ttsbench::agent {
namespace {

constexpr int kEvents = 20;
constexpr size_t kPiece = 16 << 10;

std::string SseBody() {
  // 1,800 PCM bytes encode to 2,400 base64 bytes.
  std::string pcm(1800, '\0');
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = static_cast<char>(i * 7);
  const std::string b64 = absl::Base64Escape(pcm);
  std::string body;
  for (int i = 0; i < kEvents; ++i) {
    absl::StrAppend(&body, "event: speech.audio.delta\ndata: {\"type\":\"speech.audio.delta\",",
                    "\"audio\":\"", b64, "\"}\n\n");
  }
  absl::StrAppend(&body, "event: speech.audio.done\ndata: {\"type\":\"speech.audio.done\",",
                  "\"usage\":{\"input_tokens\":14,\"output_tokens\":101}}\n\n");
  return body;
}

std::string WavJsonBody() {
  const std::string wav = testing::BuildWav({.rate = 24000, .frames = 32 << 10});  // 64 KiB
  return absl::StrCat("{\"success\":true,\"audio_base64\":\"", absl::Base64Escape(wav),
                      "\",\"sample_rate\":24000,\"duration\":1.365}");
}

std::unique_ptr<Dialect> MakeOrDie(const v1::Target& t) {
  auto d = MakeDialect(t, *common::ParseUrl("http://127.0.0.1:8000"), {});
  if (!d.ok()) std::abort();
  return std::move(*d);
}

// One answer per iteration: a fresh decoder, as the agent makes per request.
void Answer(benchmark::State& state, const Dialect& dialect, const std::string& body,
            absl::string_view content_type, int events) {
  double audio_s = 0;
  for (auto _ : state) {
    auto decoder = dialect.NewDecoder(content_type);
    if (!decoder.ok()) std::abort();
    for (size_t i = 0; i < body.size(); i += kPiece) {
      auto feed = (*decoder)->OnBody(absl::string_view(body).substr(i, kPiece));
      if (!feed.ok()) std::abort();
    }
    auto end = (*decoder)->Finish();
    if (!end.ok()) std::abort();
    audio_s += (*decoder)->seconds();
  }
  benchmark::DoNotOptimize(audio_s);
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * events,
                                                  benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_OpenAiSse(benchmark::State& state) {
  v1::Target t;
  t.set_api("openai");
  t.set_format("pcm");
  t.set_stream_format("sse");
  const auto dialect = MakeOrDie(t);
  Answer(state, *dialect, SseBody(), "text/event-stream", kEvents + 1);
}
BENCHMARK(BM_OpenAiSse);

void BM_TorchInferenceJson(benchmark::State& state) {
  v1::Target t;
  t.set_api("torch-inference");
  t.set_voice("default");
  const auto dialect = MakeOrDie(t);
  Answer(state, *dialect, WavJsonBody(), "application/json", 1);
}
BENCHMARK(BM_TorchInferenceJson);

}  // namespace
}  // namespace ttsbench::agent

BENCHMARK_MAIN();
