// What every synthetic-server test starts from: fast latency settings and a started server.
#ifndef TTSBENCH_TESTS_SYNTH_SYNTH_HARNESS_H_
#define TTSBENCH_TESTS_SYNTH_SYNTH_HARNESS_H_

#include <gtest/gtest.h>

#include <memory>

#include "synth/synth_server.h"

namespace ttsbench::synth {

// Fast enough that functional tests take milliseconds.
inline SynthOptions FastOptions() {
  SynthOptions o;
  o.model.base_ms = 2;
  o.model.per_char_ms = 0.1;
  o.model.first_chunk_ms = 2;
  o.model.audio_s_per_char = 0.05;
  o.model.chunk_ms = 100;
  return o;
}

// The started server, or null after a test failure naming why.
inline std::unique_ptr<SynthServer> StartOrDie(const SynthOptions& options) {
  auto server = SynthServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

}  // namespace ttsbench::synth

#endif  // TTSBENCH_TESTS_SYNTH_SYNTH_HARNESS_H_
