// Plots, report.html, compare and the sessions index, on synthetic sessions with known records.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <queue>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/csv.h"
#include "common/metrics.h"
#include "coordinator/cli/plan_file.h"
#include "coordinator/report/html_report.h"
#include "coordinator/report/plots.h"
#include "coordinator/report/report.h"
#include "coordinator/sessions/compare.h"
#include "coordinator/sessions/sessions.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ttsbench::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTargetUrl[] = "http://127.0.0.1:8000/v1?x=<y>&z=1";
constexpr char kSecretValue[] = "sk-SECRET-VALUE-123";

// One closed-loop level, simulated: `concurrency` workers each send their next request as soon as
// the previous one ends. Latency is log-normal around `median_ms`, times `slowdown`.
struct LevelSpec {
  int concurrency = 4;
  int requests = 400;
  int warmup = 8;
  double median_ms = 200;
  double sigma = 0.35;
  double slowdown = 1.0;
  std::string series;
  int failures = 0;  // the first N measured requests fail with http_5xx
};

LevelData Simulate(const LevelSpec& spec, uint64_t seed, int64_t start_ns, int64_t* end_ns) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> latency(std::log(spec.median_ms), spec.sigma);
  std::uniform_real_distribution<double> audio(2.0, 6.0), ttfa_share(0.15, 0.3);
  using Worker = std::pair<int64_t, int>;  // free at, index
  std::priority_queue<Worker, std::vector<Worker>, std::greater<>> free;
  for (int w = 0; w < spec.concurrency; ++w) free.push({start_ns, w});
  LevelData level;
  level.concurrency = spec.concurrency;
  int64_t last = start_ns;
  for (int i = 0; i < spec.warmup + spec.requests; ++i) {
    auto [at, w] = free.top();
    free.pop();
    const double lat_ms = latency(rng) * spec.slowdown;
    const int64_t lat_ns = static_cast<int64_t>(lat_ms * 1e6);
    v1::RequestRecord r;
    r.set_request_id(static_cast<uint64_t>(i + 1));
    r.set_warmup(i < spec.warmup);
    r.set_intended_ns(at);
    r.set_start_ns(at + 100'000);
    r.set_first_audio_ns(r.start_ns() +
                         static_cast<int64_t>(static_cast<double>(lat_ns) * ttfa_share(rng)));
    r.set_first_byte_ns(r.first_audio_ns() - 50'000);
    r.set_end_ns(r.start_ns() + lat_ns);
    const double a = audio(rng);
    r.set_audio_s(a);
    r.set_chars(static_cast<int32_t>(a * 15));
    r.set_bytes(static_cast<int64_t>(a * 48000));
    r.set_sample_rate(24000);
    r.set_chunks(8);
    r.set_max_gap_ms(12.5);
    r.set_http_status(200);
    r.set_streamed(true);
    if (!r.warmup() && i - spec.warmup < spec.failures) {
      r.set_error(v1::ERROR_HTTP_5XX);
      r.set_http_status(503);
      r.set_audio_s(0);
    }
    if (i == 0) r.set_connect_ns(1'234'000);
    level.records.Append(r, static_cast<uint32_t>(w % 2));
    free.push({r.end_ns() + 50'000, w});
    last = std::max(last, r.end_ns());
  }
  *end_ns = last;
  return level;
}

struct Synthetic {
  v1::Session session;
  std::vector<LevelData> levels;
};

Synthetic MakeSession(const std::string& name, const std::vector<LevelSpec>& specs, uint64_t seed) {
  Synthetic s;
  v1::Session& session = s.session;
  session.set_name(name);
  session.set_version("0.1.0");
  session.set_status("completed");
  session.set_mode("server");
  session.set_started_at("2024-05-01T10:00:00Z");
  session.set_ended_at("2024-05-01T10:05:00Z");
  session.set_percentile_method("linear");
  v1::Plan* plan = session.mutable_plan();
  plan->set_mode("server");
  plan->set_session_name(name);
  plan->set_description("nightly <gate> & friends");
  plan->mutable_target()->set_url(kTargetUrl);
  plan->mutable_target()->set_api("openai");
  plan->mutable_target()->set_voice("alloy");
  plan->mutable_target()->set_auth_token_env("TTS_TOKEN");
  v1::Header* h = plan->mutable_target()->add_headers();
  h->set_name("X-Api-Key");
  h->set_value(kSecretValue);
  v1::Header* h2 = plan->mutable_target()->add_headers();
  h2->set_name("X-Trace");
  h2->set_value("visible-trace");
  plan->add_slo("ttfa_p95=300ms");
  for (const LevelSpec& spec : specs) plan->mutable_load()->add_concurrency(spec.concurrency);
  for (int a = 0; a < 2; ++a) {
    v1::AgentInfo* agent = session.add_agents();
    agent->set_id(absl::StrCat("agent-", a));
    agent->set_host("loadhost");
    agent->set_cores(4);
    agent->set_clock_offset_ms(0.25 * a);
    agent->set_clock_uncertainty_ms(0.05);
  }
  session.add_warnings("<script>alert(1)</script> Little's law off by 12%");
  int64_t t = 1'000'000'000;
  uint64_t level_seed = seed;
  for (const LevelSpec& spec : specs) {
    int64_t end = 0;
    LevelData level = Simulate(spec, level_seed++, t, &end);
    t = end + 500'000'000;
    v1::LevelStats stats = common::ComputeLevelStats(spec.concurrency, level.records);
    stats.set_series(spec.series);
    v1::SloResult* slo = stats.add_slo();
    slo->set_slo("ttfa_p95=300ms");
    slo->set_metric("ttfa_p95");
    slo->set_threshold(300);
    slo->set_value(stats.ttfa_ms().p95());
    slo->set_pass(stats.ttfa_ms().p95() <= 300);
    *session.add_levels() = stats;
    s.levels.push_back(std::move(level));
  }
  return s;
}

std::vector<LevelSpec> TwoLevels(double slowdown = 1.0) {
  LevelSpec a;
  a.concurrency = 2;
  a.slowdown = slowdown;
  LevelSpec b = a;
  b.concurrency = 8;
  return {a, b};
}

class ReportOutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            absl::StrCat("report_outputs_", getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    // Set TTSBENCH_KEEP_TEST_OUTPUT=1 to look at the plots and report.html afterwards.
    if (std::getenv("TTSBENCH_KEEP_TEST_OUTPUT") == nullptr) fs::remove_all(root_);
  }

  // Writes a session with report.cc's writers, as a run would.
  std::string WriteSession(const std::string& name, const Synthetic& s) {
    const std::string dir = (root_ / name).string();
    EXPECT_TRUE(WriteSessionFiles(dir, s.session, s.levels).ok());
    return dir;
  }

  fs::path root_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

uint32_t BigEndian32(const std::string& b, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

bool HaveGnuplot() { return std::system("gnuplot --version >/dev/null 2>&1") == 0; }

// ---------------------------------------------------------------- plots

TEST_F(ReportOutputsTest, PlotsWritesEveryPngAndEachDecodes) {
  if (!HaveGnuplot()) GTEST_SKIP() << "gnuplot not installed (apt-get install gnuplot-nox)";
  std::vector<LevelSpec> specs = TwoLevels();
  for (LevelSpec& s : specs) s.series = "voice=alloy";
  std::vector<LevelSpec> more = TwoLevels(1.2);
  for (LevelSpec& s : more) s.series = "voice='nova' \"v2\"";
  more[0].failures = 10;
  specs.insert(specs.end(), more.begin(), more.end());
  for (LevelSpec& s : specs) s.requests = 200;
  const Synthetic s = MakeSession("plots", specs, 1);
  const std::string dir = WriteSession("plots", s);

  std::vector<std::string> written;
  const absl::Status st = WritePlots(dir, s.session, s.levels, &written);
  ASSERT_TRUE(st.ok()) << st;
  std::vector<std::string> names;
  for (const std::string& p : written) names.push_back(fs::path(p).filename().string());
  EXPECT_THAT(names,
              ::testing::UnorderedElementsAre("throughput.png", "latency.png", "ttfa_cdf.png",
                                              "rtf.png", "timeline.png", "asps_by_series.png"));
  for (const std::string& p : written) {
    const std::string png = ReadAll(p);
    ASSERT_GT(png.size(), 33u) << p;
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << p;
    EXPECT_EQ(png.substr(12, 4), "IHDR") << p;
    EXPECT_EQ(BigEndian32(png, 16), 1000u) << p;
    EXPECT_EQ(BigEndian32(png, 20), 600u) << p;
    EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND") << p;
  }
  // The scratch folder does not outlive the call.
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    EXPECT_FALSE(absl::StartsWith(e.path().filename().string(), ".plots-")) << e.path();
  }
}

TEST_F(ReportOutputsTest, PlotsWithoutGnuplotReturnsOneLineNoticeAndWritesNothing) {
  const Synthetic s = MakeSession("nognuplot", TwoLevels(), 1);
  const std::string dir = WriteSession("nognuplot", s);
  PlotOptions options;
  options.gnuplot = "/nonexistent/bin/gnuplot";
  std::vector<std::string> written;
  const absl::Status st = WritePlots(dir, s.session, s.levels, &written, options);
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_EQ(st.message(), "gnuplot not found: plots skipped");
  EXPECT_TRUE(written.empty());
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    EXPECT_NE(e.path().extension(), ".png");
    EXPECT_FALSE(absl::StartsWith(e.path().filename().string(), ".plots-"));
  }
}

TEST_F(ReportOutputsTest, PlotsKillsAGnuplotThatHangs) {
  const fs::path fake = root_ / "slow-gnuplot";
  {
    std::ofstream out(fake);
    out << "#!/bin/sh\nexec sleep 30\n";
  }
  fs::permissions(fake, fs::perms::owner_all);
  const Synthetic s = MakeSession("hang", TwoLevels(), 1);
  const std::string dir = WriteSession("hang", s);
  PlotOptions options;
  options.gnuplot = fake.string();
  options.timeout_s = 0.3;
  std::vector<std::string> written;
  const auto t0 = std::chrono::steady_clock::now();
  const absl::Status st = WritePlots(dir, s.session, s.levels, &written, options);
  EXPECT_TRUE(absl::IsDeadlineExceeded(st)) << st;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(written.empty());
}

TEST_F(ReportOutputsTest, PlotsTickConcurrencyAtTheLevelsAndKeepTheLatencyKeyOffTheAxis) {
  // A stand-in gnuplot that keeps the script it was given.
  const fs::path captured = root_ / "captured.gp";
  const fs::path fake = root_ / "capturing-gnuplot";
  {
    std::ofstream out(fake);
    out << "#!/bin/sh\ncp \"$1\" '" << captured.string() << "'\n";
  }
  fs::permissions(fake, fs::perms::owner_all);
  std::vector<LevelSpec> specs = TwoLevels();
  specs[0].concurrency = 1;
  specs[1].concurrency = 3;
  const Synthetic s = MakeSession("ticks", specs, 1);
  const std::string dir = WriteSession("ticks", s);
  PlotOptions options;
  options.gnuplot = fake.string();
  std::vector<std::string> written;
  (void)WritePlots(dir, s.session, s.levels, &written, options);
  const std::string script = ReadAll(captured.string());
  ASSERT_THAT(script, HasSubstr("set output 'latency.png'"));
  // Concurrency 1 and 3: ticks there and nowhere else (gnuplot's own would add 1.5, 2, 2.5).
  EXPECT_THAT(script, HasSubstr("set xtics (1, 3)\n"));
  const std::string latency = script.substr(script.find("set output 'latency.png'"));
  const std::string latency_block = latency.substr(0, latency.find("unset multiplot"));
  // Below the panels the key overlapped the axis label: one key, right of both panels, drawn
  // by the first panel only.
  EXPECT_THAT(latency_block, Not(HasSubstr("set key below")));
  const size_t key = latency_block.find("set key at screen");
  const size_t first_plot = latency_block.find("\nplot ");
  const size_t second_plot = latency_block.find("\nplot ", first_plot + 1);
  ASSERT_NE(key, std::string::npos) << latency_block;
  EXPECT_LT(key, first_plot);
  EXPECT_LT(latency_block.find("unset key", first_plot), second_plot);

  // A sweep over powers of two is drawn on a log axis: every level keeps its tick, the last
  // one too (gnuplot drops it when the range ends exactly there).
  std::vector<LevelSpec> doubling(5);
  for (size_t i = 0; i < doubling.size(); ++i) doubling[i].concurrency = 1 << i;
  const Synthetic wide = MakeSession("log", doubling, 2);
  (void)WritePlots(WriteSession("log", wide), wide.session, wide.levels, &written, options);
  const std::string log_script = ReadAll(captured.string());
  EXPECT_THAT(log_script, HasSubstr("set logscale x 2\nset xtics (1, 2, 4, 8, 16)\n"));
  EXPECT_THAT(log_script, HasSubstr("set xrange [0.909091:17.6]"));
}

// ---------------------------------------------------------------- report.html

TEST_F(ReportOutputsTest, HtmlReportIsSelfContainedEscapedAndFreeOfSecrets) {
  const Synthetic s = MakeSession("html", TwoLevels(), 1);
  const std::string dir = WriteSession("html", s);
  std::vector<std::string> pngs;
  if (HaveGnuplot()) {
    ASSERT_TRUE(WritePlots(dir, s.session, s.levels, &pngs).ok());
  } else {
    // A PNG signature is all the report checks before embedding.
    std::ofstream(fs::path(dir) / "fake.png", std::ios::binary)
        << std::string("\x89PNG\r\n\x1a\n", 8) << "rest";
    pngs.push_back("fake.png");
  }
  ASSERT_FALSE(pngs.empty());
  ASSERT_TRUE(WriteHtmlReport(dir, s.session, pngs).ok());
  const std::string html = ReadAll((fs::path(dir) / "report.html").string());

  for (const v1::LevelStats& l : s.session.levels()) {
    EXPECT_THAT(html, HasSubstr(absl::StrCat(">", LevelLabel(l), "<")));
  }
  size_t images = 0;
  for (size_t at = 0; (at = html.find("src=\"data:image/png;base64,", at)) != std::string::npos;
       ++at) {
    ++images;
  }
  EXPECT_EQ(images, pngs.size());
  EXPECT_THAT(html, Not(HasSubstr("src=\"http")));
  EXPECT_THAT(html, Not(HasSubstr("href=\"http")));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("url(")));
  EXPECT_THAT(html, Not(HasSubstr(kSecretValue)));
  EXPECT_THAT(html, HasSubstr("visible-trace"));
  EXPECT_THAT(html, HasSubstr("TTS_TOKEN"));  // the variable's name, never its value
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(html, HasSubstr("nightly &lt;gate&gt; &amp; friends"));
  EXPECT_THAT(html, HasSubstr("ttfa_p95=300ms"));
  EXPECT_THAT(html, HasSubstr("agent-1"));
  // The only URL text anywhere is the target's own, escaped.
  const std::string escaped_url = HtmlEscape(kTargetUrl);
  EXPECT_THAT(html, HasSubstr(escaped_url));
  const std::string without = absl::StrReplaceAll(html, {{escaped_url, ""}});
  EXPECT_THAT(without, Not(HasSubstr("http://")));
  EXPECT_THAT(without, Not(HasSubstr("https://")));
}

