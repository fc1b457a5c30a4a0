#include "common/wer.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace ttsbench::common {
namespace {

// UTF-8 code points of `s`, for CER: one item per character, not per byte.
std::vector<char32_t> CodePoints(absl::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t len = b < 0x80           ? 1
                       : (b >> 5) == 0x6  ? 2
                       : (b >> 4) == 0xe  ? 3
                       : (b >> 3) == 0x1e ? 4
                                          : 1;
    char32_t cp = len == 1 ? b : b & (0xff >> (len + 1));
    for (size_t k = 1; k < len && i + k < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

}  // namespace

std::string NormaliseForWer(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = true;  // no leading space
  auto separate = [&] {
    if (!space) out.push_back(' ');
    space = true;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80 || absl::ascii_isalnum(c)) {
      out.push_back(static_cast<char>(absl::ascii_tolower(c)));
      space = false;
    } else if (c == '\'') {
      // "don't" keeps its apostrophe; quotes around words do not.
      const bool inside = i > 0 && i + 1 < text.size() && absl::ascii_isalpha(text[i - 1]) &&
                          absl::ascii_isalpha(text[i + 1]);
      if (inside) out.push_back('\'');
    } else if (absl::ascii_isspace(c) || c == '-' || c == '/' || c == '_') {
      separate();
    } else if (absl::ascii_ispunct(c)) {
      // "Hello, world." -> "hello world": punctuation between words already has a space.
      continue;
    } else {
      separate();  // control characters
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<std::string> WerWords(absl::string_view normalised) {
  return absl::StrSplit(normalised, ' ', absl::SkipEmpty());
}

ErrorRates ComputeErrorRates(absl::string_view reference, absl::string_view hypothesis) {
  const std::string ref = NormaliseForWer(reference);
  const std::string hyp = NormaliseForWer(hypothesis);
  ErrorRates r;
  const std::vector<std::string> ref_words = WerWords(ref);
  r.ref_words = ref_words.size();
  if (r.ref_words == 0) return r;
  r.wer = static_cast<double>(EditDistance(ref_words, WerWords(hyp))) /
          static_cast<double>(r.ref_words);
  const std::vector<char32_t> ref_chars = CodePoints(ref);
  r.ref_chars = ref_chars.size();
  r.cer = static_cast<double>(EditDistance(ref_chars, CodePoints(hyp))) /
          static_cast<double>(r.ref_chars);
  return r;
}

}  // namespace ttsbench::common
