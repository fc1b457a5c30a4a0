#pragma once
// What the paced-text and conversation end-to-end tests share: the synthetic server's
// text-paced model made quick, the schedule they feed it, and the text they speak.

#include <string>

#include "synth/synth_server.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::agent::testing {

inline constexpr char kPacedText[] =
    "Your order has shipped, and it should arrive on Thursday before noon. Anything else?";

// The synth's `mode` (honest | buffering) text-paced model, 20 characters of look-ahead, a fast
// slot model so that the pacing, not synthesis, sets the timing.
inline synth::SynthOptions Paced(const std::string& mode) {
  synth::SynthOptions o;
  o.paced_mode = mode;
  o.lookahead_chars = 20;
  o.model.base_ms = 5;
  o.model.per_char_ms = 0.1;
  o.model.first_chunk_ms = 5;
  return o;
}

// Tokens at `tokens_per_s` after 20 ms, 20 % jitter.
inline v1::TextPacing Pacing(double tokens_per_s = 40) {
  v1::TextPacing p;
  p.set_tokens_per_s(tokens_per_s);
  p.set_first_token_ms(20);
  p.set_jitter(0.2);
  p.set_unit("token");
  return p;
}

}  // namespace ttsbench::agent::testing