TEST_F(ReportOutputsTest, HtmlReportShowsTtfaAudiblePacedTextAndConversationsOnlyWhenMeasured) {
  Synthetic s = MakeSession("html-audible", TwoLevels(), 1);
  const std::string plain_dir = WriteSession("html-plain", s);
  ASSERT_TRUE(WriteHtmlReport(plain_dir, s.session, {}).ok());
  const std::string plain = ReadAll((fs::path(plain_dir) / "report.html").string());
  EXPECT_THAT(plain, Not(HasSubstr("TTFA-audible")));
  EXPECT_THAT(plain, Not(HasSubstr("Paced text and barge-in")));
  EXPECT_THAT(plain, Not(HasSubstr("<h2>Conversations</h2>")));

  // Audio checks heard the first level only (the second analysed nothing audible); the second
  // level was paced and interrupted.
  v1::LevelStats& heard = *s.session.mutable_levels(0);
  heard.mutable_ttfa_audible_ms()->set_count(40);
  heard.mutable_ttfa_audible_ms()->set_p50(612.25);
  heard.mutable_ttfa_audible_ms()->set_p95(640.5);
  heard.mutable_ttfa_audible_ms()->set_p99(655.75);
  heard.mutable_leading_silence_ms()->set_count(40);
  heard.mutable_leading_silence_ms()->set_p50(500);
  v1::LevelStats& paced = *s.session.mutable_levels(1);
  paced.mutable_first_token_to_speech_ms()->set_count(30);
  paced.mutable_first_token_to_speech_ms()->set_p50(283.4);
  paced.mutable_time_to_silence_ms()->set_count(8);
  paced.mutable_time_to_silence_ms()->set_p95(27.1);
  paced.set_interrupted(8);
  paced.set_conversations(10);
  paced.set_conversation_turns(40);
  paced.mutable_conversation_setup_ms()->set_count(10);
  paced.mutable_conversation_setup_ms()->set_p50(1.25);
  paced.set_reconnects(3);
  const std::string dir = WriteSession("html-audible", s);
  ASSERT_TRUE(WriteHtmlReport(dir, s.session, {}).ok());
  const std::string html = ReadAll((fs::path(dir) / "report.html").string());
  EXPECT_THAT(html, HasSubstr("<th>TTFA-audible p50 ms</th><th>TTFA-audible p95 ms</th>"
                              "<th>TTFA-audible p99 ms</th><th>Leading silence p50 ms</th>"));
  EXPECT_THAT(html, HasSubstr("<td>612.2</td><td>640.5</td><td>655.8</td><td>500.0</td></tr>"));
  EXPECT_THAT(html, HasSubstr("<td>-</td><td>-</td><td>-</td><td>-</td></tr>"));
  EXPECT_THAT(html, HasSubstr("<h2>Paced text and barge-in</h2>"));
  EXPECT_THAT(html, HasSubstr("<td>283.4</td>"));
  EXPECT_THAT(html, HasSubstr("<td>8</td>"));
  EXPECT_THAT(html, HasSubstr("<td>27.1</td>"));
  EXPECT_THAT(html, HasSubstr("<h2>Conversations</h2>"));
  EXPECT_THAT(html, HasSubstr("<td>10</td><td>40</td><td>1.25</td>"));
}

