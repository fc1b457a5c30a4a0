// The command target (api: command) with real processes: espeak-ng end to end with exact
// durations, programs that fail, hang, write garbage, and programs an agent does not allow.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "agent/client/command_allowlist.h"
#include "agent/client/dialect.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent {
namespace {

using testing::CollectingSink;
using testing::kText;
using testing::WriteTempFile;

constexpr char kEspeak[] = "/usr/bin/espeak-ng";

v1::Target CommandTarget(std::vector<std::string> argv, const std::string& format = "") {
  v1::Target t;
  t.set_api("command");
  t.set_voice("en");
  t.set_format(format);
  for (std::string& a : argv) t.mutable_command()->add_argv(std::move(a));
  return t;
}

// An executable shell script (the test's own program, run without any shell of ours).
std::string Script(const std::string& name, const std::string& body) {
  const std::string path = WriteTempFile(name, "#!/bin/sh\n" + body + "\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

struct CommandRun {
  std::vector<v1::RequestRecord> records;
  double wall_s = 0;
};

CommandRun RunCommand(const v1::Target& target, int concurrency, int iterations,
                      double timeout_s = 10, const std::string& text = kText) {
  CommandRun out;
  auto dialect = MakeDialect(target, common::Url{}, {});
  EXPECT_TRUE(dialect.ok()) << dialect.status();
  if (!dialect.ok()) return out;
  auto req = (*dialect)->Prepare(text);
  EXPECT_TRUE(req.ok()) << req.status();
  if (!req.ok()) return out;
  ShardConfig cfg;
  cfg.requests.push_back(*std::move(req));
  cfg.concurrency = concurrency;
  cfg.iterations = iterations;
  cfg.timeout_s = timeout_s;
  cfg.time_limit_s = 30;  // a hung test fails instead of hanging the suite
  cfg.threads = 2;
  CollectingSink sink;
  LoadRunner runner(std::move(cfg), **dialect, sink, TimelineMap{});
  runner.Warmup();
  const int64_t t0 = common::SteadyNowNs();
  runner.Run(t0);
  out.wall_s = static_cast<double>(common::SteadyNowNs() - t0) / 1e9;
  out.records = sink.measured();
  return out;
}

// espeak-ng's own WAV for `text` (same voice), written to a file by espeak-ng itself (-w).
std::string EspeakWav(const std::string& text) {
  const std::string path = WriteTempFile("espeak.wav", "");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(kEspeak, kEspeak, "-v", "en", "-w", path.c_str(), text.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Frames in a 16-bit mono WAV: the bytes after its 44-byte header, 2 per frame.
double WavSeconds(const std::string& wav) {
  EXPECT_GT(wav.size(), 44u);
  EXPECT_EQ(wav.substr(36, 4), "data");
  const uint32_t rate = static_cast<unsigned char>(wav[24]) |
                        static_cast<unsigned char>(wav[25]) << 8 |
                        static_cast<unsigned char>(wav[26]) << 16;
  EXPECT_EQ(rate, 22050u);
  return static_cast<double>((wav.size() - 44) / 2) / rate;
}

bool HaveEspeak() { return ::access(kEspeak, X_OK) == 0; }

// No child of this test process is left, running or as a zombie.
bool NoChildrenLeft() {
  int status = 0;
  return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

TEST(CommandTargetTest, EspeakDurationsMatchTheWavItWritesWithTextOnStdin) {
  if (!HaveEspeak()) GTEST_SKIP() << "espeak-ng is not installed";
  const double expected = WavSeconds(EspeakWav(kText));
  const CommandRun run =
      RunCommand(CommandTarget({kEspeak, "--stdout", "-v", "{voice}"}), /*concurrency=*/2, 4);
  ASSERT_EQ(run.records.size(), 4u);
  for (const v1::RequestRecord& r : run.records) {
    ASSERT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();
    EXPECT_DOUBLE_EQ(r.audio_s(), expected);
    EXPECT_EQ(r.sample_rate(), 22050);
    EXPECT_TRUE(r.streamed());
    EXPECT_GT(r.spawn_ns(), 0);
    EXPECT_EQ(r.connect_ns(), r.spawn_ns());  // the process start is the request's set-up
    EXPECT_GE(r.chunks(), 1);
    EXPECT_GE(r.first_byte_ns(), r.start_ns());
    EXPECT_GE(r.first_audio_ns(), r.first_byte_ns());
    EXPECT_LE(r.first_audio_ns(), r.end_ns());
    EXPECT_EQ(r.bytes(), static_cast<int64_t>(expected * 22050 * 2 + 44));
    EXPECT_EQ(r.exit_status(), 0);
    EXPECT_TRUE(r.error_detail().empty());
  }
  EXPECT_TRUE(NoChildrenLeft());
}

TEST(CommandTargetTest, TextAsArgumentReachesTheProgramAsOneWord) {
  if (!HaveEspeak()) GTEST_SKIP() << "espeak-ng is not installed";
  // Shell metacharacters and quotes reach espeak-ng as they are: one argument, nothing expanded.
  const std::string text = "Platform four; it's \"gate\" twelve & $HOME `id`";
  const double expected = WavSeconds(EspeakWav(text));
  const CommandRun run =
      RunCommand(CommandTarget({kEspeak, "--stdout", "-v", "{voice}", "{text}"}), 1, 2, 10, text);
  ASSERT_EQ(run.records.size(), 2u);
  for (const v1::RequestRecord& r : run.records) {
    ASSERT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();
    EXPECT_DOUBLE_EQ(r.audio_s(), expected);
  }
}

TEST(CommandTargetTest, RawPcmIsMeasuredAtTheDeclaredRate) {
  // 44100 bytes of 16-bit mono at 22050 Hz: exactly one second.
  const std::string prog = Script("pcm.sh", "head -c 44100 /dev/zero");
  v1::Target t = CommandTarget({prog}, "pcm");
  t.set_sample_rate(22050);
  const CommandRun run = RunCommand(t, 1, 1);
  ASSERT_EQ(run.records.size(), 1u);
  EXPECT_EQ(run.records[0].error(), v1::ERROR_NONE) << run.records[0].error_detail();
  EXPECT_DOUBLE_EQ(run.records[0].audio_s(), 1.0);
}

TEST(CommandTargetTest, StreamedAudioIsTimedPieceByPiece) {
  // A WAV header, then two pieces 300 ms apart: first audio is the first piece, and the gap
  // between the pieces is a chunk gap as for an HTTP stream.
  const std::string prog = Script(
      "stream.sh",
      "printf 'RIFF\\044\\360\\377\\177WAVEfmt \\020\\0\\0\\0\\001\\0\\001\\0\\042\\126\\0\\0"
      "\\104\\254\\0\\0\\002\\0\\020\\0data\\0\\360\\377\\177'\n"
      "head -c 4410 /dev/zero\nsleep 0.3\nhead -c 4410 /dev/zero");
  const CommandRun run = RunCommand(CommandTarget({prog}), 1, 1);
  ASSERT_EQ(run.records.size(), 1u);
  const v1::RequestRecord& r = run.records[0];
  ASSERT_EQ(r.error(), v1::ERROR_NONE) << r.error_detail();
  EXPECT_DOUBLE_EQ(r.audio_s(), 0.2);
  EXPECT_GE(r.chunks(), 2);  // each read of stdout is a chunk; a piece may take two reads
  EXPECT_GE(r.max_gap_ms(), 250);
  EXPECT_LT(r.first_audio_ns() - r.start_ns(), r.end_ns() - r.start_ns() - 250'000'000);
}

TEST(CommandTargetTest, FailingProgramKeepsExitStatusAndLastStderrLine) {
  const std::string prog =
      Script("fail.sh", "echo 'loading voice' >&2\necho 'voice xx not found' >&2\nexit 3");
  const CommandRun run = RunCommand(CommandTarget({prog}), 1, 2);
  ASSERT_EQ(run.records.size(), 2u);
  for (const v1::RequestRecord& r : run.records) {
    EXPECT_EQ(r.error(), v1::ERROR_EXIT);
    EXPECT_EQ(r.exit_status(), 3);
    EXPECT_EQ(r.stderr_line(), "voice xx not found");
    EXPECT_EQ(r.error_detail(), "exit 3: voice xx not found");
  }
  EXPECT_TRUE(NoChildrenLeft());
}

TEST(CommandTargetTest, HangingProgramIsKilledWithItsProcessGroupAtTheTimeout) {
  const std::string pidfile = WriteTempFile("child.pid", "");
  // The program starts a child of its own and hangs: the timeout kills both.
  const std::string prog = Script("hang.sh", "sleep 60 &\necho $! > '" + pidfile + "'\nsleep 60");
  const CommandRun run = RunCommand(CommandTarget({prog}), 1, 1, /*timeout_s=*/0.5);
  ASSERT_EQ(run.records.size(), 1u);
  const v1::RequestRecord& r = run.records[0];
  EXPECT_EQ(r.error(), v1::ERROR_TIMEOUT) << r.error_detail();
  EXPECT_EQ(r.exit_status(), 128 + SIGKILL);
  EXPECT_LT(run.wall_s, 5);
  EXPECT_TRUE(NoChildrenLeft());
  std::ifstream in(pidfile);
  pid_t grandchild = 0;
  ASSERT_TRUE(in >> grandchild);
  // Gone, or a zombie waiting for init: either way no longer running. The group's
  // SIGKILL is sent before the program is reaped, but the grandchild (now init's)
  // may still be exiting on a loaded machine, so its state is polled for a bounded
  // time; a grandchild that was never signalled sleeps for 60 s and fails here.
  std::string stat;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    stat.clear();
    std::ifstream proc("/proc/" + std::to_string(grandchild) + "/stat");
    std::getline(proc, stat);
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || stat.substr(paren + 2, 1) == "Z") break;
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    EXPECT_EQ(stat.substr(paren + 2, 1), "Z") << stat;
  }
}

TEST(CommandTargetTest, GarbageOnStdoutIsInvalidAudioAndEndsTheProgram) {
  const std::string prog = Script("garbage.sh", "echo 'this is not audio at all'\nsleep 60");
  const CommandRun run = RunCommand(CommandTarget({prog}), 1, 1, /*timeout_s=*/20);
  ASSERT_EQ(run.records.size(), 1u);
  const v1::RequestRecord& r = run.records[0];
  EXPECT_EQ(r.error(), v1::ERROR_INVALID_AUDIO) << r.error_detail();
  EXPECT_NE(r.error_detail().find("stdout"), std::string::npos) << r.error_detail();
  EXPECT_LT(run.wall_s, 5);  // killed at the garbage, not at the timeout
  EXPECT_TRUE(NoChildrenLeft());
}

TEST(CommandTargetTest, ProgramThatCannotStartIsASpawnError) {
  const std::string path = WriteTempFile("not-executable", "data");  // no exec bit
  const CommandRun run = RunCommand(CommandTarget({path}), 1, 1);
  ASSERT_EQ(run.records.size(), 1u);
  EXPECT_EQ(run.records[0].error(), v1::ERROR_SPAWN);
  EXPECT_NE(run.records[0].error_detail().find("cannot start"), std::string::npos);
}

TEST(CommandAllowlistTest, AllowsOnlyListedProgramsByCanonicalPath) {
  if (!HaveEspeak()) GTEST_SKIP() << "espeak-ng is not installed";
  auto list = CommandAllowlist::Parse({kEspeak}, "/usr/bin:/bin");
  ASSERT_TRUE(list.ok()) << list.status();
  auto canonical = ResolveProgram(kEspeak, "");
  ASSERT_TRUE(canonical.ok());
  // By name on PATH, and through a symlink: the same program.
  EXPECT_EQ(list->Check(std::vector<std::string>{"espeak-ng"}, "/usr/bin").value_or(""),
            *canonical);
  const std::string link = WriteTempFile("link", "");
  std::filesystem::remove(link);
  std::filesystem::create_symlink(kEspeak, link);
  EXPECT_EQ(list->Check(std::vector<std::string>{link}, "").value_or(""), *canonical);

  auto refused = list->Check(std::vector<std::string>{"/bin/sh"}, "");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(refused.status()));
  EXPECT_NE(refused.status().message().find("/bin/sh"), std::string::npos);
  EXPECT_NE(refused.status().message().find(*canonical), std::string::npos);
}

// An allowed program with free arguments would let a plan write or read any file on the agent's
// host (`espeak-ng -w FILE`, `espeak-ng -f FILE`): an entry is a whole command line.
TEST(CommandAllowlistTest, AnEntryAllowsItsCommandLineWordForWordAndNoOtherArguments) {
  auto list =
      CommandAllowlist::Parse({"espeak-ng --stdout -v '{voice}'", "/bin/cat"}, "/usr/bin:/bin");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->Check(std::vector<std::string>{kEspeak, "--stdout", "-v", "{voice}"}, "").ok());
  EXPECT_TRUE(list->Check(std::vector<std::string>{"cat"}, "/bin").ok());
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {kEspeak, "-w", "/tmp/owned.wav", "pwned by a plan"},
           {kEspeak, "--stdout", "-v", "{voice}", "-f", "/etc/shadow"},
           {kEspeak, "--stdout", "-v"},
           {kEspeak},
           {"/bin/cat", "/etc/shadow"}}) {
    auto refused = list->Check(argv, "");
    ASSERT_FALSE(refused.ok()) << argv.size();
    EXPECT_TRUE(absl::IsPermissionDenied(refused.status()));
    EXPECT_NE(refused.status().message().find("allowed: /usr/bin/espeak-ng --stdout -v {voice}; /"),
              std::string::npos)
        << refused.status();
  }
}

