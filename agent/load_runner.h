// Runs one agent's shard of a level: closed-loop virtual users (or open-loop arrivals) on Asio
// coroutines, one io_context per worker thread, a record per request. Each user's connection is
// the dialect's transport (HTTP/1.1 or WebSocket, over TCP or TLS), kept alive where it can be.
#ifndef TTSBENCH_AGENT_LOAD_RUNNER_H_
#define TTSBENCH_AGENT_LOAD_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/client/dialect.h"
#include "common/url.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent {

// Receives finished records in batches (about every 100 ms per worker thread). Called from
// worker threads; implementations synchronise.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void Push(std::vector<v1::RequestRecord>&& records) = 0;
};

// Maps this agent's steady clock to the coordinator's timeline:
// timeline = local - offset - epoch, where local = coordinator + offset.
struct TimelineMap {
  int64_t epoch_ns = 0;
  int64_t offset_ns = 0;
  int64_t ToTimeline(int64_t local_ns) const {
    return local_ns == 0 ? 0 : local_ns - offset_ns - epoch_ns;
  }
  int64_t ToLocal(int64_t timeline_ns) const { return timeline_ns + epoch_ns + offset_ns; }
};

struct ShardConfig {
  common::Url url;
  bool open_loop = false;
  int concurrency = 0;  // closed loop: virtual users
  double rate = 0;      // open loop: this agent's share of the arrival rate (requests/s)
  // Open loop: the level's one arrival schedule has rate level_rate (0: `rate`, a schedule of
  // this agent's own); this agent sends the arrivals whose share point (a Weyl sequence in
  // [0, 1)) falls in [share_begin, share_end), split evenly over its threads. With a level
  // schedule, iterations and warmup count the level's arrivals, not this agent's.
  double level_rate = 0;
  double share_begin = 0;
  double share_end = 1;
  std::string arrival = "poisson";
  double burstiness = 1;
  int max_inflight = 0;     // open loop, across all worker threads: 0 = unbounded
  int64_t iterations = 0;   // measured requests (0 with duration_s: unbounded by count)
  int64_t warmup = 0;       // warm-up requests
  double duration_s = 0;    // measured phase bound by time
  double warmup_s = 0;      // warm-up bound by time
  double ramp_up_s = 0;     // closed loop: user i starts at i/concurrency of this
  double think_time_s = 0;  // closed loop: pause between a user's requests
  bool keepalive = true;    // false: a new connection per request
  // Explicit bound on the measured phase (level_time_limit_s; 0: derived). Every bound of both
  // phases comes from common::DeriveLevelDeadlines, the model the coordinator uses too.
  double time_limit_s = 0;
  double timeout_s = 30;
  bool streamed = false;
  int threads = 1;
  uint64_t seed = 0;
  uint32_t agent_index = 0;
  std::vector<PreparedRequest> requests;  // one per text; request n uses a seeded pick
  // Plan audio_checks: when enabled, the measured requests numbered below sample_per_level
  // (all of them when 0) get their audio analysed (RequestRecord.analysis).
  v1::AudioChecks audio_checks;
  // The ASR check (Assign.asr_sample): the first this many successful measured requests of the
  // level keep their audio in the record (asr_audio); 0: off.
  int asr_sample = 0;
  v1::TextPacing pacing;  // paced text (issue 13): on when tokens_per_s > 0
  // Conversations (issue 13, closed loop): each virtual user keeps one connection for
  // conversation.turns requests, think_time_ms between them; on when turns >= 2.
  v1::Conversation conversation;
};

// What a phase counted besides its records.
struct PhaseCounters {
  uint64_t dropped = 0;   // open loop: arrivals not sent because max_inflight was reached
  uint64_t late = 0;      // open loop: send decided more than 1 ms after it was due
  v1::Histogram gaps_us;  // inter-chunk gaps of measured streamed requests
};

class LoadRunner {
 public:
  LoadRunner(ShardConfig config, const Dialect& dialect, RecordSink& sink, TimelineMap timeline);
  ~LoadRunner();
  LoadRunner(const LoadRunner&) = delete;
  LoadRunner& operator=(const LoadRunner&) = delete;

  // Opens one connection per virtual user and runs the warm-up requests (records marked
  // warmup). Blocks. Returns the number of connections open afterwards.
  int Warmup();

  // Runs the measured requests from `start_local_ns` (this agent's steady clock) until all are
  // done, Stop() is called, or the lease lapses. Blocks.
  PhaseCounters Run(int64_t start_local_ns);

  // The lease (local steady clock): no request starts after it, and in-flight ones are cancelled.
  void ExtendLease(int64_t until_local_ns);
  // Whether load stopped because the lease lapsed (it never resumes).
  bool lease_lapsed() const;

  // Thread-safe: stops new requests and cancels in-flight ones.
  void Stop();

  uint64_t records() const;

 private:
  struct Worker;
  struct VirtualUser;
  struct Phase;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_LOAD_RUNNER_H_
