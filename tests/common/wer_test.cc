// WER/CER of the ASR check against hand-computed values.
#include "common/wer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ttsbench::common {
namespace {

TEST(EditDistanceTest, CountsSubstitutionsDeletionsAndInsertions) {
  const std::string kitten = "kitten", sitting = "sitting";
  EXPECT_EQ(EditDistance(kitten, sitting), 3u);  // k->s, e->i, +g
  EXPECT_EQ(EditDistance(std::string(), std::string("abc")), 3u);
  EXPECT_EQ(EditDistance(std::string("abc"), std::string()), 3u);
  EXPECT_EQ(EditDistance(std::string("same"), std::string("same")), 0u);
}

TEST(NormaliseForWerTest, LowerCasesDropsPunctuationAndSplitsOnHyphens) {
  EXPECT_EQ(NormaliseForWer("  Hello, World!  Don't-stop...  "), "hello world don't stop");
  EXPECT_EQ(NormaliseForWer("'Quoted' words; and/or \"more\""), "quoted words and or more");
  // Numbers as written: not spelled out.
  EXPECT_EQ(NormaliseForWer("Call 911, now."), "call 911 now");
  // Bytes of other scripts are kept.
  EXPECT_EQ(NormaliseForWer("Café Größe"), "café größe");
  EXPECT_EQ(NormaliseForWer(".,;!?"), "");
}

TEST(ErrorRatesTest, OneDeletionInSixWords) {
  const ErrorRates r = ComputeErrorRates("The cat sat on the mat.", "the cat sat on mat");
  EXPECT_EQ(r.ref_words, 6u);
  EXPECT_DOUBLE_EQ(r.wer, 1.0 / 6);
  // "the cat sat on the mat" (22 characters) -> "the cat sat on mat": 4 deleted ("the ").
  EXPECT_EQ(r.ref_chars, 22u);
  EXPECT_DOUBLE_EQ(r.cer, 4.0 / 22);
}

TEST(ErrorRatesTest, SubstitutionAndInsertion) {
  const ErrorRates r = ComputeErrorRates("the cat sat", "a cat sat down");
  EXPECT_DOUBLE_EQ(r.wer, 2.0 / 3);  // the->a, +down
  // "the cat sat" (11) -> "a cat sat down" (14): t,h,e -> a is 2 deletions + 1 substitution,
  // then " down" inserted: 3 + 5 = 8.
  EXPECT_DOUBLE_EQ(r.cer, 8.0 / 11);
}

TEST(ErrorRatesTest, InsertionsCanPassOne) {
  EXPECT_DOUBLE_EQ(ComputeErrorRates("yes", "yes yes yes").wer, 2.0);
}

TEST(ErrorRatesTest, EmptyHypothesisIsAllDeletions) {
  const ErrorRates r = ComputeErrorRates("two words", "");
  EXPECT_DOUBLE_EQ(r.wer, 1.0);
  EXPECT_DOUBLE_EQ(r.cer, 1.0);
}

TEST(ErrorRatesTest, PerfectMatchAfterNormalisation) {
  const ErrorRates r = ComputeErrorRates("Hello, world!", "HELLO WORLD");
  EXPECT_DOUBLE_EQ(r.wer, 0.0);
  EXPECT_DOUBLE_EQ(r.cer, 0.0);
}

TEST(ErrorRatesTest, CharactersAreCodePointsNotBytes) {
  // "café" is 4 characters (5 bytes): one substitution.
  const ErrorRates r = ComputeErrorRates("café", "cafe");
  EXPECT_EQ(r.ref_chars, 4u);
  EXPECT_DOUBLE_EQ(r.cer, 1.0 / 4);
  EXPECT_DOUBLE_EQ(r.wer, 1.0);
}

TEST(ErrorRatesTest, ReferenceWithoutWordsHasNoRates) {
  const ErrorRates r = ComputeErrorRates("?!", "anything");
  EXPECT_EQ(r.ref_words, 0u);
  EXPECT_DOUBLE_EQ(r.wer, 0.0);
}

}  // namespace
}  // namespace ttsbench::common
