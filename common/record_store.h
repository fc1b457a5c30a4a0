// The coordinator's record store: every request of a level in columns, ~116 bytes a record
// instead of a protobuf message's ~150 plus allocator overhead, appended without reallocation.
#ifndef TTSBENCH_COMMON_RECORD_STORE_H_
#define TTSBENCH_COMMON_RECORD_STORE_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::common {

// Paced text, barge-in and conversations (issue 13): RequestRecord fields 30-37 and 45-48, kept
// beside the columns for the records that have them only (first_text_ns, interrupt_ns or
// conversation_id set).
struct PacedFields {
  int64_t first_text_ns = 0;
  int64_t end_of_input_ns = 0;
  int64_t last_audio_ns = 0;
  int64_t late_max_ns = 0;
  int64_t late_total_ns = 0;
  int64_t interrupt_ns = 0;
  int64_t bytes_after_interrupt = 0;
  int32_t text_pieces = 0;
  uint64_t conversation_id = 0;  // conversations: 0 = not a conversation's turn
  int32_t turn = 0;
  int64_t conversation_setup_ns = 0;
  bool reconnect = false;
  bool any() const { return first_text_ns != 0 || interrupt_ns != 0 || conversation_id != 0; }
};
PacedFields PacedOf(const v1::RequestRecord& r);
void SetPaced(const PacedFields& p, v1::RequestRecord& r);

// One request as the coordinator keeps it: v1::RequestRecord's fields as plain data, plus the
// index (into Session.agents) of the agent that made it.
struct Record {
  uint64_t request_id = 0;
  int64_t intended_ns = 0;
  int64_t start_ns = 0;
  int64_t first_byte_ns = 0;
  int64_t first_audio_ns = 0;
  int64_t end_ns = 0;
  int64_t connect_ns = 0;
  int64_t bytes = 0;
  double audio_s = 0;
  double max_gap_ms = 0;
  double underrun_ms = 0;
  double worst_stall_ms = 0;
  int32_t chars = 0;
  int32_t sample_rate = 0;
  int32_t chunks = 0;
  int32_t http_status = 0;
  v1::ErrorKind error = v1::ERROR_NONE;
  bool warmup = false;
  bool streamed = false;
  uint32_t agent = 0;
  std::string error_detail;  // failures only; empty on success (no allocation)
  int32_t text_index = 0;
  // The audio checks' analysis (plan audio_checks), null when the request had none; shared, so
  // a Record read from the store copies a pointer, not the envelope.
  std::shared_ptr<const v1::AudioAnalysis> analysis;
  PacedFields paced;  // paced text (issue 13)
  // The sampled paced request's timeline (one per agent and level; null for every other).
  std::shared_ptr<const v1::PacedTimeline> timeline;
};

Record FromProto(const v1::RequestRecord& r, uint32_t agent = 0);
v1::RequestRecord ToProto(const Record& r);

inline bool Succeeded(const Record& r) { return r.error == v1::ERROR_NONE; }

// Append-only columns in fixed-size chunks: growth never copies what is stored (no 2x peak, no
// pause), and a scan of a few columns reads only those. Not thread-safe; one writer.
// Stored narrower than the proto, losslessly for what agents send: http_status in 16 bits
// (three-digit codes), error kind in 8. Error details are kept beside the columns, only for
// failed records and each distinct text once (a level of a million identical 404s holds one
// string), up to kMaxDistinctDetails texts; later new texts are dropped.
class RecordStore {
 public:
  static constexpr size_t kChunkBits = 14;
  static constexpr size_t kChunkRecords = size_t{1} << kChunkBits;  // 16384
  static constexpr size_t kMaxDistinctDetails = 4096;

  // Columns of up to kChunkRecords records.
  struct Chunk {
    static constexpr uint8_t kWarmup = 1;
    static constexpr uint8_t kStreamed = 2;
    static constexpr uint8_t kAnalysed = 4;  // an analysis is kept beside the columns
    uint64_t request_id[kChunkRecords];
    int64_t intended_ns[kChunkRecords];
    int64_t start_ns[kChunkRecords];
    int64_t first_byte_ns[kChunkRecords];
    int64_t first_audio_ns[kChunkRecords];
    int64_t end_ns[kChunkRecords];
    int64_t connect_ns[kChunkRecords];
    int64_t bytes[kChunkRecords];
    double audio_s[kChunkRecords];
    double max_gap_ms[kChunkRecords];
    double underrun_ms[kChunkRecords];
    double worst_stall_ms[kChunkRecords];
    int32_t chars[kChunkRecords];
    int32_t sample_rate[kChunkRecords];
    int32_t chunks[kChunkRecords];
    int32_t text_index[kChunkRecords];
    uint32_t agent[kChunkRecords];
    int16_t http_status[kChunkRecords];
    uint8_t error[kChunkRecords];
    uint8_t flags[kChunkRecords];

