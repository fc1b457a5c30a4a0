// The level's audio-check figures from the record store (declared in audio_analysis.h; apart
// from the analyser so that the fuzz build of the analyser needs no record store).
#include <string>
#include <vector>

#include "common/audio_analysis.h"
#include "common/record_store.h"
#include "common/stats.h"

namespace ttsbench::common {

void AddAudioCheckStats(const RecordStore& records, v1::LevelStats* st, std::string* not_decoded) {
  std::vector<double> ttfa_audible, leading;
  uint32_t analysed = 0, undecoded = 0;
  size_t at = 0;
  records.ForEach([&](const RecordStore::Chunk& c, size_t i) {
    const size_t index = at++;
    if ((c.flags[i] & RecordStore::Chunk::kAnalysed) == 0 || c.warmup(i) || !c.succeeded(i)) {
      return;
    }
    const v1::AudioAnalysis& a = *records.analysis(index);
    ++analysed;
    if (!a.decoded()) {
      if (undecoded++ == 0 && not_decoded != nullptr) *not_decoded = a.not_decoded();
      return;
    }
    leading.push_back(a.leading_silence_ms());
    if (a.audible_ns() != 0) {
      ttfa_audible.push_back(static_cast<double>(a.audible_ns() - c.start_ns[i]) / 1e6);
    }
  });
  if (analysed == 0) return;
  auto fill = [](std::vector<double>& v, v1::Distribution* d) {
    const Summary s = Summarize(v);
    d->set_mean(s.mean);
    d->set_p50(s.p50);
    d->set_p95(s.p95);
    d->set_p99(s.p99);
    d->set_max(s.max);
    d->set_count(static_cast<uint32_t>(s.count));
  };
  fill(ttfa_audible, st->mutable_ttfa_audible_ms());
  fill(leading, st->mutable_leading_silence_ms());
  st->set_audio_analysed(analysed);
  st->set_audio_not_decoded(undecoded);
}

}  // namespace ttsbench::common
