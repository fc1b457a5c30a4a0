#include "coordinator/run/self_checks.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/audio_analysis.h"
#include "common/metrics.h"
#include "common/stats.h"

namespace ttsbench::coordinator {
namespace {

// p99 of how late sends began against their schedule, in ms: the generator's own lag. Connection
// set-up (TCP, TLS, WebSocket handshake) is the server's and the network's time, recorded as
// connect time, so it is taken out: with a new TLS connection per request it once made nearly
// every request look late.
double SendLagP99Ms(const LevelData& level) {
  std::vector<double> lags;
  level.records.ForEach([&](const common::RecordStore::Chunk& c, size_t i) {
    if (c.warmup(i) || !c.succeeded(i) || c.intended_ns[i] <= 0 || c.start_ns[i] <= 0) return;
    lags.push_back(static_cast<double>(c.start_ns[i] - c.connect_ns[i] - c.intended_ns[i]) / 1e6);
  });
  if (lags.empty()) return 0;
  std::sort(lags.begin(), lags.end());
  return common::PercentileSorted(lags, 0.99);
}

// Decoding on the agents takes CPU from the load generator: above this share of one core per
// agent, the checks change what is measured (Opus at concurrency 8 once halved ASPS).
constexpr double kDecodeCpuShareWarn = 0.2;

// The audio checks' decode CPU (AudioAnalysis.decode_cpu_us) of the busiest agent as a share of
// the level's wall time; a warning naming the format and its cost when it is significant.
std::string DecodeCpuWarning(const LevelData& level, const v1::Plan& plan, double t_wall_s) {
  if (t_wall_s <= 0) return "";
  std::map<uint32_t, double> cpu_us;  // per agent
  double total_us = 0, audio_s = 0;
  size_t at = 0;
  level.records.ForEach([&](const common::RecordStore::Chunk& c, size_t i) {
    const size_t index = at++;
    if ((c.flags[i] & common::RecordStore::Chunk::kAnalysed) == 0 || c.warmup(i)) return;
    const v1::AudioAnalysis& a = *level.records.analysis(index);
    cpu_us[c.agent[i]] += a.decode_cpu_us();
    total_us += a.decode_cpu_us();
    audio_s += a.decoded_s();
  });
  double busiest_us = 0;
  for (const auto& [agent, us] : cpu_us) busiest_us = std::max(busiest_us, us);
  const double share = busiest_us / 1e6 / t_wall_s;
  if (share <= kDecodeCpuShareWarn) return "";
  const std::string format =
      plan.target().format().empty() ? "the answers'" : plan.target().format();
  return absl::StrFormat(
      "audio checks: decoding %s kept %.2f cores busy on the busiest agent (%.1f ms CPU per "
      "audio-second, %.1f s in all): the checks compete with the load and may lower ASPS and "
      "raise TTFA; analyse fewer answers with --audio-sample N",
      format, share, audio_s > 0 ? total_us / 1e3 / audio_s : 0, total_us / 1e6);
}

}  // namespace

v1::LevelStats BuildLevelStats(const LevelData& level, const v1::Plan& plan,
                               const std::vector<common::Slo>& slos, const CheckBounds& bounds,
                               std::vector<std::string>* warnings) {
  const v1::Load& load = plan.load();
  common::LevelOptions options;
  options.slos = slos;
  options.stall_threshold_ms = load.stall_threshold_ms() > 0 ? load.stall_threshold_ms() : 100;
  options.gaps_us = &level.gaps_us;
  v1::LevelStats st = common::ComputeLevelStats(level.concurrency, level.records, options);
  st.set_rate(level.rate);
  st.set_series(level.series);
  st.set_start_skew_ms(level.start_skew_ms);
  st.set_dropped(static_cast<uint32_t>(level.dropped));
  st.set_late(static_cast<uint32_t>(level.late));
  st.set_max_agent_cpu_pct(level.max_agent_cpu_pct);
  st.set_degraded(level.degraded());
  for (const common::Slo& slo : slos) *st.add_slo() = common::EvaluateSlo(slo, st);

  const std::string name =
      absl::StrCat(level.series.empty() ? "" : level.series + " ", LevelName(level));
  auto warn = [&](const std::string& what) { warnings->push_back(absl::StrCat(name, ": ", what)); };
  if (!level.lost_agents.empty()) {
    warn(absl::StrCat("degraded: agent(s) ", absl::StrJoin(level.lost_agents, ", "),
                      " lost; the level finished on the others"));
  }
  if (!level.lapsed_agents.empty()) {
    warn(absl::StrCat("degraded: agent(s) ", absl::StrJoin(level.lapsed_agents, ", "),
                      " stopped early when their lease lapsed; their share is incomplete"));
  }
  if (st.attempted() == 0) {
    warn("no measured requests");
    return st;
  }
  // Barge-in asked for, yet no measured request interrupted: the level measured no
  // time-to-silence, which an empty column would not say.
  const v1::TextPacing& pacing = plan.pacing();
  if (pacing.interrupt_fraction() > 0 || pacing.interrupt_at_s() > 0) {
    using Store = common::RecordStore;
    uint32_t interrupted = 0;
    for (const auto& [index, p] : level.records.paced()) {
      if (p.interrupt_ns == 0) continue;
      const Store::Chunk& c = level.records.chunk(index >> Store::kChunkBits);
      if (!c.warmup(index & (Store::kChunkRecords - 1))) ++interrupted;
    }
    if (interrupted == 0) {
      warn(absl::StrFormat(
          "barge-in: 0 of %u requests interrupted: every answer ended within "
          "interrupt_after_ms (%.0f ms) of its first audio%s, or failed before any audio",
          st.attempted(), pacing.interrupt_after_ms(),
          pacing.interrupt_at_s() > 0
              ? absl::StrFormat(" or started before interrupt_at_s (%.1f s) into the level",
                                pacing.interrupt_at_s())
              : std::string()));
    }
  }
  if (st.errors().contains("connect") && st.errors().at("connect") == st.attempted()) {
    warn("every request failed to connect to the target");
  }
  if (level.rate > 0) {
    if (const double lag = SendLagP99Ms(level); lag > bounds.sched_lag_p99_ms) {
      warn(absl::StrFormat(
          "scheduling lag p99 %.1f ms (connection set-up excluded): requests left later than "
          "planned; the generator (or its connection cap), not the server, may have set the pace",
          lag));
    }
  }
  if (level.max_agent_cpu_pct > bounds.agent_cpu_pct) {
    warn(absl::StrFormat(
        "agent CPU reached %.0f%% of a load host's cores (its agents together): the generator "
        "may have limited the result",
        level.max_agent_cpu_pct));
  }
  if (level.rate > 0) {
    if (level.dropped > 0) {
      warn(absl::StrCat(level.dropped, " arrivals dropped at the in-flight cap (",
                        load.max_inflight(), ")"));
    }
    // Random arrivals wander: allow three standard deviations of a Poisson count as well.
    const double tolerance =
        std::max(bounds.rate_tolerance, 3 / std::sqrt(static_cast<double>(st.attempted())));
    if (std::abs(st.achieved_rate() - level.rate) > tolerance * level.rate) {
      warn(absl::StrFormat("achieved %.2f requests/s of the %.2f/s planned", st.achieved_rate(),
                           level.rate));
    }
  } else if (level.concurrency > 0) {
    const double per_user = static_cast<double>(st.attempted()) / level.concurrency;
    if (per_user < bounds.min_requests_per_user) {
      warn(absl::StrFormat(
          "%.1f requests per user: the level never reached steady state (raise --iterations)",
          per_user));
    } else if (load.think_time_s() == 0 && plan.conversation().think_time_ms() == 0 &&
               st.successful() > 0) {
      // (A conversation's think time between turns idles its user as the load's does.)
      // With no success the requests fail fast and the gaps between them are the error
      // handling's, which the failure breakdown already explains; judging them as the
      // generator's idleness would send the user looking in the wrong place.
      // Little's law: users in flight = throughput x time in system. Measured over the window
      // in which every user is busy (first start to last start, before the count runs out),
      // each closed-loop user is always in a request, so the average must match concurrency.
      using Chunk = common::RecordStore::Chunk;
      int64_t wa = INT64_MAX, wb = INT64_MIN;
      level.records.ForEach([&](const Chunk& c, size_t i) {
        if (c.warmup(i)) return;
        wa = std::min(wa, c.start_ns[i]);
        wb = std::max(wb, c.start_ns[i]);
      });
      double busy = 0;
      level.records.ForEach([&](const Chunk& c, size_t i) {
        if (c.warmup(i)) return;
        const int64_t from = std::max(wa, c.intended_ns[i] > 0 ? c.intended_ns[i] : c.start_ns[i]);
        const int64_t to = std::min(wb, c.end_ns[i]);
        if (to > from) busy += static_cast<double>(to - from);
      });
      const double in_flight = wb > wa ? busy / static_cast<double>(wb - wa) : 0;
      if (wb - wa > 0 && std::abs(in_flight - level.concurrency) >
                             bounds.littles_law_tolerance * level.concurrency) {
        warn(absl::StrFormat(
            "Little's law: %.2f requests in flight on average for %d users while all were "
            "active; the generator did not keep its users busy",
            in_flight, level.concurrency));
      }
    }
  }
  // Audio checks (issue 14): silence the first audio byte hides, and audio not decoded here.
  if (plan.audio_checks().enabled() && st.audio_analysed() > 0) {
    const double warn_ms = common::WithAudioCheckDefaults(plan.audio_checks()).audible_warn_ms();
    const double late = st.ttfa_audible_ms().p50() - st.ttfa_ms().p50();
    if (st.ttfa_audible_ms().count() > 0 && late > warn_ms) {
      warn(absl::StrFormat(
          "TTFA-audible p50 %.1f ms is %.1f ms after TTFA p50 %.1f ms (over %.0f ms): the "
          "answers start with silence (leading silence p50 %.1f ms)",
          st.ttfa_audible_ms().p50(), late, st.ttfa_ms().p50(), warn_ms,
          st.leading_silence_ms().p50()));
    }
    if (st.audio_not_decoded() > 0) {
      std::string why;
      common::AddAudioCheckStats(level.records, &st, &why);
      warn(absl::StrCat(st.audio_not_decoded(), " of ", st.audio_analysed(),
                        " analysed answers could not be decoded here (", why,
                        "): they still count, but without TTFA-audible or audio checks"));
    }
    // Decoded, yet not one audible sample: the threshold, not the audio, is likely wrong.
    if (st.audio_analysed() > st.audio_not_decoded() && st.ttfa_audible_ms().count() == 0) {
      warn(absl::StrFormat(
          "no analysed answer had an audible sample (above %g dBFS): TTFA-audible not measured, "
          "and every answer counts as leading silence; check --audible-threshold-dbfs",
          common::WithAudioCheckDefaults(plan.audio_checks()).audible_threshold_dbfs()));
    }
    if (const std::string decode = DecodeCpuWarning(level, plan, st.t_wall_s()); !decode.empty()) {
      warn(decode);
    }
  }
  // In capacity mode failing probes are the search's evidence, not a problem to warn about.
  if (plan.mode() != "capacity") {
    for (const v1::SloResult& r : st.slo()) {
      if (!r.pass()) warn(absl::StrFormat("SLO %s failed (%.4g)", r.slo(), r.value()));
    }
  }
  return st;
}

}  // namespace ttsbench::coordinator
