// ttsbench: the CLI users run. Each mode builds a plan from its flags and runs a session.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "agent/client/command_allowlist.h"
#include "agent/client/dialect.h"
#include "common/slo.h"
#include "common/url.h"
#include "common/version.h"
#include "coordinator/cli/cli_guide.h"
#include "coordinator/cli/plan_file.h"
#include "coordinator/discover/discover.h"
#include "coordinator/report/report.h"
#include "coordinator/run/session_runner.h"
#include "coordinator/sessions/compare.h"
#include "coordinator/sessions/sessions.h"
#include "synth/synth_server.h"

namespace {

namespace v1 = ttsbench::v1;
using ttsbench::coordinator::kExitRunFailed;
using ttsbench::coordinator::kExitUsage;

// Flags shared by every load-running mode; turned into a Plan.
struct LoadFlags {
  std::string api = "openai";
  std::string voice = "default";
  std::string model;
  std::string format;  // empty: the dialect's default (DefaultFormat)
  bool streaming = false;
  std::vector<int> concurrency = {1, 2, 4, 8, 16};
  int iterations = 40;
  bool iterations_given = false;
  int warmup = 4;
  bool warmup_given = false;
  std::string timeout = "30s";
  int agents = 2;
  int expect_agents = 0;
  std::string listen;
  std::string agent_timeout = "30s";
  std::string output_dir = "ttsbench-results";
  std::string session_name;
  bool overwrite = false;
  std::string texts_file;
  std::string text_length = "medium";
  uint64_t seed = 42;
  int sample_rate = 0;
  uint64_t max_event_bytes = 0;
  std::string auth_token_env;
  std::string auth_scheme;  // default: Bearer for Authorization, none (the raw token) otherwise
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
  std::string stall_threshold = "100ms";
  // Audio integrity and consistency bounds (plan audio_checks 20-24); 0 = the default. Any of
  // them turns the audio checks on.
  double min_duration_ratio = 0;
  double max_duration_ratio = 0;
  double min_envelope_corr = 0;
  double max_flagged_pct = 0;
  std::string metrics_addr;
  bool jsonl = false;
  bool json = false;  // output.json: the outcome as JSON on stdout, everything else on stderr
  // Transport and request details.
  std::vector<std::string> headers;
  std::string ca_file;
  bool insecure = false;
  std::string stream_format;
  std::string auth_header;
  std::string auth_token_file;
  double speed = 0;
  std::string instructions;
  std::string path;
  std::string language;
  std::string function_id_env;  // api riva (NVCF): where the function id is, never the id
  std::string function_id_file;
  std::string request_template_file;
  std::string command;                      // api command: the program and its argument templates
  std::vector<std::string> allow_commands;  // programs local agents may run (api command)
  // Audio checks (plan audio_checks, issue 14); any of the settings turns them on.
  bool audio_checks = false;
  std::optional<double> audible_threshold_dbfs;
  std::string audible_window;
  std::string stutter;
  std::optional<int> audio_sample;
  std::string audible_warn;
  // The optional ASR check (plan asr): the recogniser's command line, samples, timeout.
  std::string asr_command;
  int asr_sample = 0;
  std::string asr_timeout;
  // Telemetry and cost (issue 14): plan `telemetry:` and `cost:`.
  std::vector<std::string> scrape;
  std::string scrape_interval;
  std::string scrape_timeout;
  std::vector<std::string> scrape_series;
  double cost_per_replica_hour = 0;
  int cost_replicas = 0;  // --replicas outside capacity (where it is capacity.replicas)
  // Paced text and barge-in (issue 13): plan `pacing`; durations as the other time flags.
  double pace_tokens_per_s = 0;
  std::string pace_first_token;
  double pace_jitter = 0;
  std::string pace_unit;
  std::string pace_end_delay;
  bool pace_flush = false;
  std::string pace_flush_timeout;
  double interrupt_fraction = 0;
  std::string interrupt_after;
  std::string interrupt_at;
  std::string silence_limit;
  // Conversations (issue 13): plan `conversation`.
  int turns = 0;
  std::string turn_think;
  double turn_think_jitter = 0;
  std::string ws_endpoint;
};

void AddLoadFlags(CLI::App* cmd, LoadFlags& f) {
  cmd->add_option("--api", f.api, "API dialect")
      ->check(CLI::IsMember({"openai", "torch-inference", "coqui", "opentts", "piper", "elevenlabs",
                             "template", "command", "riva", "cartesia", "deepgram", "vllm-omni"}))
      ->capture_default_str();
  cmd->add_option("--voice", f.voice, "voice name")->capture_default_str();
  cmd->add_option("--model", f.model, "model name (OpenAI dialect)");
  // Checked by ValidatePlan: the choices depend on --api (ElevenLabs has its own names).
  cmd->add_option("--format", f.format,
                  absl::StrCat("audio format: wav pcm mp3 opus aac flac ulaw (elevenlabs: mp3 pcm "
                               "ulaw or its output_format names, e.g. pcm_16000); default: ",
                               ttsbench::coordinator::DefaultFormat("openai"), ", elevenlabs ",
                               ttsbench::coordinator::DefaultFormat("elevenlabs")));
  cmd->add_option("--concurrency", f.concurrency, "concurrency levels")
      ->check(CLI::Range(1, 1000000))
      ->expected(1, -1)
      ->capture_default_str();
  cmd->add_option("--iterations", f.iterations, "measured requests per level (all agents)")
      ->each([&f](const std::string&) { f.iterations_given = true; })
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  cmd->add_option("--warmup", f.warmup, "warm-up requests per level, excluded from statistics")
      ->each([&f](const std::string&) { f.warmup_given = true; })
      ->check(CLI::Range(0, 100000000))
      ->capture_default_str();
  cmd->add_option("--timeout", f.timeout,
                  "per request: connect, send and the whole answer (e.g. 30s, 500ms)")
      ->capture_default_str();
  cmd->add_option("--agents", f.agents, "local agent processes to start")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--expect-agents", f.expect_agents,
                  "wait for this many remote agents instead of starting local ones")
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--listen", f.listen, "coordinator listen address HOST:PORT for agents");
  cmd->add_option("--agent-timeout", f.agent_timeout, "how long to wait for agents (e.g. 30s)")
      ->capture_default_str();
  cmd->add_option("--output-dir", f.output_dir, "where sessions are written")
      ->capture_default_str();
  cmd->add_option("--session-name", f.session_name,
                  "session folder name (a taken name gets a suffix: NAME-2, ...)");
  cmd->add_flag("--overwrite", f.overwrite,
                "replace the session folder of the same name instead of writing NAME-2");
  cmd->add_option("--texts", f.texts_file, "file of input texts, one per line");
  cmd->add_option("--text-length", f.text_length, "built-in corpus bucket")
      ->check(CLI::IsMember({"short", "medium", "long", "mixed"}))
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "seed for text selection")->capture_default_str();
  cmd->add_option("--sample-rate", f.sample_rate, "sample rate of raw PCM when not announced")
      ->check(CLI::Range(1000, 768000));
  cmd->add_option("--max-event-bytes", f.max_event_bytes,
                  "largest SSE event or WebSocket message the agent holds (default 1 MiB)");
  cmd->add_option("--auth-token-env", f.auth_token_env,
                  "environment variable holding the API token (never written out)");
  cmd->add_option("--auth-scheme", f.auth_scheme,
                  "token prefix: Bearer (default with Authorization), Token, or none (default "
                  "with any other --auth-header)")
      ->check(CLI::IsMember({"Bearer", "Token", "none"}));
  cmd->add_option("--rate", f.rate, "open loop: request-rate levels (requests/s, all agents)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            double v = 0;
            return absl::SimpleAtod(text, &v) && v > 0 && v <= 1e9
                       ? ""
                       : absl::StrCat("--rate ", text, ": must be a rate above 0 (requests/s)");
          },
          "RATE>0"))
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
  cmd->add_option("--slo", f.slo,
                  "threshold, e.g. ttfa_p95=300ms rtf_p95=0.5 success_rate=99% (default: "
                  "success_rate=50% when none is given; success_rate=0% turns it off)")
      ->expected(1, -1);
  cmd->add_option("--header", f.headers, "extra request header K:V (repeatable; not secret)")
      ->expected(1, -1);
  cmd->add_option("--ca-file", f.ca_file, "TLS: CA bundle to verify the server with")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--insecure", f.insecure, "TLS: do not verify the server's certificate");
  cmd->add_option("--stream-format", f.stream_format,
                  "sse (openai) or ws (WebSocket: torch-inference /audio/ws, elevenlabs "
                  "stream-input); default: the dialect's plain HTTP answer")
      ->check(CLI::IsMember({"", "sse", "ws"}));
  // Paced text and barge-in (issue 13; plan `pacing`, DESIGN.md "Paced text").
  cmd->add_option("--pace-tokens-per-s", f.pace_tokens_per_s,
                  "feed each text over time like an LLM: tokens per second (0: whole text)");
  cmd->add_option("--pace-first-token", f.pace_first_token, "paced text: time to first token");
  cmd->add_option("--pace-jitter", f.pace_jitter, "paced text: relative jitter of token intervals");
  cmd->add_option("--pace-unit", f.pace_unit, "paced text: piece sent: token, word or sentence");
  cmd->add_option("--pace-end-delay", f.pace_end_delay, "paced text: last piece -> end of input");
  cmd->add_flag("--pace-flush", f.pace_flush, "paced text: flush before the end of input");
  cmd->add_option("--pace-flush-timeout", f.pace_flush_timeout,
                  "paced text: an end of input unanswered this long is flush_unanswered");
  cmd->add_option("--interrupt-fraction", f.interrupt_fraction,
                  "barge-in: share of requests interrupted mid-utterance");
  cmd->add_option("--interrupt-after", f.interrupt_after, "barge-in: first audio -> interrupt");
  cmd->add_option("--interrupt-at", f.interrupt_at,
                  "barge-in: interrupt every request started this long into the level");
  cmd->add_option("--silence-limit", f.silence_limit,
                  "barge-in: audio later than this after the interrupt is audio_after_cancel");
  // Conversations (issue 13; plan `conversation`, DESIGN.md "Conversations").
  cmd->add_option("--turns", f.turns,
                  "conversations: each virtual user keeps one connection for this many turns");
  cmd->add_option("--turn-think", f.turn_think,
                  "conversations: think time between a conversation's turns (e.g. 800ms)");
  cmd->add_option("--turn-think-jitter", f.turn_think_jitter,
                  "conversations: relative jitter of the think time, in [0, 1)");
  cmd->add_option("--ws-endpoint", f.ws_endpoint,
                  "elevenlabs WebSocket: stream-input (default) or multi-stream-input");
  cmd->add_option("--path", f.path,
                  "override the dialect's endpoint path (torch-inference: /synthesize = its "
                  "older API)");
  cmd->add_option("--language", f.language, "language id (coqui), language_code (riva: en-US)");
  cmd->add_option("--function-id-env", f.function_id_env,
                  "api riva on a hosted endpoint: environment variable holding the function id "
                  "(gRPC metadata function-id)");
  cmd->add_option("--function-id-file", f.function_id_file,
                  "api riva: file holding the function id")
      ->check(CLI::ExistingFile);
  cmd->add_option("--request-template", f.request_template_file,
                  "api template: YAML file with method, path, query, headers, body, audio, "
                  "audio_field, done, messages")
      ->check(CLI::ExistingFile);
  cmd->add_option("--command", f.command,
                  "api command: the program and its arguments as one string, e.g. \"espeak-ng "
                  "--stdout -v {voice}\" (split into words, no shell; text on stdin unless an "
                  "argument holds {text}); this command line is allowed for the local agents");
  cmd->add_option("--allow-command", f.allow_commands,
                  "api command: a command line the local agents may run, program and every "
                  "argument as the plan gives them (repeatable)")
      ->expected(1, -1);
  cmd->add_option("--auth-header", f.auth_header,
                  "header carrying the token (default Authorization; e.g. X-API-Key, xi-api-key)");
  cmd->add_option("--auth-token-file", f.auth_token_file, "file holding the API token")
      ->check(CLI::ExistingFile);
  cmd->add_option("--speed", f.speed, "speech speed field (OpenAI, ElevenLabs)")
      ->check(CLI::Range(0.25, 4.0));
  cmd->add_option("--instructions", f.instructions, "OpenAI instructions field");
  cmd->add_option("--min-duration-ratio", f.min_duration_ratio,
                  "audio checks: an answer shorter than this times its text's answer at the "
                  "lowest level is inconsistent (default 0.9)");
  cmd->add_option("--max-duration-ratio", f.max_duration_ratio,
                  "audio checks: ... longer than this times it (default 1.1)");
  cmd->add_option("--min-envelope-corr", f.min_envelope_corr,
                  "audio checks: RMS-envelope correlation with it below this is inconsistent "
                  "(default 0.8)");
  cmd->add_option("--max-flagged-pct", f.max_flagged_pct,
                  "audio checks: a level whose answers are flagged or inconsistent above this "
                  "share is bad; the first bad level is the audio cliff (default 5)");
  cmd->add_option("--metrics-addr", f.metrics_addr,
                  "serve live Prometheus metrics on HOST:PORT during the run");
  cmd->add_flag("--jsonl", f.jsonl, "also write requests.jsonl (one JSON object per request)");
  cmd->add_flag("--json", f.json,
                "print the results as one JSON document on stdout (docs/SESSION_SCHEMA.md); "
                "the table and notes go to stderr");
  cmd->add_option("--stall-threshold", f.stall_threshold,
                  "continuity: worst playback stall a request may have (e.g. 100ms)")
      ->capture_default_str();
  cmd->add_flag("--audio-checks", f.audio_checks,
                "decode the audio and measure what the listener hears: TTFA-audible, leading "
                "silence, clipping, stutters (any --audible-*/--stutter/--audio-sample flag "
                "turns it on)");
  cmd->add_option("--audible-threshold-dbfs", f.audible_threshold_dbfs,
                  "audio checks: a window is audible above this RMS level (default -50)");
  cmd->add_option("--audible-window", f.audible_window,
                  "audio checks: RMS window of the audible test (default 5ms)");
  cmd->add_option(
      "--stutter", f.stutter,
      "audio checks: an internal silence longer than this is a stutter (default 300ms)");
  cmd->add_option("--audio-sample", f.audio_sample,
                  "audio checks: requests analysed per level per agent (default 0: all)");
  cmd->add_option("--audible-warn", f.audible_warn,
                  "audio checks: warn when TTFA-audible p50 exceeds TTFA p50 by this (default "
                  "200ms)");
  cmd->add_option("--asr-command", f.asr_command,
                  "ASR check: a speech recogniser run on a sample of each level's audio after "
                  "the run, {wav} its WAV path, text on stdout (e.g. \"pocketsphinx_continuous "
                  "-infile {wav} -logfn /dev/null\"); WER/CER per level");
  cmd->add_option("--asr-sample", f.asr_sample,
                  "ASR check: successful measured requests per level recognised (default 5)")
      ->check(CLI::Range(1, 100));
  cmd->add_option("--asr-timeout", f.asr_timeout,
                  "ASR check: one recogniser run's bound, killed past it (default 60s)");
  cmd->add_option("--scrape", f.scrape,
                  "Prometheus endpoint to scrape during the run, e.g. http://gpu-host:9400/metrics "
                  "(repeatable; demo: 'synth' = its own /metrics)")
      ->expected(1, -1);
  cmd->add_option("--scrape-interval", f.scrape_interval, "between scrapes (default 1s)");
  cmd->add_option("--scrape-timeout", f.scrape_timeout, "one scrape (default: the interval)");
  cmd->add_option("--scrape-series", f.scrape_series,
                  "series to keep and summarise: metric names, known keys (gpu_util power "
                  "fb_used running waiting ...) or prefixes ending in * (default: known names)")
      ->expected(1, -1);
  cmd->add_option("--cost-per-replica-hour", f.cost_per_replica_hour,
                  "USD per server replica-hour: cost per audio-hour and per million characters")
      ->check(CLI::Range(0.0, 1e9));
}

