#include "common/escape.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

TEST(JsonQuoteTest, EscapesQuoteBackslashAndShortForms) {
  EXPECT_EQ(JsonQuote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(JsonQuote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
}

TEST(JsonQuoteTest, EscapesEveryOtherControlCharacterAsU00) {
  for (int c = 0; c < 0x20; ++c) {
    const std::string quoted = JsonQuote(std::string(1, static_cast<char>(c)));
    if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') continue;
    char expected[16];
    std::snprintf(expected, sizeof(expected), "\"\\u%04x\"", c);
    EXPECT_EQ(quoted, expected) << "char " << c;
  }
  EXPECT_EQ(JsonQuote(std::string("\0", 1)), R"("\u0000")");
  EXPECT_EQ(JsonQuote("\x7f"), R"("\u007f")");
}

TEST(JsonQuoteTest, KeepsWellFormedUtf8) {
  EXPECT_EQ(JsonQuote("Grüße 世界 😀"), "\"Grüße 世界 😀\"");
}

TEST(JsonQuoteTest, ReplacesBytesThatAreNotUtf8) {
  EXPECT_EQ(JsonQuote("a\xff"
                      "b"),
            R"("a\ufffdb")");                                                 // never valid
  EXPECT_EQ(JsonQuote("\xc3"), R"("\ufffd")");                                // truncated
  EXPECT_EQ(JsonQuote("\x80x"), R"("\ufffdx")");                              // stray continuation
  EXPECT_EQ(JsonQuote("\xc0\xaf"), R"("\ufffd\ufffd")");                      // overlong '/'
  EXPECT_EQ(JsonQuote("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // surrogate
  EXPECT_EQ(JsonQuote("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
}

TEST(ValidUtf8Test, ReplacesInvalidBytesWithReplacementCharacter) {
  EXPECT_EQ(ValidUtf8("ok\xffé"), "ok\xEF\xBF\xBDé");
  EXPECT_EQ(ValidUtf8("plain"), "plain");
}

}  // namespace
}  // namespace ttsbench::common
