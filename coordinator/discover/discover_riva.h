// `ttsbench discover` for grpc:// and grpcs:// URLs: NVIDIA Riva's RivaSpeechSynthesis. Asks
// GetRivaSynthesisConfig for the models and voices, then sends a short text with Synthesize and
// with SynthesizeOnline through the load engine's own Riva connection (agent/client/
// riva_transport), so a probe sends exactly what `ttsbench server --api riva` would.
#ifndef TTSBENCH_COORDINATOR_DISCOVER_RIVA_H_
#define TTSBENCH_COORDINATOR_DISCOVER_RIVA_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/url.h"
#include "coordinator/discover/discover.h"

namespace ttsbench::coordinator {

// Unavailable when the channel cannot connect within the probe timeout (the words say why).
absl::StatusOr<DiscoveryResult> DiscoverRiva(const DiscoverOptions& options,
                                             const common::Url& url);

// The voices one model config names: "<voice_name>.<subvoice>" for each entry of `subvoices`
// ("Leo:Male,Sofia:Female" -> voice_name.Leo, voice_name.Sofia), else voice_name itself.
std::vector<std::string> RivaConfigVoices(const std::map<std::string, std::string>& parameters);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_DISCOVER_RIVA_H_
