#include "coordinator/run/session_runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "agent/client/command_allowlist.h"
#include "agent/client/dialect.h"
#include "common/metrics.h"
#include "common/stats.h"
#include "common/status_macros.h"
#include "common/texts.h"
#include "common/url.h"
#include "common/version.h"
#include "coordinator/report/audio_quality.h"
#include "coordinator/report/html_report.h"
#include "coordinator/report/plots.h"
#include "coordinator/report/report.h"
#include "coordinator/run/agent_hub.h"
#include "coordinator/run/asr.h"
#include "coordinator/run/capacity.h"
#include "coordinator/run/live_metrics.h"
#include "coordinator/run/local_agents.h"
#include "coordinator/run/orchestrator.h"
#include "coordinator/run/preflight.h"
#include "coordinator/run/self_checks.h"
#include "coordinator/run/telemetry.h"
#include "coordinator/sessions/sessions.h"

namespace ttsbench::coordinator {
namespace {

// The live progress line: rewritten in place on a terminal, one plain line per level otherwise.
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& out, bool enabled) : out_(out), enabled_(enabled) {}
  void Level(const LevelSpec& spec) {
    if (!enabled_) return;
    ++index_;
    out_ << absl::StrCat("ttsbench: level ", index_, ": ",
                         spec.series.empty() ? "" : spec.series + " ",
                         spec.rate > 0 ? absl::StrCat("rate ", spec.rate, "/s")
                                       : absl::StrCat("concurrency ", spec.concurrency))
         << "\n";
    out_.flush();
  }

 private:
  std::ostream& out_;
  bool enabled_;
  int index_ = 0;
};

// A run that stops before its first level (target unreachable, agents not started): the session
// folder still says what happened, as session.json marked failed with the reason, so it is never
// left empty. Returns `exit_code`.
int FailBeforeRun(const std::string& dir, const v1::Plan& plan, absl::string_view reason,
                  int exit_code, std::ostream& err, v1::SessionOutcome& outcome) {
  err << "ttsbench: " << reason << "\n";
  outcome.set_error(std::string(reason));
  v1::Session& session = *outcome.mutable_session();
  session.set_schema_version(kSessionSchemaVersion);
  session.set_name(plan.session_name());
  session.set_version(common::kVersion);
  session.set_status("failed");
  *session.mutable_plan() = plan;
  session.set_mode(plan.mode());
  session.set_started_at(WallClockLabel());
  session.set_ended_at(session.started_at());
  session.add_warnings(absl::StrCat("run failed: ", reason));
  if (auto st = WriteSessionFiles(dir, session, {}); !st.ok()) {
    err << "ttsbench: " << st.message() << "\n";
  } else {
    outcome.set_session_dir(dir);
  }
  return exit_code;
}

}  // namespace

std::string DefaultSessionName(const std::string& mode) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d_%H%M%S", &tm);
  return absl::StrCat(mode, "_", buf);
}

std::string WallClockLabel() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

absl::Status WriteSessionOutputs(const std::string& dir, v1::Session& session,
                                 const std::vector<LevelData>& levels, std::ostream& err) {
  v1::Output& recorded = *session.mutable_plan()->mutable_output();
  recorded.set_plots(true);
  recorded.set_html(true);
  if (auto st = WriteSessionFiles(dir, session, levels); !st.ok()) {
    recorded.set_plots(false);
    recorded.set_html(false);
    return st;
  }
  // Pictures are a convenience: without gnuplot everything else is still written.
  std::vector<std::string> pngs;
  if (auto st = WritePlots(dir, session, levels, &pngs); !st.ok()) {
    err << "ttsbench: " << st.message() << "\n";
  }
  recorded.set_plots(!pngs.empty());
  if (auto st = WriteHtmlReport(dir, session, pngs); !st.ok()) {
    err << "ttsbench: report.html: " << st.message() << "\n";
    recorded.set_html(false);
  }
  if (recorded.plots() && recorded.html()) return absl::OkStatus();
  return WriteSessionFiles(dir, session, levels);
}