TEST(HtmlEscapeTest, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(RedactUrlTest, HidesPasswordsOnly) {
  EXPECT_EQ(RedactUrl("https://user:pw@host:1/p@x"), "https://user:***@host:1/p@x");
  EXPECT_EQ(RedactUrl("http://host:8000/v1"), "http://host:8000/v1");
  EXPECT_EQ(RedactUrl("http://user@host/"), "http://user@host/");
}

// ---------------------------------------------------------------- compare

TEST(FailRuleTest, ParsesSignsUnitsAndRejectsTheWrongDirection) {
  auto asps = ParseFailRule("asps=-5%");
  ASSERT_TRUE(asps.ok()) << asps.status();
  EXPECT_EQ(asps->metric, "asps");
  EXPECT_DOUBLE_EQ(asps->threshold, 5);
  EXPECT_TRUE(asps->percent);
  auto ttfa = ParseFailRule("ttfa_p95=+10%");
  ASSERT_TRUE(ttfa.ok());
  EXPECT_DOUBLE_EQ(ttfa->threshold, 10);
  auto abs_ms = ParseFailRule("latency_p99=+50ms");
  ASSERT_TRUE(abs_ms.ok());
  EXPECT_FALSE(abs_ms->percent);
  EXPECT_DOUBLE_EQ(abs_ms->threshold, 50);
  auto seconds = ParseFailRule("ttfa_p99=+0.25s");
  ASSERT_TRUE(seconds.ok());
  EXPECT_DOUBLE_EQ(seconds->threshold, 250);
  auto unsigned_rule = ParseFailRule("rtf_p95=0.05");
  ASSERT_TRUE(unsigned_rule.ok());
  EXPECT_FALSE(unsigned_rule->percent);
  EXPECT_EQ(ParseFailRule("success=-1")->metric, "success_rate");

  EXPECT_TRUE(absl::IsInvalidArgument(ParseFailRule("asps=+5%").status()));
  EXPECT_THAT(std::string(ParseFailRule("asps=+5%").status().message()), HasSubstr("asps=-5%"));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseFailRule("ttfa_p95=-10%").status()));
  EXPECT_THAT(std::string(ParseFailRule("latency_p99=-0.5s").status().message()),
              HasSubstr("latency_p99=+0.5s"));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseFailRule("goodness=5%").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseFailRule("asps").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseFailRule("asps=-x%").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseFailRule("asps=-5ms").status()));
}

