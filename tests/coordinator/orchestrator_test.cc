// The coordinator's orchestration over real gRPC on loopback, with scripted agents.
#include "coordinator/run/orchestrator.h"

#include <grpcpp/grpcpp.h>

#include <functional>
#include <future>
#include <numeric>
#include <random>
#include <thread>

#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/version.h"
#include "coordinator/run/self_checks.h"
#include "gtest/gtest.h"

namespace ttsbench::coordinator {
namespace {

using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::CoordinatorMessage>;

TEST(SplitByWeightTest, ProportionalWithRemaindersSpread) {
  EXPECT_EQ(SplitByWeight(10, {2, 2}), (std::vector<int64_t>{5, 5}));
  EXPECT_EQ(SplitByWeight(5, {2, 2}), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(SplitByWeight(1, {1, 1, 1}), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(SplitByWeight(10, {1, 3}), (std::vector<int64_t>{3, 7}));  // 2.5 / 7.5
  EXPECT_EQ(SplitByWeight(7, {1, 0, 1}), (std::vector<int64_t>{4, 0, 3}));
  EXPECT_EQ(SplitByWeight(0, {1, 1}), (std::vector<int64_t>{0, 0}));
}

TEST(SplitByWeightTest, NeverLosesOrInventsLoad) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<double> w(1 + rng() % 7);
    for (double& x : w) x = rng() % 5;
    if (std::accumulate(w.begin(), w.end(), 0.0) == 0) w[0] = 1;
    const int64_t total = rng() % 1000;
    const auto split = SplitByWeight(total, w);
    EXPECT_EQ(std::accumulate(split.begin(), split.end(), int64_t{0}), total);
    for (size_t i = 0; i < w.size(); ++i) {
      if (w[i] == 0) {
        EXPECT_EQ(split[i], 0);
      }
    }
  }
}

v1::AgentMessage Hello(const std::string& id, const std::string& version,
                       const std::string& host = "") {
  v1::AgentMessage m;
  m.mutable_hello()->set_agent_id(id);
  m.mutable_hello()->set_version(version);
  m.mutable_hello()->set_cores(2);
  m.mutable_hello()->set_host(host);
  return m;
}

// The answer to `probe` with the agent's receive and send stamps both `at_ns`.
v1::AgentMessage ClockReply(const v1::ClockProbe& probe, int64_t at_ns) {
  v1::AgentMessage r;
  r.mutable_clock_reply()->set_seq(probe.seq());
  r.mutable_clock_reply()->set_t0_ns(probe.t0_ns());
  r.mutable_clock_reply()->set_t1_ns(at_ns);
  r.mutable_clock_reply()->set_t2_ns(at_ns);
  return r;
}

// A well-behaved agent's answer to `m` if it is a clock probe (stamped now) or an assignment
// (ready at once); false for any other message, which the caller plays.
bool AnswerRoutine(Stream& s, const v1::CoordinatorMessage& m) {
  if (m.has_clock_probe()) {
    s.Write(ClockReply(m.clock_probe(), common::SteadyNowNs()));
    return true;
  }
  if (m.has_assign()) {
    v1::AgentMessage r;
    r.mutable_ready()->set_level(m.assign().level());
    s.Write(r);
    return true;
  }
  return false;
}

// Runs RunPlan on a thread against a real gRPC server; tests script the agent side.
class OrchestratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = StartCoordinatorServer("127.0.0.1:0");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    options_.plan.mutable_target()->set_url("http://127.0.0.1:9");
    options_.plan.mutable_target()->set_api("openai");
    options_.plan.mutable_target()->set_timeout_s(5);
    options_.plan.mutable_load()->add_concurrency(2);
    options_.plan.mutable_load()->set_iterations(4);
    options_.texts = {"hello"};
    options_.expect_agents = 1;
    options_.agent_timeout_s = 5;
    options_.start_delay_s = 0.01;
  }

