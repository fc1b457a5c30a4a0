#include "common/record_store.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace ttsbench::common {
namespace {

int16_t Narrow16(int32_t v) {
  return static_cast<int16_t>(std::clamp<int32_t>(v, std::numeric_limits<int16_t>::min(),
                                                  std::numeric_limits<int16_t>::max()));
}

// Kinds past 255 do not exist; they would print as "unknown" either way.
uint8_t Narrow8(int v) { return static_cast<uint8_t>(std::clamp(v, 0, 255)); }

}  // namespace

PacedFields PacedOf(const v1::RequestRecord& r) {
  PacedFields p;
  p.first_text_ns = r.first_text_ns();
  p.end_of_input_ns = r.end_of_input_ns();
  p.last_audio_ns = r.last_audio_ns();
  p.late_max_ns = r.pacing_late_max_ns();
  p.late_total_ns = r.pacing_late_total_ns();
  p.interrupt_ns = r.interrupt_ns();
  p.bytes_after_interrupt = r.bytes_after_interrupt();
  p.text_pieces = r.text_pieces();
  p.conversation_id = r.conversation_id();
  p.turn = r.turn();
  p.conversation_setup_ns = r.conversation_setup_ns();
  p.reconnect = r.reconnect();
  return p;
}

void SetPaced(const PacedFields& p, v1::RequestRecord& r) {
  if (!p.any()) return;
  r.set_first_text_ns(p.first_text_ns);
  r.set_end_of_input_ns(p.end_of_input_ns);
  r.set_last_audio_ns(p.last_audio_ns);
  r.set_pacing_late_max_ns(p.late_max_ns);
  r.set_pacing_late_total_ns(p.late_total_ns);
  r.set_interrupt_ns(p.interrupt_ns);
  r.set_bytes_after_interrupt(p.bytes_after_interrupt);
  r.set_text_pieces(p.text_pieces);
  r.set_conversation_id(p.conversation_id);
  r.set_turn(p.turn);
  r.set_conversation_setup_ns(p.conversation_setup_ns);
  r.set_reconnect(p.reconnect);
}

PacedFields RecordStore::paced(size_t i) const {
  auto it = std::lower_bound(
      paced_.begin(), paced_.end(), i,
      [](const std::pair<size_t, PacedFields>& d, size_t at) { return d.first < at; });
  if (it == paced_.end() || it->first != i) return {};
  return it->second;
}

Record FromProto(const v1::RequestRecord& r, uint32_t agent) {
  Record out;
  out.request_id = r.request_id();
  out.intended_ns = r.intended_ns();
  out.start_ns = r.start_ns();
  out.first_byte_ns = r.first_byte_ns();
  out.first_audio_ns = r.first_audio_ns();
  out.end_ns = r.end_ns();
  out.connect_ns = r.connect_ns();
  out.bytes = r.bytes();
  out.audio_s = r.audio_s();
  out.max_gap_ms = r.max_gap_ms();
  out.underrun_ms = r.underrun_ms();
  out.worst_stall_ms = r.worst_stall_ms();
  out.chars = r.chars();
  out.sample_rate = r.sample_rate();
  out.chunks = r.chunks();
  out.http_status = r.http_status();
  out.error = r.error();
  out.warmup = r.warmup();
  out.streamed = r.streamed();
  out.agent = agent;
  out.error_detail = r.error_detail();
  out.text_index = r.text_index();
  if (r.has_analysis()) out.analysis = std::make_shared<const v1::AudioAnalysis>(r.analysis());
  out.paced = PacedOf(r);
  if (r.has_timeline()) out.timeline = std::make_shared<const v1::PacedTimeline>(r.timeline());
  return out;
}

