// The C++ library API: fake in-process engines with known timing and known failures, run
// through RunBenchmark, checked against DESIGN.md's definitions and against the session folder
// the CLI's loader reads back.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/record_store.h"
#include "coordinator/run/self_checks.h"
#include "coordinator/sessions/sessions.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/wav_builder.h"
#include "ttsbench/ttsbench.h"

namespace ttsbench {
namespace {

using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::Le;

constexpr int kRate = 16000;

// `ms` of silence as 16-bit mono PCM at kRate.
std::string Pcm(int ms) { return std::string(static_cast<size_t>(kRate * ms / 1000 * 2), '\0'); }

// Streams `chunks` pieces of `chunk_ms` audio: the first after `first_ms`, then one every
// `every_ms`.
class StreamingEngine : public TtsClient {
 public:
  StreamingEngine(int first_ms, int chunks, int chunk_ms, int every_ms)
      : first_ms_(first_ms), chunks_(chunks), chunk_ms_(chunk_ms), every_ms_(every_ms) {}
  EngineStatus Synthesize(const SynthesisRequest&, AudioSink& sink) override {
    const int now = ++inflight_;
    int seen = max_inflight_.load();
    while (now > seen && !max_inflight_.compare_exchange_weak(seen, now)) {
    }
    sink.Begin(AudioFormat{"pcm", kRate, 1});
    std::this_thread::sleep_for(milliseconds(first_ms_));
    const std::string chunk = Pcm(chunk_ms_);
    for (int i = 0; i < chunks_; ++i) {
      if (i > 0) std::this_thread::sleep_for(milliseconds(every_ms_));
      if (!sink.Write(chunk)) break;
    }
    --inflight_;
    return EngineStatus::Ok();
  }
  int max_inflight() const { return max_inflight_.load(); }

