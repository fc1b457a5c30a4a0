#pragma once
// libsndfile over bytes already in memory (read only): the audio meters' FLAC/MP3/Vorbis
// fallback, the audio checks' compressed decoder and the ASR check's conversion all read a whole
// answer this way.

#include <sndfile.h>

#include "absl/strings/string_view.h"

namespace ttsbench::common {

// The read position over `data`; it must outlive the SNDFILE opened on it.
struct SndfileMemory {
  absl::string_view data;
  sf_count_t pos = 0;
};

// sf_open_virtual over `file` in SFM_READ; nullptr when libsndfile cannot read it (then
// sf_strerror(nullptr) says why). Close with sf_close.
SNDFILE* OpenSndfileMemory(SndfileMemory& file, SF_INFO& info);

}  // namespace ttsbench::common
