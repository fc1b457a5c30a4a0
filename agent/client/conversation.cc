#include "agent/client/conversation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ttsbench::agent {

namespace {

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

absl::Status ValidateConversation(const v1::Conversation& c) {
  auto bad = [](const char* key, const char* rule, double v) {
    return absl::InvalidArgumentError(
        absl::StrCat("conversation.", key, " must be ", rule, ", got ", v));
  };
  if (c.turns() < 0 || c.turns() > 100000) return bad("turns", "in [0, 100000]", c.turns());
  if (!(c.think_time_ms() >= 0 && c.think_time_ms() <= 3.6e6)) {
    return bad("think_time_ms", "in [0, 3600000]", c.think_time_ms());
  }
  if (!(c.think_jitter() >= 0 && c.think_jitter() < 1)) {
    return bad("think_jitter", "in [0, 1)", c.think_jitter());
  }
  if ((c.think_time_ms() > 0 || c.think_jitter() > 0) && !ConversationEnabled(c)) {
    return bad("turns", ">= 2 with a think time", c.turns());
  }
  return absl::OkStatus();
}

uint64_t ConversationId(uint32_t agent_index, uint64_t user, uint64_t sequence) {
  // 16 bits of agent, 24 of user, 24 of sequence: unique for any level this tool runs.
  return (uint64_t{agent_index + 1} << 48) | ((user & 0xFFFFFF) << 24) |
         ((sequence + 1) & 0xFFFFFF);
}

int64_t ThinkTimeNs(const v1::Conversation& c, uint64_t level_seed, uint64_t id, int turn) {
  if (c.think_time_ms() <= 0) return 0;
  uint64_t s = level_seed ^ 0xC2B2AE3D27D4EB4FULL;
  s = SplitMix(s) ^ id;
  s = SplitMix(s) + static_cast<uint64_t>(turn);
  const double u = static_cast<double>(SplitMix(s) >> 11) * 0x1.0p-53 * 2 - 1;
  return static_cast<int64_t>(std::max(0.0, c.think_time_ms() * (1 + c.think_jitter() * u)) * 1e6);
}

}  // namespace ttsbench::agent
