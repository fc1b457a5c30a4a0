#include "common/record_store.h"

#include <random>
#include <string>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace ttsbench::common {
namespace {

v1::RequestRecord Random(std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> t(0, int64_t{1} << 50);
  std::uniform_real_distribution<double> d(0, 1e4);
  v1::RequestRecord r;
  r.set_request_id(rng());
  r.set_warmup(rng() % 2);
  r.set_intended_ns(t(rng));
  r.set_start_ns(t(rng));
  r.set_first_byte_ns(t(rng));
  r.set_first_audio_ns(t(rng));
  r.set_end_ns(t(rng));
  r.set_connect_ns(t(rng));
  r.set_chars(static_cast<int32_t>(rng() % 100000));
  r.set_bytes(t(rng));
  r.set_audio_s(d(rng));
  r.set_sample_rate(static_cast<int32_t>(rng() % 400000));
  r.set_chunks(static_cast<int32_t>(rng() % 100000));
  r.set_max_gap_ms(d(rng));
  r.set_underrun_ms(d(rng));
  r.set_http_status(static_cast<int32_t>(100 + rng() % 900));
  r.set_error(static_cast<v1::ErrorKind>(rng() % 13));
  r.set_streamed(rng() % 2);
  r.set_worst_stall_ms(d(rng));
  // Failures say why; a few distinct texts, as real failures repeat.
  if (r.error() != v1::ERROR_NONE) r.set_error_detail("detail " + std::to_string(rng() % 7));
  // A third are conversation turns (issue 13), kept beside the columns.
  if (rng() % 3 == 0) {
    r.set_conversation_id(rng() | 1);
    r.set_turn(static_cast<int32_t>(rng() % 10));
    if (rng() % 2) r.set_conversation_setup_ns(t(rng));
    r.set_reconnect(rng() % 2);
  }
  return r;
}

TEST(RecordStoreTest, KeepsEveryFieldAcrossChunks) {
  std::mt19937_64 rng(1);
  std::vector<v1::RequestRecord> in;
  RecordStore store;
  const size_t n = RecordStore::kChunkRecords * 2 + 17;
  for (size_t i = 0; i < n; ++i) {
    in.push_back(Random(rng));
    store.Append(in.back(), static_cast<uint32_t>(i % 5));
  }
  ASSERT_EQ(store.size(), n);
  EXPECT_EQ(store.chunk_count(), 3u);
  EXPECT_EQ(store.ChunkSize(2), 17u);
  for (size_t i = 0; i < n; ++i) {
    const Record r = store[i];
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(ToProto(r), in[i]))
        << i << "\n"
        << ToProto(r).DebugString() << "\n"
        << in[i].DebugString();
    ASSERT_EQ(r.agent, i % 5);
  }
  size_t i = 0;
  store.ForEach([&](const RecordStore::Chunk& c, size_t k) {
    ASSERT_EQ(c.start_ns[k], in[i].start_ns());
    ASSERT_EQ(c.warmup(k), in[i].warmup());
    ++i;
  });
  EXPECT_EQ(i, n);
}

TEST(RecordStoreTest, IteratesRecordsInOrderAndAppendsPlainRecords) {
  std::mt19937_64 rng(2);
  RecordStore a;
  for (int i = 0; i < 100; ++i) a.Append(Random(rng), 3);
  RecordStore b;
  for (const Record& r : a) b.Append(r);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(ToProto(a[i]), ToProto(b[i])));
    EXPECT_EQ(b[i].agent, 3u);
  }
}

TEST(RecordStoreTest, CopiesAreDeepAndGrowthNeverMovesRecords) {
  RecordStore a;
  a.Reserve(10);
  EXPECT_EQ(a.MemoryBytes(), sizeof(RecordStore::Chunk));
  EXPECT_TRUE(a.empty());
  v1::RequestRecord r;
  r.set_request_id(1);
  a.Append(r, 0);
  RecordStore b = a;
  r.set_request_id(2);
  b.Append(r, 0);
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].request_id, 1u);
  const RecordStore::Chunk* first = &b.chunk(0);
  for (size_t i = 0; i < RecordStore::kChunkRecords * 3; ++i) b.Append(r, 0);
  EXPECT_EQ(&b.chunk(0), first);
  EXPECT_EQ(b[0].request_id, 1u);
  b.Clear();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.begin(), b.end());
}

