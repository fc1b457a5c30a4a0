#include "agent/client/sse.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ttsbench::agent {
namespace {

std::vector<SseEvent> Parse(const std::string& body, std::vector<size_t> cuts = {}) {
  SseParser p;
  std::vector<SseEvent> out;
  size_t at = 0;
  for (size_t cut : cuts) {
    EXPECT_TRUE(p.Feed(body.substr(at, cut - at), out).ok());
    at = cut;
  }
  EXPECT_TRUE(p.Feed(body.substr(at), out).ok());
  EXPECT_TRUE(p.Finish(out).ok());
  return out;
}

TEST(SseParserTest, DispatchesOnBlankLinesAndJoinsDataLines) {
  auto ev = Parse("data: one\n\nevent: speech\ndata: a\ndata:b\n\n");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].event, "");
  EXPECT_EQ(ev[0].data, "one");
  EXPECT_EQ(ev[1].event, "speech");
  EXPECT_EQ(ev[1].data, "a\nb");
}

TEST(SseParserTest, AcceptsCrLfAndBareCrLineEndsEvenSplitBetweenPieces) {
  const std::string body = "data: x\r\n\r\ndata: y\r\rdata: z\n\n";
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    auto ev = Parse(body, {cut});
    ASSERT_EQ(ev.size(), 3u) << "cut at " << cut;
    EXPECT_EQ(ev[0].data, "x");
    EXPECT_EQ(ev[1].data, "y");
    EXPECT_EQ(ev[2].data, "z");
  }
}

TEST(SseParserTest, SkipsCommentsIdsRetriesAndEventsWithoutData) {
  auto ev = Parse(": keep-alive\n\nid: 7\nretry: 100\n\nevent: ping\n\ndata\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "");  // "data" with no colon is a data line with an empty value
}

TEST(SseParserTest, StripsAByteOrderMarkSplitAcrossPieces) {
  const std::string body =
      "\xEF\xBB\xBF"
      "data: bom\n\n";
  for (size_t cut = 0; cut <= 4; ++cut) {
    auto ev = Parse(body, {cut});
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].data, "bom");
  }
}

TEST(SseParserTest, FinishDispatchesAnEventWhoseBlankLineNeverCame) {
  auto ev = Parse("data: last");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "last");
}

TEST(SseParserTest, RandomSplitsGiveTheSameEventsAsTheWholeBody) {
  std::string body;
  for (int i = 0; i < 50; ++i) {
    body += "event: e" + std::to_string(i) + "\r\ndata: {\"n\":" + std::to_string(i) + "}\n";
    body += i % 3 == 0 ? "\r\n" : "\n";
  }
  const auto whole = Parse(body);
  ASSERT_EQ(whole.size(), 50u);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<size_t> cuts;
    for (size_t at = 0; at < body.size();) {
      at += 1 + rng() % 17;
      if (at < body.size()) cuts.push_back(at);
    }
    auto split = Parse(body, cuts);
    ASSERT_EQ(split.size(), whole.size());
    for (size_t i = 0; i < split.size(); ++i) {
      EXPECT_EQ(split[i].event, whole[i].event);
      EXPECT_EQ(split[i].data, whole[i].data);
    }
  }
}

TEST(SseParserTest, AnEventBeyondTheBoundIsAnError) {
  SseParser p(64);
  std::vector<SseEvent> out;
  EXPECT_TRUE(p.Feed("data: short\n\n", out).ok());
  EXPECT_FALSE(p.Feed("data: " + std::string(100, 'x'), out).ok());
  EXPECT_FALSE(p.Feed("data: more\n\n", out).ok());  // stays failed
  SseParser q(64);
  std::vector<SseEvent> out2;
  // Many data lines add up to the bound too.
  EXPECT_FALSE(
      q.Feed("data: " + std::string(40, 'b') + "\ndata: " + std::string(40, 'c') + "\n", out2)
          .ok());
}

}  // namespace
}  // namespace ttsbench::agent
