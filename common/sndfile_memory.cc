#include "common/sndfile_memory.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace ttsbench::common {
namespace {

sf_count_t MemLength(void* user) {
  return static_cast<sf_count_t>(static_cast<SndfileMemory*>(user)->data.size());
}
sf_count_t MemSeek(sf_count_t offset, int whence, void* user) {
  auto* f = static_cast<SndfileMemory*>(user);
  const auto size = static_cast<sf_count_t>(f->data.size());
  const sf_count_t pos = whence == SEEK_SET   ? offset
                         : whence == SEEK_CUR ? f->pos + offset
                                              : size + offset;
  f->pos = std::clamp<sf_count_t>(pos, 0, size);
  return f->pos;
}
sf_count_t MemRead(void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<SndfileMemory*>(user);
  const sf_count_t n =
      std::clamp<sf_count_t>(count, 0, static_cast<sf_count_t>(f->data.size()) - f->pos);
  if (n > 0) std::memcpy(ptr, f->data.data() + f->pos, static_cast<size_t>(n));
  f->pos += n;
  return n;
}
sf_count_t MemWrite(const void*, sf_count_t, void*) { return 0; }
sf_count_t MemTell(void* user) { return static_cast<SndfileMemory*>(user)->pos; }

}  // namespace

SNDFILE* OpenSndfileMemory(SndfileMemory& file, SF_INFO& info) {
  // libsndfile copies the callbacks, so a local table is enough.
  SF_VIRTUAL_IO io{MemLength, MemSeek, MemRead, MemWrite, MemTell};
  return sf_open_virtual(&io, SFM_READ, &info, &file);
}

}  // namespace ttsbench::common