const MetricComparison& Metric(const LevelComparison& l, const std::string& name) {
  for (const MetricComparison& m : l.metrics) {
    if (m.metric == name) return m;
  }
  ADD_FAILURE() << "no metric " << name;
  return l.metrics.front();
}

// A simulated session as compare reads it, with its per-request data.
LoadedSession Loaded(const Synthetic& s) { return {"", s.session, s.levels, true, {}}; }

// Compare options whose one rule is `rule`.
CompareOptions FailOn(const std::string& rule) {
  CompareOptions o;
  o.fail_on = {*ParseFailRule(rule)};
  return o;
}

CompareOptions GateOptions() {
  CompareOptions o;
  o.fail_on = {*ParseFailRule("asps=-5%"), *ParseFailRule("ttfa_p95=+10%"),
               *ParseFailRule("latency_p50=+10%")};
  return o;
}

TEST_F(ReportOutputsTest, CompareFlagsAnInjectedSlowdownFromDisk) {
  // Written and read back: compare sees what `ttsbench compare A B` would.
  WriteSession("baseline", MakeSession("baseline", TwoLevels(), 11));
  WriteSession("slow", MakeSession("slow", TwoLevels(1.3), 22));
  auto a = LoadSession((root_ / "baseline").string());
  auto b = LoadSession((root_ / "slow").string());
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(a->has_requests);
  auto result = CompareSessions({*a, *b}, GateOptions());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->candidates.size(), 1u);
  ASSERT_EQ(result->candidates[0].levels.size(), 2u);
  for (const LevelComparison& l : result->candidates[0].levels) {
    SCOPED_TRACE(l.label);
    EXPECT_EQ(l.baseline_samples, 400u);
    for (const char* m : {"latency_p50", "latency_p95", "ttfa_p50", "rtf_mean"}) {
      SCOPED_TRACE(m);
      EXPECT_EQ(Metric(l, m).verdict, Verdict::kRegressed);
      EXPECT_GT(Metric(l, m).delta, 0);
      EXPECT_GT(Metric(l, m).ci_low, 0);
      EXPECT_LT(Metric(l, m).p_value, 0.01);
    }
    EXPECT_NEAR(Metric(l, "latency_p50").delta_pct, 30, 12);
    EXPECT_EQ(Metric(l, "asps").verdict, Verdict::kRegressed);
    EXPECT_LT(Metric(l, "asps").delta, 0);
    EXPECT_EQ(Metric(l, "success_rate").verdict, Verdict::kNoChange);
  }
  EXPECT_TRUE(result->any_regression);
  ASSERT_EQ(result->rules.size(), 3u);
  for (const RuleResult& r : result->rules) EXPECT_TRUE(r.crossed) << r.rule.text;
  EXPECT_TRUE(ComparisonFailed(*result));
  const std::string table = CompareTable(*result);
  EXPECT_THAT(table, HasSubstr("WORSE"));
  EXPECT_THAT(table, HasSubstr("CROSSED"));
  EXPECT_THAT(table, HasSubstr("Result: REGRESSION"));

  // The other way round it is an improvement, and no rule is crossed.
  auto reverse = CompareSessions({*b, *a}, GateOptions());
  ASSERT_TRUE(reverse.ok());
  for (const LevelComparison& l : reverse->candidates[0].levels) {
    EXPECT_EQ(Metric(l, "latency_p50").verdict, Verdict::kImproved) << l.label;
    EXPECT_EQ(Metric(l, "asps").verdict, Verdict::kImproved) << l.label;
  }
  EXPECT_FALSE(reverse->any_rule_crossed);
  EXPECT_FALSE(ComparisonFailed(*reverse));
}

TEST_F(ReportOutputsTest, CompareDoesNotFlagNoiseFromTheSameDistribution) {
  for (uint64_t seed : {100u, 200u, 300u}) {
    SCOPED_TRACE(seed);
    const Synthetic a = MakeSession("a", TwoLevels(), seed);
    const Synthetic b = MakeSession("b", TwoLevels(), seed + 7);
    auto result = CompareSessions({Loaded(a), Loaded(b)}, GateOptions());
    ASSERT_TRUE(result.ok());
    for (const LevelComparison& l : result->candidates[0].levels) {
      for (const MetricComparison& m : l.metrics) {
        EXPECT_TRUE(m.verdict == Verdict::kNoChange)
            << l.label << " " << m.metric << " " << VerdictName(m.verdict) << " p=" << m.p_value
            << " delta%=" << m.delta_pct;
      }
    }
    EXPECT_FALSE(result->any_rule_crossed);
    EXPECT_FALSE(ComparisonFailed(*result));
  }
}