// --replicas of the modes other than capacity (whose --replicas is the search's).
void AddReplicasFlag(CLI::App* cmd, LoadFlags& f) {
  cmd->add_option("--replicas", f.cost_replicas,
                  "server replicas behind the URL, for --cost-per-replica-hour (default 1)")
      ->check(CLI::Range(1, 100000));
}

// A duration flag in seconds, within [min_s, max_s]; `zero_ok` lets 0 mean "not set".
absl::StatusOr<double> DurationFlag(const std::string& flag, const std::string& text, double min_s,
                                    double max_s, bool zero_ok) {
  if (text.empty()) return 0.0;
  auto seconds = ttsbench::coordinator::ParseDurationFlag(flag, text);
  if (!seconds.ok()) return seconds.status();
  if (*seconds == 0 && zero_ok) return 0.0;
  if (*seconds == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", text, ": must be more than 0",
                     flag == "--duration" ? " (omit it to bound levels by request count)" : ""));
  }
  if (*seconds < min_s || *seconds > max_s) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", text, ": must be within ", min_s, " s and ", max_s, " s"));
  }
  return *seconds;
}

// --audio-checks and its settings into plan.audio_checks (validated with the plan).
absl::Status ApplyAudioCheckFlags(const LoadFlags& f, v1::AudioChecks& a) {
  if (f.audio_checks || f.audible_threshold_dbfs || !f.audible_window.empty() ||
      !f.stutter.empty() || f.audio_sample || !f.audible_warn.empty()) {
    a.set_enabled(true);
  }
  if (f.audible_threshold_dbfs) a.set_audible_threshold_dbfs(*f.audible_threshold_dbfs);
  if (f.audio_sample) a.set_sample_per_level(*f.audio_sample);
  struct MsFlag {
    const char* name;
    const std::string& text;
    void (v1::AudioChecks::*set)(double);
  };
  for (const MsFlag& m :
       {MsFlag{"--audible-window", f.audible_window, &v1::AudioChecks::set_audible_window_ms},
        MsFlag{"--stutter", f.stutter, &v1::AudioChecks::set_stutter_ms},
        MsFlag{"--audible-warn", f.audible_warn, &v1::AudioChecks::set_audible_warn_ms}}) {
    auto seconds = DurationFlag(m.name, m.text, 0.0001, 600, false);
    if (!seconds.ok()) return seconds.status();
    if (!m.text.empty()) (a.*m.set)(*seconds * 1000);
  }
  return absl::OkStatus();
}

