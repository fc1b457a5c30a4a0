// A TTS API dialect: how to ask for speech (prepared once per text) and how to read the answer.
#ifndef TTSBENCH_AGENT_DIALECT_H_
#define TTSBENCH_AGENT_DIALECT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/audio.h"
#include "common/url.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent {

// A complete HTTP/1.1 request on the wire, built before the level starts so the hot path only
// writes bytes.
struct PreparedRequest {
  std::string wire;
  int chars = 0;
};

// Reads one response. Pieces arrive as the socket delivers them; Finish is called at end of body.
class ResponseDecoder {
 public:
  virtual ~ResponseDecoder() = default;
  virtual absl::StatusOr<common::AudioFeed> OnBody(absl::string_view piece) = 0;
  // Audio that only becomes known at the end (e.g. base64 inside JSON) is returned here.
  virtual absl::StatusOr<common::AudioFeed> Finish() = 0;
  virtual double seconds() const = 0;
  virtual int sample_rate() const = 0;
};

class Dialect {
 public:
  virtual ~Dialect() = default;
  virtual absl::StatusOr<PreparedRequest> Prepare(absl::string_view text) const = 0;
  virtual absl::StatusOr<std::unique_ptr<ResponseDecoder>> NewDecoder(
      absl::string_view content_type) const = 0;
};

// Selected by target.api: openai | torch-inference. `secret_headers` are added to every request.
absl::StatusOr<std::unique_ptr<Dialect>> MakeDialect(const v1::Target& target,
                                                     const common::Url& url,
                                                     std::vector<v1::Header> secret_headers);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_DIALECT_H_
