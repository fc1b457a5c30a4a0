#include "coordinator/cli/cli_guide.h"

#include "CLI/CLI.hpp"
#include "gtest/gtest.h"

namespace ttsbench::coordinator {
namespace {

// A command line shaped like ttsbench's: modes with flags, and a mode with nested modes.
class CliGuideTest : public ::testing::Test {
 protected:
  CliGuideTest() {
    CLI::App* server = app_.add_subcommand("server", "benchmark a TTS server");
    server->add_option("--url", url_);
    server->add_option("--concurrency", concurrency_)->expected(1, -1);
    server->add_flag("--streaming,!--no-streaming", streaming_);
    app_.add_subcommand("discover", "find a server's TTS endpoints");
    CLI::App* sessions = app_.add_subcommand("sessions", "list saved sessions");
    sessions->require_subcommand(1);
    sessions->add_option("--output-dir", dir_);
    sessions->fallthrough();
    sessions->add_subcommand("list", "an index")->fallthrough();
  }

  absl::Status Check(std::vector<std::string> args) { return CheckCommandLine(app_, args); }

  CLI::App app_{"test"};
  std::string url_, dir_;
  std::vector<int> concurrency_;
  bool streaming_ = false;
};

TEST_F(CliGuideTest, NoModeIsAnErrorAndTheModeListNamesEveryMode) {
  EXPECT_FALSE(Check({}).ok());
  const std::string list = ModeList(app_);
  for (const char* mode : {"server", "discover", "sessions"}) {
    EXPECT_NE(list.find(mode), std::string::npos) << list;
  }
  EXPECT_NE(list.find("benchmark a TTS server"), std::string::npos) << list;
}

TEST_F(CliGuideTest, MisspeltModeGetsDidYouMean) {
  const absl::Status st = Check({"sever", "--url", "http://x"});
  EXPECT_EQ(st.message(), "unknown mode 'sever' (did you mean 'server'?)");
  EXPECT_EQ(Check({"zzzzzz"}).message(), "unknown mode 'zzzzzz'");
}

TEST_F(CliGuideTest, MisspeltFlagGetsDidYouMean) {
  EXPECT_EQ(Check({"server", "--concurency", "1", "2"}).message(),
            "server: unknown flag '--concurency' (did you mean '--concurrency'?)");
  EXPECT_EQ(Check({"server", "--concurrency=1", "--no-streming"}).message(),
            "server: unknown flag '--no-streming' (did you mean '--no-streaming'?)");
  EXPECT_EQ(Check({"server", "--zzzzzzzz"}).message(),
            "server: unknown flag '--zzzzzzzz' (`ttsbench server --help` lists them)");
}

TEST_F(CliGuideTest, KnownFlagsPassIncludingFallthroughAndNegatedFlags) {
  EXPECT_TRUE(Check({"server", "--url", "http://x", "--concurrency", "1", "2"}).ok());
  EXPECT_TRUE(Check({"server", "--no-streaming", "--help"}).ok());
  EXPECT_TRUE(Check({"sessions", "list", "--output-dir", "d"}).ok());
  EXPECT_TRUE(Check({"--help"}).ok());
}

TEST_F(CliGuideTest, AModeOfModesNamesThemWhenNoneIsGiven) {
  EXPECT_EQ(Check({"sessions"}).message(), "sessions: say what to do: list");
  EXPECT_EQ(Check({"sessions", "--output-dir", "d"}).message(), "sessions: say what to do: list");
  EXPECT_TRUE(Check({"sessions", "--help"}).ok());
}

TEST_F(CliGuideTest, ExtrasAreGivenInTheOrderTyped) {
  const std::vector<std::string> args = {"server", "a", "--x", "b", "c"};
  EXPECT_EQ(InTypedOrder({"c", "b", "--x", "a"}, args),
            (std::vector<std::string>{"a", "--x", "b", "c"}));
}

TEST(ParseDurationFlagTest, EveryFormMeansTheSame) {
  EXPECT_DOUBLE_EQ(*ParseDurationFlag("--timeout", "30"), 30);
  EXPECT_DOUBLE_EQ(*ParseDurationFlag("--timeout", "30s"), 30);
  EXPECT_DOUBLE_EQ(*ParseDurationFlag("--timeout", "250ms"), 0.25);
  EXPECT_DOUBLE_EQ(*ParseDurationFlag("--timeout", "2.5"), 2.5);
  EXPECT_DOUBLE_EQ(*ParseDurationFlag("--duration", "1h30m"), 5400);
  EXPECT_DOUBLE_EQ(*ParseDurationFlag("--duration", "0"), 0);
}

TEST(ParseDurationFlagTest, RejectsWhatIsNotADurationNamingTheFlag) {
  for (const char* bad : {"-1", "-5s", "thirty", "30 s", "inf", "nan", ""}) {
    auto d = ParseDurationFlag("--timeout", bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().message().rfind("--timeout: '", 0), 0u) << d.status().message();
  }
}

TEST(GroupLoadOptionsTest, HelpListsFlagsUnderTheirGroups) {
  CLI::App app{"t"};
  std::string url, voice, token;
  std::vector<int> concurrency;
  int agents = 0;
  app.add_option("--url", url);
  app.add_option("--voice", voice);
  app.add_option("--concurrency", concurrency);
  app.add_option("--auth-token-env", token);
  app.add_option("--agents", agents);
  GroupLoadOptions(app);
  const std::string help = app.help();
  for (const char* group : {"Target:", "Load:", "Auth and TLS:", "Fleet:"}) {
    EXPECT_NE(help.find(group), std::string::npos) << help;
  }
  EXPECT_LT(help.find("Target:"), help.find("--voice"));
}

TEST(GroupLoadOptionsTest, ReplicasIsTheCostsOutsideCapacity) {
  for (const char* mode : {"server", "capacity"}) {
    CLI::App app{"t", mode};
    int replicas = 0;
    double price = 0;
    app.add_option("--replicas", replicas);
    app.add_option("--cost-per-replica-hour", price);
    GroupLoadOptions(app);
    const std::string group = app.get_option("--replicas")->get_group();
    EXPECT_EQ(group, std::string(mode) == "capacity" ? "Capacity search" : "Telemetry and cost")
        << mode;
  }
}

}  // namespace
}  // namespace ttsbench::coordinator
