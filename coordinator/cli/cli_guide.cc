#include "coordinator/cli/cli_guide.h"

#include <algorithm>
#include <map>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/suggest.h"

namespace ttsbench::coordinator {
namespace {

std::vector<std::string> ModeNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  return names;
}

const CLI::App* FindSubcommand(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name() == name) return sub;
  }
  return nullptr;
}

// Every long flag of `cmd` and of the parents it falls through to, as typed ("--concurrency").
std::vector<std::string> LongFlags(const CLI::App* cmd) {
  std::vector<std::string> flags;
  for (const CLI::App* app = cmd; app != nullptr; app = app->get_parent()) {
    for (const CLI::Option* opt : app->get_options({})) {
      for (const std::string& l : opt->get_lnames()) flags.push_back("--" + l);
      for (const std::string& l : opt->get_fnames()) flags.push_back("--" + l);
    }
    if (!app->get_fallthrough()) break;
  }
  std::sort(flags.begin(), flags.end());
  flags.erase(std::unique(flags.begin(), flags.end()), flags.end());
  return flags;
}

}  // namespace

std::string ModeList(const CLI::App& app) {
  std::string out = "modes:\n";
  for (const CLI::App* sub : app.get_subcommands({})) {
    absl::StrAppend(&out, "  ", sub->get_name(),
                    std::string(15 - std::min<size_t>(14, sub->get_name().size()), ' '),
                    sub->get_description(), "\n");
  }
  absl::StrAppend(&out, "`ttsbench MODE --help` lists a mode's flags.\n");
  return out;
}

absl::Status CheckCommandLine(const CLI::App& app, const std::vector<std::string>& args) {
  if (args.empty()) return absl::InvalidArgumentError("a mode is required");
  const std::string& first = args[0];
  if (absl::StartsWith(first, "-")) return absl::OkStatus();  // --help, --version: CLI11's
  const CLI::App* cmd = FindSubcommand(app, first);
  if (cmd == nullptr) {
    const std::string near = common::NearestName(first, ModeNames(app));
    return absl::InvalidArgumentError(
        absl::StrCat("unknown mode '", first, "'",
                     near.empty() ? "" : absl::StrCat(" (did you mean '", near, "'?)")));
  }
  std::string where = first;
  // A mode of modes (`sessions`): name its modes when none is given.
  if (const std::vector<std::string> subs = ModeNames(*cmd);
      !subs.empty() && cmd->get_require_subcommand_min() > 0 &&
      std::none_of(args.begin() + 1, args.end(), [&](const std::string& a) {
        return a == "--help" || a == "-h" || std::find(subs.begin(), subs.end(), a) != subs.end();
      })) {
    return absl::InvalidArgumentError(
        absl::StrCat(first, ": say what to do: ", absl::StrJoin(subs, ", ")));
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    // A nested mode (`sessions list`) takes its own flags from there on.
    if (!absl::StartsWith(a, "-")) {
      if (const CLI::App* sub = FindSubcommand(*cmd, a); sub != nullptr) {
        cmd = sub;
        absl::StrAppend(&where, " ", a);
      }
      continue;
    }
    if (!absl::StartsWith(a, "--") || a == "--help") continue;
    const std::string name = a.substr(0, a.find('='));
    const std::vector<std::string> flags = LongFlags(cmd);
    if (std::binary_search(flags.begin(), flags.end(), name)) continue;
    const std::string near = common::NearestName(name, flags);
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown flag '", name, "'",
                     near.empty() ? absl::StrCat(" (`ttsbench ", where, " --help` lists them)")
                                  : absl::StrCat(" (did you mean '", near, "'?)")));
  }
  return absl::OkStatus();
}

std::vector<std::string> InTypedOrder(std::vector<std::string> extras,
                                      const std::vector<std::string>& args) {
  auto position = [&](const std::string& s) {
    return std::find(args.begin(), args.end(), s) - args.begin();
  };
  std::stable_sort(extras.begin(), extras.end(), [&](const std::string& a, const std::string& b) {
    return position(a) < position(b);
  });
  return extras;
}

absl::StatusOr<double> ParseDurationFlag(const std::string& flag, const std::string& text) {
  double plain = 0;
  if (absl::SimpleAtod(text, &plain)) {
    if (plain >= 0 && std::isfinite(plain)) return plain;
  } else if (absl::Duration d; absl::ParseDuration(text, &d) && d >= absl::ZeroDuration() &&
                               d != absl::InfiniteDuration()) {
    return absl::ToDoubleSeconds(d);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": '", text,
                   "' is not a duration (e.g. 30s, 250ms, 2m, 1h30m, or seconds as a number)"));
}

