#include "coordinator/report.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_split.h"
#include "common/csv.h"
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

}  // namespace
}  // namespace ttsbench::coordinator