TEST_F(ReportOutputsTest, CompareRuleNeedsSignificanceNotJustADelta) {
  // 12 widely spread requests per side: a 10% slowdown moves the p99 but cannot be told from
  // noise, so a 1% rule must not fire.
  std::vector<LevelSpec> small = {LevelSpec{}};
  small[0].requests = 12;
  small[0].sigma = 0.8;
  std::vector<LevelSpec> small_slow = small;
  small_slow[0].slowdown = 1.1;
  const Synthetic a = MakeSession("a", small, 5);
  const Synthetic b = MakeSession("b", small_slow, 6);
  auto result = CompareSessions({Loaded(a), Loaded(b)}, FailOn("latency_p99=+1%"));
  ASSERT_TRUE(result.ok());
  const MetricComparison& p99 = Metric(result->candidates[0].levels[0], "latency_p99");
  EXPECT_FALSE(p99.significant) << "p=" << p99.p_value << " delta%=" << p99.delta_pct;
  EXPECT_FALSE(result->rules[0].crossed);
}

TEST_F(ReportOutputsTest, CompareRuleOnAnNaMetricIsNotEvaluatedAndFailsTheGate) {
  // 4 requests per side: every per-request metric is n/a, so the rule checked nothing.
  std::vector<LevelSpec> tiny = {LevelSpec{}};
  tiny[0].requests = 4;
  const Synthetic a = MakeSession("a", tiny, 5);
  const Synthetic b = MakeSession("b", tiny, 6);
  const LoadedSession la = Loaded(a);
  const LoadedSession lb = Loaded(b);
  CompareOptions o = FailOn("asps=-5%");
  auto result = CompareSessions({la, lb}, o);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(Metric(result->candidates[0].levels[0], "asps").verdict, Verdict::kNoData);
  EXPECT_FALSE(result->rules[0].crossed);
  ASSERT_EQ(result->rules[0].not_evaluated.size(), 1u);
  EXPECT_THAT(result->rules[0].not_evaluated[0], HasSubstr("b c=4: asps"));
  EXPECT_THAT(result->rules[0].not_evaluated[0], HasSubstr("time windows"));
  EXPECT_FALSE(ComparisonFailed(*result));
  EXPECT_TRUE(ComparisonUnevaluated(*result));
  const std::string table = CompareTable(*result);
  EXPECT_THAT(table, HasSubstr("NOT EVALUATED: b c=4: asps"));
  EXPECT_THAT(table, Not(HasSubstr("Result: ok")));
  EXPECT_THAT(table, HasSubstr("Result: NOT EVALUATED"));
  o.allow_unevaluated = true;
  result = CompareSessions({la, lb}, o);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(ComparisonUnevaluated(*result));
  EXPECT_THAT(CompareTable(*result), HasSubstr("Result: ok (1 not evaluated, allowed"));
}

TEST_F(ReportOutputsTest, CompareOfSessionsWithNoLevelInCommonIsNotEvaluated) {
  std::vector<LevelSpec> other = TwoLevels();
  other[0].concurrency = 3;
  other[1].concurrency = 5;
  const Synthetic a = MakeSession("a", TwoLevels(), 1);
  const Synthetic b = MakeSession("b", other, 2);
  const LoadedSession la = Loaded(a);
  const LoadedSession lb = Loaded(b);
  // Without rules: the implicit "any WORSE" gate saw no level.
  auto result = CompareSessions({la, lb}, CompareOptions{});
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->candidates[0].levels.empty());
  EXPECT_TRUE(ComparisonUnevaluated(*result));
  EXPECT_THAT(CompareTable(*result), HasSubstr("NOT EVALUATED: b: no level in common with a"));
  // With a rule: the rule says so.
  CompareOptions o = FailOn("ttfa_p95=+10%");
  result = CompareSessions({la, lb}, o);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(ComparisonUnevaluated(*result));
  EXPECT_THAT(CompareTable(*result), HasSubstr("NOT EVALUATED: b: no level in common with a"));
  auto json = CompareJson(*result);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"not_evaluated\": true"));
}

TEST_F(ReportOutputsTest, CompareMatchesLevelsBySeriesAndLoadAndWritesCsvAndJson) {
  std::vector<LevelSpec> base = TwoLevels();
  base[1].series = "voice=b";
  std::vector<LevelSpec> cand = TwoLevels();
  cand[0].concurrency = 3;  // no counterpart
  cand[1].series = "voice=b";
  const Synthetic a = MakeSession("a", base, 1);
  const Synthetic b = MakeSession("b", cand, 2);
  const LoadedSession la = Loaded(a);
  const LoadedSession lb = Loaded(b);
  auto result = CompareSessions({la, lb}, CompareOptions{});
  ASSERT_TRUE(result.ok());
  const CandidateComparison& cc = result->candidates[0];
  ASSERT_EQ(cc.levels.size(), 1u);
  EXPECT_EQ(cc.levels[0].label, "voice=b c=8");
  EXPECT_THAT(cc.unmatched, ::testing::UnorderedElementsAre("c=2 (only in a)", "c=3 (only in b)"));

  ASSERT_TRUE(WriteComparison(root_.string(), *result).ok());
  const std::string csv = ReadAll((root_ / "compare.csv").string());
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'),
            1 + static_cast<long>(CompareMetricNames().size()));
  EXPECT_THAT(csv, HasSubstr("a,b,voice=b c=8,voice=b,8,0,asps,"));
  const std::string json = ReadAll((root_ / "compare.json").string());
  EXPECT_THAT(json, HasSubstr("\"regression\": false"));
  EXPECT_THAT(json, HasSubstr("\"latency_p95\""));
  EXPECT_TRUE(absl::IsInvalidArgument(CompareSessions({la}, CompareOptions{}).status()));
}

// ---------------------------------------------------------------- hostile names

// Names as users type them (issue 10): every file must still parse, and read back the same.
const std::vector<std::string>& HostileNames() {
  static const std::vector<std::string>* names = new std::vector<std::string>{
      "voice=al,\"loy\\x", "voice=two\nlines\r\nthree", "voice=Grüße, 世界",
      absl::StrCat("voice=", std::string(10 * 1024, 'n'), ",\"")};
  return *names;
}

std::string UnescapeHtml(std::string s) {
  return absl::StrReplaceAll(
      s, {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}});
}