  std::future<RunResult> StartRun() {
    return std::async(std::launch::async, [this] { return RunPlan(*server_->hub, options_); });
  }

  std::unique_ptr<v1::Coordinator::Stub> Stub() {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port),
                                       grpc::InsecureChannelCredentials());
    return v1::Coordinator::NewStub(channel);
  }

  // The one agent session a test plays by hand: opened, and hello said as `id` at `version`.
  Stream& OpenSession(const std::string& id, const std::string& version) {
    stub_ = Stub();
    session_ = stub_->Session(&session_ctx_);
    EXPECT_TRUE(session_->Write(Hello(id, version)));
    return *session_;
  }

  // Plays a well-behaved agent until Start; then calls `on_start`.
  static void PlayUntilStart(Stream& s, const std::function<void(const v1::Start&)>& on_start) {
    v1::CoordinatorMessage m;
    while (s.Read(&m)) {
      if (AnswerRoutine(s, m)) continue;
      if (m.has_start()) {
        on_start(m.start());
        return;
      }
    }
  }

  static v1::AgentMessage Batch(uint64_t seq, int records) {
    v1::AgentMessage m;
    m.mutable_records()->set_seq(seq);
    for (int i = 0; i < records; ++i) {
      v1::RequestRecord* r = m.mutable_records()->add_records();
      r->set_request_id(seq * 100 + static_cast<uint64_t>(i));
      r->set_start_ns(1'000'000);
      r->set_first_audio_ns(2'000'000);
      r->set_end_ns(3'000'000);
      r->set_audio_s(1);
    }
    return m;
  }

  std::unique_ptr<CoordinatorServer> server_;
  RunOptions options_;
  grpc::ClientContext session_ctx_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::unique_ptr<Stream> session_;
};

TEST_F(OrchestratorTest, VersionMismatchIsRefusedWithAClearMessage) {
  options_.agent_timeout_s = 1;
  auto run = StartRun();
  Stream& stream = OpenSession("old-agent", "0.0.1");
  v1::CoordinatorMessage m;
  ASSERT_TRUE(stream.Read(&m));
  ASSERT_TRUE(m.has_stop());
  EXPECT_NE(m.stop().reason().find("version mismatch"), std::string::npos) << m.stop().reason();
  EXPECT_NE(m.stop().reason().find("0.0.1"), std::string::npos);
  EXPECT_FALSE(stream.Read(&m));
  const grpc::Status st = stream.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  RunResult result = run.get();
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;
  EXPECT_NE(result.status.message().find("0 of 1 agents"), std::string::npos);
}

TEST_F(OrchestratorTest, SequenceGapIsReportedAndRecordsKept) {
  auto run = StartRun();
  Stream& stream = OpenSession("gappy", common::kVersion);
  PlayUntilStart(stream, [&](const v1::Start&) {
    stream.Write(Batch(1, 2));
    stream.Write(Batch(3, 2));  // batch 2 never sent
    v1::AgentMessage done;
    done.mutable_done()->set_level(0);
    done.mutable_done()->set_batches(3);
    stream.Write(done);
  });
  v1::CoordinatorMessage m;
  while (stream.Read(&m)) {
  }
  stream.Finish();
  RunResult result = run.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_EQ(result.levels.size(), 1u);
  EXPECT_EQ(result.levels[0].records.size(), 4u);
  const std::string warnings = absl::StrJoin(result.session.warnings(), "\n");
  EXPECT_NE(warnings.find("record batches 2..2 missing"), std::string::npos) << warnings;
  ASSERT_EQ(result.session.agents_size(), 1);
  EXPECT_EQ(result.session.agents(0).id(), "gappy");
  EXPECT_GE(result.session.agents(0).clock_samples(), 8u);
}

