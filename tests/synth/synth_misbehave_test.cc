// The synthetic server's benchmark aids (issue 12): the first-event log that benchmarks match
// with the agent's records, and the broken answers that never end (--misbehave).
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "synth/synth_server.h"
#include "tests/synth/http_test_client.h"
#include "tests/synth/synth_harness.h"

namespace ttsbench::synth {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// Sends one HTTP request and reads `want` bytes of the answer (or what comes in 5 s).
std::string ReadPrefix(uint16_t port, const std::string& path, const std::string& body,
                       size_t want) {
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  const std::string req =
      absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: x\r\nContent-Type: ",
                   "application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
  net::write(s, net::buffer(req));
  std::string out(want, '\0');
  boost::system::error_code ec;
  const size_t n = net::read(s, net::buffer(out), ec);
  out.resize(n);
  return out;
}

TEST(SynthMisbehaveTest, EndlessSseLineNeverEndsItsDataLine) {
  SynthOptions o = FastOptions();
  o.misbehave = "endless-sse-line";
  auto server = SynthServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string got = ReadPrefix(
      (*server)->port(), "/v1/audio/speech",
      R"({"input":"Hello there.","response_format":"pcm","stream_format":"sse"})", 3 << 20);
  ASSERT_EQ(got.size(), size_t{3} << 20);
  const size_t data = got.find("data: {\"type\":\"speech.audio.delta\",\"audio\":\"");
  ASSERT_NE(data, std::string::npos);
  // Past the opening, only base64 letters and the chunked framing's own CRLF lines.
  size_t letters = 0;
  for (size_t i = data; i < got.size(); ++i) letters += got[i] == 'A';
  EXPECT_GT(letters, size_t{3} << 19);
  EXPECT_EQ(got.find("\n\n", data), std::string::npos);
}

TEST(SynthMisbehaveTest, EndlessJsonNeverClosesTheString) {
  SynthOptions o = FastOptions();
  o.misbehave = "endless-json";
  auto server = SynthServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string got =
      ReadPrefix((*server)->port(), "/tts/synthesize", R"({"text":"Hello there."})", 2 << 20);
  ASSERT_EQ(got.size(), size_t{2} << 20);
  EXPECT_NE(got.find("application/json"), std::string::npos);
  EXPECT_NE(got.find(R"({"success":true,"audio_base64":")"), std::string::npos);
  EXPECT_EQ(got.find("}", got.find("audio_base64")), std::string::npos);
}

TEST(SynthMisbehaveTest, UnknownModeIsRefused) {
  SynthOptions o = FastOptions();
  o.misbehave = "sometimes";
  EXPECT_FALSE(SynthServer::Start(o).ok());
}

TEST(SynthMisbehaveTest, FirstEventLogHasOneLinePerStreamedAnswer) {
  const std::string path = ::testing::TempDir() + "/synth_first_events.tsv";
  std::remove(path.c_str());
  SynthOptions o = FastOptions();
  o.log_first_event = path;
  auto server = SynthServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  for (const char* text : {"First text.", "Second text."}) {
    auto r = httptest::Post(
        (*server)->port(), "/v1/audio/speech",
        absl::StrCat(R"({"input":")", text, R"(","response_format":"pcm","stream_format":"sse"})"));
    ASSERT_EQ(r.status(), 200u);
  }
  // Not streamed: no line.
  ASSERT_EQ(httptest::Post((*server)->port(), "/v1/audio/speech", R"({"input":"Whole."})").status(),
            200u);
  (*server)->Stop();
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  std::vector<std::string> lines = absl::StrSplit(all.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << all.str();
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], '\t');
    ASSERT_EQ(f.size(), 3u);
    int64_t received = 0, sent = 0;
    ASSERT_TRUE(absl::SimpleAtoi(f[0], &received));
    ASSERT_TRUE(absl::SimpleAtoi(f[1], &sent));
    EXPECT_LE(received, sent);
    EXPECT_LE(sent, now);                   // the steady clock of this process
    EXPECT_GE(sent - received, 2'000'000);  // first_chunk_ms
    EXPECT_EQ(f[2], i == 0 ? "First text." : "Second text.");
  }
}

}  // namespace
}  // namespace ttsbench::synth
