// "Did you mean" for every name a user types: plan keys, modes, flags. One spelling distance.
#ifndef TTSBENCH_COMMON_SUGGEST_H_
#define TTSBENCH_COMMON_SUGGEST_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ttsbench::common {

// Levenshtein distance, case-insensitive, with an adjacent transposition counted as one edit
// ("vaule" -> "value").
size_t EditDistance(absl::string_view a, absl::string_view b);

// The candidate nearest to `word` when it is close enough to be a typo (at most 1 edit for short
// words, 2 from 6 characters on), else "". Ties go to the earlier candidate.
std::string NearestName(absl::string_view word, const std::vector<std::string>& candidates);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_SUGGEST_H_