void GroupLoadOptions(CLI::App& cmd) {
  static const auto* kGroups =
      new std::map<std::string, std::string>{{"url", "Target"},
                                             {"api", "Target"},
                                             {"voice", "Target"},
                                             {"voices", "Target"},
                                             {"model", "Target"},
                                             {"format", "Target"},
                                             {"sample-rate", "Target"},
                                             {"path", "Target"},
                                             {"language", "Target"},
                                             {"request-template", "Target"},
                                             {"speed", "Target"},
                                             {"instructions", "Target"},
                                             {"header", "Target"},
                                             {"timeout", "Target"},
                                             {"concurrency", "Load"},
                                             {"iterations", "Load"},
                                             {"warmup", "Load"},
                                             {"rate", "Load"},
                                             {"arrival", "Load"},
                                             {"burstiness", "Load"},
                                             {"max-inflight", "Load"},
                                             {"duration", "Load"},
                                             {"warmup-duration", "Load"},
                                             {"ramp-up", "Load"},
                                             {"think-time", "Load"},
                                             {"connections", "Load"},
                                             {"level-time-limit", "Load"},
                                             {"texts", "Load"},
                                             {"text-length", "Load"},
                                             {"seed", "Load"},
                                             {"slots", "Load"},
                                             {"open-loop", "Capacity search"},
                                             {"start", "Capacity search"},
                                             {"max", "Capacity search"},
                                             {"resolution", "Capacity search"},
                                             {"replicas", "Capacity search"},
                                             {"target-streams", "Capacity search"},
                                             {"streaming", "Streaming"},
                                             {"stream-format", "Streaming"},
                                             {"stall-threshold", "Streaming"},
                                             {"pace-tokens-per-s", "Streaming"},
                                             {"pace-first-token", "Streaming"},
                                             {"pace-jitter", "Streaming"},
                                             {"pace-unit", "Streaming"},
                                             {"pace-end-delay", "Streaming"},
                                             {"pace-flush", "Streaming"},
                                             {"pace-flush-timeout", "Streaming"},
                                             {"interrupt-fraction", "Streaming"},
                                             {"interrupt-after", "Streaming"},
                                             {"interrupt-at", "Streaming"},
                                             {"silence-limit", "Streaming"},
                                             {"ws-endpoint", "Streaming"},
                                             {"turns", "Streaming"},
                                             {"turn-think", "Streaming"},
                                             {"turn-think-jitter", "Streaming"},
                                             {"max-event-bytes", "Streaming"},
                                             {"auth-token-env", "Auth and TLS"},
                                             {"auth-token-file", "Auth and TLS"},
                                             {"auth-header", "Auth and TLS"},
                                             {"auth-scheme", "Auth and TLS"},
                                             {"ca-file", "Auth and TLS"},
                                             {"insecure", "Auth and TLS"},
                                             {"slo", "Output and SLOs"},
                                             {"output-dir", "Output and SLOs"},
                                             {"session-name", "Output and SLOs"},
                                             {"jsonl", "Output and SLOs"},
                                             {"json", "Output and SLOs"},
                                             {"overwrite", "Output and SLOs"},
                                             {"metrics-addr", "Output and SLOs"},
                                             {"asr-command", "ASR check"},
                                             {"asr-sample", "ASR check"},
                                             {"asr-timeout", "ASR check"},
                                             {"print-plan", "Output and SLOs"},
                                             {"agents", "Fleet"},
                                             {"expect-agents", "Fleet"},
                                             {"listen", "Fleet"},
                                             {"agent-timeout", "Fleet"},
                                             {"audio-checks", "Audio checks"},
                                             {"audible-threshold-dbfs", "Audio checks"},
                                             {"audible-window", "Audio checks"},
                                             {"stutter", "Audio checks"},
                                             {"audio-sample", "Audio checks"},
                                             {"audible-warn", "Audio checks"},
                                             {"min-duration-ratio", "Audio checks"},
                                             {"max-duration-ratio", "Audio checks"},
                                             {"min-envelope-corr", "Audio checks"},
                                             {"max-flagged-pct", "Audio checks"},
                                             {"scrape", "Telemetry and cost"},
                                             {"scrape-interval", "Telemetry and cost"},
                                             {"scrape-timeout", "Telemetry and cost"},
                                             {"scrape-series", "Telemetry and cost"},
                                             {"cost-per-replica-hour", "Telemetry and cost"}};
  for (CLI::Option* opt : cmd.get_options({})) {
    for (const std::string& l : opt->get_lnames()) {
      if (auto it = kGroups->find(l); it != kGroups->end()) {
        // Outside capacity --replicas is the cost's (how many servers the price covers).
        const bool cost = l == "replicas" && cmd.get_name() != "capacity";
        opt->group(cost ? "Telemetry and cost" : it->second);
        break;
      }
    }
  }
}

}  // namespace ttsbench::coordinator
