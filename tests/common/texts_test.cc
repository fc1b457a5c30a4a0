#include "common/texts.h"

#include <cstdio>
#include <fstream>
#include <set>

#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

TEST(BuiltinTextsTest, BucketsHaveDistinctLengths) {
  auto s = BuiltinTexts("short");
  auto m = BuiltinTexts("medium");
  auto l = BuiltinTexts("long");
  auto all = BuiltinTexts("mixed");
  ASSERT_TRUE(s.ok() && m.ok() && l.ok() && all.ok());
  for (const auto& t : *s) EXPECT_LT(t.size(), 40u);
  for (const auto& t : *m) EXPECT_TRUE(t.size() >= 60 && t.size() < 100) << t;
  for (const auto& t : *l) EXPECT_GT(t.size(), 180u);
  EXPECT_EQ(all->size(), s->size() + m->size() + l->size());
  EXPECT_FALSE(BuiltinTexts("huge").ok());
}

TEST(PickTextTest, DeterministicUnderSeedAndSpreadsOverTheCorpus) {
  std::set<size_t> seen;
  for (uint64_t n = 0; n < 200; ++n) {
    EXPECT_EQ(PickText(42, 1, n, 12), PickText(42, 1, n, 12));
    seen.insert(PickText(42, 1, n, 12));
  }
  EXPECT_EQ(seen.size(), 12u);
  int differ = 0;
  for (uint64_t n = 0; n < 50; ++n) differ += PickText(42, 1, n, 12) != PickText(43, 1, n, 12);
  EXPECT_GT(differ, 25);
}

TEST(LoadTextsFileTest, OneTextPerLineBlankLinesSkipped) {
  const std::string path = ::testing::TempDir() + "/texts.txt";
  {
    std::ofstream out(path);
    out << "first line\n\n  second line  \n";
  }
  auto texts = LoadTextsFile(path);
  ASSERT_TRUE(texts.ok());
  ASSERT_EQ(texts->size(), 2u);
  EXPECT_EQ((*texts)[1], "second line");
  EXPECT_FALSE(LoadTextsFile(path + ".missing").ok());
  {
    std::ofstream out(path);
    out << "\n\n";
  }
  auto empty = LoadTextsFile(path);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find(path), std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ttsbench::common

namespace ttsbench::common {
namespace {

TEST(CountCharactersTest, CountsCodePointsNotBytes) {
  EXPECT_EQ(CountCharacters("hello"), 5);
  EXPECT_EQ(CountCharacters("caf\xc3\xa9"), 4);               // café
  EXPECT_EQ(CountCharacters("\xe6\x97\xa5\xe6\x9c\xac"), 2);  // 日本
  EXPECT_EQ(CountCharacters(""), 0);
}

}  // namespace
}  // namespace ttsbench::common