TEST_F(OrchestratorTest, AgentLostMidLevelAbortsAndKeepsRecords) {
  auto run = StartRun();
  Stream& stream = OpenSession("doomed", common::kVersion);
  PlayUntilStart(stream, [&](const v1::Start&) {
    stream.Write(Batch(1, 3));
    stream.WritesDone();
  });
  session_ctx_.TryCancel();
  RunResult result = run.get();
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;
  EXPECT_NE(result.status.message().find("doomed"), std::string::npos);
  ASSERT_EQ(result.levels.size(), 1u);
  EXPECT_EQ(result.levels[0].records.size(), 3u);
}

TEST_F(OrchestratorTest, AgentErrorAbortsWithItsMessage) {
  auto run = StartRun();
  Stream& stream = OpenSession("picky", common::kVersion);
  v1::CoordinatorMessage m;
  while (stream.Read(&m)) {
    if (m.has_clock_probe()) {
      stream.Write(ClockReply(m.clock_probe(), m.clock_probe().t0_ns()));
    } else if (m.has_assign()) {
      v1::AgentMessage r;
      r.mutable_error()->set_message("unknown api 'x'");
      stream.Write(r);
    }
  }
  stream.Finish();
  RunResult result = run.get();
  EXPECT_TRUE(absl::IsAborted(result.status)) << result.status;
  EXPECT_NE(result.status.message().find("unknown api 'x'"), std::string::npos);
}

// A scripted agent on its own thread: answers probes, is ready at once, and on each Start hands
// the stream to `on_start`, which plays the level and returns whether to keep serving.
class ScriptedAgent {
 public:
  using OnStart = std::function<bool(Stream&, const v1::Start&)>;
  ScriptedAgent(v1::Coordinator::Stub& stub, std::string id, std::string host, OnStart on_start)
      : stream_(stub.Session(&ctx_)), thread_([this, id, host, on_start] {
          stream_->Write(Hello(id, common::kVersion, host));
          v1::CoordinatorMessage m;
          while (stream_->Read(&m)) {
            if (AnswerRoutine(*stream_, m)) continue;
            if (m.has_start() && !on_start(*stream_, m.start())) break;
          }
          ctx_.TryCancel();
          stream_->Finish();
        }) {}
  ~ScriptedAgent() { thread_.join(); }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<Stream> stream_;
  std::thread thread_;
};

v1::AgentMessage Done(uint32_t level, uint64_t batches, bool lease_lapsed = false) {
  v1::AgentMessage m;
  m.mutable_done()->set_level(level);
  m.mutable_done()->set_batches(batches);
  m.mutable_done()->set_lease_lapsed(lease_lapsed);
  return m;
}

v1::AgentMessage Heartbeat(double cpu) {
  v1::AgentMessage m;
  m.mutable_heartbeat()->set_cpu_percent(cpu);
  return m;
}

// Finishes every level at once, with one heartbeat of `cpu` first.
ScriptedAgent::OnStart Healthy(double cpu = 0) {
  return [cpu](Stream& s, const v1::Start& start) {
    s.Write(Heartbeat(cpu));
    s.Write(Done(start.level(), 0));
    return true;
  };
}

TEST_F(OrchestratorTest, SilentAgentIsLostWithinTheLeaseAndNamed) {
  options_.lease_s = 1;
  options_.expect_agents = 2;
  auto stub = Stub();
  auto run = StartRun();
  std::atomic<int64_t> started_ns{0};
  // "frozen" goes quiet after Start, as a SIGSTOPped process does (its stream stays open).
  ScriptedAgent frozen(*stub, "frozen", "h", [&](Stream&, const v1::Start&) {
    started_ns = common::SteadyNowNs();
    return true;
  });
  ScriptedAgent healthy(*stub, "healthy", "h", Healthy());
  RunResult result = run.get();
  const double detected_s = static_cast<double>(common::SteadyNowNs() - started_ns) / 1e9;
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;
  EXPECT_NE(result.status.message().find("agent frozen went silent"), std::string::npos)
      << result.status;
  // Named within lease + 1 s of its last word (here: Start, plus a little for the test).
  EXPECT_LT(detected_s, 1 + 1);
}

