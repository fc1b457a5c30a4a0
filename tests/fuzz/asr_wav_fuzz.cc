// libFuzzer target for the ASR check's conversion (coordinator/run/asr_audio): the audio an
// agent kept for the recogniser comes from the server, so any bytes, under any declared format,
// rate and channel count, must give a WAV or a status (never a crash, hang or sanitizer
// report), and a WAV given is whole: its header's sizes match its length.
#include <cstdint>
#include <cstring>
#include <string>

#include "coordinator/run/asr_audio.h"

namespace {

constexpr const char* kFormats[] = {"wav",  "mp3",       "aac",       "opus",      "vorbis",
                                    "flac", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le",
                                    "ulaw", "alaw",      ""};

}  // namespace

// Input: byte 0 picks the format, bytes 1-2 the rate (x 100 Hz), byte 3 the channels; the rest
// is the audio.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  ttsbench::coordinator::AsrAudioDescription d;
  d.format = kFormats[data[0] % (sizeof(kFormats) / sizeof(kFormats[0]))];
  d.sample_rate = (data[1] | (data[2] << 8)) * 100;
  d.channels = data[3] % 9;
  const absl::string_view audio(reinterpret_cast<const char*>(data + 4), size - 4);
  auto wav = ttsbench::coordinator::ConvertToAsrWav(audio, d, 16000);
  if (!wav.ok()) return 0;
  uint32_t riff = 0, data_bytes = 0;
  std::memcpy(&riff, wav->bytes.data() + 4, 4);
  std::memcpy(&data_bytes, wav->bytes.data() + 40, 4);
  if (riff + 8 != wav->bytes.size() || data_bytes + 44 != wav->bytes.size()) __builtin_trap();
  return 0;
}
