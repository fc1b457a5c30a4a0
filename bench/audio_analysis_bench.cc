// CPU cost of the audio checks' analyser (issue 14) per format: 30 s of 24 kHz mono (48 kHz for
// Opus) made by sox and ffmpeg (tests/common/audio_corpus.sh), fed in 4 KiB pieces as a socket
// delivers them, decoded and measured. `us_per_audio_s` is the analyser's own decode_cpu_us
// (thread CPU time) per second of audio: what --audio-checks adds to an agent per answer.
//   build/bin/audio_analysis_bench --benchmark_min_time=0.5
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "common/audio_analysis.h"

namespace ttsbench::common {
namespace {

constexpr int kSeconds = 30;

// Body of one corpus kind, made on first use and cached in /tmp across runs.
const std::string& Body(const std::string& kind, int rate) {
  static auto* bodies = new std::map<std::string, std::string>;
  const std::string key = absl::StrCat(kind, "-", rate);
  auto it = bodies->find(key);
  if (it != bodies->end()) return it->second;
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/ttsbench-audio-bench-1/",
                                        kind, "-", rate, "-1-", kSeconds * rate);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const std::string script = TTSBENCH_AUDIO_CORPUS_SCRIPT;  // absolute, from CMake
    const std::string cmd = absl::StrCat("bash '", script, "' ", kind, " ", rate, " 1 ",
                                         kSeconds * rate, " '", path, "'");
    if (std::system(cmd.c_str()) != 0) std::abort();
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return (*bodies)[key] = s.str();
}

void Analyse(benchmark::State& state, const std::string& kind, const std::string& format,
             int rate) {
  const std::string& body = Body(kind, rate);
  v1::AudioChecks checks;
  checks.set_enabled(true);
  AudioAnalyser analyser(checks);
  MeterOptions options;
  options.format = format;
  options.sample_rate = rate;
  v1::AudioAnalysis out;
  double cpu_us = 0;
  for (auto _ : state) {
    analyser.Begin();
    absl::string_view rest = body;
    int64_t t = 1;
    while (!rest.empty()) {
      const size_t n = std::min<size_t>(4096, rest.size());
      analyser.Audio(options, rest.substr(0, n));
      analyser.Arrived(++t);
      rest.remove_prefix(n);
    }
    analyser.Finish(1, t, &out);
    if (!out.decoded()) state.SkipWithError(out.not_decoded().c_str());
    cpu_us += out.decode_cpu_us();
  }
  state.counters["audio_s"] = out.decoded_s();
  state.counters["us_per_audio_s"] =
      cpu_us / static_cast<double>(state.iterations()) / std::max(out.decoded_s(), 1e-9);
}

#define ANALYSIS_BENCH(name, kind, format, rate)                                          \
  void BM_Analyse_##name(benchmark::State& state) { Analyse(state, kind, format, rate); } \
  BENCHMARK(BM_Analyse_##name)->Unit(benchmark::kMillisecond);

ANALYSIS_BENCH(WavS16, "wav_s16", "wav", 24000)
ANALYSIS_BENCH(PcmS16, "pcm_s16le", "pcm", 24000)
ANALYSIS_BENCH(PcmF32, "pcm_f32le", "pcm_f32le", 24000)
ANALYSIS_BENCH(Ulaw, "ulaw", "ulaw", 24000)
ANALYSIS_BENCH(Flac, "flac", "flac", 24000)
ANALYSIS_BENCH(Mp3, "mp3_cbr", "mp3", 24000)
ANALYSIS_BENCH(OggOpus, "opus", "opus", 48000)
ANALYSIS_BENCH(OggVorbis, "vorbis", "vorbis", 24000)

}  // namespace
}  // namespace ttsbench::common

BENCHMARK_MAIN();
