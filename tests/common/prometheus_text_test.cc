#include "common/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace ttsbench::common {
namespace {

// The shape of the DCGM exporter's page (its README's sample), with HELP/TYPE per family.
constexpr char kDcgm[] =
    "# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).\n"
    "# TYPE DCGM_FI_DEV_SM_CLOCK gauge\n"
    "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n"
    "# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n"
    "DCGM_FI_DEV_SM_CLOCK{gpu=\"0\", UUID=\"GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52\"} 139\n"
    "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-604ac76c\",modelName=\"NVIDIA A100\"} 61.23\n"
    "DCGM_FI_DEV_POWER_USAGE{gpu=\"1\",UUID=\"GPU-1\",modelName=\"NVIDIA A100\"} 58\n";

// vLLM's histogram families (its metrics page's sample) with gauge families around them.
constexpr char kVllm[] =
    "# HELP vllm:num_requests_running Number of requests currently running on GPU.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    "vllm:num_requests_running{model_name=\"m\"} 3.0\n"
    "# HELP vllm:iteration_tokens_total Histogram of number of tokens per engine_step.\n"
    "# TYPE vllm:iteration_tokens_total histogram\n"
    "vllm:iteration_tokens_total_sum{model_name=\"m\"} 0.0\n"
    "vllm:iteration_tokens_total_bucket{le=\"1.0\",model_name=\"m\"} 3.0\n"
    "vllm:iteration_tokens_total_bucket{le=\"+Inf\",model_name=\"m\"} 3.0\n"
    "vllm:iteration_tokens_total_count{model_name=\"m\"} 3.0\n"
    "# HELP vllm:request_success_total Count of successfully processed requests.\n"
    "# TYPE vllm:request_success_total counter\n"
    "vllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 12.0\n";

TEST(PrometheusTextTest, ParsesDcgmLabelsAndValues) {
  auto s = ParsePrometheusText(kDcgm);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].name, "DCGM_FI_DEV_SM_CLOCK");
  ASSERT_EQ((*s)[0].labels.size(), 2u);
  EXPECT_EQ((*s)[0].labels[1].first, "UUID");
  EXPECT_EQ((*s)[0].labels[1].second, "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52");
  EXPECT_DOUBLE_EQ((*s)[1].value, 61.23);
  EXPECT_EQ((*s)[1].type, PromType::kGauge);
  EXPECT_FALSE((*s)[1].timestamp_ms.has_value());
}

TEST(PrometheusTextTest, HistogramLinesBelongToTheirFamily) {
  auto s = ParsePrometheusText(kVllm);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 6u);
  EXPECT_EQ((*s)[0].type, PromType::kGauge);
  for (int i = 1; i <= 4; ++i) EXPECT_EQ((*s)[i].type, PromType::kHistogram) << (*s)[i].name;
  EXPECT_TRUE(std::isinf((*s)[3].value) == false);
  EXPECT_EQ((*s)[3].labels[0].second, "+Inf");
  EXPECT_EQ((*s)[5].type, PromType::kCounter);
  EXPECT_DOUBLE_EQ((*s)[5].value, 12);
}