// A URL typed without a scheme gets http://, said on stderr; ParseUrl checks the rest.
std::string WithScheme(const std::string& url) {
  if (url.empty() || absl::StrContains(url, "://")) return url;  // grpc:// too (api riva)
  std::cerr << "ttsbench: note: '" << url << "' has no scheme; using http://" << url
            << " (write https:// for TLS)\n";
  return "http://" + url;
}

// --header NAME:VALUE
absl::Status AddHeaderFlags(const std::vector<std::string>& flags, v1::Target* t) {
  for (const std::string& h : flags) {
    const size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--header '", h, "': expected NAME:VALUE"));
    }
    v1::Header* header = t->add_headers();
    header->set_name(std::string(absl::StripAsciiWhitespace(h.substr(0, colon))));
    header->set_value(std::string(absl::StripAsciiWhitespace(h.substr(colon + 1))));
  }
  return absl::OkStatus();
}

// Where the token is (never the token), with the scheme defaulted for the header.
void SetAuth(const LoadFlags& f, v1::Target* t) {
  if (f.auth_token_env.empty() && f.auth_token_file.empty()) return;
  t->set_auth_token_env(f.auth_token_env);
  t->set_auth_token_file(f.auth_token_file);
  t->set_auth_header(f.auth_header);
  std::string scheme = f.auth_scheme;
  if (scheme.empty()) {
    scheme = f.auth_header.empty() || absl::EqualsIgnoreCase(f.auth_header, "Authorization")
                 ? "Bearer"
                 : "none";
  }
  t->set_auth_scheme(scheme);
}