namespace {

// api: riva on a hosted endpoint: the NVCF function id, sent as gRPC metadata `function-id`.
absl::StatusOr<std::vector<v1::Header>> ResolveFunctionId(const v1::Target& target) {
  std::string id;
  if (!target.function_id_env().empty()) {
    const char* value = std::getenv(target.function_id_env().c_str());
    if (value == nullptr || *value == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("target.function_id_env: environment variable ", target.function_id_env(),
                       " is not set"));
    }
    id = value;
  } else if (!target.function_id_file().empty()) {
    std::ifstream in(target.function_id_file());
    if (!in || !std::getline(in, id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("target.function_id_file: cannot read ", target.function_id_file()));
    }
    id = std::string(absl::StripAsciiWhitespace(id));
    if (id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("target.function_id_file: ", target.function_id_file(), " is empty"));
    }
  } else {
    return std::vector<v1::Header>{};
  }
  v1::Header h;
  h.set_name("function-id");
  h.set_value(std::move(id));
  return std::vector<v1::Header>{h};
}

absl::StatusOr<std::vector<v1::Header>> ResolveToken(const v1::Target& target) {
  std::string token;
  if (!target.auth_token_env().empty()) {
    const char* value = std::getenv(target.auth_token_env().c_str());
    if (value == nullptr || *value == '\0') {
      return absl::InvalidArgumentError(absl::StrCat("target.auth_token_env: environment variable ",
                                                     target.auth_token_env(), " is not set"));
    }
    token = value;
  } else if (!target.auth_token_file().empty()) {
    std::ifstream in(target.auth_token_file());
    if (!in || !std::getline(in, token)) {
      return absl::InvalidArgumentError(
          absl::StrCat("target.auth_token_file: cannot read ", target.auth_token_file()));
    }
    token = std::string(absl::StripAsciiWhitespace(token));
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("target.auth_token_file: ", target.auth_token_file(), " is empty"));
    }
  } else {
    return std::vector<v1::Header>{};
  }
  v1::Header h;
  h.set_name(target.auth_header().empty() ? "Authorization" : target.auth_header());
  const std::string scheme = target.auth_scheme().empty() ? "Bearer" : target.auth_scheme();
  h.set_value(scheme == "none" ? token : absl::StrCat(scheme, " ", token));
  return std::vector<v1::Header>{h};
}

}  // namespace

absl::StatusOr<std::vector<v1::Header>> ResolveSecretHeaders(const v1::Target& target) {
  auto headers = ResolveToken(target);
  if (!headers.ok()) return headers.status();
  auto function_id = ResolveFunctionId(target);
  if (!function_id.ok()) return function_id.status();
  headers->insert(headers->end(), function_id->begin(), function_id->end());
  return headers;
}

void FillSession(const v1::Plan& plan, const std::vector<common::Slo>& slos,
                 const std::string& started_at, RunResult& result) {
  v1::Session& session = result.session;
  session.set_schema_version(kSessionSchemaVersion);
  session.set_name(plan.session_name());
  session.set_version(common::kVersion);
  session.set_status(result.status.ok() ? (result.degraded() ? "degraded" : "completed")
                     : absl::IsCancelled(result.status) ? "interrupted"
                                                        : "failed");
  *session.mutable_plan() = plan;
  session.set_started_at(started_at);
  session.set_ended_at(WallClockLabel());
  session.set_percentile_method(common::kPercentileMethod);
  session.set_timeline(
      "seconds on the coordinator's steady clock from session start; agent times converted "
      "with the measured clock offset");
  bool slo_passed = true;
  std::vector<std::string> warnings;
  for (const LevelData& level : result.levels) {
    v1::LevelStats stats = BuildLevelStats(level, plan, slos, CheckBounds{}, &warnings);
    ApplyCost(plan, stats);  // plan.cost: per audio-hour and per million characters
    for (const v1::SloResult& r : stats.slo()) slo_passed &= r.pass();
    *session.add_levels() = std::move(stats);
    // Paced text (issue 13): the timeline of the most loaded level's sampled request.
    if (const v1::PacedTimeline* t = level.records.sample_timeline(); t != nullptr) {
      *session.mutable_sample_timeline() = *t;
    }
  }
  ApplyAudioQuality(plan, result.levels, &session);
  for (std::string& w : warnings) session.add_warnings(std::move(w));
  session.set_slo_passed(slo_passed);
  session.set_mode(plan.mode());
  if (!result.status.ok()) {
    session.add_warnings(absl::StrCat("run failed: ", result.status.message()));
  }
}

