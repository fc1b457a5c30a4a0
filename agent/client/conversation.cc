#include "agent/client/conversation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/splitmix.h"

namespace ttsbench::agent {

namespace {

using common::SplitMix64;

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
  s = SplitMix64(s) ^ id;
  s = SplitMix64(s) + static_cast<uint64_t>(turn);
  const double u = common::SplitMixUnit(s) * 2 - 1;
  return static_cast<int64_t>(std::max(0.0, c.think_time_ms() * (1 + c.think_jitter() * u)) * 1e6);
}

}  // namespace ttsbench::agent