v1::RequestRecord ToProto(const Record& r) {
  v1::RequestRecord out;
  out.set_request_id(r.request_id);
  out.set_warmup(r.warmup);
  out.set_intended_ns(r.intended_ns);
  out.set_start_ns(r.start_ns);
  out.set_first_byte_ns(r.first_byte_ns);
  out.set_first_audio_ns(r.first_audio_ns);
  out.set_end_ns(r.end_ns);
  out.set_connect_ns(r.connect_ns);
  out.set_chars(r.chars);
  out.set_bytes(r.bytes);
  out.set_audio_s(r.audio_s);
  out.set_sample_rate(r.sample_rate);
  out.set_chunks(r.chunks);
  out.set_max_gap_ms(r.max_gap_ms);
  out.set_underrun_ms(r.underrun_ms);
  out.set_http_status(r.http_status);
  out.set_error(r.error);
  out.set_streamed(r.streamed);
  out.set_worst_stall_ms(r.worst_stall_ms);
  if (!r.error_detail.empty()) out.set_error_detail(r.error_detail);
  out.set_text_index(r.text_index);
  if (r.analysis != nullptr) *out.mutable_analysis() = *r.analysis;
  SetPaced(r.paced, out);
  if (r.timeline != nullptr) *out.mutable_timeline() = *r.timeline;
  return out;
}

RecordStore::RecordStore(const RecordStore& other) { *this = other; }

RecordStore& RecordStore::operator=(const RecordStore& other) {
  if (this == &other) return *this;
  chunks_.clear();
  for (size_t c = 0; c < other.chunk_count(); ++c) {
    chunks_.push_back(std::make_unique_for_overwrite<Chunk>());
    std::memcpy(chunks_.back().get(), other.chunks_[c].get(), sizeof(Chunk));
  }
  size_ = other.size_;
  detail_texts_ = other.detail_texts_;
  detail_ids_ = other.detail_ids_;
  details_ = other.details_;
  analyses_ = other.analyses_;
  paced_ = other.paced_;
  sample_timeline_ = other.sample_timeline_;
  return *this;
}

uint8_t RecordStore::KeepAnalysis(size_t i, std::shared_ptr<const v1::AudioAnalysis> a) {
  if (a == nullptr) return 0;
  analyses_.emplace_back(i, std::move(a));
  return Chunk::kAnalysed;
}

const std::shared_ptr<const v1::AudioAnalysis>& RecordStore::analysis(size_t i) const {
  static const std::shared_ptr<const v1::AudioAnalysis> kNone;
  auto it = std::lower_bound(analyses_.begin(), analyses_.end(), i,
                             [](const auto& a, size_t at) { return a.first < at; });
  if (it == analyses_.end() || it->first != i) return kNone;
  return it->second;
}

void RecordStore::KeepDetail(size_t i, absl::string_view detail) {
  if (detail.empty()) return;
  auto it = detail_ids_.find(std::string(detail));
  if (it == detail_ids_.end()) {
    if (detail_texts_.size() >= kMaxDistinctDetails) return;
    const auto id = static_cast<uint32_t>(detail_texts_.size());
    detail_texts_.emplace_back(detail);
    it = detail_ids_.emplace(detail_texts_.back(), id).first;
  }
  details_.emplace_back(i, it->second);
}

absl::string_view RecordStore::detail(size_t i) const {
  auto it = std::lower_bound(
      details_.begin(), details_.end(), i,
      [](const std::pair<size_t, uint32_t>& d, size_t at) { return d.first < at; });
  if (it == details_.end() || it->first != i) return "";
  return detail_texts_[it->second];
}

RecordStore::Chunk& RecordStore::Slot(size_t* i) {
  const size_t c = size_ >> kChunkBits;
  // Uninitialised on purpose: pages are touched (and counted in RSS) only as records arrive.
  if (c == chunks_.size()) chunks_.push_back(std::make_unique_for_overwrite<Chunk>());
  *i = size_ & (kChunkRecords - 1);
  ++size_;
  return *chunks_[c];
}

