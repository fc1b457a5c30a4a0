#include "common/csv.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

using ::testing::ElementsAre;

std::vector<std::vector<std::string>> Parse(const std::string& text) {
  auto rows = ParseCsv(text);
  EXPECT_TRUE(rows.ok()) << rows.status();
  return rows.ok() ? *rows : std::vector<std::vector<std::string>>{};
}

TEST(CsvWriterTest, PlainFieldsAreWrittenAsIs) {
  std::string out;
  CsvWriter(&out).Field("a").Field(int64_t{-3}).Field(uint64_t{7}).Field("").EndRow();
  EXPECT_EQ(out, "a,-3,7,\n");
}

TEST(CsvWriterTest, QuotesFieldsWithCommaQuoteOrLineBreak) {
  std::string out;
  CsvWriter(&out).Field("a,b").Field("say \"hi\"").Field("two\nlines").Field("cr\r").EndRow();
  EXPECT_EQ(out, "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\"\n");
}

TEST(CsvReaderTest, ReadsBackEveryHostileField) {
  const std::vector<std::string> hostile = {"plain",
                                            "al,\"loy\\x",
                                            "",
                                            "\"",
                                            "\"\"",
                                            ",",
                                            "a\nb",
                                            "a\r\nb",
                                            "\r",
                                            "tab\there",
                                            "Grüße, 世界",
                                            "trailing space ",
                                            " leading",
                                            std::string(10 * 1024, 'x') + ",\"\n"};
  std::string out;
  CsvWriter w(&out);
  w.Row({"h1", "h2"});
  for (const std::string& f : hostile) w.Field(f).Field("end").EndRow();
  const auto rows = Parse(out);
  ASSERT_EQ(rows.size(), hostile.size() + 1);
  EXPECT_THAT(rows[0], ElementsAre("h1", "h2"));
  for (size_t i = 0; i < hostile.size(); ++i) {
    EXPECT_THAT(rows[i + 1], ElementsAre(hostile[i], "end")) << "field " << i;
  }
}

TEST(CsvReaderTest, AcceptsCrlfEmptyLinesAndNoFinalLineEnd) {
  EXPECT_THAT(Parse("a,b\r\n\r\n1,\"2\"\r\n3,4"),
              ElementsAre(ElementsAre("a", "b"), ElementsAre("1", "2"), ElementsAre("3", "4")));
}

TEST(CsvReaderTest, EmptyFieldsAndRaggedRowsKeepTheirCount) {
  EXPECT_THAT(Parse("a,,b,\n,\nx\n"),
              ElementsAre(ElementsAre("a", "", "b", ""), ElementsAre("", ""), ElementsAre("x")));
}

TEST(CsvReaderTest, ReportsTheLineOfEachRecord) {
  CsvReader reader("h\n\"multi\nline\"\nnext\n");
  std::vector<std::string> fields;
  ASSERT_TRUE(*reader.Next(&fields));
  EXPECT_EQ(reader.line(), 1u);
  ASSERT_TRUE(*reader.Next(&fields));
  EXPECT_EQ(reader.line(), 2u);
  EXPECT_THAT(fields, ElementsAre("multi\nline"));
  ASSERT_TRUE(*reader.Next(&fields));
  EXPECT_EQ(reader.line(), 4u);
  EXPECT_THAT(fields, ElementsAre("next"));
  EXPECT_FALSE(*reader.Next(&fields));
}

TEST(CsvReaderTest, ReturnsErrorIfAQuoteIsNeverClosed) {
  auto rows = ParseCsv("a\n\"open,\nstill open");
  ASSERT_FALSE(rows.ok());
  EXPECT_THAT(std::string(rows.status().message()), ::testing::HasSubstr("line 2"));
}

TEST(CsvReaderTest, ReturnsErrorIfTextFollowsAClosingQuote) {
  EXPECT_FALSE(ParseCsv("\"a\"b,c\n").ok());
}

TEST(CsvReaderTest, ReturnsErrorIfAQuoteSitsInsideAnUnquotedField) {
  // What the old writer produced for a voice named al"loy.
  EXPECT_FALSE(ParseCsv("level,series\n1,al\"loy\n").ok());
}

}  // namespace
}  // namespace ttsbench::common
