// Streaming continuity on hand-made chunk timelines: inter-chunk gaps and playback underrun
// (DESIGN.md: playback starts at the first audio; stall_k = max(0, t_k - E_{k-1}),
// E_k = max(t_k, E_{k-1}) + d_k).
#include <cstdint>
#include <utility>
#include <vector>

#include "agent/client/transport.h"
#include "common/histogram.h"
#include "gtest/gtest.h"

namespace ttsbench::agent {
namespace {

constexpr int64_t kMs = 1'000'000;

// Feeds (arrival ms, audio seconds) chunks and returns the filled record.
v1::RequestRecord Play(const std::vector<std::pair<int64_t, double>>& chunks,
                       common::LogHistogram* gaps = nullptr) {
  v1::RequestRecord rec;
  std::vector<int64_t> held;
  ChunkTimeline timeline(held);
  for (const auto& [t_ms, audio_s] : chunks) timeline.Audio(t_ms * kMs, audio_s, rec);
  timeline.Fill(rec);
  timeline.Commit(gaps);
  return rec;
}

TEST(ChunkTimelineTest, ChunksFasterThanPlaybackNeverStall) {
  // 200 ms of audio every 100 ms: the buffer only grows.
  const auto rec = Play({{50, 0.2}, {150, 0.2}, {250, 0.2}, {350, 0.2}});
  EXPECT_EQ(rec.first_audio_ns(), 50 * kMs);
  EXPECT_EQ(rec.chunks(), 4);
  EXPECT_DOUBLE_EQ(rec.max_gap_ms(), 100);
  EXPECT_DOUBLE_EQ(rec.underrun_ms(), 0);
  EXPECT_DOUBLE_EQ(rec.worst_stall_ms(), 0);
}

TEST(ChunkTimelineTest, OneLateChunkStallsByWhatPlaybackRanOutOf) {
  // 1 s of audio at t=0, the next at t=1500 ms: playback ran dry at 1000 ms, 500 ms of silence.
  const auto rec = Play({{0, 1.0}, {1500, 1.0}});
  EXPECT_DOUBLE_EQ(rec.max_gap_ms(), 1500);
  EXPECT_DOUBLE_EQ(rec.underrun_ms(), 500);
  EXPECT_DOUBLE_EQ(rec.worst_stall_ms(), 500);
}

TEST(ChunkTimelineTest, StallsAddUpAndPlaybackResumesFromTheLateChunk) {
  // E: 0.1 s -> stall 100 (t=200) -> E=300 -> stall 200 (t=500) -> E=600 -> t=550 in time
  // -> E=700.
  const auto rec = Play({{0, 0.1}, {200, 0.1}, {500, 0.1}, {550, 0.1}});
  EXPECT_DOUBLE_EQ(rec.underrun_ms(), 300);
  EXPECT_DOUBLE_EQ(rec.worst_stall_ms(), 200);
  EXPECT_DOUBLE_EQ(rec.max_gap_ms(), 300);
}

TEST(ChunkTimelineTest, BufferedAudioAbsorbsAGapLongerThanOneChunk) {
  // A 2 s head start covers a 1.5 s gap: large gap, no underrun. Gaps alone overstate stalls.
  const auto rec = Play({{0, 2.0}, {1500, 0.5}, {1600, 0.5}});
  EXPECT_DOUBLE_EQ(rec.max_gap_ms(), 1500);
  EXPECT_DOUBLE_EQ(rec.underrun_ms(), 0);
}

TEST(ChunkTimelineTest, OneChunkAnswerHasNoGapsAndGapsGoToTheHistogram) {
  const auto single = Play({{30, 3.0}});
  EXPECT_EQ(single.chunks(), 1);
  EXPECT_DOUBLE_EQ(single.max_gap_ms(), 0);
  EXPECT_DOUBLE_EQ(single.underrun_ms(), 0);
  common::LogHistogram gaps;
  Play({{0, 0.1}, {40, 0.1}, {80, 0.1}, {200, 0.1}}, &gaps);
  EXPECT_EQ(gaps.count(), 3u);
}

}  // namespace
}  // namespace ttsbench::agent
