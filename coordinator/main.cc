// ttsbench: the CLI users run. Each mode builds a plan from its flags and runs a session.
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/slo.h"
#include "common/url.h"
#include "coordinator/session_runner.h"
#include "synth/synth_server.h"

namespace {

using ttsbench::coordinator::kExitRunFailed;
using ttsbench::coordinator::kExitUsage;

// Flags shared by every load-running mode; turned into a Plan.
struct LoadFlags {
  std::string api = "openai";
  std::string voice = "default";
  std::string model;
  std::string format = "wav";
  bool streaming = false;
  std::vector<int> concurrency = {1, 2, 4, 8, 16};
  int iterations = 40;
  bool iterations_given = false;
  int warmup = 4;
  double timeout_s = 30;
  int agents = 2;
  int expect_agents = 0;
  std::string listen;
  double agent_timeout_s = 30;
  std::string output_dir = "ttsbench-results";
  std::string session_name;
  std::string texts_file;
  std::string text_length = "medium";
  uint64_t seed = 42;
  int sample_rate = 0;
  std::string auth_token_env;
  std::string auth_scheme = "Bearer";
  // Load model (issue: load models without coordinated omission).
  std::vector<double> rate;
  std::string arrival = "poisson";
  double burstiness = 1;
  int max_inflight = 0;
  std::string duration;
  std::string warmup_duration;
  std::string ramp_up;
  std::string think_time;
  std::string connections = "keepalive";
  std::string level_time_limit;
  std::vector<std::string> slo;
  double stall_threshold_ms = 100;
};

void AddLoadFlags(CLI::App* cmd, LoadFlags& f) {
  cmd->add_option("--api", f.api, "API dialect")
      ->check(CLI::IsMember({"openai", "torch-inference"}))
      ->capture_default_str();
  cmd->add_option("--voice", f.voice, "voice name")->capture_default_str();
  cmd->add_option("--model", f.model, "model name (OpenAI dialect)");
  cmd->add_option("--format", f.format, "audio format")
      ->check(CLI::IsMember({"wav", "pcm"}))
      ->capture_default_str();
  cmd->add_option("--concurrency", f.concurrency, "concurrency levels")
      ->check(CLI::Range(1, 1000000))
      ->expected(1, -1)
      ->capture_default_str();
  cmd->add_option("--iterations", f.iterations, "measured requests per level (all agents)")
      ->each([&f](const std::string&) { f.iterations_given = true; })
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  cmd->add_option("--warmup", f.warmup, "warm-up requests per level, excluded from statistics")
      ->check(CLI::Range(0, 100000000))
      ->capture_default_str();
  cmd->add_option("--timeout", f.timeout_s, "per-request timeout in seconds")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--agents", f.agents, "local agent processes to start")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--expect-agents", f.expect_agents,
                  "wait for this many remote agents instead of starting local ones")
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--listen", f.listen, "coordinator listen address HOST:PORT for agents");
  cmd->add_option("--agent-timeout", f.agent_timeout_s, "seconds to wait for agents")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option("--output-dir", f.output_dir, "where sessions are written")
      ->capture_default_str();
  cmd->add_option("--session-name", f.session_name, "session folder name");
  cmd->add_option("--texts", f.texts_file, "file of input texts, one per line");
  cmd->add_option("--text-length", f.text_length, "built-in corpus bucket")
      ->check(CLI::IsMember({"short", "medium", "long", "mixed"}))
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "seed for text selection")->capture_default_str();
  cmd->add_option("--sample-rate", f.sample_rate, "sample rate of raw PCM when not announced")
      ->check(CLI::Range(1000, 768000));
  cmd->add_option("--auth-token-env", f.auth_token_env,
                  "environment variable holding the API token (never written out)");
  cmd->add_option("--auth-scheme", f.auth_scheme, "Authorization scheme")
      ->check(CLI::IsMember({"Bearer", "Token"}))
      ->capture_default_str();
  cmd->add_option("--rate", f.rate, "open loop: request-rate levels (requests/s, all agents)")
      ->check(CLI::PositiveNumber)
      ->expected(1, -1);
  cmd->add_option("--arrival", f.arrival, "open loop: arrival process")
      ->check(CLI::IsMember({"constant", "poisson", "gamma"}))
      ->capture_default_str();
  cmd->add_option("--burstiness", f.burstiness, "gamma arrivals: shape (1 = poisson, <1 burstier)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-inflight", f.max_inflight,
                  "open loop: in-flight cap; arrivals beyond it are dropped and counted")
      ->check(CLI::Range(0, 10000000));
  cmd->add_option("--duration", f.duration, "bound each level by time (e.g. 30s) instead of count");
  cmd->add_option("--warmup-duration", f.warmup_duration, "warm-up by time (e.g. 5s)");
  cmd->add_option("--ramp-up", f.ramp_up, "closed loop: start users spread over this time");
  cmd->add_option("--think-time", f.think_time, "closed loop: pause between a user's requests");
  cmd->add_option("--connections", f.connections, "keep-alive reuse or a new connection each")
      ->check(CLI::IsMember({"keepalive", "per_request"}))
      ->capture_default_str();
  cmd->add_option("--level-time-limit", f.level_time_limit, "hard bound on each level (e.g. 5m)");
  cmd->add_option("--slo", f.slo, "threshold, e.g. ttfa_p95=300ms rtf_p95=0.5 success_rate=99%")
      ->expected(1, -1);
  cmd->add_option("--stall-threshold", f.stall_threshold_ms,
                  "continuity: worst playback stall (ms) a request may have")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

