// Input texts: a built-in corpus written for ttsbench in length buckets, or the user's file.
#ifndef TTSBENCH_COMMON_TEXTS_H_
#define TTSBENCH_COMMON_TEXTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ttsbench::common {

// length: short | medium | long | mixed. InvalidArgument for anything else.
absl::StatusOr<std::vector<std::string>> BuiltinTexts(absl::string_view length);

// One text per line; blank lines skipped. Errors name the file.
absl::StatusOr<std::vector<std::string>> LoadTextsFile(const std::string& path);

// Unicode code points in UTF-8 text: the "characters" of CPS.
int CountCharacters(absl::string_view utf8);

// Picks the text for request `n` of stream `stream` deterministically under `seed`.
size_t PickText(uint64_t seed, uint64_t stream, uint64_t n, size_t count);

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_TEXTS_H_