TEST(CommandAllowlistTest, QuotedCommandLinesReadBackAsTheSameWords) {
  const std::vector<std::string> words = {"/usr/bin/tts", "it's", "a b", "{text}",
                                          "$HOME",        "",     "\\x", "\"q\""};
  auto back = SplitCommandWords(QuoteCommandWords(words));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, words);
}

TEST(CommandAllowlistTest, NothingIsAllowedByDefault) {
  const CommandAllowlist none;
  auto refused = none.Check(std::vector<std::string>{"/bin/true"}, "");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(refused.status()));
  EXPECT_TRUE(absl::StartsWith(refused.status().message(), "command /bin/true"));
  EXPECT_TRUE(absl::EndsWith(refused.status().message(),
                             "is not allowed; allowed: nothing (no --allow-command given)"))
      << refused.status();
}

TEST(CommandAllowlistTest, AnEntryThatIsNoProgramIsAnError) {
  auto list = CommandAllowlist::Parse({"/no/such/tts"}, "/usr/bin");
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("--allow-command /no/such/tts"), std::string::npos);
  EXPECT_FALSE(CommandAllowlist::Parse({"no-such-tts-engine"}, "/usr/bin:/bin").ok());
}

TEST(CommandDialectTest, FillsArgumentsWordByWordWithoutAShell) {
  auto dialect =
      MakeDialect(CommandTarget({"/bin/echo", "-v", "{voice}", "say:{text}"}), common::Url{}, {});
  ASSERT_TRUE(dialect.ok()) << dialect.status();
  auto req = (*dialect)->Prepare("a b; rm -rf / $(x) {voice}");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->argv,
            (std::vector<std::string>{"/bin/echo", "-v", "en", "say:a b; rm -rf / $(x) {voice}"}));
  EXPECT_TRUE(req->wire.empty());  // the text went as an argument: nothing on stdin
  auto on_stdin = MakeDialect(CommandTarget({"/bin/cat"}), common::Url{}, {});
  ASSERT_TRUE(on_stdin.ok());
  EXPECT_EQ((*on_stdin)->Prepare("hello")->wire, "hello\n");
}