// "30s", "250ms", "2m", or a plain number of seconds.
absl::StatusOr<double> DurationSeconds(const std::string& flag, const std::string& text) {
  if (text.empty()) return 0.0;
  double plain = 0;
  if (absl::SimpleAtod(text, &plain) && plain >= 0) return plain;
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", text, "' is not a duration (e.g. 30s, 250ms, 2m)"));
  }
  return absl::ToDoubleSeconds(d);
}

std::string DefaultSessionName(const std::string& mode) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d_%H%M%S", &tm);
  return absl::StrCat(mode, "_", buf);
}

// Builds the session request; returns a one-line error for bad input.
absl::StatusOr<ttsbench::coordinator::SessionRequest> BuildRequest(const std::string& mode,
                                                                   const std::string& url,
                                                                   const LoadFlags& f) {
  ttsbench::coordinator::SessionRequest req;
  namespace v1 = ttsbench::v1;
  v1::Plan& plan = req.plan;
  plan.set_mode(mode);
  plan.set_session_name(f.session_name.empty() ? DefaultSessionName(mode) : f.session_name);
  if (plan.session_name().find('/') != std::string::npos || plan.session_name() == "." ||
      plan.session_name() == "..") {
    return absl::InvalidArgumentError("--session-name must be a plain folder name");
  }
  plan.set_output_dir(f.output_dir);
  auto parsed = ttsbench::common::ParseUrl(url);
  if (!parsed.ok()) return parsed.status();
  ttsbench::v1::Target* t = plan.mutable_target();
  t->set_url(url);
  t->set_api(f.api);
  t->set_voice(f.voice);
  t->set_model(f.model);
  t->set_format(f.format);
  t->set_streaming(f.streaming);
  t->set_sample_rate(f.sample_rate);
  t->set_timeout_s(f.timeout_s);
  if (!f.auth_token_env.empty()) {
    const char* token = std::getenv(f.auth_token_env.c_str());
    if (token == nullptr || *token == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth-token-env: environment variable ", f.auth_token_env, " is not set"));
    }
    t->set_auth_token_env(f.auth_token_env);
    t->set_auth_scheme(f.auth_scheme);
    ttsbench::v1::Header h;
    h.set_name("Authorization");
    h.set_value(absl::StrCat(f.auth_scheme, " ", token));
    req.secret_headers.push_back(std::move(h));
  }
  plan.mutable_texts()->set_file(f.texts_file);
  plan.mutable_texts()->set_length(f.text_length);
  plan.mutable_texts()->set_seed(f.seed);
  v1::Load* load = plan.mutable_load();
  if (!f.rate.empty()) {
    load->set_model("open");
    for (double r : f.rate) load->add_rate(r);
  } else {
    load->set_model("closed");
    for (int c : f.concurrency) load->add_concurrency(c);
  }
  load->set_arrival(f.arrival);
  load->set_burstiness(f.burstiness);
  load->set_max_inflight(f.max_inflight);
  load->set_connections(f.connections);
  load->set_stall_threshold_ms(f.stall_threshold_ms);
  struct TimeFlag {
    const char* name;
    const std::string& text;
    void (v1::Load::*set)(double);
  };
  for (const TimeFlag& t :
       {TimeFlag{"--duration", f.duration, &v1::Load::set_duration_s},
        TimeFlag{"--warmup-duration", f.warmup_duration, &v1::Load::set_warmup_s},
        TimeFlag{"--ramp-up", f.ramp_up, &v1::Load::set_ramp_up_s},
        TimeFlag{"--think-time", f.think_time, &v1::Load::set_think_time_s},
        TimeFlag{"--level-time-limit", f.level_time_limit, &v1::Load::set_level_time_limit_s}}) {
    auto seconds = DurationSeconds(t.name, t.text);
    if (!seconds.ok()) return seconds.status();
    (load->*t.set)(*seconds);
  }
  // A time-bound level has no request count unless one is given explicitly.
  load->set_iterations(f.duration.empty() || f.iterations_given ? f.iterations : 0);
  load->set_warmup(f.warmup_duration.empty() ? f.warmup : 0);
  for (const std::string& text : f.slo) {
    if (auto slo = ttsbench::common::ParseSlo(text); !slo.ok()) return slo.status();
    plan.add_slo(text);
  }
  plan.mutable_agents()->set_spawn(f.expect_agents > 0 ? 0 : f.agents);
  plan.mutable_agents()->set_connect_timeout_s(f.agent_timeout_s);
  if (!f.listen.empty()) {
    if (auto st = ttsbench::common::ValidateHostPort(f.listen); !st.ok()) return st;
    plan.mutable_agents()->set_listen(f.listen);
  }
  req.expect_agents = f.expect_agents;
  return req;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ttsbench: measure how fast text-to-speech servers really are"};
  app.require_subcommand(1);

  LoadFlags demo_flags;
  demo_flags.streaming = true;
  int demo_slots = 4;
  CLI::App* demo = app.add_subcommand("demo", "benchmark the embedded synthetic TTS server");
  AddLoadFlags(demo, demo_flags);
  demo->add_flag("--streaming,!--no-streaming", demo_flags.streaming,
                 "stream audio (default for demo)");
  demo->add_option("--slots", demo_slots, "parallel synthesis slots of the synthetic server")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();

  LoadFlags server_flags;
  std::string url;
  CLI::App* server = app.add_subcommand("server", "benchmark a TTS server");
  server->add_option("--url", url, "base URL of the TTS server")->required();
  AddLoadFlags(server, server_flags);
  server->add_flag("--streaming,!--no-streaming", server_flags.streaming, "request streamed audio");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "ttsbench: " << e.what() << "\n";
    return kExitUsage;
  }

  std::unique_ptr<ttsbench::synth::SynthServer> synth;
  absl::StatusOr<ttsbench::coordinator::SessionRequest> req;
  if (*demo) {
    ttsbench::synth::SynthOptions so;
    so.model.slots = demo_slots;
    auto started = ttsbench::synth::SynthServer::Start(so);
    if (!started.ok()) {
      std::cerr << "ttsbench: synthetic server: " << started.status().message() << "\n";
      return kExitRunFailed;
    }
    synth = std::move(*started);
    std::cout << "Synthetic TTS server on http://127.0.0.1:" << synth->port() << " (" << demo_slots
              << " slots)\n";
    req = BuildRequest("demo", absl::StrCat("http://127.0.0.1:", synth->port()), demo_flags);
    if (req.ok()) req->title = "Demo Benchmark Results Summary";
  } else {
    req = BuildRequest("server", url, server_flags);
    if (req.ok()) req->title = "Server Benchmark Results Summary";
  }
  if (!req.ok()) {
    std::cerr << "ttsbench: " << req.status().message() << "\n";
    return kExitUsage;
  }
  const int code = ttsbench::coordinator::RunSession(*req, std::cout, std::cerr);
  if (synth) synth->Stop();
  return code;
}