TEST_F(OrchestratorTest, AgentStalledWithinItsLeaseIsReportedNotSilentlyCharged) {
  options_.lease_s = 5;
  options_.expect_agents = 2;
  auto stub = Stub();
  auto run = StartRun();
  // "sleepy" says nothing for 2.5 s after Start (a 2.5 s SIGSTOP), then finishes its shard.
  ScriptedAgent sleepy(*stub, "sleepy", "h", [](Stream& s, const v1::Start& start) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    s.Write(Done(start.level(), 0));
    return true;
  });
  ScriptedAgent healthy(*stub, "healthy", "h", Healthy());
  RunResult result = run.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  const auto& w = result.session.warnings();
  EXPECT_EQ(std::count_if(w.begin(), w.end(),
                          [](const std::string& s) {
                            return s.find("agent sleepy was unheard for 2.") != std::string::npos;
                          }),
            1)
      << absl::StrJoin(w, "\n");
  EXPECT_EQ(std::count_if(w.begin(), w.end(),
                          [](const std::string& s) {
                            return s.find("agent healthy was unheard") != std::string::npos;
                          }),
            0);
}

TEST_F(OrchestratorTest, SilentAgentUnderContinuePolicyDegradesTheLevel) {
  options_.lease_s = 1;
  options_.expect_agents = 2;
  options_.continue_on_agent_loss = true;
  options_.plan.mutable_load()->add_concurrency(2);  // a second level, run without "frozen"
  auto stub = Stub();
  auto run = StartRun();
  ScriptedAgent frozen(*stub, "frozen", "h", [](Stream&, const v1::Start&) { return true; });
  ScriptedAgent healthy(*stub, "healthy", "h", Healthy());
  RunResult result = run.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_EQ(result.levels.size(), 2u);
  EXPECT_EQ(result.levels[0].lost_agents, std::vector<std::string>{"frozen"});
  EXPECT_TRUE(result.levels[0].degraded());
  EXPECT_FALSE(result.levels[1].degraded());
  EXPECT_TRUE(result.degraded());
}

TEST_F(OrchestratorTest, DoneAfterALapsedLeaseIsNeverACleanRun) {
  for (const bool keep_going : {false, true}) {
    SCOPED_TRACE(keep_going ? "continue" : "abort");
    options_.continue_on_agent_loss = keep_going;
    auto stub = Stub();
    auto run = StartRun();
    ScriptedAgent agent(*stub, "lapsed", "h", [](Stream& s, const v1::Start& start) {
      s.Write(Done(start.level(), 0, /*lease_lapsed=*/true));
      return true;
    });
    RunResult result = run.get();
    if (keep_going) {
      ASSERT_TRUE(result.status.ok()) << result.status;
      ASSERT_EQ(result.levels.size(), 1u);
      EXPECT_EQ(result.levels[0].lapsed_agents, std::vector<std::string>{"lapsed"});
      EXPECT_TRUE(result.degraded());
    } else {
      EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;
      EXPECT_NE(result.status.message().find("agent lapsed stopped its load"), std::string::npos)
          << result.status;
      EXPECT_NE(result.status.message().find("lease lapsed"), std::string::npos);
    }
  }
}