// Builds the plan a mode's flags describe; one-line errors for bad input. Secrets stay out:
// the plan names where the token is, never the token.
absl::StatusOr<ttsbench::v1::Plan> BuildPlan(
    const std::string& mode, const std::string& url, const LoadFlags& f,
    const std::vector<std::string>& voices = {},
    const ttsbench::v1::CapacitySearch* capacity = nullptr) {
  v1::Plan plan;
  plan.set_mode(mode);
  plan.set_session_name(f.session_name);
  plan.set_output_dir(f.output_dir);
  v1::Target* t = plan.mutable_target();
  t->set_url(url);
  t->set_api(f.api);
  t->set_voice(f.voice);
  t->set_model(f.model);
  t->set_format(f.format);
  t->set_streaming(f.streaming);
  t->set_sample_rate(f.sample_rate);
  t->set_max_event_bytes(f.max_event_bytes);
  auto timeout = DurationFlag("--timeout", f.timeout, 0.001, 86400, false);
  if (!timeout.ok()) return timeout.status();
  t->set_timeout_s(*timeout);
  SetAuth(f, t);
  if (auto st = AddHeaderFlags(f.headers, t); !st.ok()) return st;
  t->set_ca_file(f.ca_file);
  t->set_insecure(f.insecure);
  t->set_stream_format(f.stream_format);
  t->set_ws_endpoint(f.ws_endpoint);
  if (f.pace_tokens_per_s != 0 || f.interrupt_fraction != 0 || !f.interrupt_at.empty()) {
    v1::TextPacing* p = plan.mutable_pacing();
    p->set_tokens_per_s(f.pace_tokens_per_s);
    p->set_jitter(f.pace_jitter);
    p->set_unit(f.pace_unit);
    p->set_flush(f.pace_flush);
    p->set_interrupt_fraction(f.interrupt_fraction);
    struct PaceTime {
      const char* name;
      const std::string& text;
      void (v1::TextPacing::*set)(double);
      double scale;  // the field's unit per second
    };
    for (const PaceTime& pt :
         {PaceTime{"--pace-first-token", f.pace_first_token, &v1::TextPacing::set_first_token_ms,
                   1000},
          PaceTime{"--pace-end-delay", f.pace_end_delay, &v1::TextPacing::set_end_delay_ms, 1000},
          PaceTime{"--pace-flush-timeout", f.pace_flush_timeout,
                   &v1::TextPacing::set_flush_timeout_ms, 1000},
          PaceTime{"--interrupt-after", f.interrupt_after, &v1::TextPacing::set_interrupt_after_ms,
                   1000},
          PaceTime{"--interrupt-at", f.interrupt_at, &v1::TextPacing::set_interrupt_at_s, 1},
          PaceTime{"--silence-limit", f.silence_limit, &v1::TextPacing::set_silence_limit_ms,
                   1000}}) {
      if (pt.text.empty()) continue;
      auto seconds = DurationFlag(pt.name, pt.text, 0, 86400, true);
      if (!seconds.ok()) return seconds.status();
      (p->*pt.set)(*seconds * pt.scale);
    }
  }
  if (f.turns != 0 || !f.turn_think.empty() || f.turn_think_jitter != 0) {
    v1::Conversation* conv = plan.mutable_conversation();
    conv->set_turns(f.turns);
    conv->set_think_jitter(f.turn_think_jitter);
    if (!f.turn_think.empty()) {
      auto seconds = DurationFlag("--turn-think", f.turn_think, 0, 3600, true);
      if (!seconds.ok()) return seconds.status();
      conv->set_think_time_ms(*seconds * 1000);
    }
  }
  t->set_speed(f.speed);
  t->set_instructions(f.instructions);
  t->set_path(f.path);
  t->set_language(f.language);
  t->set_function_id_env(f.function_id_env);
  t->set_function_id_file(f.function_id_file);
  if (!f.request_template_file.empty()) {
    if (auto st = ttsbench::coordinator::LoadMessageYamlFile(f.request_template_file,
                                                             *t->mutable_request_template());
        !st.ok()) {
      return st;
    }
  }
  if (!f.command.empty()) {
    auto words = ttsbench::agent::SplitCommandWords(f.command);
    if (!words.ok())
      return absl::InvalidArgumentError(absl::StrCat("--command: ", words.status().message()));
    for (std::string& w : *words) t->mutable_command()->add_argv(std::move(w));
  } else if (f.api == "command") {
    return absl::InvalidArgumentError("--api command needs --command \"PROGRAM ARGS...\"");
  }
  plan.mutable_texts()->set_file(f.texts_file);
  plan.mutable_texts()->set_length(f.text_length);
  plan.mutable_texts()->set_seed(f.seed);
  v1::Load* load = plan.mutable_load();
  if (!f.rate.empty()) {
    load->set_model("open");
    for (double r : f.rate) load->add_rate(r);
    load->set_arrival(f.arrival);
    load->set_burstiness(f.burstiness);
    load->set_max_inflight(f.max_inflight);
  } else {
    load->set_model("closed");
    for (int c : f.concurrency) load->add_concurrency(c);
  }
  load->set_connections(f.connections);
  auto stall = DurationFlag("--stall-threshold", f.stall_threshold, 0.0001, 3600, false);
  if (!stall.ok()) return stall.status();
  if (double bare = 0; absl::SimpleAtod(f.stall_threshold, &bare) && bare >= 10) {
    // It used to take milliseconds: "100" meant 100 ms; say so rather than wait 100 s.
    return absl::InvalidArgumentError(absl::StrCat("--stall-threshold ", f.stall_threshold,
                                                   ": a bare number is seconds; write ",
                                                   f.stall_threshold, "ms for milliseconds"));
  }
  load->set_stall_threshold_ms(*stall * 1000);
  struct TimeFlag {
    const char* name;
    const std::string& text;
    bool zero_ok;  // 0 is a meaningful value (no ramp-up) rather than a mistake
    void (v1::Load::*set)(double);
  };
  constexpr double kWeek = 7 * 86400;
  for (const TimeFlag& tf :
       {TimeFlag{"--duration", f.duration, false, &v1::Load::set_duration_s},
        TimeFlag{"--warmup-duration", f.warmup_duration, true, &v1::Load::set_warmup_s},
        TimeFlag{"--ramp-up", f.ramp_up, true, &v1::Load::set_ramp_up_s},
        TimeFlag{"--think-time", f.think_time, true, &v1::Load::set_think_time_s},
        TimeFlag{"--level-time-limit", f.level_time_limit, false,
                 &v1::Load::set_level_time_limit_s}}) {
    auto seconds = DurationFlag(tf.name, tf.text, 0.001, kWeek, tf.zero_ok);
    if (!seconds.ok()) return seconds.status();
    (load->*tf.set)(*seconds);
  }
  // A time-bound level has no request count unless one is given explicitly.
  load->set_iterations(f.duration.empty() || f.iterations_given ? f.iterations : 0);
  if (f.warmup_given && !f.warmup_duration.empty()) {
    return absl::InvalidArgumentError(
        "--warmup and --warmup-duration: give warm-up by count or by time, not both");
  }
  load->set_warmup(f.warmup_duration.empty() ? f.warmup : 0);
  for (const std::string& text : f.slo) plan.add_slo(text);
  for (const std::string& v : voices) plan.add_voices(v);
  if (f.min_duration_ratio != 0 || f.max_duration_ratio != 0 || f.min_envelope_corr != 0 ||
      f.max_flagged_pct != 0) {
    v1::AudioChecks* a = plan.mutable_audio_checks();
    a->set_enabled(true);
    a->set_min_duration_ratio(f.min_duration_ratio);
    a->set_max_duration_ratio(f.max_duration_ratio);
    a->set_min_envelope_correlation(f.min_envelope_corr);
    a->set_max_flagged_pct(f.max_flagged_pct);
  }
  if (!f.scrape.empty() || !f.scrape_series.empty()) {
    v1::Telemetry* tel = plan.mutable_telemetry();
    for (const std::string& u : f.scrape) tel->add_scrape(u);
    for (const std::string& sel : f.scrape_series) tel->add_series(sel);
    auto interval = DurationFlag("--scrape-interval", f.scrape_interval, 0.05, 3600, false);
    if (!interval.ok()) return interval.status();
    tel->set_interval_s(*interval);
    auto scrape_timeout = DurationFlag("--scrape-timeout", f.scrape_timeout, 0.01, 600, false);
    if (!scrape_timeout.ok()) return scrape_timeout.status();
    tel->set_timeout_s(*scrape_timeout);
  }
  if (f.cost_per_replica_hour > 0 || f.cost_replicas > 0) {
    plan.mutable_cost()->set_per_replica_hour_usd(f.cost_per_replica_hour);
    plan.mutable_cost()->set_replicas(f.cost_replicas);
  }
  plan.mutable_output()->set_metrics_addr(f.metrics_addr);
  plan.mutable_output()->set_jsonl(f.jsonl);
  plan.mutable_output()->set_json(f.json);
  plan.mutable_output()->set_overwrite(f.overwrite);
  if (auto st = ApplyAudioCheckFlags(f, *plan.mutable_audio_checks()); !st.ok()) return st;
  if (capacity != nullptr) {
    *plan.mutable_capacity() = *capacity;
    // Every probe is one level chosen by the search, not the sweep's list.
    load->clear_concurrency();
    load->clear_rate();
    if (load->model() == "open") {
      load->add_rate(capacity->start() > 0 ? capacity->start() : 1);
    } else {
      load->add_concurrency(capacity->start() > 0 ? static_cast<int>(capacity->start()) : 1);
    }
  }
  v1::AgentsPlan* agents = plan.mutable_agents();
  auto agent_timeout = DurationFlag("--agent-timeout", f.agent_timeout, 0.1, 86400, false);
  if (!agent_timeout.ok()) return agent_timeout.status();
  agents->set_connect_timeout_s(*agent_timeout);
  if (f.expect_agents > 0) {
    agents->set_expect(f.expect_agents);
  } else {
    agents->set_spawn(f.agents);
  }
  agents->set_listen(f.listen);
  if (!f.asr_command.empty()) {
    plan.mutable_asr()->set_command(f.asr_command);
    plan.mutable_asr()->set_sample_per_level(f.asr_sample);
    auto asr_timeout = DurationFlag("--asr-timeout", f.asr_timeout, 0.001, 3600, false);
    if (!asr_timeout.ok()) return asr_timeout.status();
    plan.mutable_asr()->set_timeout_s(*asr_timeout);
  } else if (f.asr_sample != 0 || !f.asr_timeout.empty()) {
    return absl::InvalidArgumentError("--asr-sample and --asr-timeout need --asr-command");
  }
  if (auto st = ttsbench::coordinator::ValidatePlan(plan, nullptr); !st.ok()) return st;
  return plan;
}