TEST(RecordStoreTest, BatchAppendEqualsOneByOneAcrossChunkEnds) {
  std::mt19937_64 rng(3);
  std::vector<Record> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back(FromProto(Random(rng), 9));
  RecordStore one, many;
  // Batches of 1000 straddle the 16384-record chunk ends at several offsets.
  for (int b = 0; b < 40; ++b) {
    many.Append(batch, static_cast<uint32_t>(b));
    for (const Record& r : batch) {
      Record copy = r;
      copy.agent = static_cast<uint32_t>(b);
      one.Append(copy);
    }
  }
  ASSERT_EQ(many.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(ToProto(many[i]), ToProto(one[i])))
        << i;
    ASSERT_EQ(many[i].agent, one[i].agent) << i;
  }
}

TEST(RecordStoreTest, ErrorDetailsAreKeptForFailuresOnlyEachTextOnce) {
  RecordStore store;
  v1::RequestRecord ok;
  ok.set_request_id(1);
  v1::RequestRecord failed;
  failed.set_error(v1::ERROR_HTTP_4XX);
  failed.set_error_detail("404 Not Found: no route");
  store.Append(ok, 0);
  for (int i = 0; i < 1000; ++i) store.Append(failed, 0);
  Record plain = FromProto(failed);
  plain.error_detail = "tls: certificate verify failed";
  plain.error = v1::ERROR_TLS;
  store.Append(plain);
  store.Append(std::vector<Record>{plain, FromProto(ok)}, 1);
  ASSERT_EQ(store.size(), 1004u);
  EXPECT_EQ(store[0].error_detail, "");
  EXPECT_EQ(store.detail(0), "");
  EXPECT_EQ(store[1].error_detail, "404 Not Found: no route");
  EXPECT_EQ(store[1000].error_detail, "404 Not Found: no route");
  EXPECT_EQ(store[1001].error_detail, "tls: certificate verify failed");
  EXPECT_EQ(store[1002].error_detail, "tls: certificate verify failed");
  EXPECT_EQ(store[1003].error_detail, "");
  EXPECT_EQ(ToProto(store[1]).error_detail(), "404 Not Found: no route");
  // Copies keep them; Clear drops them.
  RecordStore copy = store;
  EXPECT_EQ(copy[1002].error_detail, "tls: certificate verify failed");
  store.Clear();
  store.Append(ok, 0);
  store.Append(ok, 0);
  EXPECT_EQ(store.detail(1), "");
  EXPECT_EQ(copy.detail(1001), "tls: certificate verify failed");
}

TEST(RecordStoreTest, DistinctDetailsAreBounded) {
  RecordStore store;
  v1::RequestRecord failed;
  failed.set_error(v1::ERROR_READ);
  const size_t n = RecordStore::kMaxDistinctDetails + 10;
  for (size_t i = 0; i < n; ++i) {
    failed.set_error_detail("unique " + std::to_string(i));
    store.Append(failed, 0);
  }
  EXPECT_EQ(store[0].error_detail, "unique 0");
  EXPECT_EQ(store[RecordStore::kMaxDistinctDetails - 1].error_detail,
            "unique " + std::to_string(RecordStore::kMaxDistinctDetails - 1));
  // Past the bound a new text is dropped (the record and its kind are kept).
  EXPECT_EQ(store[n - 1].error_detail, "");
  EXPECT_EQ(store[n - 1].error, v1::ERROR_READ);
  // A text already held is still kept for later records.
  failed.set_error_detail("unique 3");
  store.Append(failed, 0);
  EXPECT_EQ(store[n].error_detail, "unique 3");
}

}  // namespace
}  // namespace ttsbench::common