namespace {

// The command lines local agents are allowed to run (as --allow-command entries), once the
// plan's is among them; else a one-line refusal naming the command line and the list.
absl::StatusOr<std::vector<std::string>> AllowedCommand(const v1::Target& target,
                                                        const std::vector<std::string>& allow,
                                                        const std::string& path_env) {
  auto list = agent::CommandAllowlist::Parse(allow, path_env);
  if (!list.ok()) return list.status();
  if (auto checked = list->Check(target.command().argv(), path_env); !checked.ok()) {
    const std::string line = agent::QuoteCommandWords(
        std::vector<std::string>(target.command().argv().begin(), target.command().argv().end()));
    return absl::Status(checked.status().code(),
                        absl::StrCat(checked.status().message(),
                                     " (allow it with --allow-command \"", line, "\")"));
  }
  return allow;
}

// plan asr: the recogniser's words, argv[0] resolved on PATH. Refused before any process starts
// when it does not parse, names no program, or (from a plan file) is not an --allow-command.
absl::StatusOr<std::vector<std::string>> AsrArgv(const v1::AsrCheck& asr,
                                                 const SessionRequest& request) {
  auto words = agent::SplitCommandWords(asr.command());
  if (!words.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("asr.command: ", words.status().message()));
  }
  if (!request.asr_command_typed) {
    auto list = agent::CommandAllowlist::Parse(request.allow_commands, request.path_env);
    if (!list.ok()) return list.status();
    if (auto checked = list->Check(*words, request.path_env); !checked.ok()) {
      return absl::Status(checked.status().code(),
                          absl::StrCat("asr.command: ", checked.status().message(),
                                       " (allow it with --allow-command \"",
                                       agent::QuoteCommandWords(*words), "\")"));
    }
  }
  auto program = agent::ResolveProgram((*words)[0], request.path_env);
  if (!program.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("asr.command: ", program.status().message()));
  }
  (*words)[0] = *program;
  return words;
}

