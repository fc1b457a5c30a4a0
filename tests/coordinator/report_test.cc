#include "coordinator/report/report.h"

#include <algorithm>
#include <boost/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/csv.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace ttsbench::coordinator {
namespace {

TEST(ReportTest, SummaryCsvStartsWithDesignColumnsInOrder) {
  v1::Session s;
  v1::LevelStats* l = s.add_levels();
  l->set_concurrency(4);
  l->set_asps(12.5);
  (*l->mutable_errors())["timeout"] = 2;
  (*l->mutable_errors())["connect"] = 1;
  const std::string csv = SummaryCsv(s);
  const std::vector<std::string> lines = absl::StrSplit(csv, '\n');
  EXPECT_EQ(lines[0].rfind(
                "Concurrency,ASPS,RTF_Mean,RTF_Median,RTF_p95,RPS,CPS,TTFA_p50_ms,TTFA_p95_ms,"
                "TTFA_p99_ms,Latency_p50_ms,Latency_p95_ms,Latency_p99_ms,Success_Rate_%,Errors",
                0),
            0u);
  EXPECT_EQ(lines[1].rfind("4,12.5,", 0), 0u);
  EXPECT_NE(lines[1].find(",connect:1;timeout:2,"), std::string::npos) << lines[1];
}

TEST(ReportTest, RequestsCsvHasOneRowPerRecordOnTheTimeline) {
  v1::Session s;
  s.add_agents()->set_id("a1");
  LevelData level;
  level.concurrency = 2;
  v1::RequestRecord r;
  r.set_request_id(7);
  r.set_start_ns(1'500'000'000);
  r.set_end_ns(2'000'000'001);
  r.set_error(v1::ERROR_HTTP_429);
  level.records.Append(r, 0);
  const std::string csv = RequestsCsv(s, {level});
  const std::vector<std::string> lines = absl::StrSplit(csv, '\n');
  EXPECT_EQ(lines[0].rfind(
                "level,agent,request_id,warmup,intended_s,start_s,first_byte_s,first_audio_s,"
                "end_s,chars,bytes,audio_s,sample_rate,chunks,max_gap_ms,underrun_ms,http_status,"
                "success,error",
                0),
            0u);
  EXPECT_EQ(lines[1].rfind("2,a1,7,0,,1.500000000,,,2.000000001,", 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find(",0,http_429,"), std::string::npos);
}

TEST(ReportTest, NamesWithCommasQuotesAndLineBreaksStayOneCell) {
  const std::string series = "voice=al,\"loy\\x\nnext";
  v1::Session s;
  s.add_agents()->set_id("agent,\"1\"");
  v1::LevelStats* l = s.add_levels();
  l->set_concurrency(2);
  l->set_series(series);
  LevelData level;
  level.concurrency = 2;
  level.series = series;
  v1::RequestRecord r;
  r.set_start_ns(1);
  r.set_end_ns(2);
  level.records.Append(r, 0);
  for (const auto& [csv, column] :
       {std::pair{SummaryCsv(s), "Series"}, std::pair{RequestsCsv(s, {level}), "series"}}) {
    auto rows = common::ParseCsv(csv);
    ASSERT_TRUE(rows.ok()) << rows.status();
    ASSERT_EQ(rows->size(), 2u) << csv;
    const std::vector<std::string>& header = (*rows)[0];
    ASSERT_EQ((*rows)[1].size(), header.size()) << csv;
    const auto at = std::find(header.begin(), header.end(), column);
    ASSERT_NE(at, header.end());
    EXPECT_EQ((*rows)[1][static_cast<size_t>(at - header.begin())], series);
  }
  auto rows = common::ParseCsv(RequestsCsv(s, {level}));
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[1][1], "agent,\"1\"");
}

TEST(ReportTest, ConsoleTableHasThePythonShape) {
  v1::Session s;
  for (int c : {1, 2}) {
    v1::LevelStats* l = s.add_levels();
    l->set_concurrency(c);
    l->set_asps(100.0 * c);
    l->set_successful(10);
    l->set_success_rate_pct(100);
    l->mutable_rtf()->set_mean(0.01);
    l->mutable_ttfa_ms()->set_p95(30.0 / c);
  }
  const std::string t = ConsoleTable("Demo Benchmark Results Summary", s);
  EXPECT_NE(t.find("Conc ASPS     RTF      RPS      CPS      TTFA p95   Success"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("Highest ASPS: 200.000 at concurrency 2"), std::string::npos) << t;
  EXPECT_NE(t.find("Lowest TTFA p95: 15.0ms at concurrency 2"), std::string::npos) << t;
}

TEST(ReportTest, MultiSeriesBestLinesNameTheSeriesAndSloValuesCarryUnits) {
  v1::Session s;
  for (const char* series : {"voice=default", "voice=fast"}) {
    v1::LevelStats* l = s.add_levels();
    l->set_concurrency(4);
    l->set_series(series);
    l->set_asps(std::string(series) == "voice=fast" ? 800 : 400);
    l->set_successful(10);
    l->set_success_rate_pct(100);
    v1::SloResult* r = l->add_slo();
    r->set_slo("ttfa_p95=60ms");
    r->set_metric("ttfa_p95");
    r->set_value(43.63);
    r->set_pass(true);
  }
  const std::string t = ConsoleTable("Voices", s);
  EXPECT_NE(t.find("Highest ASPS: 800.000 at concurrency 4 [voice=fast]"), std::string::npos) << t;
  EXPECT_NE(t.find("PASS ttfa_p95=60ms          at concurrency 4 [voice=default]: 43.63 ms"),
            std::string::npos)
      << t;
}

TEST(ReportTest, CapacityBestLinesComeFromProbesThatMetTheSlos) {
  v1::Session s;
  s.mutable_capacity()->set_found(4);
  for (int c : {4, 8}) {
    v1::LevelStats* l = s.add_levels();
    l->set_concurrency(c);
    l->set_asps(100.0 * c);
    l->set_successful(10);
    v1::SloResult* r = l->add_slo();
    r->set_slo("ttfa_p99=60ms");
    r->set_metric("ttfa_p99");
    r->set_pass(c == 4);
  }
  const std::string t = ConsoleTable("Capacity", s);
  EXPECT_NE(t.find("Highest ASPS: 400.000 at concurrency 4"), std::string::npos) << t;
}

TEST(ReportTest, SummaryLeavesContinuityEmptyWithoutStreamsAndCountsCancelled) {
  v1::Session s;
  v1::LevelStats* l = s.add_levels();
  l->set_concurrency(1);
  l->set_cancelled(3);
  auto rows = common::ParseCsv(SummaryCsv(s));
  ASSERT_TRUE(rows.ok());
  const std::vector<std::string>& header = (*rows)[0];
  const auto column = [&](const std::string& name) {
    return std::find(header.begin(), header.end(), name) - header.begin();
  };
  EXPECT_EQ((*rows)[1][column("Continuity_OK_%")], "");
  ASSERT_LT(column("Cancelled"), static_cast<std::ptrdiff_t>(header.size()));
  EXPECT_EQ((*rows)[1][column("Cancelled")], "3");
  // Audio-check columns come after it, empty when the checks were off; then paced text and
  // conversations (issue 13), empty without them.
  ASSERT_LT(column("TTFA_Audible_p50_ms"), static_cast<std::ptrdiff_t>(header.size()));
  EXPECT_GT(column("TTFA_Audible_p50_ms"), column("Cancelled"));
  EXPECT_EQ((*rows)[1][column("TTFA_Audible_p50_ms")], "");
  ASSERT_LT(column("Conversations"), static_cast<std::ptrdiff_t>(header.size()));
  EXPECT_GT(column("Conversations"), column("TTFA_Audible_p50_ms"));
  EXPECT_EQ((*rows)[1][column("Conversations")], "");  // no conversation: empty, not 0
  EXPECT_EQ((*rows)[1].size(), header.size());
}

v1::ErrorSummary Error(const std::string& kind, int status, const std::string& detail) {
  v1::ErrorSummary e;
  e.set_kind(kind);
  e.set_count(8);
  e.set_first_http_status(status);
  e.set_first_detail(detail);
  return e;
}

v1::Plan PlanFor(const std::string& url) {
  v1::Plan p;
  p.mutable_target()->set_url(url);
  p.mutable_target()->set_voice("nobody");
  return p;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ErrorHintTest, UntrustedCertificatePointsAtCaFileAndInsecure) {
  const std::string h =
      ErrorHint(Error("tls", 0, "certificate verify failed: self-signed certificate"),
                PlanFor("https://127.0.0.1:8000"));
  EXPECT_TRUE(Has(h, "--ca-file FILE")) << h;
  EXPECT_TRUE(Has(h, "--insecure")) << h;
  // TLS to a port that speaks plain HTTP: the other way round.
  const std::string plain = ErrorHint(Error("tls", 0, "TLS handshake: wrong version number"),
                                      PlanFor("https://127.0.0.1:8000"));
  EXPECT_TRUE(Has(plain, "use http://")) << plain;
}

TEST(ErrorHintTest, PlainHttpToATlsPortPointsAtHttps) {
  const v1::Plan plan = PlanFor("http://127.0.0.1:8443/base");
  for (const auto& e :
       {Error("protocol", 0, "the server answered with TLS bytes (15 03 01 00 02), not HTTP"),
        Error("read", 0,
              "the server closed the connection without answering (Connection reset by peer)"),
        Error("http_4xx", 400,
              "400 Bad Request: Client sent an HTTP request to an HTTPS server.")}) {
    const std::string h = ErrorHint(e, plan);
    EXPECT_TRUE(Has(h, "--url https://127.0.0.1:8443/base")) << e.first_detail() << ": " << h;
  }
  // The same drop over https:// says nothing about the scheme.
  EXPECT_EQ(ErrorHint(Error("read", 0, "the server closed the connection without answering"),
                      PlanFor("https://127.0.0.1:8443")),
            "");
}

TEST(ErrorHintTest, NotFoundPointsAtDiscoverAndSpotsAFullEndpointUrl) {
  const std::string base =
      ErrorHint(Error("http_4xx", 404, "404 Not Found"), PlanFor("http://127.0.0.1:8000/tts-api"));
  EXPECT_TRUE(Has(base, "ttsbench discover --url http://127.0.0.1:8000")) << base;
  EXPECT_FALSE(Has(base, "full endpoint URL")) << base;
  const std::string full = ErrorHint(Error("http_4xx", 404, "404 Not Found"),
                                     PlanFor("http://127.0.0.1:8000/v1/audio/speech"));
  EXPECT_TRUE(Has(full, "looks like a full endpoint URL")) << full;
  EXPECT_TRUE(Has(full, "base URL (http://127.0.0.1:8000)")) << full;
  EXPECT_TRUE(Has(full, "`ttsbench discover --url http://127.0.0.1:8000`")) << full;
  const std::string nested = ErrorHint(Error("http_4xx", 404, "404 Not Found"),
                                       PlanFor("http://h:9000/gw/v1/audio/speech"));
  EXPECT_TRUE(Has(nested, "base URL (http://h:9000/gw)")) << nested;
}

TEST(ErrorHintTest, AWebServerThatIsNoTtsApiPointsAtDiscover) {
  // python3 -m http.server answers a POST with 501.
  const std::string h = ErrorHint(Error("http_5xx", 501, "501 Unsupported method ('POST')"),
                                  PlanFor("http://127.0.0.1:8000"));
  EXPECT_TRUE(Has(h, "ttsbench discover --url http://127.0.0.1:8000")) << h;
}

TEST(ErrorHintTest, AuthRefusalsPointAtTheAuthFlags) {
  for (int status : {401, 403}) {
    const std::string h = ErrorHint(Error("http_4xx", status, absl::StrCat(status, " Forbidden")),
                                    PlanFor("http://127.0.0.1:8000"));
    EXPECT_TRUE(Has(h, "--auth-token-env")) << h;
    EXPECT_TRUE(Has(h, "--auth-header")) << h;
    EXPECT_TRUE(Has(h, "none were sent")) << h;
  }
  v1::Plan with_token = PlanFor("http://127.0.0.1:8000");
  with_token.mutable_target()->set_auth_token_env("TTS_TOKEN");
  EXPECT_TRUE(
      Has(ErrorHint(Error("http_4xx", 401, "401 Unauthorized"), with_token), "refused the token"));
}

TEST(ErrorHintTest, AServerErrorNamingTheVoicePointsAtVoiceAndDiscover) {
  const std::string h =
      ErrorHint(Error("http_5xx", 500,
                      "500 Internal Server Error: {\"detail\":\"Voice 'nobody' not found\"}"),
                PlanFor("http://127.0.0.1:8000"));
  EXPECT_TRUE(Has(h, "--voice (now 'nobody')")) << h;
  EXPECT_TRUE(Has(h, "ttsbench discover --url http://127.0.0.1:8000")) << h;
  // Any other server error has no known fix.
  EXPECT_EQ(ErrorHint(Error("http_5xx", 500, "500 Internal Server Error: injected failure"),
                      PlanFor("http://127.0.0.1:8000")),
            "");
}

TEST(ErrorBreakdownTest, SumsKindsOverLevelsMostFrequentFirstWithDetailAndHint) {
  v1::Session s;
  *s.mutable_plan() = PlanFor("http://127.0.0.1:8000/v1/audio/speech");
  for (int c : {1, 2}) {
    v1::LevelStats* l = s.add_levels();
    l->set_concurrency(c);
    l->set_attempted(10);
    l->set_successful(8);
    l->set_success_rate_pct(80);
    v1::ErrorSummary* e = l->add_error_summary();
    *e = Error("http_4xx", 404, c == 1 ? "404 Not Found: first" : "404 Not Found: second");
    e->set_count(c == 1 ? 1 : 2);
    if (c == 2) {
      *l->add_error_summary() = Error("timeout", 0, "the request deadline passed");
      l->mutable_error_summary(1)->set_count(1);
    }
  }
  const std::string b = ErrorBreakdown(s);
  EXPECT_TRUE(Has(b, "  http_4xx            3   15.0%  404 Not Found: first\n")) << b;
  EXPECT_TRUE(Has(b, "  timeout             1    5.0%  the request deadline passed\n")) << b;
  EXPECT_LT(b.find("http_4xx"), b.find("timeout")) << b;
  EXPECT_TRUE(Has(b, "    hint: --url http://127.0.0.1:8000/v1/audio/speech looks like")) << b;
  // Shown under the table even when most requests succeeded.
  EXPECT_TRUE(Has(ConsoleTable("T", s), b));
  v1::Session clean;
  clean.add_levels()->set_successful(3);
  EXPECT_EQ(ErrorBreakdown(clean), "");
}

TEST(SloFailureLineTest, NamesTheFailedObjectiveAndHowToChangeTheFloor) {
  v1::Session s;
  v1::LevelStats* l = s.add_levels();
  l->set_concurrency(4);
  v1::SloResult* r = l->add_slo();
  r->set_slo("success_rate=50% (default)");
  r->set_metric("success_rate");
  r->set_value(0);
  EXPECT_EQ(SloFailureLine(s),
            "SLO failed: success_rate=50% (default) at concurrency 4: success_rate 0% (every "
            "request failed; the default floor when no success_rate SLO is set; --slo "
            "success_rate=X% sets another, success_rate=0% turns it off)");
  r->set_pass(true);
  EXPECT_EQ(SloFailureLine(s), "");
}

// A session with one level, as RunSession leaves it: stats, an SLO verdict, an error map.
v1::Session OneLevelSession() {
  v1::Session s;
  s.set_name("nightly");
  s.set_status("completed");
  s.set_mode("server");
  v1::LevelStats* l = s.add_levels();
  l->set_concurrency(4);
  l->set_attempted(20);
  l->set_successful(19);
  l->set_asps(12.5);
  l->mutable_ttfa_ms()->set_p95(180.25);
  (*l->mutable_errors())["timeout"] = 1;
  v1::SloResult* slo = l->add_slo();
  slo->set_slo("ttfa_p95=300ms");
  slo->set_metric("ttfa_p95");
  slo->set_threshold(300);
  slo->set_value(180.25);
  slo->set_pass(true);
  s.set_slo_passed(true);
  return s;
}

TEST(SessionJsonTest, StampsTheSchemaVersionAndReadsBackEqual) {
  const v1::Session s = OneLevelSession();
  ASSERT_EQ(s.schema_version(), 0u);
  auto json = SessionJson(s);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->back(), '\n');
  const boost::json::object doc = boost::json::parse(*json).as_object();
  EXPECT_EQ(doc.at("schema_version").as_int64(), kSessionSchemaVersion);
  // Proto field names, every field printed (an unset one too), numbers as JSON numbers.
  const boost::json::object& level = doc.at("levels").as_array().at(0).as_object();
  EXPECT_EQ(level.at("asps").as_double(), 12.5);
  EXPECT_EQ(level.at("attempted").as_int64(), 20);
  EXPECT_EQ(level.at("ttfa_ms").as_object().at("p95").as_double(), 180.25);
  EXPECT_EQ(level.at("rps").to_number<double>(), 0);
  EXPECT_EQ(level.at("errors").as_object().at("timeout").as_int64(), 1);
  v1::Session back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok());
  v1::Session expected = s;
  expected.set_schema_version(kSessionSchemaVersion);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, expected));
}

