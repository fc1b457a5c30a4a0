// A failed request says why in its record (error_detail): the status line and the start of the
// server's error body, the socket error, what the server sent instead of HTTP; a successful one
// carries no detail.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/error.hpp>
#include <string>
#include <vector>

#include "agent/client/transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/agent/fake_server.h"
#include "tests/agent/runner_harness.h"

namespace ttsbench::agent::testing {
namespace {

using ::testing::HasSubstr;

v1::Target OpenAi() { return OpenAiTarget("wav"); }

v1::Target TorchWs() { return TorchWsTarget("pcm"); }

// Two requests to a server made from `options`; their records.
std::vector<v1::RequestRecord> Against(FakeServer::Options options, v1::Target target,
                                       double timeout_s = 2) {
  RunSpec spec;
  spec.target = std::move(target);
  spec.iterations = 2;
  spec.timeout_s = timeout_s;
  return RunAgainst(std::move(options), std::move(spec));
}

std::vector<v1::RequestRecord> Answering(HttpAnswer answer) {
  return Against({.http = AlwaysAnswer(std::move(answer))}, OpenAi());
}

void ExpectDetail(const std::vector<v1::RequestRecord>& records, v1::ErrorKind kind,
                  const std::string& part) {
  ASSERT_EQ(records.size(), 2u) << part;
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), kind) << r.DebugString();
    EXPECT_THAT(r.error_detail(), HasSubstr(part)) << r.DebugString();
  }
}

TEST(ErrorDetailTest, SuccessCarriesNoDetail) {
  const auto records = Answering({HttpOk("audio/wav", WavBytes(8000, 800))});
  ASSERT_EQ(records.size(), 2u);
  for (const auto& r : records) {
    EXPECT_EQ(r.error(), v1::ERROR_NONE);
    EXPECT_EQ(r.error_detail(), "");
  }
}

TEST(ErrorDetailTest, ErrorStatusKeepsItsStatusLineAndTheStartOfItsBody) {
  const std::string body = R"({"detail":"Voice 'nobody' not found"})";
  const auto records = Answering({"HTTP/1.1 500 Internal Server Error\r\nContent-Length: " +
                                  std::to_string(body.size()) + "\r\n\r\n" + body});
  ExpectDetail(records, v1::ERROR_HTTP_5XX, "500 Internal Server Error: " + body);
  ExpectDetail(Answering({"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found"}),
               v1::ERROR_HTTP_4XX, "404 Not Found: Not Found");
  // Chunked, and without a reason phrase.
  ExpectDetail(Answering({"HTTP/1.1 401 \r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nno ke\r\n2\r\ny!\r\n0\r\n\r\n"}),
               v1::ERROR_HTTP_4XX, "401: no key!");
}

TEST(ErrorDetailTest, LongOrBinaryErrorBodiesAreCutAndMadePrintable) {
  const std::string body = std::string(1000, 'x') + "TAIL";
  const auto records = Answering(
      {"HTTP/1.1 503 Busy\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body});
  ASSERT_EQ(records.size(), 2u);
  for (const auto& r : records) {
    EXPECT_EQ(r.error_detail(), "503 Busy: " + std::string(kErrorBodyBytes, 'x') + "...");
  }
  EXPECT_EQ(StatusDetail(502, "Bad\tGateway", "line1\r\n\r\nline2\x01\xff"),
            "502 Bad Gateway: line1 line2 ?");
}

TEST(ErrorDetailTest, TlsBytesInsteadOfHttpAreNamed) {
  // A TLS server's alert (protocol_version) to a plain HTTP request.
  const auto records = Answering({std::string("\x15\x03\x01\x00\x02\x02\x46", 7), true});
  ASSERT_EQ(records.size(), 2u);
  for (const auto& r : records) {
    EXPECT_NE(r.error(), v1::ERROR_NONE);
    EXPECT_THAT(r.error_detail(), HasSubstr("the server answered with TLS bytes (15 03 01 00 02)"));
  }
  EXPECT_TRUE(LooksLikeTls(std::string("\x16\x03\x03", 3)));
  EXPECT_FALSE(LooksLikeTls("HTTP/1.1 200 OK"));
  EXPECT_FALSE(LooksLikeTls(std::string("\x15", 1)));
}

TEST(ErrorDetailTest, NotHttpAtAllQuotesWhatCame) {
  ExpectDetail(Answering({"SSH-2.0-OpenSSH_9.2\r\n", true}), v1::ERROR_PROTOCOL,
               "not an HTTP answer");
  ExpectDetail(Answering({"SSH-2.0-OpenSSH_9.2\r\n", true}), v1::ERROR_PROTOCOL, "SSH-2.0");
}

TEST(ErrorDetailTest, ConnectionDroppedWithoutAnswerSaysSo) {
  HttpAnswer reset;
  reset.reset = true;
  ExpectDetail(Answering(reset), v1::ERROR_READ, "closed the connection without answering");
  EXPECT_EQ(ReadDetail(boost::beast::http::error::end_of_stream, ""),
            "the server closed the connection without answering (end of stream)");
}

TEST(ErrorDetailTest, RefusedConnectionNamesTheSocketError) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor probe(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const int port = probe.local_endpoint().port();
  probe.close();  // nothing listens there now
  RunSpec spec;
  spec.target = OpenAi();
  spec.target.set_url("http://127.0.0.1:" + std::to_string(port));
  spec.iterations = 2;
  spec.timeout_s = 2;
  ExpectDetail(RunLoad(spec).records, v1::ERROR_CONNECT, "connect: Connection refused");
}

TEST(ErrorDetailTest, BadAudioAndEmptyAudioSayWhy) {
  const auto bad = Answering({HttpOk("text/html", "<html>Bad gateway</html>")});
  ASSERT_EQ(bad.size(), 2u);
  for (const auto& r : bad) {
    EXPECT_EQ(r.error(), v1::ERROR_INVALID_AUDIO);
    EXPECT_FALSE(r.error_detail().empty());
  }
  ExpectDetail(Answering({HttpOk("audio/wav", "")}), v1::ERROR_EMPTY_AUDIO,
               "the answer held no audio (0 bytes)");
}

TEST(ErrorDetailTest, TimeoutNamesTheDeadline) {
  HttpAnswer silent;
  silent.bytes = "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\n\r\n";
  ExpectDetail(Against({.http = AlwaysAnswer(silent)}, OpenAi(), 0.3), v1::ERROR_TIMEOUT,
               "the request deadline (--timeout 0.3s) passed while reading");
}

TEST(ErrorDetailTest, WebSocketRefusalAndServerErrorsSayWhy) {
  const auto refused = Against({.ws_refuse_status = 403}, TorchWs(), 1);
  ExpectDetail(refused, v1::ERROR_HTTP_4XX, "WebSocket upgrade refused: 403");
  const auto error = Against({.ws =
                                  [](const Recorded&, const std::string&) {
                                    return WsAnswer{{{R"({"type":"error","msg":"no engine"})"}}};
                                  }},
                             TorchWs(), 1);
  ASSERT_EQ(error.size(), 2u);
  for (const auto& r : error) {
    EXPECT_EQ(r.error(), v1::ERROR_PROTOCOL);
    EXPECT_THAT(r.error_detail(), HasSubstr("no engine"));
  }
}

}  // namespace
}  // namespace ttsbench::agent::testing
