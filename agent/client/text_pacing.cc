#include "agent/client/text_pacing.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/splitmix.h"

namespace ttsbench::agent {
namespace {

using common::SplitMix64;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Bytes of the UTF-8 sequence starting with `lead` (1 for a stray continuation byte).
size_t SeqLen(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// The words of `text` (blanks before each word kept with it; trailing blanks with the last).
std::vector<absl::string_view> Words(absl::string_view text) {
  std::vector<absl::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    const size_t begin = i;
    while (i < text.size() && IsBlank(text[i])) ++i;
    while (i < text.size() && !IsBlank(text[i])) ++i;
    if (i == text.size() && !words.empty() && begin < i &&
        absl::StripAsciiWhitespace(text.substr(begin)).empty()) {
      // Only blanks left: they belong to the last word.
      words.back() = absl::string_view(words.back().data(), words.back().size() + (i - begin));
      break;
    }
    words.push_back(text.substr(begin, i - begin));
  }
  return words;
}

// The word cut into tokens of up to kCharsPerToken code points.
void Tokens(absl::string_view word, std::vector<absl::string_view>& out) {
  size_t i = 0;
  while (i < word.size()) {
    const size_t begin = i;
    for (int n = 0; n < kCharsPerToken && i < word.size(); ++n) {
      i = std::min(word.size(), i + SeqLen(static_cast<unsigned char>(word[i])));
    }
    out.push_back(word.substr(begin, i - begin));
  }
}

int TokenCount(absl::string_view word) {
  std::vector<absl::string_view> t;
  Tokens(word, t);
  return static_cast<int>(t.size());
}

bool EndsSentence(absl::string_view word) {
  absl::string_view w = absl::StripTrailingAsciiWhitespace(word);
  while (!w.empty() && (w.back() == '"' || w.back() == '\'' || w.back() == ')')) w.remove_suffix(1);
  return !w.empty() && (w.back() == '.' || w.back() == '!' || w.back() == '?');
}

}  // namespace

absl::Status ValidatePacing(const v1::TextPacing& p) {
  auto bad = [](absl::string_view key, absl::string_view rule, double v) {
    return absl::InvalidArgumentError(absl::StrCat("pacing.", key, " must be ", rule, ", got ", v));
  };
  if (!(p.tokens_per_s() >= 0 && p.tokens_per_s() <= 1e6)) {
    return bad("tokens_per_s", "in [0, 1000000]", p.tokens_per_s());
  }
  if (!(p.first_token_ms() >= 0 && p.first_token_ms() <= 3.6e6)) {
    return bad("first_token_ms", "in [0, 3600000]", p.first_token_ms());
  }
  if (!(p.jitter() >= 0 && p.jitter() < 1)) return bad("jitter", "in [0, 1)", p.jitter());
  if (!(p.end_delay_ms() >= 0 && p.end_delay_ms() <= 3.6e6)) {
    return bad("end_delay_ms", "in [0, 3600000]", p.end_delay_ms());
  }
  if (!(p.flush_timeout_ms() >= 0)) return bad("flush_timeout_ms", ">= 0", p.flush_timeout_ms());
  if (!(p.interrupt_fraction() >= 0 && p.interrupt_fraction() <= 1)) {
    return bad("interrupt_fraction", "in [0, 1]", p.interrupt_fraction());
  }
  if (!(p.interrupt_after_ms() >= 0)) {
    return bad("interrupt_after_ms", ">= 0", p.interrupt_after_ms());
  }
  if (!(p.interrupt_at_s() >= 0)) return bad("interrupt_at_s", ">= 0", p.interrupt_at_s());
  if (!(p.silence_limit_ms() >= 0)) return bad("silence_limit_ms", ">= 0", p.silence_limit_ms());
  if (!p.unit().empty() && std::find(std::begin(kPacingUnits), std::end(kPacingUnits), p.unit()) ==
                               std::end(kPacingUnits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pacing.unit must be token, word or sentence, got '", p.unit(), "'"));
  }
  const bool barge_in = p.interrupt_fraction() > 0 || p.interrupt_at_s() > 0;
  if (barge_in && !PacingEnabled(p)) {
    // Barge-in interrupts a paced answer: without pacing there is nothing to interrupt.
    return absl::InvalidArgumentError(absl::StrCat(
        p.interrupt_fraction() > 0 ? "pacing.interrupt_fraction" : "pacing.interrupt_at_s",
        " is barge-in, which needs paced text: set pacing.tokens_per_s > 0 "
        "(--pace-tokens-per-s)"));
  }
  if ((p.flush() || p.first_token_ms() > 0) && !PacingEnabled(p)) {
    return absl::InvalidArgumentError("pacing needs tokens_per_s > 0");
  }
  return absl::OkStatus();
}

std::vector<TextPiece> SplitText(absl::string_view text, absl::string_view unit) {
  std::vector<TextPiece> pieces;
  const std::vector<absl::string_view> words = Words(text);
  if (unit == "word") {
    for (absl::string_view w : words) pieces.push_back({std::string(w), TokenCount(w)});
  } else if (unit == "sentence") {
    TextPiece cur;
    for (absl::string_view w : words) {
      cur.text.append(w.data(), w.size());
      cur.tokens += TokenCount(w);
      if (EndsSentence(w)) {
        pieces.push_back(std::move(cur));
        cur = TextPiece{};
      }
    }
    if (!cur.text.empty()) pieces.push_back(std::move(cur));
  } else {
    std::vector<absl::string_view> tokens;
    for (absl::string_view w : words) Tokens(w, tokens);
    for (absl::string_view t : tokens) pieces.push_back({std::string(t), 1});
  }
  if (pieces.empty()) pieces.push_back({std::string(text), 1});
  return pieces;
}

uint64_t PacingSeed(uint64_t level_seed, uint32_t agent_index, uint64_t request_id) {
  uint64_t s = level_seed ^ 0x5DEECE66DULL;
  uint64_t a = SplitMix64(s) ^ (uint64_t{agent_index} << 32);
  a ^= SplitMix64(a) + request_id;
  return SplitMix64(a);
}

PaceSchedule::PaceSchedule(const v1::TextPacing& p, uint64_t seed)
    : state_(seed),
      first_ns_(p.first_token_ms() * 1e6),
      interval_ns_(p.tokens_per_s() > 0 ? 1e9 / p.tokens_per_s() : 0),
      jitter_(p.jitter()),
      end_delay_ns_(p.end_delay_ms() * 1e6) {}

double PaceSchedule::NextUnit() { return common::SplitMixUnit(state_); }

int64_t PaceSchedule::NextPieceDueNs(int tokens) {
  for (int k = 0; k < std::max(1, tokens); ++k) {
    if (!started_) {
      started_ = true;
      token_ns_ = first_ns_;
      continue;
    }
    const double u = NextUnit() * 2 - 1;
    token_ns_ += interval_ns_ * (1 + jitter_ * u);
  }
  return std::llround(token_ns_);
}

int64_t PaceSchedule::EndDueNs() const { return std::llround(token_ns_ + end_delay_ns_); }

bool ShouldInterrupt(const v1::TextPacing& p, uint64_t seed, double seconds_into_level) {
  if (p.interrupt_at_s() > 0) return seconds_into_level >= p.interrupt_at_s();
  if (p.interrupt_fraction() <= 0) return false;
  uint64_t s = seed ^ 0xB5AD4ECEDA1CE2A9ULL;
  return common::SplitMixUnit(s) < p.interrupt_fraction();
}

absl::StatusOr<std::vector<PreparedRequest>> PrepareTexts(
    const Dialect& dialect, const google::protobuf::RepeatedPtrField<std::string>& texts,
    const v1::TextPacing& pacing) {
  std::vector<PreparedRequest> out;
  const bool paced = PacingEnabled(pacing);
  if (paced) {
    if (absl::Status st = ValidatePacing(pacing); !st.ok()) return st;
    if (dialect.transport().kind != TransportSpec::Kind::kWebSocket) {
      return absl::InvalidArgumentError(
          "pacing needs a WebSocket API that takes text over time (elevenlabs with "
          "stream_format ws, cartesia, deepgram, vllm-omni)");
    }
  }
  for (const std::string& text : texts) {
    if (!paced) {
      auto req = dialect.Prepare(text);
      if (!req.ok()) return req.status();
      out.push_back(std::move(*req));
      continue;
    }
    const std::vector<TextPiece> pieces = SplitText(text, pacing.unit());
    std::vector<std::string> strings;
    strings.reserve(pieces.size());
    for (const TextPiece& p : pieces) strings.push_back(p.text);
    auto req = dialect.PreparePaced(text, strings, pacing.flush());
    if (!req.ok()) return req.status();
    if (req->pieces.size() == pieces.size()) {
      for (size_t i = 0; i < pieces.size(); ++i) req->pieces[i].tokens = pieces[i].tokens;
    }
    out.push_back(std::move(*req));
  }
  return out;
}

}  // namespace ttsbench::agent
