#pragma once
// SplitMix64 (Steele, Lea, Flood 2014): the small seeded generator behind every draw that must
// repeat exactly for a seed — the synth's jitter and faults, paced text's schedule and barge-in
// choice, conversations' think time.

#include <cstdint>

namespace ttsbench::common {

// Advances `state` and returns the next 64 random bits.
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1): the top 53 bits of the next draw.
inline double SplitMixUnit(uint64_t& state) {
  return static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-53;
}

}  // namespace ttsbench::common
