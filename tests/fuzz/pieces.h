// How the fuzz targets split a body as a network might: piece sizes from a small linear
// congruential generator seeded by the input, so a failing split replays from the input alone.
#ifndef TTSBENCH_TESTS_FUZZ_PIECES_H_
#define TTSBENCH_TESTS_FUZZ_PIECES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace ttsbench::fuzzing {

// Sizes of successive pieces of 1 to `max` bytes; seed 0: the whole body at once.
class PieceSizes {
 public:
  PieceSizes(uint32_t seed, size_t max) : seed_(seed), x_(seed), max_(max) {}

  // The next piece of a body with `left` bytes still to come.
  size_t Next(size_t left) {
    if (seed_ == 0) return left;
    x_ = x_ * 1103515245u + 12345u;
    return std::min<size_t>(left, 1 + (x_ >> 16) % max_);
  }

 private:
  uint32_t seed_;
  uint32_t x_;
  size_t max_;
};

}  // namespace ttsbench::fuzzing

#endif  // TTSBENCH_TESTS_FUZZ_PIECES_H_