void RecordStore::Append(const v1::RequestRecord& r, uint32_t agent) {
  size_t i;
  Chunk& c = Slot(&i);
  c.request_id[i] = r.request_id();
  c.intended_ns[i] = r.intended_ns();
  c.start_ns[i] = r.start_ns();
  c.first_byte_ns[i] = r.first_byte_ns();
  c.first_audio_ns[i] = r.first_audio_ns();
  c.end_ns[i] = r.end_ns();
  c.connect_ns[i] = r.connect_ns();
  c.bytes[i] = r.bytes();
  c.audio_s[i] = r.audio_s();
  c.max_gap_ms[i] = r.max_gap_ms();
  c.underrun_ms[i] = r.underrun_ms();
  c.worst_stall_ms[i] = r.worst_stall_ms();
  c.chars[i] = r.chars();
  c.sample_rate[i] = r.sample_rate();
  c.chunks[i] = r.chunks();
  c.text_index[i] = r.text_index();
  c.agent[i] = agent;
  c.http_status[i] = Narrow16(r.http_status());
  c.error[i] = Narrow8(r.error());
  c.flags[i] = static_cast<uint8_t>((r.warmup() ? Chunk::kWarmup : 0) |
                                    (r.streamed() ? Chunk::kStreamed : 0));
  KeepDetail(size_ - 1, r.error_detail());
  if (r.has_analysis()) {
    c.flags[i] |= KeepAnalysis(size_ - 1, std::make_shared<const v1::AudioAnalysis>(r.analysis()));
  }
  if (const PacedFields p = PacedOf(r); p.any()) paced_.emplace_back(size_ - 1, p);
  if (r.has_timeline() && sample_timeline_.text_ns_size() == 0) sample_timeline_ = r.timeline();
}

void RecordStore::Append(const Record& r) {
  size_t i;
  Chunk& c = Slot(&i);
  c.request_id[i] = r.request_id;
  c.intended_ns[i] = r.intended_ns;
  c.start_ns[i] = r.start_ns;
  c.first_byte_ns[i] = r.first_byte_ns;
  c.first_audio_ns[i] = r.first_audio_ns;
  c.end_ns[i] = r.end_ns;
  c.connect_ns[i] = r.connect_ns;
  c.bytes[i] = r.bytes;
  c.audio_s[i] = r.audio_s;
  c.max_gap_ms[i] = r.max_gap_ms;
  c.underrun_ms[i] = r.underrun_ms;
  c.worst_stall_ms[i] = r.worst_stall_ms;
  c.chars[i] = r.chars;
  c.sample_rate[i] = r.sample_rate;
  c.chunks[i] = r.chunks;
  c.text_index[i] = r.text_index;
  c.agent[i] = r.agent;
  c.http_status[i] = Narrow16(r.http_status);
  c.error[i] = Narrow8(r.error);
  c.flags[i] =
      static_cast<uint8_t>((r.warmup ? Chunk::kWarmup : 0) | (r.streamed ? Chunk::kStreamed : 0));
  KeepDetail(size_ - 1, r.error_detail);
  c.flags[i] |= KeepAnalysis(size_ - 1, r.analysis);
  if (r.paced.any()) paced_.emplace_back(size_ - 1, r.paced);
  if (r.timeline != nullptr && sample_timeline_.text_ns_size() == 0) sample_timeline_ = *r.timeline;
}