TEST_F(OrchestratorTest, LostAgentsOldDoneIsNotCountedInLaterLevels) {
  options_.expect_agents = 2;
  options_.continue_on_agent_loss = true;
  options_.plan.mutable_load()->add_concurrency(2);
  auto stub = Stub();
  auto run = StartRun();
  ScriptedAgent steady(*stub, "steady", "h", Healthy());
  // Level 0: done, with drops and late sends. Level 1: gone before it finishes.
  ScriptedAgent leaver(*stub, "leaver", "h", [](Stream& s, const v1::Start& start) {
    if (start.level() > 0) return false;
    v1::AgentMessage done = Done(0, 0);
    done.mutable_done()->set_dropped(7);
    done.mutable_done()->set_late(3);
    s.Write(done);
    return true;
  });
  RunResult result = run.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_EQ(result.levels.size(), 2u);
  EXPECT_EQ(result.levels[0].dropped, 7u);
  EXPECT_EQ(result.levels[0].late, 3u);
  EXPECT_EQ(result.levels[1].lost_agents, std::vector<std::string>{"leaver"});
  EXPECT_EQ(result.levels[1].dropped, 0u);
  EXPECT_EQ(result.levels[1].late, 0u);
}

TEST_F(OrchestratorTest, AgentsOnOneHostAddUpTheirCpu) {
  // Two agents on one host, each at 48% of its cores: together the host is at 96%, which is
  // what decides whether the generator limited the result.
  options_.expect_agents = 3;
  auto stub = Stub();
  auto run = StartRun();
  ScriptedAgent a(*stub, "a", "shared-host", Healthy(48));
  ScriptedAgent b(*stub, "b", "shared-host", Healthy(48));
  ScriptedAgent c(*stub, "c", "other-host", Healthy(60));
  RunResult result = run.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_EQ(result.levels.size(), 1u);
  EXPECT_NEAR(result.levels[0].max_agent_cpu_pct, 96, 1e-9);
}

// An open-loop level of 200 requests at 100/s, each taking `connect_ms` to connect and sent
// `lag_ms` after it was due.
LevelData OpenLevel(double connect_ms, double lag_ms) {
  LevelData level;
  level.rate = 100;
  for (int i = 0; i < 200; ++i) {
    common::Record r;
    r.request_id = static_cast<uint64_t>(i);
    r.intended_ns = 1'000'000'000 + int64_t{i} * 10'000'000;
    r.connect_ns = static_cast<int64_t>(connect_ms * 1e6);
    r.start_ns = r.intended_ns + static_cast<int64_t>((lag_ms + connect_ms) * 1e6);
    r.first_byte_ns = r.first_audio_ns = r.start_ns + 5'000'000;
    r.end_ns = r.start_ns + 20'000'000;
    r.audio_s = 1;
    level.records.Append(r);
  }
  return level;
}

bool WarnsOfSchedulingLag(const LevelData& level) {
  v1::Plan plan;
  plan.mutable_load()->set_model("open");
  std::vector<std::string> warnings;
  BuildLevelStats(level, plan, {}, CheckBounds{}, &warnings);
  return absl::StrJoin(warnings, "\n").find("scheduling lag") != std::string::npos;
}

TEST(SelfChecksTest, SchedulingLagExcludesConnectionSetUp) {
  // A 40 ms TLS handshake per request is connect time, not the generator falling behind.
  EXPECT_FALSE(WarnsOfSchedulingLag(OpenLevel(/*connect_ms=*/40, /*lag_ms=*/0.2)));
  // Sends that really left 25 ms late are.
  EXPECT_TRUE(WarnsOfSchedulingLag(OpenLevel(/*connect_ms=*/0, /*lag_ms=*/25)));
  EXPECT_TRUE(WarnsOfSchedulingLag(OpenLevel(/*connect_ms=*/40, /*lag_ms=*/25)));
}

}  // namespace
}  // namespace ttsbench::coordinator

namespace ttsbench::coordinator {
namespace {

TEST(PlanSeriesTest, ComprehensiveNonStreamedSeriesAsksForTheWholeAnswer) {
  v1::Plan plan;
  plan.set_mode("comprehensive");
  plan.mutable_target()->set_streaming(true);
  plan.mutable_target()->set_stream_format("sse");
  plan.add_voices("a");
  const std::vector<SeriesSpec> series = PlanSeries(plan);
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].name, "voice=a streaming=on");
  EXPECT_TRUE(series[0].target.streaming());
  EXPECT_EQ(series[0].target.stream_format(), "sse");
  EXPECT_EQ(series[1].name, "voice=a streaming=off");
  EXPECT_FALSE(series[1].target.streaming());
  EXPECT_EQ(series[1].target.stream_format(), "");
}

}  // namespace
}  // namespace ttsbench::coordinator

