// Builds WAV bytes for tests: header fields chosen by the test, samples a deterministic ramp.
#ifndef TTSBENCH_TESTS_COMMON_WAV_BUILDER_H_
#define TTSBENCH_TESTS_COMMON_WAV_BUILDER_H_

#include <cstdint>
#include <string>

namespace ttsbench::testing {

inline void PutLe(std::string& s, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

struct WavSpec {
  int rate = 24000;
  int channels = 1;
  int bits = 16;
  uint16_t format_tag = 1;
  int64_t frames = 24000;
  bool placeholder_sizes = false;  // 0xFFFFFFFF as streaming servers write
  bool zero_sizes = false;         // 0 as other streaming servers write
  bool list_chunk_before_data = false;
  int64_t declared_extra_frames = 0;  // header claims more data than present (truncated file)
};

inline std::string BuildWav(const WavSpec& w) {
  const uint32_t frame = static_cast<uint32_t>(w.channels * w.bits / 8);
  const uint32_t data_bytes = static_cast<uint32_t>(w.frames) * frame;
  const uint32_t declared = data_bytes + static_cast<uint32_t>(w.declared_extra_frames) * frame;
  std::string s = "RIFF";
  PutLe(s, w.placeholder_sizes ? 0xFFFFFFFFu : w.zero_sizes ? 0u : 36 + declared, 4);
  s += "WAVEfmt ";
  PutLe(s, 16, 4);
  PutLe(s, w.format_tag, 2);
  PutLe(s, static_cast<uint32_t>(w.channels), 2);
  PutLe(s, static_cast<uint32_t>(w.rate), 4);
  PutLe(s, static_cast<uint32_t>(w.rate) * frame, 4);
  PutLe(s, frame, 2);
  PutLe(s, static_cast<uint32_t>(w.bits), 2);
  if (w.list_chunk_before_data) {
    s += "LIST";
    PutLe(s, 5, 4);
    s += "INFOx";
    s.push_back('\0');  // pad byte for the odd size
  }
  s += "data";
  PutLe(s, w.placeholder_sizes ? 0xFFFFFFFFu : w.zero_sizes ? 0u : declared, 4);
  for (uint32_t i = 0; i < data_bytes; ++i) s.push_back(static_cast<char>(i * 7));
  return s;
}

}  // namespace ttsbench::testing

#endif  // TTSBENCH_TESTS_COMMON_WAV_BUILDER_H_