    bool warmup(size_t i) const { return (flags[i] & kWarmup) != 0; }
    bool streamed(size_t i) const { return (flags[i] & kStreamed) != 0; }
    bool succeeded(size_t i) const { return error[i] == v1::ERROR_NONE; }
  };

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Record;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Record;
    Iterator() = default;
    Iterator(const RecordStore* store, size_t i) : store_(store), i_(i) {}
    Record operator*() const { return (*store_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++i_;
      return old;
    }
    bool operator==(const Iterator& o) const { return i_ == o.i_; }

   private:
    const RecordStore* store_ = nullptr;
    size_t i_ = 0;
  };

  RecordStore() = default;
  RecordStore(const RecordStore& other);
  RecordStore& operator=(const RecordStore& other);
  RecordStore(RecordStore&&) noexcept = default;
  RecordStore& operator=(RecordStore&&) noexcept = default;

  void Append(const v1::RequestRecord& r, uint32_t agent);
  void Append(const Record& r);
  // Appends `rs`, every one made by `agent` (their own `agent` is ignored); column by column,
  // which is faster than record by record.
  void Append(std::span<const Record> rs, uint32_t agent);
  // Makes room for `n` records in all, so that appending up to there allocates nothing.
  void Reserve(size_t n);
  void Clear();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Record operator[](size_t i) const;
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, size_); }
  // Bytes held by the columns (what 10 million records cost).
  size_t MemoryBytes() const { return chunks_.size() * sizeof(Chunk); }
  // Record i's error detail ("" if none kept). A binary search over the failed records only.
  absl::string_view detail(size_t i) const;
  // Record i's audio analysis, or null. A binary search over the analysed records only.
  const std::shared_ptr<const v1::AudioAnalysis>& analysis(size_t i) const;
  // Paced text (issue 13): (record index, fields) of the records that have them, by index; and
  // the first request timeline appended (the timeline plot), if any.
  const std::vector<std::pair<size_t, PacedFields>>& paced() const { return paced_; }
  PacedFields paced(size_t i) const;
  const v1::PacedTimeline* sample_timeline() const {
    return sample_timeline_.text_ns_size() > 0 ? &sample_timeline_ : nullptr;
  }

  // Column scans: chunk c holds records [c * kChunkRecords, c * kChunkRecords + ChunkSize(c)).
  size_t chunk_count() const { return (size_ + kChunkRecords - 1) >> kChunkBits; }
  const Chunk& chunk(size_t c) const { return *chunks_[c]; }
  size_t ChunkSize(size_t c) const {
    return c + 1 < chunk_count() ? kChunkRecords : size_ - (c << kChunkBits);
  }
  // fn(const Chunk&, size_t index_in_chunk) for every record, in order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t c = 0, n = chunk_count(); c < n; ++c) {
      const Chunk& ch = *chunks_[c];
      for (size_t i = 0, m = ChunkSize(c); i < m; ++i) fn(ch, i);
    }
  }

 private:
  // The chunk and slot of the next record, allocating a chunk when the last is full.
  Chunk& Slot(size_t* i);
  // Keeps `detail` as record i's (i is the newest record).
  void KeepDetail(size_t i, absl::string_view detail);
  // Keeps `a` as record i's analysis (i is the newest record); returns the flag to set.
  uint8_t KeepAnalysis(size_t i, std::shared_ptr<const v1::AudioAnalysis> a);

  std::vector<std::unique_ptr<Chunk>> chunks_;  // may hold reserved chunks past size_
  size_t size_ = 0;
  std::vector<std::string> detail_texts_;  // distinct texts, by id
  std::unordered_map<std::string, uint32_t> detail_ids_;
  std::vector<std::pair<size_t, uint32_t>> details_;  // (record index, text id), by index
  // (record index, analysis), by index: only the analysed requests (audio_checks).
  std::vector<std::pair<size_t, std::shared_ptr<const v1::AudioAnalysis>>> analyses_;
  std::vector<std::pair<size_t, PacedFields>> paced_;
  v1::PacedTimeline sample_timeline_;
};

}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_RECORD_STORE_H_