TEST(CommandDialectTest, RefusesTemplatesThatBreakItsRules) {
  EXPECT_FALSE(MakeDialect(CommandTarget({}), common::Url{}, {}).ok());
  // A mistyped placeholder would reach the program as it is: refused, naming it.
  auto typo = MakeDialect(CommandTarget({"/bin/cat", "{nosuch}"}), common::Url{}, {});
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("unknown placeholder {nosuch}"), std::string::npos)
      << typo.status();
  EXPECT_TRUE(
      MakeDialect(CommandTarget({"/bin/echo", "{\"json\": 1}", "{Text}"}), common::Url{}, {}).ok());
  EXPECT_FALSE(MakeDialect(CommandTarget({"/bin/{voice}"}), common::Url{}, {}).ok());
  v1::Target t = CommandTarget({"/bin/cat"});
  t.mutable_command()->set_input("argument");
  EXPECT_FALSE(MakeDialect(t, common::Url{}, {}).ok());
  t.mutable_command()->set_input("file");
  EXPECT_FALSE(MakeDialect(t, common::Url{}, {}).ok());
}

TEST(CommandDialectTest, SplitsACommandLineAsAShellWouldWithoutExpanding) {
  auto words = SplitCommandWords(R"(espeak-ng --stdout -v "{voice}" 'a b' c\ d "e\"f" $HOME)");
  ASSERT_TRUE(words.ok());
  EXPECT_EQ(*words, (std::vector<std::string>{"espeak-ng", "--stdout", "-v", "{voice}", "a b",
                                              "c d", "e\"f", "$HOME"}));
  EXPECT_FALSE(SplitCommandWords("say 'unclosed").ok());
  EXPECT_FALSE(SplitCommandWords("   ").ok());
}

}  // namespace
}  // namespace ttsbench::agent