TEST(SessionJsonTest, OutcomeCarriesTheSessionAsSessionJsonHasIt) {
  v1::SessionOutcome outcome;
  outcome.set_exit_code(3);
  outcome.set_error("SLO failed: ttfa_p95=300ms at concurrency 4: ttfa_p95 310");
  outcome.set_session_dir("out/nightly");
  *outcome.mutable_session() = OneLevelSession();
  auto json = SessionOutcomeJson(outcome);
  ASSERT_TRUE(json.ok()) << json.status();
  const boost::json::object doc = boost::json::parse(*json).as_object();
  EXPECT_EQ(doc.at("schema_version").as_int64(), kSessionSchemaVersion);
  EXPECT_EQ(doc.at("exit_code").as_int64(), 3);
  EXPECT_EQ(doc.at("result").as_string(), "slo_failed");
  EXPECT_EQ(doc.at("error").as_string(), outcome.error());
  EXPECT_EQ(doc.at("session_dir").as_string(), "out/nightly");
  // The session member is session.json's document, key for key.
  auto session_json = SessionJson(outcome.session());
  ASSERT_TRUE(session_json.ok());
  EXPECT_EQ(doc.at("session"), boost::json::parse(*session_json));
}

TEST(SessionJsonTest, OutcomeWithoutASessionOmitsIt) {
  v1::SessionOutcome outcome;
  outcome.set_exit_code(1);
  outcome.set_error("target.auth_token_env: environment variable TTS_KEY is not set");
  auto json = SessionOutcomeJson(outcome);
  ASSERT_TRUE(json.ok());
  const boost::json::object doc = boost::json::parse(*json).as_object();
  EXPECT_EQ(doc.at("result").as_string(), "usage_error");
  EXPECT_EQ(doc.at("session_dir").as_string(), "");
  EXPECT_FALSE(doc.contains("session"));
}

TEST(SessionJsonTest, ExitCodesHaveTheirDocumentedNames) {
  EXPECT_EQ(ExitCodeName(0), "ok");
  EXPECT_EQ(ExitCodeName(1), "usage_error");
  EXPECT_EQ(ExitCodeName(2), "run_failed");
  EXPECT_EQ(ExitCodeName(3), "slo_failed");
  EXPECT_EQ(ExitCodeName(4), "regression");
  EXPECT_EQ(ExitCodeName(5), "not_evaluated");
  EXPECT_EQ(ExitCodeName(7), "exit_7");
}

}  // namespace
}  // namespace ttsbench::coordinator
