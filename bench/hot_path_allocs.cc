// Heap allocations per request on the agent's HTTP hot path, counted. malloc and its family are
// replaced by counting wrappers around glibc's own (operator new goes through malloc), counting
// on the client's thread only. One keep-alive connection of the real transport
// (agent/client/http_transport.cc) and the real dialect decoders talks to a loopback server
// that answers every request with a recorded answer: a 1 s WAV body (OpenAI, format wav), an
// OpenAI speech SSE stream (21 events, 1 s of 24 kHz PCM), a torch-inference JSON answer (1 s
// WAV as base64). After a warm-up the allocations of N exchanges are divided by N.
//   build/bin/hot_path_allocs [--requests N] [--max-allocs K]
// Exit 1 when an answer fails, or allocates more than K per request (--max-allocs, default:
// no bound). Figures in docs/BENCHMARKS.md.
#include <arpa/inet.h>
#include <execinfo.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/client/dialect.h"
#include "agent/client/transport.h"
#include "common/histogram.h"
#include "common/url.h"
#include "synth/synth_server.h"
#include "tests/common/wav_builder.h"

// ---------------------------------------------------------------------------------------------
// Counting allocator (not under ASan or TSan, which replace malloc themselves)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TTSBENCH_COUNTING 0
#else
#define TTSBENCH_COUNTING 1
#endif

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
thread_local bool t_counting = false;
std::atomic<uint64_t> g_allocs{0};
std::atomic<uint64_t> g_bytes{0};
int g_trace = 0;  // --trace K: the call stacks of the first K counted allocations, to stderr
inline void Count(size_t n) {
  if (t_counting) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(n, std::memory_order_relaxed);
    if (g_trace > 0) {
      --g_trace;
      t_counting = false;
      void* frames[24];
      const int depth = backtrace(frames, 24);
      std::fprintf(stderr, "-- allocation of %zu bytes\n", n);
      backtrace_symbols_fd(frames, depth, 2);
      t_counting = true;
    }
  }
}
}  // namespace

#if TTSBENCH_COUNTING
extern "C" {
void* malloc(size_t n) {
  Count(n);
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  Count(n * size);
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  Count(n);
  return __libc_realloc(p, n);
}
void* memalign(size_t align, size_t n) {
  Count(n);
  return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) {
  Count(n);
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
  Count(n);
  *out = __libc_memalign(align, n);
  return *out == nullptr ? ENOMEM : 0;
}
void free(void* p) { __libc_free(p); }
}
#endif

namespace ttsbench::agent {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr int kRate = 24000;

// One second of 24 kHz mono s16 WAV.
std::string Wav() { return testing::BuildWav({.rate = kRate, .frames = kRate}); }

std::string Sse() {
  std::string pcm(kRate * 2 / 20, '\0');
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = static_cast<char>(i * 7);
  const std::string b64 = absl::Base64Escape(pcm);
  std::string body;
  for (int i = 0; i < 20; ++i) {
    absl::StrAppend(&body, "event: speech.audio.delta\ndata: {\"type\":\"speech.audio.delta\",",
                    "\"audio\":\"", b64, "\"}\n\n");
  }
  absl::StrAppend(&body, "event: speech.audio.done\ndata: {\"type\":\"speech.audio.done\",",
                  "\"usage\":{\"input_tokens\":14,\"output_tokens\":101}}\n\n");
  return body;
}

std::string Answer(absl::string_view content_type, absl::string_view body) {
  return absl::StrCat("HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: keep-alive\r\n\r\n",
                      body);
}

// Answers every request on every connection with `answer`, one thread per connection.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::perror("listen");
      std::exit(2);
    }
    port_ = ntohs(a.sin_port);
    accept_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::thread([this, c] { Serve(c); }).detach();
      }
    });
  }
  ~LoopbackServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    accept_.join();
  }
  int port() const { return port_; }

 private:
  void Serve(int c) {
    std::string in;
    char buf[16384];
    for (;;) {
      // One request: the head, then Content-Length bytes of body.
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) return (void)::close(c);
        in.append(buf, static_cast<size_t>(n));
      }
      size_t body = 0;
      if (const size_t at = in.find("Content-Length: "); at != std::string::npos && at < end) {
        (void)absl::SimpleAtoi(in.substr(at + 16, in.find("\r\n", at) - at - 16), &body);
      }
      while (in.size() < end + 4 + body) {
        const ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) return (void)::close(c);
        in.append(buf, static_cast<size_t>(n));
      }
      in.erase(0, end + 4 + body);
      for (size_t sent = 0; sent < answer_.size();) {
        const ssize_t n = ::write(c, answer_.data() + sent, answer_.size() - sent);
        if (n <= 0) return (void)::close(c);
        sent += static_cast<size_t>(n);
      }
    }
  }

  std::string answer_;
  int fd_ = -1;
  int port_ = 0;
  std::thread accept_;
};

struct Result {
  double allocs_per_request = 0;
  double bytes_per_request = 0;
  int failed = 0;
  std::string error;
};