namespace ttsbench::coordinator {
namespace {

// A closed-loop level of 2 users, 200 requests, each taking 1 ms with `gap_ms` between a user's
// requests; `failed`: every request failed (a refused connection, a TLS error).
LevelData ClosedLevel(double gap_ms, bool failed) {
  LevelData level;
  level.concurrency = 2;
  for (int i = 0; i < 200; ++i) {
    common::Record r;
    r.request_id = static_cast<uint64_t>(i);
    r.start_ns = 1'000'000'000 + static_cast<int64_t>((i / 2) * (1 + gap_ms) * 1e6);
    r.end_ns = r.start_ns + 1'000'000;
    if (failed) {
      r.error = v1::ERROR_CONNECT;
    } else {
      r.first_byte_ns = r.first_audio_ns = r.start_ns + 500'000;
      r.audio_s = 1;
    }
    level.records.Append(r);
  }
  return level;
}

bool WarnsOfLittlesLaw(const LevelData& level) {
  v1::Plan plan;
  plan.mutable_load()->set_model("closed");
  std::vector<std::string> warnings;
  BuildLevelStats(level, plan, {}, CheckBounds{}, &warnings);
  return absl::StrJoin(warnings, "\n").find("Little's law") != std::string::npos;
}

// A closed-loop level of 2 users, 100 requests over 1 s, on agents 0 and 1, each answer
// analysed: 50 ms of audio decoded with `decode_us` of CPU, audible (or not) at 2 ms.
LevelData AnalysedLevel(double decode_us, bool audible, bool decoded = true) {
  LevelData level;
  level.concurrency = 2;
  for (int i = 0; i < 100; ++i) {
    common::Record r;
    r.request_id = static_cast<uint64_t>(i);
    r.agent = static_cast<uint32_t>(i % 2);
    r.start_ns = 1'000'000'000 + int64_t{i / 2} * 20'000'000;
    r.end_ns = r.start_ns + 20'000'000;
    r.first_byte_ns = r.first_audio_ns = r.start_ns + 1'000'000;
    r.audio_s = 0.05;
    auto a = std::make_shared<v1::AudioAnalysis>();
    a->set_decoded(decoded);
    if (decoded) {
      a->set_decoded_s(0.05);
      a->set_decode_cpu_us(decode_us);
      if (audible) a->set_audible_ns(r.start_ns + 2'000'000);
    } else {
      a->set_not_decoded("aac");
    }
    r.analysis = std::move(a);
    level.records.Append(r);
  }
  return level;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string AudioWarnings(const LevelData& level, const std::string& format = "opus") {
  v1::Plan plan;
  plan.mutable_load()->set_model("closed");
  plan.mutable_target()->set_format(format);
  plan.mutable_audio_checks()->set_enabled(true);
  std::vector<std::string> warnings;
  BuildLevelStats(level, plan, {}, CheckBounds{}, &warnings);
  return absl::StrJoin(warnings, "\n");
}

// Barge-in asked for: a level where no measured request was interrupted says so (the answers
// ended before interrupt_after_ms); one where some were, or without barge-in, does not.
TEST(SelfChecksTest, BargeInThatInterruptedNothingIsWarnedOf) {
  auto warnings = [](bool barge_in, int interrupted) {
    LevelData level = ClosedLevel(0, false);
    if (interrupted > 0) {
      LevelData with;
      with.concurrency = level.concurrency;
      int n = 0;
      for (int i = 0; i < 200; ++i) {
        common::Record r;
        r.request_id = static_cast<uint64_t>(i);
        r.start_ns = 1'000'000'000 + int64_t{i / 2} * 1'000'000;
        r.end_ns = r.start_ns + 1'000'000;
        r.first_byte_ns = r.first_audio_ns = r.start_ns + 500'000;
        r.audio_s = 1;
        r.paced.first_text_ns = r.start_ns;
        if (n++ < interrupted) r.paced.interrupt_ns = r.start_ns + 800'000;
        with.records.Append(r);
      }
      level = std::move(with);
    }
    v1::Plan plan;
    plan.mutable_load()->set_model("closed");
    if (barge_in) {
      plan.mutable_pacing()->set_tokens_per_s(40);
      plan.mutable_pacing()->set_interrupt_fraction(1);
      plan.mutable_pacing()->set_interrupt_after_ms(400);
    }
    std::vector<std::string> w;
    BuildLevelStats(level, plan, {}, CheckBounds{}, &w);
    return absl::StrJoin(w, "\n");
  };
  const std::string none = warnings(true, 0);
  EXPECT_TRUE(Has(none,
                  "barge-in: 0 of 200 requests interrupted: every answer ended within "
                  "interrupt_after_ms (400 ms) of its first audio"))
      << none;
  EXPECT_FALSE(Has(warnings(true, 3), "barge-in")) << warnings(true, 3);
  EXPECT_FALSE(Has(warnings(false, 0), "barge-in"));
}

TEST(SelfChecksTest, DecodingThatTakesAFifthOfAnAgentsCoreIsWarnedOf) {
  // 50 answers per agent over ~1 s of wall time: 2 ms each is 0.1 of a core, 8 ms each 0.4.
  EXPECT_FALSE(Has(AudioWarnings(AnalysedLevel(2000, true)), "decoding"));
  const std::string w = AudioWarnings(AnalysedLevel(8000, true));
  EXPECT_TRUE(Has(w, "audio checks: decoding opus kept 0.40 cores busy on the busiest agent")) << w;
  EXPECT_TRUE(Has(w, "160.0 ms CPU per audio-second")) << w;  // 8 ms per 0.05 s
  EXPECT_TRUE(Has(w, "--audio-sample N")) << w;
}

TEST(SelfChecksTest, NoAudibleSampleAtAllIsSaidNamingTheThreshold) {
  EXPECT_TRUE(Has(AudioWarnings(AnalysedLevel(10, false)),
                  "no analysed answer had an audible sample (above -50 dBFS)"))
      << AudioWarnings(AnalysedLevel(10, false));
  EXPECT_FALSE(Has(AudioWarnings(AnalysedLevel(10, true)), "audible sample"));
}

TEST(SelfChecksTest, AnswersNotDecodedAreOneClearLine) {
  const std::string w = AudioWarnings(AnalysedLevel(0, false, /*decoded=*/false), "aac");
  EXPECT_TRUE(Has(w,
                  "concurrency 2: 100 of 100 analysed answers could not be decoded "
                  "here (aac)"))
      << w;
  EXPECT_FALSE(Has(w, "notice"));
  EXPECT_FALSE(Has(w, "audible sample"));  // nothing decoded: nothing to hear
}

TEST(SelfChecksTest, LittlesLawJudgesTheGeneratorOnlyWhenSomethingSucceeded) {
  // Users idle half the time between successful requests: the generator did not keep them busy.
  EXPECT_TRUE(WarnsOfLittlesLaw(ClosedLevel(/*gap_ms=*/1, /*failed=*/false)));
  EXPECT_FALSE(WarnsOfLittlesLaw(ClosedLevel(/*gap_ms=*/0, /*failed=*/false)));
  // Every request failed fast: the gaps are the error handling's, and the failure breakdown
  // says what happened; a Little's-law warning would point at the generator instead.
  EXPECT_FALSE(WarnsOfLittlesLaw(ClosedLevel(/*gap_ms=*/1, /*failed=*/true)));
}

}  // namespace
}  // namespace ttsbench::coordinator
