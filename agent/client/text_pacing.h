// Text that arrives like an LLM's (plan `pacing`, v1::TextPacing): a request's text cut into
// pieces (token, word or sentence) and the time each piece is due, drawn from the request's
// seed so that a run repeats exactly. Pure functions: the WebSocket transport sends the pieces,
// tests check the schedule without sockets.
#ifndef TTSBENCH_AGENT_CLIENT_TEXT_PACING_H_
#define TTSBENCH_AGENT_CLIENT_TEXT_PACING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/client/dialect.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent {

// Characters per token: what an LLM's tokenizer averages on English text (OpenAI's rule of
// thumb: a token is about 4 characters).
inline constexpr int kCharsPerToken = 4;

inline constexpr absl::string_view kPacingUnits[] = {"token", "word", "sentence"};

// One piece of a request's text as it is sent, and how many tokens it took to generate.
struct TextPiece {
  std::string text;
  int tokens = 0;
};

// Whether pacing is on (tokens_per_s > 0).
inline bool PacingEnabled(const v1::TextPacing& p) { return p.tokens_per_s() > 0; }

// InvalidArgument naming the first key out of range ("pacing.jitter must be in [0, 1), got 2").
absl::Status ValidatePacing(const v1::TextPacing& p);

// Cuts `text` into pieces whose concatenation is `text`. A word is a run of non-blanks with
// the blanks before it; a token is up to kCharsPerToken characters (code points) of a word,
// its leading blanks counted; a sentence is words up to one ending in . ! ? (or the text's
// end). Every piece counts the tokens of its words. `unit` "" means token.
std::vector<TextPiece> SplitText(absl::string_view text, absl::string_view unit);

// The request's own seed: the level's seed, the agent and the request number mixed (SplitMix64),
// so every agent draws its own requests' jitter and barge-in choice.
uint64_t PacingSeed(uint64_t level_seed, uint32_t agent_index, uint64_t request_id);

// When each piece is due, in ns after the request's start. Token k is due at first_token_ms +
// sum of k intervals, each 1/tokens_per_s * (1 + jitter*u), u uniform in [-1, 1); a piece is
// due with its last token. Computed piece by piece, so nothing is allocated per request.
class PaceSchedule {
 public:
  PaceSchedule(const v1::TextPacing& p, uint64_t seed);
  // The due time of the next piece, `tokens` tokens long (at least 1 counted).
  int64_t NextPieceDueNs(int tokens);
  // The end of input: the last piece's due time plus end_delay_ms.
  int64_t EndDueNs() const;

 private:
  double NextUnit();  // [0, 1)
  uint64_t state_;
  double first_ns_;
  double interval_ns_;
  double jitter_;
  double end_delay_ns_;
  double token_ns_ = 0;  // due time of the last token drawn
  bool started_ = false;
};

// Barge-in: whether this request is interrupted (interrupt_fraction of requests, by its seed;
// or every request started interrupt_at_s or more after the level began).
bool ShouldInterrupt(const v1::TextPacing& p, uint64_t seed, double seconds_into_level);

// Every text's request, prepared once before the level: Prepare, or with pacing on, the
// dialect's PreparePaced over SplitText's pieces (each piece's tokens kept for the schedule).
absl::StatusOr<std::vector<PreparedRequest>> PrepareTexts(
    const Dialect& dialect, const google::protobuf::RepeatedPtrField<std::string>& texts,
    const v1::TextPacing& pacing);

}  // namespace ttsbench::agent

#endif  // TTSBENCH_AGENT_CLIENT_TEXT_PACING_H_
