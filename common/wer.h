// Word and character error rates of a recogniser's transcript against the text that was spoken
// (the optional ASR check, DESIGN.md "ASR check"): both texts normalised the same way, then a
// Levenshtein distance over words or characters divided by the reference's length.
#ifndef TTSBENCH_COMMON_WER_H_
#define TTSBENCH_COMMON_WER_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ttsbench::common {

// What NormaliseForWer does, in words (for the session and the docs).
inline constexpr absl::string_view kWerNormalisation =
    "lower case (ASCII); punctuation removed (an apostrophe inside a word kept, a hyphen or "
    "slash splits words); numbers left as written (digits are not spelled out); whitespace "
    "collapsed";

// Lower-cases ASCII letters, drops ASCII punctuation (keeping an apostrophe between two
// letters: "don't"), turns hyphens, slashes and other separators into spaces, and collapses
// whitespace; bytes >= 0x80 (UTF-8 of other scripts) are kept as they are. Numbers stay as
// written: "42" and "forty two" differ.
std::string NormaliseForWer(absl::string_view text);

// The words of a normalised text.
std::vector<std::string> WerWords(absl::string_view normalised);

// Substitutions + deletions + insertions turning `hyp` into `ref` (Levenshtein), over any
// sequence of comparable items.
template <typename Seq>
size_t EditDistance(const Seq& ref, const Seq& hyp) {
  std::vector<size_t> row(hyp.size() + 1);
  for (size_t j = 0; j <= hyp.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= ref.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= hyp.size(); ++j) {
      const size_t above = row[j];
      const size_t substitute = diagonal + (ref[i - 1] == hyp[j - 1] ? 0 : 1);
      row[j] = std::min({substitute, above + 1, row[j - 1] + 1});
      diagonal = above;
    }
  }
  return row[hyp.size()];
}

struct ErrorRates {
  double wer = 0;  // word edits / reference words (can exceed 1 with insertions)
  double cer = 0;  // character edits / reference characters (code points, spaces included)
  size_t ref_words = 0;
  size_t ref_chars = 0;
};

// WER and CER of `hypothesis` against `reference`, both normalised by NormaliseForWer. A
// reference with no words after normalisation has no rates: ref_words is 0 and both rates are
// 0 (callers skip such samples).
ErrorRates ComputeErrorRates(absl::string_view reference, absl::string_view hypothesis);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_WER_H_
