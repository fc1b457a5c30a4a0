// Conversations (plan `conversation`, issue 13): a virtual user keeps one connection for N turns
// with think time between them, as a voice agent does. The pure parts: validation, ids and the
// seeded think times (the load runner drives the turns).
#ifndef TTSBENCH_AGENT_CLIENT_CONVERSATION_H_
#define TTSBENCH_AGENT_CLIENT_CONVERSATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent {

// Whether the plan asks for conversations (turns >= 2; one turn is a plain request).
inline bool ConversationEnabled(const v1::Conversation& c) { return c.turns() >= 2; }

// InvalidArgument naming the key ("conversation.turns must be ...").
absl::Status ValidateConversation(const v1::Conversation& c);

// A conversation's id, unique among the records of a level: the agent, the virtual user and
// the user's count of conversations (never 0).
uint64_t ConversationId(uint32_t agent_index, uint64_t user, uint64_t sequence);

// The think time before turn `turn` (>= 1) of conversation `id`, in ns: think_time_ms stretched
// by 1 + think_jitter*u, u uniform in [-1, 1] drawn from (level seed, id, turn).
int64_t ThinkTimeNs(const v1::Conversation& c, uint64_t level_seed, uint64_t id, int turn);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_CLIENT_CONVERSATION_H_