TEST(PrometheusTextTest, SummaryQuantilesSumAndCount) {
  auto s = ParsePrometheusText(
      "# TYPE rpc_duration_seconds summary\n"
      "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
      "rpc_duration_seconds_sum 1.7560473e+07\n"
      "rpc_duration_seconds_count 2693\n"
      "rpc_duration_seconds_bucket 1\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0].type, PromType::kSummary);
  EXPECT_DOUBLE_EQ((*s)[1].value, 1.7560473e+07);
  EXPECT_EQ((*s)[2].type, PromType::kSummary);
  EXPECT_EQ((*s)[3].type, PromType::kUntyped);  // a summary has no buckets
}

TEST(PrometheusTextTest, SpecialValuesTimestampsAndBlanks) {
  auto s = ParsePrometheusText(
      "\n   \n# a plain comment\n#\n"
      "a NaN\n"
      "b +Inf 1395066363000\n"
      "c\t-Inf\t-5\n"
      "d{} 1e-3\n"
      "  e 7   \r\n"
      "f{x=\"1\",} .5\n");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 6u);
  EXPECT_TRUE(std::isnan((*s)[0].value));
  EXPECT_TRUE(std::isinf((*s)[1].value) && (*s)[1].value > 0);
  EXPECT_EQ((*s)[1].timestamp_ms, 1395066363000);
  EXPECT_TRUE(std::isinf((*s)[2].value) && (*s)[2].value < 0);
  EXPECT_EQ((*s)[2].timestamp_ms, -5);
  EXPECT_DOUBLE_EQ((*s)[3].value, 0.001);
  EXPECT_TRUE((*s)[3].labels.empty());
  EXPECT_DOUBLE_EQ((*s)[4].value, 7);
  EXPECT_DOUBLE_EQ((*s)[5].value, 0.5);
  EXPECT_EQ((*s)[5].labels.size(), 1u);
}

TEST(PrometheusTextTest, LabelEscapesAreUnescapedAndKeyedBack) {
  auto s = ParsePrometheusText(
      "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
      "file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ((*s)[0].labels.size(), 2u);
  EXPECT_EQ((*s)[0].labels[0].second, "C:\\DIR\\FILE.TXT");
  EXPECT_EQ((*s)[0].labels[1].second, "Cannot find file:\n\"FILE.TXT\"");
  // Sorted by label name, escaped again.
  EXPECT_EQ(PromSeriesKey((*s)[0]),
            "msdos_file_access_time_seconds{error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\","
            "path=\"C:\\\\DIR\\\\FILE.TXT\"}");
}

TEST(PrometheusTextTest, HelpTextMayHoldAnything) {
  auto s = ParsePrometheusText("# HELP x Some \\\\ text {with} \"quotes\" 1 2 3\nx 1\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->size(), 1u);
}

TEST(PrometheusTextTest, GarbageIsAnErrorNamingTheLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : {
           Case{"ok 1\n<html><body>Not found</body></html>\n", "line 2: expected a metric name"},
           Case{"a{b=\"1\" 2\n", "line 1: expected ',' or '}'"},
           Case{"a{b=1} 2\n", "line 1: label b: expected '\"'"},
           Case{"a{b=\"1} 2\n", "line 1: label b: unterminated value"},
           Case{"a{b=\"\\t\"} 2\n", "line 1: label b: invalid escape"},
           Case{"a{b=\"1\",b=\"2\"} 2\n", "line 1: label b given twice"},
           Case{"a 1x\n", "line 1: a: '1x' is not a value"},
           Case{"a\n", "line 1: a: '' is not a value"},
           Case{"a 1 2.5\n", "line 1: a: '2.5' is not a timestamp"},
           Case{"a 1 2 3\n", "line 1: a: text after the timestamp"},
           Case{"# TYPE a sideways\n", "line 1: # TYPE a: unknown type 'sideways'"},
           Case{"# TYPE\n", "line 1: # TYPE: no metric name"},
           Case{"a 0x10\n", "'0x10' is not a value"},
           Case{"{a=\"1\"} 1\n", "line 1: expected a metric name"},
       }) {
    auto s = ParsePrometheusText(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.status().message().find(c.message), std::string::npos)
        << c.text << " -> " << s.status().message();
  }
}

TEST(PrometheusTextTest, TooManySamplesIsAnError) {
  std::string text;
  for (int i = 0; i < 11; ++i) text += "a" + std::to_string(i) + " 1\n";
  EXPECT_TRUE(ParsePrometheusText(text, 11).ok());
  auto s = ParsePrometheusText(text, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("more than 10 samples"), std::string::npos);
}

TEST(PrometheusTextTest, EmptyPageHasNoSamples) {
  auto s = ParsePrometheusText("");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty());
  // No final newline: the last line still counts.
  s = ParsePrometheusText("a 1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 1u);
}

}  // namespace
}  // namespace ttsbench::common