 private:
  const int first_ms_, chunks_, chunk_ms_, every_ms_;
  std::atomic<int> inflight_{0};
  std::atomic<int> max_inflight_{0};
};

TEST(LibraryTest, StreamedAudioGivesTtfaAudioSecondsAndAspsAsDefined) {
  StreamingEngine engine(/*first_ms=*/40, /*chunks=*/4, /*chunk_ms=*/100, /*every_ms=*/10);
  BenchmarkResult r =
      RunBenchmark(BenchmarkPlan().Concurrency({1, 2}).Iterations(6).Warmup(2), engine);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, "completed");
  ASSERT_EQ(r.levels.size(), 2u);
  for (const LevelResult& l : r.levels) {
    EXPECT_EQ(l.attempted, 6u);
    EXPECT_EQ(l.successful, 6u);
    EXPECT_EQ(l.warmup_excluded, 2u);
    // 4 chunks of exactly 0.1 s each: the meters count whole samples.
    EXPECT_DOUBLE_EQ(l.audio_seconds, 6 * 0.4);
    EXPECT_DOUBLE_EQ(l.asps, l.audio_seconds / l.t_wall_s);
    EXPECT_DOUBLE_EQ(l.rps, 6 / l.t_wall_s);
    // First audio comes with the first chunk, after the engine's 40 ms.
    EXPECT_THAT(l.ttfa_ms.p50, AllOf(Ge(40.0), Le(100.0)));
    // Chunks come faster than they play: no stall, every request continuous.
    EXPECT_DOUBLE_EQ(l.underrun_ms.max, 0.0);
    EXPECT_DOUBLE_EQ(l.continuity_ok_pct, 100.0);
    EXPECT_THAT(l.gap_ms.p50, AllOf(Ge(9.0), Le(60.0)));
    // Latency ~ 40 + 3 x 10 ms; RTF = latency / 0.4 s.
    EXPECT_THAT(l.latency_ms.p50, AllOf(Ge(70.0), Le(160.0)));
    EXPECT_NEAR(l.rtf.p50, l.latency_ms.p50 / 400.0, 0.05);
    EXPECT_DOUBLE_EQ(l.success_rate_pct, 100.0);
  }
  EXPECT_EQ(r.levels[0].concurrency, 1);
  EXPECT_EQ(r.levels[1].concurrency, 2);
  EXPECT_EQ(engine.max_inflight(), 2);
  EXPECT_TRUE(r.slo_passed);
  EXPECT_THAT(r.Table(), HasSubstr("Conc"));
}

TEST(LibraryTest, LateChunksAreStallsAsForHttpStreams) {
  // 50 ms of audio every 150 ms: each chunk after the first comes 100 ms after playback ran dry.
  StreamingEngine engine(/*first_ms=*/0, /*chunks=*/3, /*chunk_ms=*/50, /*every_ms=*/150);
  BenchmarkResult r = RunBenchmark(BenchmarkPlan().Iterations(2).StallThreshold(50), engine);
  ASSERT_TRUE(r.ok()) << r.error;
  const LevelResult& l = r.levels.at(0);
  EXPECT_THAT(l.underrun_ms.p50, AllOf(Ge(200.0), Le(280.0)));
  EXPECT_THAT(l.gap_ms.p50, AllOf(Ge(150.0), Le(220.0)));
  EXPECT_DOUBLE_EQ(l.continuity_ok_pct, 0.0);  // worst stall ~100 ms > 50 ms
}

// Answers whole WAV files after `ms`: not streamed, so TTFA is the latency.
class WholeWavEngine : public TtsClient {
 public:
  EngineStatus Synthesize(const SynthesisRequest& req, AudioSink& sink) override {
    std::this_thread::sleep_for(milliseconds(30));
    testing::WavSpec spec;
    spec.rate = 22050;
    spec.frames = 2205 * static_cast<int64_t>(req.text.size() % 5 + 1);  // 0.1 s per step
    const std::string wav = testing::BuildWav(spec);
    sink.WriteWhole(AudioFormat{"wav", 0, 0}, wav.data(), wav.size());
    return EngineStatus::Ok();
  }
};

TEST(LibraryTest, WholeAnswerHasTtfaEqualToLatency) {
  WholeWavEngine engine;
  BenchmarkResult r =
      RunBenchmark(BenchmarkPlan().Iterations(4).Texts({"a", "bb", "ccc"}).Seed(3), engine);
  ASSERT_TRUE(r.ok()) << r.error;
  const LevelResult& l = r.levels.at(0);
  EXPECT_EQ(l.successful, 4u);
  EXPECT_DOUBLE_EQ(l.ttfa_ms.p50, l.latency_ms.p50);
  EXPECT_DOUBLE_EQ(l.ttfa_ms.p99, l.latency_ms.p99);
  EXPECT_EQ(l.gap_ms.count, 0u);
  // Each request's audio is a whole number of 0.1 s steps.
  const double steps = l.audio_seconds / 0.1;
  EXPECT_NEAR(steps, std::round(steps), 1e-9);
  EXPECT_GE(l.characters, 4u);
}

// Fails in every way an engine can: a returned error, a std::exception, anything thrown.
class FailingEngine : public TtsClient {
 public:
  EngineStatus Synthesize(const SynthesisRequest& req, AudioSink& sink) override {
    switch (req.id % 4) {
      case 0:
        return EngineStatus::Error("model not loaded");
      case 1:
        throw std::runtime_error("CUDA out of memory");
      case 2:
        throw 42;
      default:
        sink.Begin(AudioFormat{"pcm", kRate, 1});
        sink.Write(Pcm(100));
        return EngineStatus::Ok();
    }
  }
};

TEST(LibraryTest, EngineErrorsAndExceptionsAreRecordedEngineErrors) {
  FailingEngine engine;
  BenchmarkResult r = RunBenchmark(BenchmarkPlan().Iterations(8).Slo("success_rate=0%"), engine);
  ASSERT_TRUE(r.ok()) << r.error;
  const LevelResult& l = r.levels.at(0);
  EXPECT_EQ(l.attempted, 8u);
  EXPECT_EQ(l.successful, 2u);
  EXPECT_EQ(l.errors.at("engine"), 6u);
  ASSERT_EQ(l.error_summary.size(), 1u);
  EXPECT_EQ(l.error_summary[0].kind, "engine");
  EXPECT_DOUBLE_EQ(l.success_rate_pct, 25.0);
  EXPECT_THAT(l.error_summary[0].first_detail, HasSubstr("model not loaded"));
  EXPECT_THAT(r.SessionJson(), HasSubstr("\"engine\""));
  EXPECT_THAT(r.Table(), HasSubstr("engine"));
  EXPECT_TRUE(r.slo_passed);  // the plan's own floor replaced the default 50 %
}

TEST(LibraryTest, MostlyFailingRunFailsTheDefaultSuccessFloorLikeTheCli) {
  FailingEngine engine;
  BenchmarkResult r = RunBenchmark(BenchmarkPlan().Iterations(8), engine);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_FALSE(r.slo_passed);
  EXPECT_THAT(r.SloFailureLine(), HasSubstr("success_rate"));
}

// Misuses of the sink, each its own request.
class MisbehavingEngine : public TtsClient {
 public:
  EngineStatus Synthesize(const SynthesisRequest& req, AudioSink& sink) override {
    const std::string garbage = "this is not a WAV file at all, just text";
    switch (req.id % 4) {
      case 0:
        return EngineStatus::Ok();  // no audio
      case 1:
        sink.WriteWhole(AudioFormat{"wav", 0, 0}, garbage.data(), garbage.size());
        return EngineStatus::Ok();
      case 2:
        sink.Write(Pcm(10));  // before Begin
        return EngineStatus::Ok();
      default:
        sink.Begin(AudioFormat{"pcm", 0, 1});  // raw PCM needs its rate
        return EngineStatus::Ok();
    }
  }
};

TEST(LibraryTest, NoAudioGarbageAndSinkMisuseAreClassified) {
  MisbehavingEngine engine;
  BenchmarkResult r = RunBenchmark(BenchmarkPlan().Iterations(4).Slo("success_rate=0%"), engine);
  ASSERT_TRUE(r.ok()) << r.error;
  const LevelResult& l = r.levels.at(0);
  EXPECT_EQ(l.successful, 0u);
  EXPECT_EQ(l.errors.at("empty_audio"), 1u);
  EXPECT_EQ(l.errors.at("invalid_audio"), 2u);  // garbage WAV, PCM without a rate
  EXPECT_EQ(l.errors.at("protocol"), 1u);
}

// Streams for as long as the sink takes audio, polling cancelled() too.
class EndlessEngine : public TtsClient {
 public:
  EngineStatus Synthesize(const SynthesisRequest&, AudioSink& sink) override {
    sink.Begin(AudioFormat{"pcm", kRate, 1});
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < give_up && !sink.cancelled()) {
      if (!sink.Write(Pcm(10))) break;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return EngineStatus::Error("stopped");
  }
};

TEST(LibraryTest, TimeoutEndsTheRequestAtItsDeadlineAndTellsTheEngine) {
  EndlessEngine engine;
  const auto t0 = std::chrono::steady_clock::now();
  BenchmarkResult r = RunBenchmark(
      BenchmarkPlan().Concurrency({2}).Iterations(2).Timeout(0.2).Slo("success_rate=0%"), engine);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  const LevelResult& l = r.levels.at(0);
  EXPECT_EQ(l.errors.at("timeout"), 2u);
  // The requests end at their deadline: the level's window is one timeout long.
  EXPECT_THAT(l.t_wall_s, AllOf(Ge(0.2), Le(0.3)));
}

TEST(LibraryTest, StopEndsTheRunAsInterrupted) {
  StreamingEngine engine(5, 1, 100, 0);
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(300));
    stop = true;
  });
  RunOptions options;
  options.stop = &stop;
  int levels_seen = 0;
  options.on_level = [&](const LevelResult&) { ++levels_seen; };
  BenchmarkResult r =
      RunBenchmark(BenchmarkPlan().Concurrency({1, 2}).Duration(30), engine, options);
  stopper.join();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, "interrupted");
  EXPECT_EQ(r.levels.size(), 1u);
  EXPECT_EQ(levels_seen, 1);
  EXPECT_GT(r.levels[0].successful, 0u);
}

