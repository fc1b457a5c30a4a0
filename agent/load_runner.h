// Runs one agent's shard of a level: closed-loop virtual users on Asio coroutines, one
// keep-alive connection each, one io_context per worker thread, a record per request.
#ifndef TTSBENCH_AGENT_LOAD_RUNNER_H_
#define TTSBENCH_AGENT_LOAD_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "agent/dialect.h"
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
  int concurrency = 0;
  int64_t iterations = 0;
  int64_t warmup = 0;
  double timeout_s = 30;
  bool streamed = false;
  int threads = 1;
  uint64_t seed = 0;
  uint32_t agent_index = 0;
  std::vector<PreparedRequest> requests;  // one per text; request n uses a seeded pick
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
  void Run(int64_t start_local_ns);

  // The lease (local steady clock): no request starts after it, and in-flight ones are cancelled.
  void ExtendLease(int64_t until_local_ns);

  // Thread-safe: stops new requests and cancels in-flight ones.
  void Stop();

  uint64_t records() const;

 private:
  struct Worker;
  struct VirtualUser;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_LOAD_RUNNER_H_
