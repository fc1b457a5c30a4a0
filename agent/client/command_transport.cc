// The command target's "connection": one local program per request (api: command), started
// with posix_spawn in its own process group (no shell), the text written to its stdin (or
// passed as an argument), its stdout read as the answer's body, its stderr's last line kept.
// Everything runs on the worker's io_context: pipes and a pidfd as Asio descriptors.
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/client/transport_internal.h"
#include "common/spawn.h"

namespace ttsbench::agent {
namespace {

namespace net = boost::asio;
using internal::kUse;
using net::posix::stream_descriptor;
using namespace net::experimental::awaitable_operators;

constexpr size_t kReadBuffer = size_t{64} << 10;
// stderr's last line is kept up to this many bytes (error_detail's budget).
constexpr size_t kStderrLine = 200;

// "exit 3" / "killed by signal 9 (Killed)" for a wait status.
std::string HowItEnded(int status) {
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)),
                        ")");
  }
  return absl::StrCat("exit ", WEXITSTATUS(status));
}

// The exit code, or 128+N for signal N (as shells report it).
int ExitCode(int status) {
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

// What the program's stderr said last: its last non-empty line, printable, cut short.
class LastLine {
 public:
  void Add(absl::string_view piece) {
    for (const char c : piece) {
      if (c == '\n' || c == '\r') {
        if (!partial_.empty()) last_.swap(partial_);
        partial_.clear();
      } else if (partial_.size() < kStderrLine) {
        const auto u = static_cast<unsigned char>(c);
        partial_.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
      }
    }
  }
  std::string Take() {
    std::string out = partial_.empty() ? std::move(last_) : std::move(partial_);
    last_.clear();
    partial_.clear();
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }

 private:
  std::string last_;
  std::string partial_;
};

class CommandConnection final : public ClientConnection {
 public:
  explicit CommandConnection(net::io_context& ioc)
      : in_(ioc), out_(ioc), err_(ioc), exited_(ioc), timer_(ioc), buf_(kReadBuffer) {}

  ~CommandConnection() override {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);  // never a zombie, even when a run is torn down mid-request
    }
  }

  // A process is started per request, inside Exchange, so that its start is timed there.
  net::awaitable<OpenResult> Open(const Endpoints&, std::chrono::nanoseconds) override {
    co_return OpenResult{};
  }

  net::awaitable<Outcome> Exchange(const PreparedRequest& req, ExchangeContext& ctx) override {
    v1::RequestRecord& rec = ctx.rec;
    const int64_t began = common::SteadyNowNs();
    const internal::Deadline deadline(began, ctx.timeout);
    int64_t spawned = 0;
    std::string detail;
    if (!Spawn(req, &spawned, &detail)) {
      rec.set_start_ns(began);
      rec.set_end_ns(common::SteadyNowNs());
      rec.set_error(ctx.stopping.load() ? v1::ERROR_CANCELLED : v1::ERROR_SPAWN);
      rec.set_error_detail(std::move(detail));
      co_return Outcome::kDone;
    }
    // Starting the program is its "connection": apart from synthesis, as connect time is.
    rec.set_spawn_ns(spawned - began);
    rec.set_connect_ns(spawned - began);
    rec.set_start_ns(spawned);
    const uint64_t generation = ++generation_;
    timed_out_ = false;
    timer_.expires_at(net::steady_timer::time_point(std::chrono::nanoseconds(began) + ctx.timeout));
    timer_.async_wait([this, generation](const boost::system::error_code& ec) {
      if (ec || generation != generation_ || pid_ <= 0) return;
      timed_out_ = true;
      Kill();
    });

    if (decoder_ == nullptr || !decoder_->Reset()) {
      auto decoder = ctx.dialect.NewDecoder("");
      if (!decoder.ok()) {
        Kill();
        co_await Reap();
        rec.set_end_ns(common::SteadyNowNs());
        rec.set_error(v1::ERROR_PROTOCOL);
        rec.set_error_detail(std::string(decoder.status().message()));
        co_return Outcome::kDone;
      }
      decoder_ = std::move(*decoder);
    }
    decoder_->set_analyser(ctx.analyser);
    decoder_->set_capture(ctx.capture);  // the ASR sample, or null
    ChunkTimeline timeline(gaps_);
    Answer answer;
    co_await (ReadStdout(ctx, timeline, deadline, answer) && ReadStderr() && WriteStdin(req.wire));
    rec.set_end_ns(answer.end_ns > 0 ? answer.end_ns : common::SteadyNowNs());
    rec.set_bytes(answer.bytes);
    const int status = co_await Reap();
    timer_.cancel();
    const int code = ExitCode(status);
    std::string line = stderr_line_.Take();

    v1::ErrorKind error = v1::ERROR_NONE;
    if (timed_out_) {
      error = v1::ERROR_TIMEOUT;
      detail = internal::TimeoutDetail(ctx, "the program ran; its process group was killed");
    } else if (!answer.decode_error.ok()) {
      error = DecoderErrorKind(answer.decode_error);
      detail = absl::StrCat("stdout: ", answer.decode_error.message());
    } else if (code != 0) {
      error = v1::ERROR_EXIT;
      detail = HowItEnded(status);
    } else if (answer.read_error) {
      error = v1::ERROR_READ;
      detail = absl::StrCat("reading stdout: ", answer.read_error.message());
    }
    if (error != v1::ERROR_NONE && error != v1::ERROR_TIMEOUT && ctx.stopping.load()) {
      // The run killed it (level end, lease): not an attempt of the engine.
      error = v1::ERROR_CANCELLED;
      detail = "cancelled by the run (level end or lease)";
    }
    if (error != v1::ERROR_NONE && !line.empty()) {
      absl::StrAppend(&detail, error == v1::ERROR_EXIT ? ": " : " (stderr: ", line,
                      error == v1::ERROR_EXIT ? "" : ")");
    }
    internal::CompleteAnswer(ctx, *decoder_, timeline, error, std::move(detail));
    if (rec.error() != v1::ERROR_NONE) {
      // Kept when it failed (also when its audio did: truncated, empty).
      if (code != 0) rec.set_exit_status(code);
      if (!line.empty()) rec.set_stderr_line(line);
    }
    co_return Outcome::kDone;
  }

  // Kills a running program's whole process group and stops reading from it; the exchange
  // then reaps it. Only on the connection's own thread.
  void Close() override {
    Kill();
    boost::system::error_code ignored;
    in_.cancel(ignored);
    out_.cancel(ignored);
    err_.cancel(ignored);
  }

  bool is_open() const override { return false; }  // a process per request, never kept

 private:
  struct Answer {
    int64_t bytes = 0;
    int64_t end_ns = 0;  // stdout's end (EOF), or when reading stopped
    boost::system::error_code read_error;
    absl::Status decode_error;
  };

  void Kill() {
    // The group is the child's pid (setpgid in the child); the child is not reaped yet, so the
    // id cannot have been reused.
    if (pid_ > 0) ::kill(-pid_, SIGKILL);
  }

  bool Spawn(const PreparedRequest& req, int64_t* spawned, std::string* detail) {
    auto child = common::SpawnInOwnGroup(req.argv, argv_);
    *spawned = common::SteadyNowNs();
    if (!child.ok()) {
      *detail = std::string(child.status().message());
      return false;
    }
    pid_ = child->pid;
    in_.assign(child->stdin_fd);
    out_.assign(child->stdout_fd);
    err_.assign(child->stderr_fd);
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) exited_.assign(pidfd);
    return true;
  }

  net::awaitable<void> ReadStdout(ExchangeContext& ctx, ChunkTimeline& timeline,
                                  const internal::Deadline& deadline, Answer& answer) {
    for (;;) {
      auto [ec, n] = co_await out_.async_read_some(net::buffer(buf_), kUse);
      const int64_t t = common::SteadyNowNs();
      if (ec) {
        answer.end_ns = t;
        if (ec != net::error::eof) answer.read_error = ec;
        break;
      }
      if (answer.bytes == 0) ctx.rec.set_first_byte_ns(t);
      answer.bytes += static_cast<int64_t>(n);
      auto feed = decoder_->OnBody(absl::string_view(buf_.data(), n));
      if (!feed.ok()) {
        // Not audio: nothing it writes next can make it audio.
        answer.decode_error = feed.status();
        answer.end_ns = t;
        Kill();
        break;
      }
      if (feed->audio_bytes > 0) timeline.Audio(t, feed->audio_s, ctx.rec);
      if (ctx.analyser != nullptr) ctx.analyser->Arrived(t);
      if (deadline.Passed(t)) {
        // A program writing at full speed would win every race with the timer.
        timed_out_ = true;
        answer.end_ns = t;
        Kill();
        break;
      }
    }
    boost::system::error_code ignored;
    out_.close(ignored);
  }

  net::awaitable<void> ReadStderr() {
    char piece[4096];
    for (;;) {
      auto [ec, n] = co_await err_.async_read_some(net::buffer(piece), kUse);
      if (ec) break;
      stderr_line_.Add(absl::string_view(piece, n));
    }
    boost::system::error_code ignored;
    err_.close(ignored);
  }

  net::awaitable<void> WriteStdin(const std::string& text) {
    if (!text.empty()) {
      // A program that exits without reading its input fails this write (EPIPE): that is for
      // its exit status and audio to say, not an error of its own.
      co_await net::async_write(in_, net::buffer(text), kUse);
    }
    boost::system::error_code ignored;
    in_.close(ignored);  // end of input
  }

  // Waits for the program to end (the deadline's kill bounds the wait), kills what is left of
  // its group and reaps it. Returns its wait status.
  net::awaitable<int> Reap() {
    if (exited_.is_open()) {
      co_await exited_.async_wait(stream_descriptor::wait_read, kUse);
      boost::system::error_code ignored;
      exited_.close(ignored);
    } else {
      // No pidfd (kernel before 5.3): poll, leaving it to be reaped below.
      net::steady_timer poll(exited_.get_executor());
      for (;;) {
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            info.si_pid != 0) {
          break;
        }
        poll.expires_after(std::chrono::milliseconds(1));
        co_await poll.async_wait(kUse);
      }
    }
    Kill();  // anything it started and left behind in its group
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    co_return status;
  }

  stream_descriptor in_;
  stream_descriptor out_;
  stream_descriptor err_;
  stream_descriptor exited_;  // pidfd: readable once the program has ended
  net::steady_timer timer_;   // the request's deadline
  std::vector<char> buf_;
  std::vector<char*> argv_;
  std::vector<int64_t> gaps_;
  std::unique_ptr<ResponseDecoder> decoder_;
  LastLine stderr_line_;
  pid_t pid_ = 0;
  uint64_t generation_ = 0;
  bool timed_out_ = false;
};

}  // namespace

std::unique_ptr<ClientConnection> MakeCommandConnection(net::io_context& ioc) {
  // A program that exits before reading its stdin makes the write fail with EPIPE; without
  // this the signal would end the agent.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  return std::make_unique<CommandConnection>(ioc);
}

}  // namespace ttsbench::agent