void RecordStore::Append(std::span<const Record> rs, uint32_t agent) {
  size_t done = 0;
  while (done < rs.size()) {
    const size_t c = size_ >> kChunkBits;
    if (c == chunks_.size()) chunks_.push_back(std::make_unique_for_overwrite<Chunk>());
    Chunk& ch = *chunks_[c];
    const size_t at = size_ & (kChunkRecords - 1);
    const size_t n = std::min(rs.size() - done, kChunkRecords - at);
    const Record* in = rs.data() + done;
#define TTSBENCH_COPY_COLUMN(column, expr)    \
  for (size_t k = 0; k < n; ++k) {            \
    [[maybe_unused]] const Record& r = in[k]; \
    ch.column[at + k] = (expr);               \
  }
    TTSBENCH_COPY_COLUMN(request_id, r.request_id)
    TTSBENCH_COPY_COLUMN(intended_ns, r.intended_ns)
    TTSBENCH_COPY_COLUMN(start_ns, r.start_ns)
    TTSBENCH_COPY_COLUMN(first_byte_ns, r.first_byte_ns)
    TTSBENCH_COPY_COLUMN(first_audio_ns, r.first_audio_ns)
    TTSBENCH_COPY_COLUMN(end_ns, r.end_ns)
    TTSBENCH_COPY_COLUMN(connect_ns, r.connect_ns)
    TTSBENCH_COPY_COLUMN(bytes, r.bytes)
    TTSBENCH_COPY_COLUMN(audio_s, r.audio_s)
    TTSBENCH_COPY_COLUMN(max_gap_ms, r.max_gap_ms)
    TTSBENCH_COPY_COLUMN(underrun_ms, r.underrun_ms)
    TTSBENCH_COPY_COLUMN(worst_stall_ms, r.worst_stall_ms)
    TTSBENCH_COPY_COLUMN(chars, r.chars)
    TTSBENCH_COPY_COLUMN(sample_rate, r.sample_rate)
    TTSBENCH_COPY_COLUMN(chunks, r.chunks)
    TTSBENCH_COPY_COLUMN(text_index, r.text_index)
    TTSBENCH_COPY_COLUMN(agent, agent)
    TTSBENCH_COPY_COLUMN(http_status, Narrow16(r.http_status))
    TTSBENCH_COPY_COLUMN(error, Narrow8(r.error))
    TTSBENCH_COPY_COLUMN(flags, static_cast<uint8_t>((r.warmup ? Chunk::kWarmup : 0) |
                                                     (r.streamed ? Chunk::kStreamed : 0)))
#undef TTSBENCH_COPY_COLUMN
    for (size_t k = 0; k < n; ++k) {
      KeepDetail(size_ + k, in[k].error_detail);
      ch.flags[at + k] |= KeepAnalysis(size_ + k, in[k].analysis);
      if (in[k].paced.any()) paced_.emplace_back(size_ + k, in[k].paced);
      if (in[k].timeline != nullptr && sample_timeline_.text_ns_size() == 0) {
        sample_timeline_ = *in[k].timeline;
      }
    }
    size_ += n;
    done += n;
  }
}

void RecordStore::Reserve(size_t n) {
  const size_t want = (n + kChunkRecords - 1) >> kChunkBits;
  chunks_.reserve(want);
  while (chunks_.size() < want) chunks_.push_back(std::make_unique_for_overwrite<Chunk>());
}

void RecordStore::Clear() {
  chunks_.clear();
  size_ = 0;
  detail_texts_.clear();
  detail_ids_.clear();
  details_.clear();
  analyses_.clear();
  paced_.clear();
  sample_timeline_.Clear();
}

Record RecordStore::operator[](size_t i) const {
  const Chunk& c = *chunks_[i >> kChunkBits];
  const size_t k = i & (kChunkRecords - 1);
  Record r;
  r.request_id = c.request_id[k];
  r.intended_ns = c.intended_ns[k];
  r.start_ns = c.start_ns[k];
  r.first_byte_ns = c.first_byte_ns[k];
  r.first_audio_ns = c.first_audio_ns[k];
  r.end_ns = c.end_ns[k];
  r.connect_ns = c.connect_ns[k];
  r.bytes = c.bytes[k];
  r.audio_s = c.audio_s[k];
  r.max_gap_ms = c.max_gap_ms[k];
  r.underrun_ms = c.underrun_ms[k];
  r.worst_stall_ms = c.worst_stall_ms[k];
  r.chars = c.chars[k];
  r.sample_rate = c.sample_rate[k];
  r.chunks = c.chunks[k];
  r.http_status = c.http_status[k];
  r.error = static_cast<v1::ErrorKind>(c.error[k]);
  r.warmup = c.warmup(k);
  r.streamed = c.streamed(k);
  r.agent = c.agent[k];
  r.text_index = c.text_index[k];
  if (c.error[k] != v1::ERROR_NONE) r.error_detail = std::string(detail(i));
  if ((c.flags[k] & Chunk::kAnalysed) != 0) r.analysis = analysis(i);
  if (!paced_.empty()) r.paced = paced(i);
  return r;
}

}  // namespace ttsbench::common
