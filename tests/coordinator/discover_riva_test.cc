// `ttsbench discover` for grpc:// URLs against the synthetic server's Riva service, and the
// reading of Riva's model config.
#include "coordinator/discover/discover_riva.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "synth/riva_service.h"

namespace ttsbench::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RivaConfigVoices, SubvoicesAreNamedAfterTheirModelVoice) {
  EXPECT_THAT(RivaConfigVoices({{"voice_name", "Magpie-Multilingual"},
                                {"subvoices", "Leo:Male, Sofia:Female,,"}}),
              ElementsAre("Magpie-Multilingual.Leo", "Magpie-Multilingual.Sofia"));
  EXPECT_THAT(RivaConfigVoices({{"voice_name", "English-US.Female-1"}}),
              ElementsAre("English-US.Female-1"));
  EXPECT_TRUE(RivaConfigVoices({{"subvoices", "A:1"}}).empty());
  EXPECT_THAT(RivaConfigVoices({{"voice_name", "V"}, {"subvoices", ":x,B"}}), ElementsAre("V.B"));
}

TEST(DiscoverRiva, FindsVoicesBothMethodsAndSuggestsTheStream) {
  auto server = synth::RivaServer::Start({});
  ASSERT_TRUE(server.ok()) << server.status();
  DiscoverOptions options;
  options.url = "grpc://127.0.0.1:" + std::to_string((*server)->port());
  auto result = Discover(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->best_dialect, "riva");
  EXPECT_THAT(result->voices, ::testing::Contains("ttsbench-synth.fast"));
  EXPECT_THAT(result->models, ElementsAre("ttsbench-synth"));
  int working = 0;
  for (const EndpointProbe& p : result->probes) {
    if (p.kind != "speech") continue;
    EXPECT_TRUE(p.working) << p.path << ": " << p.why;
    EXPECT_EQ(p.sample_rate, 44100);
    EXPECT_GT(p.audio_s, 0);
    working += p.working ? 1 : 0;
  }
  EXPECT_EQ(working, 2);
  EXPECT_THAT(result->suggested_command,
              HasSubstr(options.url + " --api riva --streaming --format pcm --sample-rate 44100"));
  EXPECT_THAT(DiscoveryTable(*result), HasSubstr("SynthesizeOnline"));
}

TEST(DiscoverRiva, NothingListeningIsUnavailable) {
  uint16_t port = 0;
  {
    auto server = synth::RivaServer::Start({});
    ASSERT_TRUE(server.ok());
    port = (*server)->port();
  }
  DiscoverOptions options;
  options.url = "grpc://127.0.0.1:" + std::to_string(port);
  options.timeout_s = 2;
  auto result = Discover(options);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::IsUnavailable(result.status())) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("cannot reach"));
}

TEST(DiscoverRiva, WrongKeyIsReportedPerProbe) {
  synth::RivaOptions o;
  o.api_key = "k1";
  auto server = synth::RivaServer::Start(o);
  ASSERT_TRUE(server.ok());
  DiscoverOptions options;
  options.url = "grpc://127.0.0.1:" + std::to_string((*server)->port());
  v1::Header h;
  h.set_name("Authorization");
  h.set_value("Bearer nope");
  options.headers = {h};
  auto result = Discover(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->best_dialect.empty());
  for (const EndpointProbe& p : result->probes) {
    EXPECT_FALSE(p.working);
    EXPECT_THAT(p.why, HasSubstr("UNAUTHENTICATED"));
  }
}

}  // namespace
}  // namespace ttsbench::coordinator