// `answer` empty: the synthetic server, in this process on its own thread (its allocations are
// not counted: counting is per thread), answers over WebSocket.
Result Run(v1::Target target, const std::string& answer, int warmup, int requests) {
  std::unique_ptr<LoopbackServer> loopback;
  std::unique_ptr<synth::SynthServer> synth_server;
  int port = 0;
  if (!answer.empty()) {
    loopback = std::make_unique<LoopbackServer>(answer);
    port = loopback->port();
  } else {
    synth::SynthOptions o;
    o.model.slots = 64;
    o.model.base_ms = 0;
    o.model.per_char_ms = 0;
    o.model.first_chunk_ms = 0;
    o.model.chunk_ms = 50;                // 20 binary messages of audio, then the end message
    o.model.audio_s_per_char = 1.0 / 44;  // the 44 characters below: one second
    o.model.sample_rate = kRate;
    o.ws_encoding = "pcm_s16le";
    auto started = synth::SynthServer::Start(o);
    if (!started.ok()) {
      Result failed;
      failed.failed = 1;
      failed.error = started.status().ToString();
      return failed;
    }
    synth_server = std::move(*started);
    port = synth_server->port();
  }
  Result out;
  auto url = common::ParseUrl(absl::StrCat("http://127.0.0.1:", port));
  auto dialect = MakeDialect(target, *url, {});
  if (!dialect.ok()) {
    out.failed = 1;
    out.error = dialect.status().ToString();
    return out;
  }
  auto req = (*dialect)->Prepare("The quick brown fox jumps over the lazy dog.");
  net::io_context ioc{1};
  tcp::resolver resolver(ioc);
  const Endpoints endpoints = resolver.resolve("127.0.0.1", std::to_string(port));
  auto conn = MakeConnection(ioc, (*dialect)->transport(), nullptr);
  std::atomic<bool> stopping{false};
  common::LogHistogram gaps_us;
  gaps_us.Reserve(5'000'000);  // the 5 s timeout below, in microseconds, as the load runner does
  const bool streamed = (*dialect)->transport().streamed || target.streaming();
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        const OpenResult opened = co_await conn->Open(endpoints, std::chrono::seconds(5));
        if (opened.error != v1::ERROR_NONE) {
          out.failed = 1;
          out.error = opened.detail;
          co_return;
        }
        v1::RequestRecord rec;
        for (int i = 0; i < warmup + requests; ++i) {
          if (i == warmup) {
            g_allocs = 0;
            g_bytes = 0;
            t_counting = true;
          }
          rec.Clear();
          rec.set_streamed(streamed);
          ExchangeContext ctx{**dialect, rec, &gaps_us, i == 0, stopping, std::chrono::seconds(5)};
          co_await conn->Exchange(*req, ctx);
          if (rec.error() != v1::ERROR_NONE || std::abs(rec.audio_s() - 1.0) > 1e-3) {
            t_counting = false;
            ++out.failed;
            out.error = absl::StrCat(v1::ErrorKind_Name(rec.error()), " ", rec.error_detail(),
                                     " audio ", rec.audio_s());
            co_return;
          }
        }
        t_counting = false;
      },
      net::detached);
  ioc.run();
  conn->Close();
  out.allocs_per_request = static_cast<double>(g_allocs.load()) / requests;
  out.bytes_per_request = static_cast<double>(g_bytes.load()) / requests;
  return out;
}

int Main(int argc, char** argv) {
  int requests = 2000;
  double max_allocs = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--requests") == 0) requests = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--max-allocs") == 0) max_allocs = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--trace") == 0) g_trace = std::atoi(argv[i + 1]);
  }
  const std::string wav = Wav();
  struct Case {
    const char* name;
    v1::Target target;
    std::string answer;
  };
  std::vector<Case> cases(4);
  cases[0].name = "plain WAV (openai, wav)";
  cases[0].target.set_api("openai");
  cases[0].target.set_format("wav");
  cases[0].answer = Answer("audio/wav", wav);
  cases[1].name = "OpenAI SSE (21 events)";
  cases[1].target.set_api("openai");
  cases[1].target.set_format("pcm");
  cases[1].target.set_sample_rate(kRate);
  cases[1].target.set_streaming(true);
  cases[1].target.set_stream_format("sse");
  cases[1].answer = Answer("text/event-stream", Sse());
  cases[2].name = "torch-inference JSON (base64 WAV)";
  cases[2].target.set_api("torch-inference");
  cases[2].answer = Answer("application/json",
                           absl::StrCat("{\"success\":true,\"audio_base64\":\"",
                                        absl::Base64Escape(wav), "\",\"sample_rate\":24000}"));
  cases[3].name = "torch-inference WebSocket (20 binary)";
  cases[3].target.set_api("torch-inference");
  cases[3].target.set_streaming(true);
  cases[3].target.set_stream_format("ws");
  if (!TTSBENCH_COUNTING) {
    std::printf("built with a sanitizer that replaces malloc: nothing to count\n");
    return 0;
  }
  std::printf("%-36s %14s %14s\n", "answer", "allocs/request", "bytes/request");
  int status = 0;
  for (const Case& c : cases) {
    const Result r = Run(c.target, c.answer, /*warmup=*/200, requests);
    if (r.failed != 0) {
      std::printf("%-36s FAILED: %s\n", c.name, r.error.c_str());
      status = 1;
      continue;
    }
    std::printf("%-36s %14.2f %14.0f\n", c.name, r.allocs_per_request, r.bytes_per_request);
    if (max_allocs >= 0 && r.allocs_per_request > max_allocs) status = 1;
  }
  std::printf("(%d requests each on one keep-alive connection or WebSocket after 200 of warm-up)\n",
              requests);
  return status;
}

}  // namespace
}  // namespace ttsbench::agent

int main(int argc, char** argv) { return ttsbench::agent::Main(argc, argv); }
