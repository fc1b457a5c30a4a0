// The ttsbench-synth binary: flags, exit codes, the "listening" line and signal handling.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "synth/synth_server.h"
#include "tests/synth/http_test_client.h"

extern char** environ;

namespace ttsbench::synth {
namespace {

using Clock = std::chrono::steady_clock;

// A child process with its stdout and stderr captured; every wait on it is bounded.
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    args.insert(args.begin(), TTSBENCH_SYNTH_BINARY);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2], err[2];
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }

  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
    close(err_);
  }

  // Reads stdout until a newline or `limit`; returns what was read.
  std::string ReadLine(std::chrono::milliseconds limit) {
    std::string line;
    const auto deadline = Clock::now() + limit;
    while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char c[256];
      const ssize_t n = read(out_, c, sizeof c);
      if (n <= 0) break;
      line.append(c, static_cast<size_t>(n));
    }
    return line;
  }

  // Exit code, or -1 if the process did not exit within `limit` (it is then killed).
  int Wait(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  // Everything written to stderr so far (after exit: all of it).
  std::string Stderr() {
    std::string s;
    char c[256];
    pollfd p{err_, POLLIN, 0};
    while (poll(&p, 1, 0) > 0) {
      const ssize_t n = read(err_, c, sizeof c);
      if (n <= 0) break;
      s.append(c, static_cast<size_t>(n));
    }
    return s;
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  bool exited_ = false;
};

constexpr auto kExitLimit = std::chrono::milliseconds(5000);

void ExpectUsageError(std::vector<std::string> args, const std::string& mentions) {
  Child child(args);
  EXPECT_EQ(child.Wait(kExitLimit), 1);
  const std::string err = child.Stderr();
  EXPECT_NE(err.find(mentions), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST(SynthMainTest, BadFlagsExit1WithOneLine) {
  ExpectUsageError({"--slots", "many"}, "--slots");
  ExpectUsageError({"--no-such-flag"}, "no-such-flag");
  ExpectUsageError({"--slots", "0"}, "slots");
  ExpectUsageError({"--jitter", "2"}, "jitter");
  ExpectUsageError({"--listen", "localhost"}, "HOST:PORT");
  ExpectUsageError({"--listen", "127.0.0.1:99999"}, "port");
  ExpectUsageError({"--voice", "fast"}, "NAME=SPEED");
}

TEST(SynthMainTest, PortInUseExits2) {
  auto holder = SynthServer::Start(SynthOptions());
  ASSERT_TRUE(holder.ok()) << holder.status();
  Child child({"--listen", "127.0.0.1:" + std::to_string((*holder)->port())});
  EXPECT_EQ(child.Wait(kExitLimit), 2);
  const std::string err = child.Stderr();
  EXPECT_NE(err.find("bind"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST(SynthMainTest, ServesUntilSigterm) {
  Child child({"--listen", "127.0.0.1:0", "--base-ms", "1", "--voice", "a=1", "--voice", "b=3"});
  const std::string line = child.ReadLine(kExitLimit);
  const std::string prefix = "ttsbench-synth listening on http://127.0.0.1:";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << line << child.Stderr();
  const int port = std::stoi(line.substr(prefix.size()));
  ASSERT_GT(port, 0);
  httptest::Reply voices = httptest::Get(static_cast<uint16_t>(port), "/v1/audio/voices");
  EXPECT_EQ(voices.status(), 200u);
  EXPECT_EQ(voices.body(), R"({"voices":["a","b"]})");
  httptest::Reply audio =
      httptest::Post(static_cast<uint16_t>(port), "/v1/audio/speech", R"({"input":"hi"})");
  EXPECT_EQ(audio.status(), 200u);
  kill(child.pid(), SIGTERM);
  EXPECT_EQ(child.Wait(kExitLimit), 0);
}

}  // namespace
}  // namespace ttsbench::synth
