#include "agent/client/text_pacing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace ttsbench::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Join(const std::vector<TextPiece>& pieces) {
  std::string s;
  for (const TextPiece& p : pieces) s += p.text;
  return s;
}

v1::TextPacing Pacing(double tps, double first_ms, double jitter) {
  v1::TextPacing p;
  p.set_tokens_per_s(tps);
  p.set_first_token_ms(first_ms);
  p.set_jitter(jitter);
  return p;
}

TEST(SplitText, WordsKeepTheirLeadingBlanksAndJoinBackToTheText) {
  const std::string text = "Hello there, world.  How are you?";
  const auto words = SplitText(text, "word");
  std::vector<std::string> texts;
  for (const auto& w : words) texts.push_back(w.text);
  EXPECT_THAT(texts, ElementsAre("Hello", " there,", " world.", "  How", " are", " you?"));
  EXPECT_EQ(Join(words), text);
  EXPECT_EQ(words[1].tokens, 2);  // " the" "re,"
}

TEST(SplitText, TokensAreAtMostFourCodePointsAndNeverCutAUtf8Character) {
  const std::string text = "Grüße aus München";
  const auto tokens = SplitText(text, "token");
  EXPECT_EQ(Join(tokens), text);
  for (const auto& t : tokens) {
    EXPECT_EQ(t.tokens, 1);
    size_t cps = 0;
    for (unsigned char c : t.text) cps += (c & 0xC0) != 0x80;
    EXPECT_LE(cps, 4u) << t.text;
    EXPECT_NE(static_cast<unsigned char>(t.text[0]) & 0xC0, 0x80u) << "starts mid-character";
  }
  EXPECT_EQ(SplitText("", "token").size(), 1u);
}

TEST(SplitText, SentencesEndAtTerminalPunctuationAndCountTheirWordsTokens) {
  const std::string text = "One two. Three! Four five six";
  const auto s = SplitText(text, "sentence");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].text, "One two.");
  EXPECT_EQ(s[1].text, " Three!");
  EXPECT_EQ(s[2].text, " Four five six");
  EXPECT_EQ(s[0].tokens, 1 + 2);  // "One" | " two" "."
  EXPECT_EQ(Join(s), text);
}

TEST(PaceSchedule, WithoutJitterTokensAreEvenlySpacedAfterTheFirst) {
  PaceSchedule s(Pacing(20, 100, 0), 7);
  EXPECT_EQ(s.NextPieceDueNs(1), 100'000'000);
  EXPECT_EQ(s.NextPieceDueNs(1), 150'000'000);
  // A word of three tokens is due with its last token.
  EXPECT_EQ(s.NextPieceDueNs(3), 300'000'000);
  v1::TextPacing p = Pacing(20, 100, 0);
  p.set_end_delay_ms(40);
  PaceSchedule e(p, 7);
  e.NextPieceDueNs(2);
  EXPECT_EQ(e.EndDueNs(), 190'000'000);
}

TEST(PaceSchedule, IsDeterministicPerSeedAndJitterStaysInBounds) {
  const v1::TextPacing p = Pacing(50, 0, 0.5);
  PaceSchedule a(p, 42), b(p, 42), c(p, 43);
  bool differs = false;
  int64_t last = a.NextPieceDueNs(1);
  b.NextPieceDueNs(1);
  c.NextPieceDueNs(1);
  for (int i = 0; i < 1000; ++i) {
    const int64_t t = a.NextPieceDueNs(1);
    EXPECT_EQ(t, b.NextPieceDueNs(1));
    differs |= t != c.NextPieceDueNs(1);
    const int64_t gap = t - last;
    EXPECT_GE(gap, 10'000'000 - 1);  // 20 ms * (1 - 0.5)
    EXPECT_LE(gap, 30'000'000 + 1);  // 20 ms * (1 + 0.5)
    last = t;
  }
  EXPECT_TRUE(differs);
  // The mean interval stays the nominal one.
  EXPECT_NEAR(static_cast<double>(last) / 1000, 20e6, 1e6);
}

TEST(PacingSeed, DiffersByRequestAndAgent) {
  EXPECT_NE(PacingSeed(1, 0, 1), PacingSeed(1, 0, 2));
  EXPECT_NE(PacingSeed(1, 0, 1), PacingSeed(1, 1, 1));
  EXPECT_EQ(PacingSeed(1, 2, 3), PacingSeed(1, 2, 3));
}

TEST(ShouldInterrupt, TakesTheConfiguredShareOrEveryRequestAfterATime) {
  v1::TextPacing p = Pacing(10, 0, 0);
  p.set_interrupt_fraction(0.25);
  int hit = 0;
  for (uint64_t i = 0; i < 4000; ++i) hit += ShouldInterrupt(p, PacingSeed(9, 0, i), 0);
  EXPECT_NEAR(hit, 1000, 100);
  v1::TextPacing at = Pacing(10, 0, 0);
  at.set_interrupt_at_s(2);
  EXPECT_FALSE(ShouldInterrupt(at, 1, 1.9));
  EXPECT_TRUE(ShouldInterrupt(at, 1, 2.0));
}

TEST(ValidatePacing, NamesTheKeyOutOfRange) {
  v1::TextPacing p = Pacing(10, 0, 1.5);
  EXPECT_THAT(std::string(ValidatePacing(p).message()), HasSubstr("pacing.jitter"));
  p = Pacing(10, 0, 0);
  p.set_unit("paragraph");
  EXPECT_THAT(std::string(ValidatePacing(p).message()), HasSubstr("pacing.unit"));
  p = Pacing(0, 0, 0);
  p.set_flush(true);
  EXPECT_THAT(std::string(ValidatePacing(p).message()), HasSubstr("tokens_per_s"));
  EXPECT_TRUE(ValidatePacing(Pacing(30, 200, 0.2)).ok());
}

// Barge-in without pacing: the error says barge-in needs paced text, not just a bad rate.
TEST(ValidatePacing, BargeInWithoutPacingSaysItNeedsPacedText) {
  v1::TextPacing p = Pacing(0, 0, 0);
  p.set_interrupt_fraction(0.5);
  EXPECT_THAT(std::string(ValidatePacing(p).message()), HasSubstr("barge-in"));
  EXPECT_THAT(std::string(ValidatePacing(p).message()), HasSubstr("needs paced text"));
  p.set_interrupt_fraction(0);
  p.set_interrupt_at_s(3);
  EXPECT_THAT(std::string(ValidatePacing(p).message()), HasSubstr("needs paced text"));
}

}  // namespace
}  // namespace ttsbench::agent