// RunSession's steps: prints the console table and "Session written to" on `out`, the rest on
// `err`; fills `outcome` with the session, its folder and the reason of a failure.
int RunSessionSteps(const SessionRequest& request, std::ostream& out, std::ostream& err,
                    v1::SessionOutcome& outcome) {
  // A failure before the session folder exists: one line on stderr, kept for --json.
  auto fail = [&](int exit_code, absl::string_view reason) {
    err << "ttsbench: " << reason << "\n";
    outcome.set_error(std::string(reason));
    return exit_code;
  };
  v1::Plan plan = request.plan;
  if (plan.session_name().empty()) plan.set_session_name(DefaultSessionName(plan.mode()));
  auto secret_headers = ResolveSecretHeaders(plan.target());
  if (!secret_headers.ok()) {
    return fail(kExitUsage, secret_headers.status().message());
  }
  const bool command = plan.target().api() == "command";
  auto url =
      command ? absl::StatusOr<common::Url>(common::Url{}) : common::ParseUrl(plan.target().url());
  if (!url.ok()) {
    return fail(kExitUsage, url.status().message());
  }
  // A program the local agents may not run is refused before any process starts.
  std::vector<std::string> allowed_programs;
  if (command && plan.agents().expect() == 0) {
    auto allowed = AllowedCommand(plan.target(), request.allow_commands, request.path_env);
    if (!allowed.ok()) return fail(kExitUsage, allowed.status().message());
    allowed_programs = std::move(*allowed);
  }
  std::vector<std::string> asr_argv;  // plan asr: the recogniser, checked before the run
  if (plan.has_asr()) {
    auto argv = AsrArgv(plan.asr(), request);
    if (!argv.ok()) return fail(kExitUsage, argv.status().message());
    asr_argv = std::move(*argv);
  }
  if (auto slos = common::ParseSlos(std::vector<std::string>(plan.slo().begin(), plan.slo().end()));
      !slos.ok()) {
    return fail(kExitUsage, slos.status().message());
  }
  auto texts = plan.texts().file().empty() ? common::BuiltinTexts(plan.texts().length())
                                           : common::LoadTextsFile(plan.texts().file());
  if (!texts.ok()) {
    return fail(kExitUsage, texts.status().message());
  }
  // A taken name is never overwritten unless the plan says so: the run gets name-2 instead.
  auto claimed = ClaimSessionDir(plan.output_dir(), plan.session_name(), plan.output().overwrite());
  if (!claimed.ok()) {
    return fail(kExitUsage, claimed.status().message());
  }
  if (!claimed->notice.empty()) err << "ttsbench: " << claimed->notice << "\n";
  plan.set_session_name(claimed->name);
  const std::string dir = claimed->dir;
  if (auto st = PrepareOutputDir(dir); !st.ok()) return fail(kExitUsage, st.message());
  for (const auto& [name, content] : request.extra_files) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    if (!f.flush()) {
      return FailBeforeRun(dir, plan, absl::StrCat(path, ": cannot write"), kExitRunFailed, err,
                           outcome);
    }
  }
  const bool local = plan.agents().expect() == 0;
  if (local && !command) {
    if (auto st = CheckReachable(*url, 3.0); !st.ok()) {
      return FailBeforeRun(dir, plan, st.message(), kExitRunFailed, err, outcome);
    }
  }
  const std::string listen =
      plan.agents().listen().empty() ? "127.0.0.1:0" : plan.agents().listen();
  ServerSecurity security;
  for (const auto& [path, pem, what] :
       {std::tuple{plan.agents().tls_cert(), &security.tls_cert_pem, "agents.tls_cert"},
        std::tuple{plan.agents().tls_key(), &security.tls_key_pem, "agents.tls_key"},
        std::tuple{plan.agents().tls_ca(), &security.tls_ca_pem, "agents.tls_ca"},
        std::tuple{plan.agents().token_file(), &security.token, "agents.token_file"}}) {
    if (path.empty()) continue;
    std::ifstream in(path, std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    if (!in || content.str().empty()) {
      return FailBeforeRun(dir, plan, absl::StrCat(what, ": cannot read ", path), kExitUsage, err,
                           outcome);
    }
    *pem = content.str();
  }
  security.token = std::string(absl::StripAsciiWhitespace(security.token));
  auto server = StartCoordinatorServer(listen, security);
  if (!server.ok()) {
    return FailBeforeRun(dir, plan, server.status().message(),
                         absl::IsPermissionDenied(server.status()) ? kExitUsage : kExitRunFailed,
                         err, outcome);
  }
  std::optional<LocalAgents> agents;
  if (local) {
    auto spawned = LocalAgents::Spawn(
        plan.agents().spawn(), absl::StrCat("127.0.0.1:", (*server)->port), allowed_programs);
    if (!spawned.ok()) {
      return FailBeforeRun(dir, plan, spawned.status().message(), kExitRunFailed, err, outcome);
    }
    agents.emplace(std::move(*spawned));
  }

  RunOptions options;
  options.plan = plan;
  options.secret_headers = *secret_headers;
  options.texts = *texts;
  options.expect_agents = local ? plan.agents().spawn() : plan.agents().expect();
  options.agent_timeout_s = plan.agents().connect_timeout_s();
  options.max_clock_uncertainty_ms =
      plan.agents().max_clock_uncertainty_ms() > 0 ? plan.agents().max_clock_uncertainty_ms() : 10;
  options.continue_on_agent_loss = plan.agents().failure_policy() == "continue";
  if (plan.agents().lease_s() > 0) options.lease_s = plan.agents().lease_s();
  options.interrupted = request.interrupted;
  // A live line on a terminal (level, done/planned, requests/s, errors, elapsed and ETA) and,
  // with output.metrics_addr, the same as Prometheus gauges.
  std::unique_ptr<LiveMetrics> metrics;
  if (!plan.output().metrics_addr().empty()) {
    auto started = LiveMetrics::Start(plan.output().metrics_addr(), plan.session_name());
    if (!started.ok()) {
      return FailBeforeRun(dir, plan, started.status().message(), kExitUsage, err, outcome);
    }
    metrics = std::move(*started);
  }
  const bool live_line = request.progress && isatty(STDERR_FILENO);
  if (live_line || metrics != nullptr) {
    options.on_progress = [&err, live_line, m = metrics.get()](const LevelProgress& p) {
      if (m != nullptr) m->Update(p);
      if (!live_line) return;
      const double rps = p.elapsed_s > 0 ? static_cast<double>(p.done) / p.elapsed_s : 0;
      double eta = 0;
      if (p.planned > 0 && rps > 0) eta = static_cast<double>(p.planned - p.done) / rps;
      if (p.planned_s > 0) eta = p.planned_s - p.elapsed_s;
      err << absl::StrFormat(
                 "\r\x1b[2K%s: %d/%s done, %.1f req/s, %d errors, %.0fs elapsed, ETA %.0fs",
                 p.level, p.done, p.planned > 0 ? absl::StrCat(p.planned) : "-", rps, p.errors,
                 p.elapsed_s, std::max(0.0, eta))
          << std::flush;
    };
  }
  // Telemetry (--scrape): its own thread and io_context for the whole run, each scrape under its
  // own timeout; a target that is down or answers garbage becomes a warning, never a failure.
  std::unique_ptr<TelemetryScraper> telemetry;
  if (plan.telemetry().scrape_size() > 0) {
    auto started = TelemetryScraper::Start(plan.telemetry(), plan.target().ca_file(),
                                           plan.target().insecure());
    if (!started.ok()) {
      return FailBeforeRun(dir, plan, started.status().message(), kExitUsage, err, outcome);
    }
    telemetry = std::move(*started);
  }
  const std::string started_at = WallClockLabel();
  auto slos = common::ParseSlos(std::vector<std::string>(plan.slo().begin(), plan.slo().end()));
  // A run whose requests mostly failed measured nothing: the default success-rate floor judges
  // every mode but a capacity search, whose probes beyond capacity fail by design.
  const std::vector<common::Slo> slo_list =
      plan.mode() == "capacity"
          ? (slos.ok() ? *slos : std::vector<common::Slo>{})
          : common::WithDefaultSlos(slos.ok() ? *slos : std::vector<common::Slo>{});
  RunResult result;
  v1::CapacityResult capacity;
  {
    Orchestrator orchestrator(*(*server)->hub, options);
    absl::Status st = orchestrator.Admit();
    ProgressPrinter progress(err, request.progress);
    if (st.ok() && plan.mode() == "capacity") {
      // Each probe is one level; it passes when every SLO holds there.
      const bool open = plan.load().model() == "open";
      auto searched = SearchCapacity(
          plan.capacity(), !open, [&](double load) -> absl::StatusOr<v1::CapacityProbeResult> {
            LevelSpec spec;
            spec.series = "capacity";
            if (open) {
              spec.rate = load;
            } else {
              spec.concurrency = static_cast<int>(load);
            }
            spec.iterations =
                ProbeRequests(plan.capacity(), slo_list, load, !open, plan.load().iterations());
            progress.Level(spec);
            RETURN_IF_ERROR(orchestrator.RunLevel(spec));
            const LevelData& level = orchestrator.levels().back();
            std::vector<std::string> ignored;
            const v1::LevelStats stats =
                BuildLevelStats(level, plan, slo_list, CheckBounds{}, &ignored);
            return JudgeProbe(load, spec.iterations, stats, level.records, slo_list);
          });
      if (searched.ok()) {
        capacity = *searched;
      } else {
        st = searched.status();
      }
    } else {
      for (const LevelSpec& spec : PlanLevels(plan)) {
        if (!st.ok()) break;
        progress.Level(spec);
        st = orchestrator.RunLevel(spec);
      }
    }
    result = orchestrator.Finish(std::move(st));
  }
  if (live_line) err << "\r\x1b[2K" << std::flush;

  FillSession(plan, slo_list, started_at, result);
  v1::Session& session = result.session;
  if (plan.mode() == "capacity") {
    // Probes beyond capacity fail by design: the verdict is whether any load met the SLOs.
    session.set_slo_passed(capacity.found() > 0);
    *session.mutable_capacity() = capacity;
    ApplyCapacityCost(plan, session, *session.mutable_capacity());
  }
  if (telemetry != nullptr) {
    if (auto st = AddTelemetry(*telemetry, plan.telemetry(), result.levels, result.epoch_ns, dir,
                               session);
        !st.ok()) {
      err << "ttsbench: " << st.message() << "\n";
    }
  }
  // The ASR check (plan asr) after the load, so the recogniser never competes with it.
  if (plan.has_asr())
    RunAsrCheck(plan.asr(), asr_argv, options.texts, dir, result.levels, session, err);
  const bool slo_passed = session.slo_passed();
  // Files first: nothing measured is lost even if the console is gone.
  const absl::Status written = WriteSessionOutputs(dir, session, result.levels, err);
  (*server).reset();
  agents.reset();
  out << ConsoleTable(request.title, session);
  if (written.ok()) {
    out << "Session written to " << dir << "/\n";
  } else {
    err << "ttsbench: " << written.message() << "\n";
  }
  out.flush();
  int exit_code = slo_passed ? kExitOk : kExitSloFailed;
  if (!result.status.ok()) {
    outcome.set_error(absl::StrCat("run failed: ", result.status.message()));
    err << "ttsbench: " << outcome.error() << "\n";
    exit_code = kExitRunFailed;
  } else if (!written.ok()) {
    outcome.set_error(std::string(written.message()));
    exit_code = kExitRunFailed;
  } else if (!slo_passed && plan.mode() != "capacity") {
    outcome.set_error(SloFailureLine(session));
    err << "ttsbench: " << outcome.error() << "\n";
  } else if (!slo_passed) {
    outcome.set_error("capacity: no probed load met every SLO");
  }
  if (written.ok()) outcome.set_session_dir(dir);
  *outcome.mutable_session() = std::move(session);
  return exit_code;
}

}  // namespace

int RunSession(const SessionRequest& request, std::ostream& out, std::ostream& err) {
  // With output.json the outcome is the only thing on `out`; the table joins the notes on `err`.
  const bool json = request.plan.output().json();
  v1::SessionOutcome outcome;
  const int exit_code = RunSessionSteps(request, json ? err : out, err, outcome);
  if (!json) return exit_code;
  outcome.set_exit_code(exit_code);
  auto text = SessionOutcomeJson(std::move(outcome));
  if (!text.ok()) {
    err << "ttsbench: --json: " << text.status().message() << "\n";
    return exit_code == kExitOk ? kExitRunFailed : exit_code;
  }
  out << *text << std::flush;
  return exit_code;
}

}  // namespace ttsbench::coordinator