TEST_F(ReportOutputsTest, HostileSeriesAndAgentNamesRoundTripThroughEveryFile) {
  std::vector<LevelSpec> specs;
  for (const std::string& name : HostileNames()) {
    LevelSpec spec;
    spec.concurrency = 2;
    spec.requests = 20;
    spec.warmup = 2;
    spec.series = name;
    specs.push_back(spec);
  }
  Synthetic s = MakeSession("hostile", specs, 7);
  s.session.mutable_agents(0)->set_id("agent,\"0\"\n");
  for (size_t i = 0; i < s.levels.size(); ++i) s.levels[i].series = HostileNames()[i];
  for (const std::string& name : HostileNames()) s.session.mutable_plan()->add_voices(name);
  s.session.mutable_plan()->set_output_dir("out,\"dir\"\\");
  s.session.mutable_plan()->mutable_output()->set_jsonl(true);
  const std::string dir = WriteSession("hostile", s);

  // summary.csv: one row per level, every row as wide as the header, the series intact.
  auto summary = common::ParseCsv(ReadAll((fs::path(dir) / "summary.csv").string()));
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->size(), HostileNames().size() + 1);
  const std::vector<std::string>& header = (*summary)[0];
  const size_t series_col =
      static_cast<size_t>(std::find(header.begin(), header.end(), "Series") - header.begin());
  for (size_t i = 0; i < HostileNames().size(); ++i) {
    ASSERT_EQ((*summary)[i + 1].size(), header.size());
    EXPECT_EQ((*summary)[i + 1][series_col], HostileNames()[i]);
  }

  // requests.csv, through the loader `sessions` and `compare` use.
  auto loaded = LoadSession(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->has_requests);
  EXPECT_TRUE(loaded->notes.empty());
  ASSERT_EQ(loaded->levels.size(), HostileNames().size());
  for (size_t i = 0; i < HostileNames().size(); ++i) {
    EXPECT_EQ(loaded->session.levels(static_cast<int>(i)).series(), HostileNames()[i]);
    ASSERT_EQ(loaded->levels[i].records.size(), s.levels[i].records.size());
    for (size_t k = 0; k < s.levels[i].records.size(); ++k) {
      EXPECT_EQ(loaded->levels[i].records[k].agent, s.levels[i].records[k].agent);
      EXPECT_EQ(loaded->levels[i].records[k].end_ns, s.levels[i].records[k].end_ns);
    }
  }

  // requests.jsonl: every line one JSON object naming its series and agent.
  std::istringstream jsonl(ReadAll((fs::path(dir) / "requests.jsonl").string()));
  std::string line;
  size_t lines = 0;
  while (std::getline(jsonl, line)) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << "line " << lines + 1 << ": " << ec.message();
    const std::string series(v.at("series").as_string());
    EXPECT_NE(std::find(HostileNames().begin(), HostileNames().end(), series),
              HostileNames().end());
    EXPECT_TRUE(v.at("record").is_object());
    ++lines;
  }
  EXPECT_EQ(lines, HostileNames().size() * 22);

  // report.html's plan is the YAML of --print-plan, and reads back as the same plan.
  auto html = RenderHtmlReport(dir, s.session, {});
  ASSERT_TRUE(html.ok());
  const size_t begin = html->find("<h2>Plan as run</h2>\n<pre>");
  ASSERT_NE(begin, std::string::npos);
  const size_t from = begin + std::string("<h2>Plan as run</h2>\n<pre>").size();
  const std::string yaml = UnescapeHtml(html->substr(from, html->find("</pre>", from) - from));
  v1::Plan shown = s.session.plan();
  shown.mutable_target()->set_url(RedactUrl(shown.target().url()));
  for (v1::Header& h : *shown.mutable_target()->mutable_headers()) {
    if (h.name() == "X-Api-Key") h.set_value("<redacted>");
  }
  EXPECT_EQ(yaml, PlanToYaml(shown));
  auto parsed = ParsePlanYaml(yaml, "report.html", {}, nullptr);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->SerializeAsString(), shown.SerializeAsString());

  // compare.csv and compare.json with hostile session names.
  LoadedSession la = Loaded(s);
  LoadedSession lb = la;
  la.session.set_name("base,\"1\"\n");
  lb.session.set_name("cand \\ ü");
  auto result = CompareSessions({la, lb}, CompareOptions{});
  ASSERT_TRUE(result.ok());
  ASSERT_TRUE(WriteComparison(root_.string(), *result).ok());
  auto rows = common::ParseCsv(ReadAll((root_ / "compare.csv").string()));
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1 + HostileNames().size() * CompareMetricNames().size());
  for (size_t r = 1; r < rows->size(); ++r) {
    ASSERT_EQ((*rows)[r].size(), (*rows)[0].size());
    EXPECT_EQ((*rows)[r][0], "base,\"1\"\n");
    EXPECT_EQ((*rows)[r][1], "cand \\ ü");
    EXPECT_EQ((*rows)[r][3], HostileNames()[(r - 1) / CompareMetricNames().size()]);
  }
  boost::system::error_code ec;
  const boost::json::value json =
      boost::json::parse(ReadAll((root_ / "compare.json").string()), ec);
  ASSERT_FALSE(ec) << ec.message();
  const boost::json::value& cand = json.at("candidates").at(0);
  EXPECT_EQ(cand.at("baseline").as_string(), "base,\"1\"\n");
  EXPECT_EQ(cand.at("levels").at(3).at("series").as_string(), HostileNames()[3]);
}

TEST_F(ReportOutputsTest, RequestsCsvThatIsDamagedIsAnErrorNamingTheLine) {
  const Synthetic s = MakeSession("damaged", TwoLevels(), 5);
  const std::string dir = WriteSession("damaged", s);
  std::ofstream(fs::path(dir) / "requests.csv", std::ios::app) << "2,\"agent-0,1\n";
  auto loaded = LoadSession(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("requests.csv line"));
}

// ---------------------------------------------------------------- sessions