// Waits for the run to stop it, then gives up with an error; with `finish`, its audio was all
// delivered before (what is left is, say, cleanup) and it returns success.
class WaitsForStopEngine : public TtsClient {
 public:
  explicit WaitsForStopEngine(bool finish) : finish_(finish) {}
  EngineStatus Synthesize(const SynthesisRequest&, AudioSink& sink) override {
    if (finish_) {
      sink.Begin(AudioFormat{"pcm", kRate, 1});
      sink.Write(Pcm(100));
    }
    while (!sink.cancelled()) std::this_thread::sleep_for(milliseconds(5));
    return finish_ ? EngineStatus::Ok() : EngineStatus::Error("gave up when told");
  }

 private:
  const bool finish_;
};

TEST(LibraryTest, StoppedRequestIsCancelledUnlessTheEngineFinishedIt) {
  for (const bool finish : {false, true}) {
    WaitsForStopEngine engine(finish);
    std::atomic<bool> stop{false};
    std::thread stopper([&] {
      std::this_thread::sleep_for(milliseconds(100));
      stop = true;
    });
    RunOptions options;
    options.stop = &stop;
    BenchmarkResult r =
        RunBenchmark(BenchmarkPlan().Iterations(1).Slo("success_rate=0%"), engine, options);
    stopper.join();
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.status, "interrupted");
    const LevelResult& l = r.levels.at(0);
    if (finish) {
      EXPECT_EQ(l.successful, 1u);  // an answer delivered whole is a success, stop or not
    } else {
      EXPECT_EQ(l.cancelled, 1u);  // not an attempt of the engine
      EXPECT_EQ(l.attempted, 0u);
    }
  }
}