// `--json` of a load mode: the outcome document is the only thing on stdout. From Claim() on,
// whatever writes to descriptor 1 (std::cout, a library, the local agents this process spawns)
// writes to stderr instead; the document goes to the stdout kept here.
class JsonStdout {
 public:
  // Null when stdout cannot be kept (then --json fails with a usage error).
  static std::unique_ptr<JsonStdout> Claim() {
    std::cout.flush();
    std::fflush(stdout);
    const int kept = dup(STDOUT_FILENO);
    if (kept < 0) return nullptr;
    if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
      close(kept);
      return nullptr;
    }
    return std::unique_ptr<JsonStdout>(new JsonStdout(kept));
  }
  ~JsonStdout() { close(fd_); }
  // Writes `text` whole to the kept stdout; false on a write error (a closed pipe).
  bool Print(const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = write(fd_, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

 private:
  explicit JsonStdout(int fd) : fd_(fd) {}
  int fd_;
};

// Set while a load mode runs with --json: a failure before the session starts still prints its
// outcome document (exit code and error, no session).
JsonStdout* json_stdout = nullptr;

// One line on stderr (and with --json the outcome document on stdout); returns `exit_code`.
int FailWith(int exit_code, const std::string& message) {
  std::cerr << "ttsbench: " << message << "\n";
  if (json_stdout != nullptr) {
    v1::SessionOutcome outcome;
    outcome.set_exit_code(exit_code);
    outcome.set_error(message);
    if (auto text = ttsbench::coordinator::SessionOutcomeJson(outcome); text.ok()) {
      json_stdout->Print(*text);
    }
  }
  return exit_code;
}

int Fail(const absl::Status& st) {
  return FailWith(absl::IsNotFound(st) || absl::IsInvalidArgument(st) ? kExitUsage : kExitRunFailed,
                  std::string(st.message()));
}

// Probes `url` with the auth, headers and TLS settings of `f`. The token goes in the probes'
// headers only; the suggested command names where it is.
absl::StatusOr<ttsbench::coordinator::DiscoveryResult> DiscoverWith(const std::string& url,
                                                                    const LoadFlags& f,
                                                                    double timeout_s,
                                                                    double budget_s) {
  namespace tc = ttsbench::coordinator;
  v1::Target t;
  SetAuth(f, &t);
  t.set_function_id_env(f.function_id_env);  // grpc:// URLs (Riva on a hosted endpoint)
  t.set_function_id_file(f.function_id_file);
  if (auto st = AddHeaderFlags(f.headers, &t); !st.ok()) return st;
  auto secrets = tc::ResolveSecretHeaders(t);
  if (!secrets.ok()) return secrets.status();
  tc::DiscoverOptions options;
  options.url = url;
  options.timeout_s = timeout_s;
  options.budget_s = budget_s;
  options.ca_file = f.ca_file;
  options.insecure = f.insecure;
  options.headers = std::move(*secrets);
  options.headers.insert(options.headers.end(), t.headers().begin(), t.headers().end());
  std::vector<std::string> words;
  if (!t.auth_token_env().empty())
    words.push_back("--auth-token-env " + tc::ShellQuote(t.auth_token_env()));
  if (!t.auth_token_file().empty())
    words.push_back("--auth-token-file " + tc::ShellQuote(t.auth_token_file()));
  if (!t.auth_header().empty()) words.push_back("--auth-header " + tc::ShellQuote(t.auth_header()));
  if (!f.auth_scheme.empty()) words.push_back("--auth-scheme " + f.auth_scheme);
  if (!t.function_id_env().empty())
    words.push_back("--function-id-env " + tc::ShellQuote(t.function_id_env()));
  if (!t.function_id_file().empty())
    words.push_back("--function-id-file " + tc::ShellQuote(t.function_id_file()));
  for (const std::string& h : f.headers) words.push_back("--header " + tc::ShellQuote(h));
  options.auth_flags = absl::StrJoin(words, " ");
  return tc::Discover(options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ttsbench: measure how fast text-to-speech servers really are"};
  app.set_version_flag("--version,-V", ttsbench::common::kVersion);
  app.require_subcommand(1);
  bool print_plan = false;

  LoadFlags demo_flags;
  demo_flags.streaming = true;
  demo_flags.iterations = 64;
  int demo_slots = 4;
  CLI::App* demo = app.add_subcommand("demo", "benchmark the embedded synthetic TTS server");
  AddLoadFlags(demo, demo_flags);
  AddReplicasFlag(demo, demo_flags);
  demo->add_flag("--streaming,!--no-streaming", demo_flags.streaming,
                 "stream audio (default for demo)");
  demo->add_option("--slots", demo_slots, "parallel synthesis slots of the synthetic server")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  demo->add_flag("--print-plan", print_plan, "print the plan as YAML and exit");

  LoadFlags server_flags;
  std::string url;
  CLI::App* server = app.add_subcommand("server", "benchmark a TTS server");
  server->add_option("--url", url, "base URL of the TTS server (not with --api command)");
  AddLoadFlags(server, server_flags);
  AddReplicasFlag(server, server_flags);
  server->add_flag("--streaming,!--no-streaming", server_flags.streaming, "request streamed audio");
  server->add_flag("--print-plan", print_plan, "print the plan as YAML and exit");

  // Multi-series modes: one series per voice (voices), voice x streamed/not (comprehensive).
  LoadFlags voices_flags, comp_flags, cap_flags;
  std::string voices_url, comp_url, cap_url;
  std::vector<std::string> voices_list, comp_voices;
  CLI::App* voices = app.add_subcommand("voices", "compare voices under the same load");
  voices->add_option("--url", voices_url, "base URL of the TTS server (not with --api command)");
  voices->add_option("--voices", voices_list, "voices to compare")->expected(1, -1)->required();
  AddLoadFlags(voices, voices_flags);
  AddReplicasFlag(voices, voices_flags);
  voices->add_flag("--streaming,!--no-streaming", voices_flags.streaming, "request streamed audio");
  voices->add_flag("--print-plan", print_plan, "print the plan as YAML and exit");
  CLI::App* comprehensive = app.add_subcommand(
      "comprehensive", "streamed and non-streamed sweeps for each voice, in one session");
  comprehensive->add_option("--url", comp_url, "base URL of the TTS server")->required();
  comprehensive->add_option("--voices", comp_voices, "voices (default: --voice)")->expected(1, -1);
  AddLoadFlags(comprehensive, comp_flags);
  AddReplicasFlag(comprehensive, comp_flags);
  comprehensive->add_flag("--print-plan", print_plan, "print the plan as YAML and exit");
  double cap_start = 0, cap_max = 0, cap_resolution = 0;
  int cap_replicas = 0, cap_streams = 0;
  bool cap_open = false;
  CLI::App* capacity = app.add_subcommand(
      "capacity", "find the highest concurrency (or rate) that meets every --slo");
  capacity->add_option("--url", cap_url, "base URL of the TTS server (not with --api command)");
  AddLoadFlags(capacity, cap_flags);
  capacity->add_flag("--streaming,!--no-streaming", cap_flags.streaming, "request streamed audio");
  capacity->add_flag("--open-loop", cap_open, "search request rates instead of concurrency");
  capacity->add_option("--start", cap_start, "first probe (default 1)")->check(CLI::PositiveNumber);
  capacity->add_option("--max", cap_max, "give up above this (default 4096)")
      ->check(CLI::PositiveNumber);
  capacity
      ->add_option("--resolution", cap_resolution,
                   "stop bisecting at this bracket width, % (default 10)")
      ->check(CLI::PositiveNumber);
  capacity
      ->add_option("--replicas", cap_replicas,
                   "server replicas behind the URL (per-replica capacity)")
      ->check(CLI::Range(1, 100000));
  capacity
      ->add_option("--target-streams", cap_streams,
                   "report the replicas needed for this many concurrent streams")
      ->check(CLI::Range(1, 100000000));
  capacity->add_flag("--print-plan", print_plan, "print the plan as YAML and exit");

  LoadFlags disc_flags;
  std::string disc_url;
  std::string disc_timeout = "5s", disc_budget = "30s";
  CLI::App* discover =
      app.add_subcommand("discover", "find a server's TTS endpoints and how to benchmark them");
  discover->add_option("--url", disc_url, "base URL of the server")->required();
  discover->add_option("--timeout", disc_timeout, "per probe (e.g. 5s)")->capture_default_str();
  discover->add_option("--budget", disc_budget, "for the whole discovery (e.g. 30s)")
      ->capture_default_str();
  discover->add_option("--output-dir", disc_flags.output_dir, "where discovery.json is written")
      ->capture_default_str();
  discover->add_option("--auth-token-env", disc_flags.auth_token_env,
                       "environment variable holding the API token (never written out)");
  discover->add_option("--auth-token-file", disc_flags.auth_token_file, "file holding the token")
      ->check(CLI::ExistingFile);
  discover->add_option("--auth-header", disc_flags.auth_header, "header carrying the token");
  discover->add_option("--auth-scheme", disc_flags.auth_scheme, "Bearer, Token or none")
      ->check(CLI::IsMember({"Bearer", "Token", "none"}));
  discover->add_option("--header", disc_flags.headers, "extra header K:V")->expected(1, -1);
  discover->add_option("--function-id-env", disc_flags.function_id_env,
                       "grpc:// URLs: environment variable holding the function id (NVCF)");
  discover
      ->add_option("--function-id-file", disc_flags.function_id_file,
                   "grpc:// URLs: file holding the function id")
      ->check(CLI::ExistingFile);
  discover->add_option("--ca-file", disc_flags.ca_file, "TLS: CA bundle")->check(CLI::ExistingFile);
  discover->add_flag("--insecure", disc_flags.insecure, "TLS: do not verify the certificate");
  discover->add_flag("--json", disc_flags.json,
                     "print discovery.json's document on stdout, the table on stderr");

  std::string plan_path;
  std::vector<std::string> overrides;
  CLI::App* run = app.add_subcommand("run", "run a plan file (YAML)");
  run->add_option("plan", plan_path, "plan file")->required();
  run->add_option("--set", overrides, "override a plan key, e.g. --set load.iterations=100")
      ->expected(1, -1);
  run->add_flag("--print-plan", print_plan, "print the plan as YAML (defaults filled) and exit");
  std::vector<std::string> run_allow_commands;
  run->add_option("--allow-command", run_allow_commands,
                  "api command: a command line the local agents may run, e.g. \"espeak-ng "
                  "--stdout -v {voice}\": the plan's target.command.argv must be it word for "
                  "word (repeatable; a plan file alone allows nothing)")
      ->expected(1, -1);
  bool run_overwrite = false;
  run->add_flag("--overwrite", run_overwrite,
                "replace the session folder of the same name (as output.overwrite: true)");
  bool run_json = false;
  run->add_flag("--json", run_json,
                "print the results as one JSON document on stdout, the table on stderr (as "
                "output.json: true)");

  // Sessions and comparisons over an output directory.
  std::string sessions_dir = "ttsbench-results";
  std::string session_name;
  CLI::App* sessions = app.add_subcommand("sessions", "list, show or delete saved sessions");
  sessions->require_subcommand(1);
  sessions->add_option("--output-dir", sessions_dir, "where sessions are")->capture_default_str();
  sessions->fallthrough();  // --output-dir may follow list/show/delete
  bool sessions_json = false;
  CLI::App* sessions_list = sessions->add_subcommand("list", "an index of the sessions");
  sessions_list->add_flag("--json", sessions_json, "print the list as a JSON array");
  sessions_list->fallthrough();
  CLI::App* sessions_show = sessions->add_subcommand("show", "one session's summary");
  sessions_show->add_option("name", session_name, "session name")->required();
  sessions_show->add_flag("--json", sessions_json,
                          "print the session's session.json (docs/SESSION_SCHEMA.md)");
  sessions_show->fallthrough();
  CLI::App* sessions_delete = sessions->add_subcommand("delete", "remove a session folder");
  sessions_delete->add_option("name", session_name, "session name")->required();
  sessions_delete->fallthrough();

  std::vector<std::string> compare_paths;
  std::vector<std::string> fail_on;
  std::string compare_out;
  bool allow_unevaluated = false;
  CLI::App* compare = app.add_subcommand(
      "compare",
      "compare sessions (the first is the baseline); exit 4 when a --fail-on rule is crossed, "
      "5 when one could not be checked");
  compare->add_option("sessions", compare_paths, "session folders or names in --output-dir")
      ->expected(2, -1)
      ->required();
  compare->add_option("--output-dir", sessions_dir, "where session names are looked up")
      ->capture_default_str();
  compare->add_option("--fail-on", fail_on, "regression gate, e.g. asps=-5% ttfa_p95=+10%")
      ->expected(1, -1);
  compare->add_option("--write", compare_out,
                      "folder to write compare.csv and compare.json to (default: the last "
                      "session's folder)");
  bool compare_json = false;
  compare->add_flag("--json", compare_json,
                    "print compare.json's document on stdout, the table and notes on stderr");
  compare->add_flag("--allow-unevaluated", allow_unevaluated,
                    "pass (exit 0) when a rule could not be evaluated (n/a metric, no common "
                    "level) instead of exiting 5");

  for (CLI::App* cmd : {demo, server, voices, comprehensive, capacity, discover}) {
    ttsbench::coordinator::GroupLoadOptions(*cmd);
  }
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--version" || args[0] == "-V" || args[0] == "version")) {
    std::cout << "ttsbench " << ttsbench::common::kVersion << "\n";
    return 0;
  }
  if (auto st = ttsbench::coordinator::CheckCommandLine(app, args); !st.ok()) {
    std::cerr << "ttsbench: " << st.message() << "\n";
    // The list of modes helps with a missing or unknown mode; a flag's error names --help.
    if (absl::StartsWith(st.message(), "unknown mode") ||
        absl::StartsWith(st.message(), "a mode is required")) {
      std::cerr << "\n" << ttsbench::coordinator::ModeList(app);
    }
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    std::cerr << "ttsbench: unexpected argument(s): "
              << absl::StrJoin(ttsbench::coordinator::InTypedOrder(app.remaining(true), args), " ")
              << "\n";
    return kExitUsage;
  } catch (const CLI::ParseError& e) {
    std::cerr << "ttsbench: " << e.what() << "\n";
    return kExitUsage;
  }

  namespace tc = ttsbench::coordinator;
  for (std::string* u : {&url, &voices_url, &comp_url, &cap_url, &disc_url}) *u = WithScheme(*u);
  if (*sessions) {
    if (*sessions_list) {
      auto list = tc::ListSessions(sessions_dir);
      if (!list.ok()) return Fail(list.status());
      std::cout << (sessions_json ? tc::SessionListJson(*list) : tc::FormatSessionList(*list));
      return 0;
    }
    if (*sessions_show && sessions_json) {
      auto dir = tc::ResolveSessionDir(sessions_dir, session_name);
      if (!dir.ok()) return Fail(dir.status());
      auto loaded = tc::LoadSession(*dir);
      if (!loaded.ok()) return Fail(loaded.status());
      // Written before schema_version existed: the layout of version 1.
      if (loaded->session.schema_version() == 0) loaded->session.set_schema_version(1);
      auto json = tc::ProtoJson(loaded->session);
      if (!json.ok()) return Fail(json.status());
      std::cout << *json;
      return 0;
    }
    if (*sessions_show) {
      auto text = tc::ShowSession(sessions_dir, session_name);
      if (!text.ok()) return Fail(text.status());
      std::cout << *text;
      return 0;
    }
    if (auto st = tc::DeleteSession(sessions_dir, session_name); !st.ok()) return Fail(st);
    std::cout << "deleted " << session_name << "\n";
    return 0;
  }
  if (*compare) {
    std::ostream& human = compare_json ? std::cerr : std::cout;
    tc::CompareOptions options;
    options.allow_unevaluated = allow_unevaluated;
    for (const std::string& text : fail_on) {
      auto rule = tc::ParseFailRule(text);
      if (!rule.ok()) return Fail(rule.status());
      options.fail_on.push_back(std::move(*rule));
    }
    std::vector<tc::LoadedSession> loaded;
    for (const std::string& p : compare_paths) {
      auto dir = tc::ResolveSessionDir(sessions_dir, p);
      if (!dir.ok()) return Fail(dir.status());
      auto session = tc::LoadSession(*dir);
      if (!session.ok()) return Fail(session.status());
      loaded.push_back(std::move(*session));
    }
    auto result = tc::CompareSessions(loaded, options);
    if (!result.ok()) return Fail(result.status());
    human << tc::CompareTable(*result);
    if (compare_json) {
      auto json = tc::CompareJson(*result);
      if (!json.ok()) return Fail(json.status());
      std::cout << *json << std::flush;
    }
    // Next to the newest candidate by default, so the session artifacts explain the verdict. A
    // read-only session (downloaded artifacts) still gets its verdict: only --write must work.
    const bool chosen = !compare_out.empty();
    if (!chosen) compare_out = loaded.back().dir;
    if (auto st = tc::WriteComparison(compare_out, *result); !st.ok()) {
      if (chosen) return Fail(st);
      std::cerr << "ttsbench: note: compare.csv not written (" << st.message()
                << "); --write DIR chooses another folder\n";
    } else {
      human << "Wrote " << (std::filesystem::path(compare_out) / "compare.csv").string()
            << " and compare.json\n";
    }
    if (tc::ComparisonFailed(*result)) return tc::kExitRegression;
    return tc::ComparisonUnevaluated(*result) ? tc::kExitNotEvaluated : 0;
  }

  if (*discover) {
    auto probe_s = DurationFlag("--timeout", disc_timeout, 0.1, 600, false);
    if (!probe_s.ok()) return Fail(probe_s.status());
    auto budget_s = DurationFlag("--budget", disc_budget, 0.1, 3600, false);
    if (!budget_s.ok()) return Fail(budget_s.status());
    auto result = DiscoverWith(disc_url, disc_flags, *probe_s, *budget_s);
    if (!result.ok()) {
      if (absl::StrContains(result.status().message(), "certificate verify failed")) {
        std::cerr << "ttsbench: " << result.status().message()
                  << " (give the server's CA with --ca-file FILE, or skip verification with "
                     "--insecure)\n";
        return kExitRunFailed;
      }
      return Fail(result.status());
    }
    std::ostream& human = disc_flags.json ? std::cerr : std::cout;
    human << tc::DiscoveryTable(*result);
    if (disc_flags.json) std::cout << tc::DiscoveryJson(*result) << std::flush;
    std::error_code ec;
    std::filesystem::create_directories(disc_flags.output_dir, ec);
    const std::string path =
        (std::filesystem::path(disc_flags.output_dir) / "discovery.json").string();
    if (auto st = tc::WriteDiscoveryJson(path, *result); !st.ok()) return Fail(st);
    human << "Wrote " << path << "\n";
    if (result->best_dialect.empty()) {
      std::cerr << "ttsbench: no TTS endpoint found at " << result->url << "\n";
      return kExitRunFailed;
    }
    return 0;
  }

  // A load mode. With --json (or a plan's output.json) stdout is kept for the outcome document
  // from here on and every human line goes to stderr; --print-plan prints its YAML as usual.
  std::unique_ptr<JsonStdout> json_out;
  auto keep_stdout_for_json = [&json_out]() {
    json_out = JsonStdout::Claim();
    json_stdout = json_out.get();
    return json_out != nullptr;
  };
  const bool json_flag = (*demo && demo_flags.json) || (*server && server_flags.json) ||
                         (*voices && voices_flags.json) || (*comprehensive && comp_flags.json) ||
                         (*capacity && cap_flags.json) || (*run && run_json);
  if (json_flag && !print_plan && !keep_stdout_for_json()) {
    return FailWith(kExitUsage, "--json: cannot keep stdout apart from stderr");
  }
  std::ostream& human = json_flag ? std::cerr : std::cout;
  std::unique_ptr<ttsbench::synth::SynthServer> synth;
  ttsbench::coordinator::SessionRequest req;
  if (*run) {
    ttsbench::coordinator::PlanSource source;
    auto plan = ttsbench::coordinator::LoadPlanFile(plan_path, overrides, &source);
    if (!plan.ok()) return Fail(plan.status());
    if (auto st = ttsbench::coordinator::ValidatePlan(*plan, &source); !st.ok()) return Fail(st);
    if (run_overwrite) plan->mutable_output()->set_overwrite(true);
    if (run_json) plan->mutable_output()->set_json(true);
    if (plan->output().json() && !print_plan && json_out == nullptr && !keep_stdout_for_json()) {
      return FailWith(kExitUsage, "output.json: cannot keep stdout apart from stderr");
    }
    req.plan = std::move(*plan);
    req.title = "Benchmark Results Summary";
    req.allow_commands = run_allow_commands;
  } else if (*demo) {
    ttsbench::synth::SynthOptions so;
    so.model.slots = demo_slots;
    auto started = ttsbench::synth::SynthServer::Start(so);
    if (!started.ok()) {
      return FailWith(kExitRunFailed,
                      absl::StrCat("synthetic server: ", started.status().message()));
    }
    synth = std::move(*started);
    for (std::string& u : demo_flags.scrape) {
      if (u == "synth") u = absl::StrCat("http://127.0.0.1:", synth->port(), "/metrics");
    }
    auto plan = BuildPlan("demo", absl::StrCat("http://127.0.0.1:", synth->port()), demo_flags);
    if (!plan.ok()) return Fail(plan.status());
    req.plan = std::move(*plan);
    req.title = "Demo Benchmark Results Summary";
    if (!print_plan) {
      human << "Synthetic TTS server on http://127.0.0.1:" << synth->port() << " (" << demo_slots
            << " slots)\n";
    }
  } else if (*voices) {
    if (voices_url.empty() && voices_flags.api != "command") {
      return Fail(absl::InvalidArgumentError("voices: --url is required (unless --api command)"));
    }
    auto plan = BuildPlan("voices", voices_url, voices_flags, voices_list);
    if (!plan.ok()) return Fail(plan.status());
    req.plan = std::move(*plan);
    req.title = "Voice Comparison Results Summary";
  } else if (*comprehensive) {
    // Discovery first: it picks the dialect (unless --api) and the voices (unless --voices),
    // and its discovery.json goes into the session.
    if (comp_flags.api == "command") {
      return Fail(absl::InvalidArgumentError(
          "comprehensive: --api command is not supported (it compares a server's streamed and "
          "whole answers); use server or voices with --api command"));
    }
    if (!print_plan) {
      auto found = DiscoverWith(comp_url, comp_flags, 5, 30);
      if (!found.ok()) return Fail(found.status());
      human << tc::DiscoveryTable(*found) << "\n";
      if (found->best_dialect.empty()) {
        return FailWith(kExitRunFailed, absl::StrCat("no TTS endpoint found at ", found->url));
      }
      const tc::EndpointProbe& best = found->probes[found->best_probe];
      // Without --api: the default dialect when the server speaks it, else the best match.
      const bool speaks_default =
          std::any_of(found->probes.begin(), found->probes.end(), [&](const auto& p) {
            return p.working && p.kind == "speech" && p.dialect == comp_flags.api;
          });
      if (comprehensive->get_option("--api")->count() == 0 && !speaks_default) {
        human << "Dialect from discovery: " << best.dialect << "\n";
        comp_flags.api = best.dialect;
        if (comprehensive->get_option("--format")->count() == 0 && !best.formats.empty()) {
          comp_flags.format = best.formats.front();
        }
        if (comprehensive->get_option("--path")->count() == 0 && best.path == "/synthesize" &&
            best.dialect == "torch-inference") {
          comp_flags.path = best.path;
        }
      }
      if (comp_voices.empty() && !found->voices.empty()) {
        constexpr size_t kMaxVoices = 4;
        comp_voices.assign(
            found->voices.begin(),
            found->voices.begin() + static_cast<long>(std::min(kMaxVoices, found->voices.size())));
        human << "Voices from discovery: " << absl::StrJoin(comp_voices, " ")
              << (found->voices.size() > kMaxVoices ? " (first 4; --voices to choose)" : "")
              << "\n";
      }
      req.extra_files.emplace_back("discovery.json", tc::DiscoveryJson(*found));
    }
    auto plan = BuildPlan("comprehensive", comp_url, comp_flags, comp_voices);
    if (!plan.ok()) return Fail(plan.status());
    req.plan = std::move(*plan);
    req.title = "Comprehensive Benchmark Results Summary";
  } else if (*capacity) {
    if (cap_url.empty() && cap_flags.api != "command") {
      return Fail(absl::InvalidArgumentError("capacity: --url is required (unless --api command)"));
    }
    if (cap_flags.slo.empty()) {
      return FailWith(kExitUsage, "capacity needs at least one --slo (e.g. --slo ttfa_p95=300ms)");
    }
    if (cap_open && cap_streams > 0) {
      return FailWith(kExitUsage,
                      "capacity: --target-streams counts concurrent streams, but --open-loop "
                      "finds a request rate (requests/s): drop one of them");
    }
    // Probes are chosen by the search; the load flags only set how long each probe runs.
    if (cap_open) cap_flags.rate = {1};
    v1::CapacitySearch cap_search;
    cap_search.set_start(cap_start);
    cap_search.set_max(cap_max);
    cap_search.set_resolution_pct(cap_resolution);
    cap_search.set_replicas(cap_replicas);
    cap_search.set_target_streams(cap_streams);
    auto plan = BuildPlan("capacity", cap_url, cap_flags, {}, &cap_search);
    if (!plan.ok()) return Fail(plan.status());
    req.plan = std::move(*plan);
    req.title = "Capacity Search Results Summary";
  } else {
    if (url.empty() && server_flags.api != "command") {
      return Fail(absl::InvalidArgumentError("server: --url is required (unless --api command)"));
    }
    auto plan = BuildPlan("server", url, server_flags);
    if (!plan.ok()) return Fail(plan.status());
    req.plan = std::move(*plan);
    req.title = "Server Benchmark Results Summary";
  }
  // The command line typed with --command is the user's own choice: allowed for the local agents
  // this run starts (never for remote ones, which have their own --allow-command).
  if (!*run && req.plan.target().api() == "command") {
    const LoadFlags& flags = *voices ? voices_flags : *capacity ? cap_flags : server_flags;
    req.allow_commands = flags.allow_commands;
    const auto& argv = req.plan.target().command().argv();
    const char* path = std::getenv("PATH");
    if (auto program = ttsbench::agent::ResolveProgram(argv[0], path != nullptr ? path : "");
        !program.ok()) {
      return Fail(
          absl::InvalidArgumentError(absl::StrCat("--command: ", program.status().message())));
    }
    req.allow_commands.push_back(
        ttsbench::agent::QuoteCommandWords(std::vector<std::string>(argv.begin(), argv.end())));
  }
  // The recogniser typed with --asr-command is the user's own choice, as --command is; a plan
  // file's asr.command needs --allow-command.
  if (!*run) {
    const LoadFlags& flags = *voices          ? voices_flags
                             : *capacity      ? cap_flags
                             : *demo          ? demo_flags
                             : *comprehensive ? comp_flags
                                              : server_flags;
    req.asr_command_typed = !flags.asr_command.empty();
  }
  req.progress = true;
  if (print_plan) {
    std::cout << ttsbench::coordinator::PlanToYaml(req.plan);
    return 0;
  }
  // Ctrl-C stops the agents and writes the partial session, marked interrupted.
  static std::atomic<bool> interrupted{false};
  struct sigaction sa {};
  sa.sa_handler = [](int) { interrupted.store(true); };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  req.interrupted = &interrupted;
  if (const char* path = std::getenv("PATH"); path != nullptr) req.path_env = path;
  std::ostringstream document;
  const int code =
      ttsbench::coordinator::RunSession(req, json_out ? document : std::cout, std::cerr);
  if (synth) synth->Stop();
  if (json_out != nullptr && !json_out->Print(document.str())) {
    std::cerr << "ttsbench: --json: cannot write the results to stdout\n";
    return code == 0 ? kExitRunFailed : code;
  }
  return code;
}
