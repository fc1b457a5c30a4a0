// Parse throughput of the audio meters per format, from in-memory bodies made once by sox and
// ffmpeg (tests/common/audio_corpus.sh): 30 s of 24 kHz mono, as a TTS server would send it,
// fed whole and in 4 KiB pieces (a typical socket read). libsndfile decoding of the same body
// is the baseline a decode-based duration would cost.
//   build-audio/bin/audio_parse_bench --benchmark_min_time=0.5
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "common/audio.h"

namespace ttsbench::common {
namespace {

constexpr int kRate = 24000;
constexpr int kSamples = 30 * kRate;

// Body of one corpus kind, made on first use and cached in /tmp across runs.
const std::string& Body(const std::string& kind) {
  static auto* bodies = new std::map<std::string, std::string>;
  auto it = bodies->find(kind);
  if (it != bodies->end()) return it->second;
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/ttsbench-audio-bench-1/",
                                        kind, "-", kRate, "-1-", kSamples);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const std::string script = TTSBENCH_AUDIO_CORPUS_SCRIPT;  // absolute, from CMake
    const std::string cmd =
        absl::StrCat("bash '", script, "' ", kind, " ", kRate, " 1 ", kSamples, " '", path, "'");
    if (std::system(cmd.c_str()) != 0) std::abort();
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return (*bodies)[kind] = s.str();
}

void Parse(benchmark::State& state, const std::string& kind, const std::string& format) {
  const std::string& body = Body(kind);
  const size_t piece = static_cast<size_t>(state.range(0));  // 0: whole body
  MeterOptions options;
  options.format = format;
  options.sample_rate = kRate;
  double seconds = 0;
  for (auto _ : state) {
    auto meter = MakeMeter(options);
    absl::string_view rest = body;
    while (!rest.empty()) {
      const size_t n = piece == 0 ? rest.size() : std::min(piece, rest.size());
      auto feed = (*meter)->Feed(rest.substr(0, n));
      if (!feed.ok()) state.SkipWithError(std::string(feed.status().message()).c_str());
      rest.remove_prefix(n);
    }
    if (!(*meter)->Finish().ok()) state.SkipWithError("Finish failed");
    seconds = (*meter)->seconds();
    benchmark::DoNotOptimize(seconds);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_KiB"] = static_cast<double>(body.size()) / 1024;
  state.counters["audio_s"] = seconds;
}

void Sndfile(benchmark::State& state, const std::string& kind) {
  const std::string& body = Body(kind);
  for (auto _ : state) {
    auto decoded = DecodeWithSndfile(body);
    if (!decoded.ok()) state.SkipWithError(std::string(decoded.status().message()).c_str());
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

#define PARSE_BENCH(name, kind, format)                                         \
  void BM_Parse_##name(benchmark::State& state) { Parse(state, kind, format); } \
  BENCHMARK(BM_Parse_##name)->Arg(0)->Arg(4096)->ArgName("piece")->Unit(benchmark::kMicrosecond)

PARSE_BENCH(Wav, "wav_s16", "wav");
PARSE_BENCH(Pcm, "pcm_s16le", "pcm");
PARSE_BENCH(Mp3Cbr, "mp3_cbr", "mp3");
PARSE_BENCH(Mp3Vbr, "mp3_vbr", "mp3");
PARSE_BENCH(AacAdts, "aac", "aac");
PARSE_BENCH(OggOpus, "opus", "opus");
PARSE_BENCH(OggVorbis, "vorbis", "vorbis");
PARSE_BENCH(Flac, "flac", "flac");

#define SNDFILE_BENCH(name, kind)                                                 \
  void BM_SndfileDecode_##name(benchmark::State& state) { Sndfile(state, kind); } \
  BENCHMARK(BM_SndfileDecode_##name)->Unit(benchmark::kMillisecond)

SNDFILE_BENCH(Mp3Cbr, "mp3_cbr");
SNDFILE_BENCH(OggOpus, "opus");
SNDFILE_BENCH(Flac, "flac");

}  // namespace
}  // namespace ttsbench::common

BENCHMARK_MAIN();