TEST(LibraryTest, PlanErrorsNameTheSetter) {
  StreamingEngine engine(0, 1, 10, 0);
  EXPECT_THAT(RunBenchmark(BenchmarkPlan().Concurrency({0}), engine).error,
              HasSubstr("Concurrency"));
  EXPECT_THAT(RunBenchmark(BenchmarkPlan().Slo("ttfa_p95=fast"), engine).error, HasSubstr("Slo"));
  EXPECT_THAT(RunBenchmark(BenchmarkPlan().Timeout(0), engine).error, HasSubstr("Timeout"));
  EXPECT_THAT(RunBenchmark(BenchmarkPlan().TextLength("epic"), engine).error,
              HasSubstr("TextLength"));
  EXPECT_THAT(RunBenchmark(BenchmarkPlan().Texts({"ok", ""}), engine).error, HasSubstr("Texts"));
  EXPECT_THAT(RunBenchmark(BenchmarkPlan().Texts({}), engine).error, HasSubstr("Texts"));
  // A session is one folder inside the output folder, as in the CLI: never a path out of it.
  const std::string out =
      std::filesystem::path(::testing::TempDir()) / ("library_names_" + std::to_string(getpid()));
  for (const char* name : {"../escaped", ".", "..", "a/b"}) {
    BenchmarkResult r =
        RunBenchmark(BenchmarkPlan().Iterations(1).OutputDir(out).SessionName(name), engine);
    EXPECT_THAT(r.error, HasSubstr("plain folder name")) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(out).parent_path() / "escaped"));
  std::filesystem::remove_all(out);
}

TEST(LibraryTest, SessionFolderLoadsBackWithTheSameStatistics) {
  const std::filesystem::path out = std::filesystem::path(::testing::TempDir()) /
                                    ("library_session_test_" + std::to_string(getpid()));
  std::filesystem::remove_all(out);
  StreamingEngine engine(20, 2, 100, 10);
  BenchmarkResult r = RunBenchmark(BenchmarkPlan()
                                       .Concurrency({1, 2})
                                       .Iterations(4)
                                       .EngineName("fake")
                                       .OutputDir(out.string())
                                       .SessionName("lib"),
                                   engine);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.session_dir, (out / "lib").string());
  for (const char* f : {"session.json", "summary.csv", "requests.csv", "report.html"}) {
    EXPECT_TRUE(std::filesystem::exists(out / "lib" / f)) << f;
  }
  auto loaded = coordinator::LoadSession(r.session_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->has_requests);
  EXPECT_EQ(loaded->session.mode(), "library");
  EXPECT_EQ(loaded->session.plan().target().url(), "inprocess://fake");
  ASSERT_EQ(loaded->levels.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_DOUBLE_EQ(loaded->session.levels(static_cast<int>(i)).asps(), r.levels[i].asps);
    // The records written recompute to the same statistics with the coordinator's code.
    std::vector<std::string> warnings;
    const v1::LevelStats again = coordinator::BuildLevelStats(
        loaded->levels[i], loaded->session.plan(), {}, coordinator::CheckBounds{}, &warnings);
    EXPECT_EQ(again.successful(), r.levels[i].successful);
    EXPECT_NEAR(again.asps(), r.levels[i].asps, 1e-3 * r.levels[i].asps);
    EXPECT_NEAR(again.ttfa_ms().p95(), r.levels[i].ttfa_ms.p95, 0.01);
  }
  auto shown = coordinator::ShowSession(out.string(), "lib");
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_THAT(*shown, HasSubstr("inprocess://fake"));
  // A second run with the same name never overwrites the first.
  BenchmarkResult again = RunBenchmark(
      BenchmarkPlan().Iterations(2).OutputDir(out.string()).SessionName("lib"), engine);
  ASSERT_TRUE(again.ok()) << again.error;
  EXPECT_EQ(again.session_dir, (out / "lib-2").string());
  std::filesystem::remove_all(out);
}

}  // namespace
}  // namespace ttsbench