TEST_F(ReportOutputsTest, LoadSessionRestoresRecordsPerLevelEvenWithSharedConcurrency) {
  std::vector<LevelSpec> specs = TwoLevels();
  std::vector<LevelSpec> other = TwoLevels();
  for (LevelSpec& s : other) s.series = "voice=b";
  specs.insert(specs.end(), other.begin(), other.end());
  for (LevelSpec& s : specs) s.requests = 50;
  const Synthetic s = MakeSession("roundtrip", specs, 3);
  const std::string dir = WriteSession("roundtrip", s);
  auto loaded = LoadSession(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->has_requests);
  EXPECT_TRUE(loaded->notes.empty());
  ASSERT_EQ(loaded->levels.size(), 4u);
  EXPECT_EQ(loaded->session.levels(2).series(), "voice=b");
  for (size_t i = 0; i < 4; ++i) {
    const LevelData& want = s.levels[i];
    const LevelData& got = loaded->levels[i];
    ASSERT_EQ(got.records.size(), want.records.size()) << i;
    for (size_t k = 0; k < want.records.size(); ++k) {
      const common::Record w = want.records[k];
      const common::Record g = got.records[k];
      EXPECT_EQ(g.agent, w.agent);
      EXPECT_EQ(g.request_id, w.request_id);
      EXPECT_EQ(g.warmup, w.warmup);
      EXPECT_EQ(g.start_ns, w.start_ns);
      EXPECT_EQ(g.first_audio_ns, w.first_audio_ns);
      EXPECT_EQ(g.end_ns, w.end_ns);
      EXPECT_EQ(g.error, w.error);
      EXPECT_NEAR(g.audio_s, w.audio_s, 1e-9);
      EXPECT_EQ(g.connect_ns, w.connect_ns);
    }
    // Statistics recomputed from the loaded records match what was written.
    const v1::LevelStats again = common::ComputeLevelStats(got.concurrency, got.records);
    EXPECT_NEAR(again.asps(), s.session.levels(static_cast<int>(i)).asps(), 1e-6);
  }
  fs::remove(fs::path(dir) / "requests.csv");
  auto bare = LoadSession(dir);
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE(bare->has_requests);
  EXPECT_EQ(bare->notes.size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(LoadSession((root_ / "nope").string()).status()));
}

TEST_F(ReportOutputsTest, CapacitySessionShowsItsAnswerAndBestOfThePassingProbes) {
  const fs::path out = root_ / "out";
  Synthetic cap = MakeSession("cap", TwoLevels(), 1);
  cap.session.mutable_plan()->set_mode("capacity");
  // The faster-looking level is the probe past capacity: it failed its SLO.
  const int fast = cap.session.levels(0).asps() > cap.session.levels(1).asps() ? 0 : 1;
  for (int i = 0; i < cap.session.levels_size(); ++i) {
    v1::SloResult* r = cap.session.mutable_levels(i)->add_slo();
    r->set_slo("ttfa_p99=25ms");
    r->set_metric("ttfa_p99");
    r->set_pass(i != fast);
  }
  cap.session.mutable_capacity()->set_unit("concurrency");
  cap.session.mutable_capacity()->set_found(cap.session.levels(1 - fast).concurrency());
  cap.session.mutable_capacity()->set_first_failing(cap.session.levels(fast).concurrency());
  cap.session.set_slo_passed(true);
  ASSERT_TRUE(WriteSessionFiles((out / "cap").string(), cap.session, cap.levels).ok());
  auto list = ListSessions(out.string());
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_DOUBLE_EQ((*list)[0].best_asps, cap.session.levels(1 - fast).asps());
  auto shown = ShowSession(out.string(), "cap");
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_THAT(*shown,
              HasSubstr(absl::StrCat("Capacity: ", cap.session.levels(1 - fast).concurrency(),
                                     " (concurrency) meets every SLO; ",
                                     cap.session.levels(fast).concurrency(), " does not")));
  EXPECT_THAT(*shown, HasSubstr("SLOs (per probe):"));
  EXPECT_THAT(*shown, Not(HasSubstr("SLOs (passed)")));
}

TEST_F(ReportOutputsTest, SessionsListShowAndDeleteStayInsideTheOutputDir) {
  const fs::path out = root_ / "out";
  fs::create_directories(out / "not-a-session");
  Synthetic first = MakeSession("first", TwoLevels(), 1);
  Synthetic second = MakeSession("second", {LevelSpec{}}, 2);
  second.session.set_started_at("2024-05-02T08:00:00Z");
  second.session.set_status("failed");
  ASSERT_TRUE(WriteSessionFiles((out / "second").string(), second.session, second.levels).ok());
  ASSERT_TRUE(WriteSessionFiles((out / "first").string(), first.session, first.levels).ok());
  fs::create_directories(out / "broken");
  std::ofstream(out / "broken" / "session.json") << "{ not json";

  auto list = ListSessions(out.string());
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  // Oldest first; the unreadable one has no start time and sorts first.
  EXPECT_EQ((*list)[0].name, "broken");
  EXPECT_EQ((*list)[0].status, "unreadable");
  EXPECT_EQ((*list)[1].name, "first");
  EXPECT_EQ((*list)[1].target_url, kTargetUrl);
  EXPECT_EQ((*list)[1].mode, "server");
  EXPECT_EQ((*list)[1].levels, 2);
  double best = 0;
  for (const v1::LevelStats& l : first.session.levels()) best = std::max(best, l.asps());
  EXPECT_DOUBLE_EQ((*list)[1].best_asps, best);
  EXPECT_EQ((*list)[1].best_level, "c=8");
  EXPECT_DOUBLE_EQ((*list)[1].success_rate_pct, 100);
  EXPECT_EQ((*list)[2].status, "failed");
  const std::string table = FormatSessionList(*list);
  EXPECT_THAT(table, HasSubstr("first"));
  EXPECT_THAT(table, HasSubstr("unreadable"));

  auto shown = ShowSession(out.string(), "first");
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_THAT(*shown, HasSubstr("c=8"));
  EXPECT_THAT(*shown, HasSubstr("agent-1"));
  EXPECT_THAT(*shown, HasSubstr("summary.csv"));
  EXPECT_THAT(*shown, Not(HasSubstr(kSecretValue)));

  // Refusals: outside, the output dir itself, a non-session folder, a symlink leading out.
  const fs::path outside = root_ / "outside";
  ASSERT_TRUE(WriteSessionFiles(outside.string(), first.session, first.levels).ok());
  fs::create_directory_symlink(outside, out / "link");
  EXPECT_TRUE(absl::IsPermissionDenied(DeleteSession(out.string(), "../outside")));
  EXPECT_TRUE(absl::IsPermissionDenied(DeleteSession(out.string(), outside.string())));
  EXPECT_TRUE(absl::IsPermissionDenied(DeleteSession(out.string(), "link")));
  EXPECT_TRUE(absl::IsPermissionDenied(DeleteSession(out.string(), ".")));
  EXPECT_TRUE(absl::IsPermissionDenied(DeleteSession(out.string(), "first/..")));
  EXPECT_TRUE(absl::IsFailedPrecondition(DeleteSession(out.string(), "not-a-session")));
  EXPECT_TRUE(absl::IsNotFound(DeleteSession(out.string(), "missing")));
  EXPECT_TRUE(fs::exists(outside / "session.json"));
  EXPECT_TRUE(fs::exists(out / "not-a-session"));

  EXPECT_TRUE(DeleteSession(out.string(), "first").ok());
  EXPECT_FALSE(fs::exists(out / "first"));
  EXPECT_TRUE(DeleteSession(out.string(), (out / "second").string()).ok());
  EXPECT_FALSE(fs::exists(out / "second"));
  EXPECT_TRUE(fs::exists(outside / "session.json"));

  auto resolved = ResolveSessionDir(out.string(), "broken");
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(*resolved, (out / "broken").string());
  EXPECT_TRUE(absl::IsNotFound(ResolveSessionDir(out.string(), "first").status()));
  EXPECT_TRUE(absl::IsNotFound(ListSessions((root_ / "none").string()).status()));
}

