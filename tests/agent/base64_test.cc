// The agent's base64 decoder against absl::Base64Unescape, the decoder it replaced: the same
// answer (bytes, or refusal) for every input, on the vector path and the scalar one.
#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "agent/client/audio_events.h"
#include "gtest/gtest.h"

namespace ttsbench::agent {
namespace {

void ExpectSameAsAbsl(const std::string& in) {
  std::string want;
  const bool want_ok = absl::Base64Unescape(in, &want);
  std::string got = "stale";
  EXPECT_EQ(Base64Decode(in, &got), want_ok) << "input: " << absl::CEscape(in);
  EXPECT_EQ(got, want) << "input: " << absl::CEscape(in);
  std::string scalar = "stale";
  EXPECT_EQ(Base64DecodeScalarForTest(in, &scalar), want_ok) << "input: " << absl::CEscape(in);
  EXPECT_EQ(scalar, want) << "input: " << absl::CEscape(in);
}

TEST(Base64DecodeTest, DecodesWhatAbslDecodes) {
  for (const char* in :
       {"",         "QQ==", "QQ",    "QUI=",      "QUI",    "QUJD",   "QQ=",
        "Q",        "QQ..", "QUI.",  " Q U J D ", "QUJD\n", "QU\tJD", "QQ= =",
        "QQ==QQ==", "=",    "QUJD=", "QUJ*",      "QUJD\0", "-_-_",   "QUJDRA==  \r\n"}) {
    ExpectSameAsAbsl(in);
  }
}

TEST(Base64DecodeTest, LongInputsMatchAbslWhereverTheOddCharacterIs) {
  std::mt19937 rng(12345);
  std::string raw;
  for (int i = 0; i < 3000; ++i) raw.push_back(static_cast<char>(rng()));
  const std::string clean = absl::Base64Escape(raw);
  ExpectSameAsAbsl(clean);
  for (size_t cut : {0, 1, 2, 3, 31, 32, 33, 63, 64, 100, 1000}) {
    ExpectSameAsAbsl(clean.substr(0, clean.size() - cut));
  }
  // One character replaced or inserted anywhere: whitespace, padding, outside the alphabet.
  const char odd[] = {' ', '\n', '=', '.', '*', '\0', '\x80', '\xff', '-', '_', 'A', '/', '+'};
  for (int trial = 0; trial < 400; ++trial) {
    std::string in = clean.substr(0, 64 + rng() % 512);
    const size_t at = rng() % in.size();
    const char c = odd[rng() % sizeof(odd)];
    if (trial % 2 == 0) {
      in[at] = c;
    } else {
      in.insert(at, 1, c);
    }
    ExpectSameAsAbsl(in);
  }
}

TEST(Base64DecodeTest, EveryByteValueIsClassifiedAsAbslDoes) {
  const std::string block(64, 'A');
  for (int c = 0; c < 256; ++c) {
    for (size_t at : {0, 5, 31, 32, 40, 63}) {
      std::string in = block;
      in[at] = static_cast<char>(c);
      ExpectSameAsAbsl(in);
    }
  }
}

}  // namespace
}  // namespace ttsbench::agent