TEST_F(ReportOutputsTest, SessionsListFindsNestedSessionsAndAlignsLongRows) {
  const fs::path out = root_ / "out";
  Synthetic plain = MakeSession("plain", TwoLevels(), 1);
  std::vector<LevelSpec> specs = TwoLevels();
  for (LevelSpec& l : specs) l.series = "voice=default streaming=on";
  Synthetic comp = MakeSession("comp-long-name", specs, 2);
  comp.session.set_mode("comprehensive");
  comp.session.set_started_at("2024-05-03T08:00:00Z");
  ASSERT_TRUE(WriteSessionFiles((out / "plain").string(), plain.session, plain.levels).ok());
  // A plan whose output_dir is a subfolder of the default one.
  ASSERT_TRUE(
      WriteSessionFiles((out / "nightly" / "comp-long-name").string(), comp.session, comp.levels)
          .ok());
  auto list = ListSessions(out.string());
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "plain");
  EXPECT_EQ((*list)[1].name, "nightly/comp-long-name");
  EXPECT_TRUE(ShowSession(out.string(), (*list)[1].name).ok());

  // Every column starts at the same offset in every row, the long comprehensive row included.
  const std::vector<std::string> lines =
      absl::StrSplit(FormatSessionList(*list), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  const size_t target = lines[0].find("Target");
  const size_t status = lines[0].find("Status");
  const size_t asps = lines[0].find("Best ASPS");
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].find("http://"), target) << lines[i];
    EXPECT_EQ(lines[i].find("completed"), status) << lines[i];
    EXPECT_EQ(lines[i][asps - 1], ' ') << lines[i];
  }
  EXPECT_TRUE(DeleteSession(out.string(), "nightly/comp-long-name").ok());
  EXPECT_FALSE(fs::exists(out / "nightly" / "comp-long-name"));
}

TEST_F(ReportOutputsTest, ClaimSessionDirNumbersATakenNameAndOverwritesOnlySessions) {
  const fs::path out = root_ / "out";
  auto first = ClaimSessionDir(out.string(), "run", false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->name, "run");
  EXPECT_TRUE(first->notice.empty());
  // An empty folder is free; one with files is taken.
  EXPECT_EQ(ClaimSessionDir(out.string(), "run", false)->name, "run");
  std::ofstream(out / "run" / "session.json") << "{}";
  auto second = ClaimSessionDir(out.string(), "run", false);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->name, "run-2");
  EXPECT_EQ(second->dir, (out / "run-2").string());
  EXPECT_THAT(second->notice, HasSubstr("session 'run' exists; writing run-2"));
  std::ofstream(out / "run-2" / "session.json") << "{}";
  EXPECT_EQ(ClaimSessionDir(out.string(), "run", false)->name, "run-3");
  // Overwrite empties a session folder of that very name...
  auto replaced = ClaimSessionDir(out.string(), "run", true);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->name, "run");
  EXPECT_TRUE(fs::is_empty(out / "run"));
  // ...and never a folder that is not a session.
  fs::create_directories(out / "photos");
  std::ofstream(out / "photos" / "cat.png") << "x";
  EXPECT_TRUE(absl::IsFailedPrecondition(ClaimSessionDir(out.string(), "photos", true).status()));
  EXPECT_TRUE(fs::exists(out / "photos" / "cat.png"));
}

TEST_F(ReportOutputsTest, SessionsListJsonHasEveryRowAndTheErrorOfAnUnreadableOne) {
  const fs::path out = root_ / "out";
  Synthetic first = MakeSession("first", TwoLevels(), 1);
  ASSERT_TRUE(WriteSessionFiles((out / "first").string(), first.session, first.levels).ok());
  fs::create_directories(out / "broken");
  std::ofstream(out / "broken" / "session.json") << "{ not json";
  auto list = ListSessions(out.string());
  ASSERT_TRUE(list.ok()) << list.status();
  const boost::json::array rows = boost::json::parse(SessionListJson(*list)).as_array();
  ASSERT_EQ(rows.size(), 2u);
  const boost::json::object& broken = rows[0].as_object();
  EXPECT_EQ(broken.at("name").as_string(), "broken");
  EXPECT_EQ(broken.at("status").as_string(), "unreadable");
  EXPECT_FALSE(broken.at("error").as_string().empty());
  const boost::json::object& row = rows[1].as_object();
  EXPECT_EQ(row.at("name").as_string(), "first");
  EXPECT_EQ(row.at("mode").as_string(), "server");
  EXPECT_EQ(row.at("levels").as_int64(), 2);
  EXPECT_EQ(row.at("best_level").as_string(), "c=8");
  EXPECT_DOUBLE_EQ(row.at("best_asps").to_number<double>(), (*list)[1].best_asps);
  EXPECT_DOUBLE_EQ(row.at("success_rate_pct").to_number<double>(), 100);
  EXPECT_FALSE(row.contains("error"));
  EXPECT_EQ(SessionListJson({}), "[]\n");
}

TEST_F(ReportOutputsTest, SessionJsonCarriesTheSchemaVersionAndANewerOneIsRefused) {
  const fs::path dir = root_ / "out" / "s";
  Synthetic s = MakeSession("s", TwoLevels(), 1);
  ASSERT_TRUE(WriteSessionFiles(dir.string(), s.session, s.levels).ok());
  auto loaded = LoadSession(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->session.schema_version(), kSessionSchemaVersion);
  // A session of a layout this build does not know is not misread.
  s.session.set_schema_version(kSessionSchemaVersion + 1);
  auto json = ProtoJson(s.session);
  ASSERT_TRUE(json.ok());
  std::ofstream(dir / "session.json", std::ios::trunc) << *json;
  auto refused = LoadSession(dir.string());
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrCat("schema_version ", kSessionSchemaVersion + 1,
                                     " is newer than this ttsbench reads")));
}

}  // namespace
}  // namespace ttsbench::coordinator
