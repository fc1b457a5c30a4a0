#include "coordinator/cli/plan_file.h"

#include <google/protobuf/util/message_differencer.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/slo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ttsbench::coordinator {
namespace {

using google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kMinimal[] = R"(target:
  url: http://127.0.0.1:8000
load:
  concurrency: [1, 2]
)";

// Parses and validates as `ttsbench run` does; returns the error message, or "" when valid.
std::string PlanError(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  PlanSource source;
  auto plan = ParsePlanYaml(yaml, "plan.yaml", overrides, &source);
  if (!plan.ok()) return std::string(plan.status().message());
  const absl::Status st = ValidatePlan(*plan, &source);
  return st.ok() ? "" : std::string(st.message());
}

v1::Plan MustLoad(const std::string& yaml, const std::vector<std::string>& overrides = {},
                  PlanSource* source = nullptr) {
  PlanSource local;
  if (source == nullptr) source = &local;
  auto plan = ParsePlanYaml(yaml, "plan.yaml", overrides, source);
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return {};
  const absl::Status st = ValidatePlan(*plan, source);
  EXPECT_TRUE(st.ok()) << st;
  return *plan;
}

struct BrokenPlan {
  const char* name;
  std::string yaml;
  std::vector<std::string> overrides;
  std::string error;
};

// Helper: the minimal valid plan with `extra` appended (top-level keys).
std::string WithMinimal(const std::string& extra) { return absl::StrCat(kMinimal, extra); }

const BrokenPlan kBrokenPlans[] = {
    // ---- parsing: keys
    {"UnknownKeySuggestsSpelling",
     "target:\n  url: http://h:1\nload:\n  concurency: [1]\n",
     {},
     "plan.yaml:4: unknown key 'concurency' in load (did you mean 'concurrency'?)"},
    {"UnknownKeyAtWrongLevelSuggestsPath",
     "target:\n  url: http://h:1\nconcurrency: [1]\n",
     {},
     "plan.yaml:3: unknown key 'concurrency' (did you mean 'load.concurrency'?)"},
    {"UnknownKeyWithoutSuggestion",
     WithMinimal("  colour: red\n"),
     {},
     "plan.yaml:5: unknown key 'colour' in load"},
    {"DuplicateTopLevelKey",
     WithMinimal("target:\n  voice: af\n"),
     {},
     "plan.yaml:5: duplicate key 'target' (first at line 1)"},
    {"UnknownKeyInHeader",
     "target:\n  url: http://h:1\n  headers:\n    - name: X-A\n      vaule: b\n",
     {},
     "plan.yaml:5: unknown key 'vaule' in target.headers[0] (did you mean 'value'?)"},
    {"KeysAreCaseSensitive",
     "Target:\n  url: http://h:1\n",
     {},
     "plan.yaml:1: unknown key 'Target' (did you mean 'target'?)"},
    {"ListOfSectionsNeedsSequence",
     "target:\n  url: http://h:1\n  headers: {name: X-A}\n",
     {},
     "plan.yaml:3: target.headers: expected a sequence, got a map"},
    {"DuplicateKey",
     "target:\n  url: http://h:1\nload:\n  iterations: 5\n  iterations: 6\n",
     {},
     "plan.yaml:5: duplicate key 'iterations' in load (first at line 4)"},
    {"NonScalarKey", "[a, b]: 1\n", {}, "plan.yaml:1: keys must be names, got a sequence"},
    {"TopLevelSequence",
     "- target\n- load\n",
     {},
     "plan.yaml:1: top level: expected a map of keys, got a sequence"},
    {"SectionIsAList",
     "target: [http://h:1]\n",
     {},
     "plan.yaml:1: target: expected a map of keys, got a sequence"},
    // ---- parsing: types and ranges
    {"IntegerGotWord",
     WithMinimal("  iterations: ten\n"),
     {},
     "plan.yaml:5: load.iterations: expected an integer, got 'ten'"},
    {"IntegerGotQuotedString",
     WithMinimal("  iterations: \"50\"\n"),
     {},
     "plan.yaml:5: load.iterations: expected an integer, got the string \"50\""},
    {"IntegerGotFraction",
     WithMinimal("  warmup: 2.5\n"),
     {},
     "plan.yaml:5: load.warmup: expected an integer, got '2.5'"},
    {"IntegerOutOfInt32Range",
     WithMinimal("  iterations: 3000000000\n"),
     {},
     "plan.yaml:5: load.iterations: must be between -2147483648 and 2147483647"},
    {"UnsignedGotNegative",
     WithMinimal("texts:\n  seed: -1\n"),
     {},
     "plan.yaml:6: texts.seed: must be between 0 and 18446744073709551615"},
    {"BoolIsTrueOrFalseOnly",
     "target:\n  url: http://h:1\n  streaming: yes\n",
     {},
     "plan.yaml:3: target.streaming: expected true or false, got 'yes'"},
    {"BoolGotQuotedString",
     "target:\n  url: http://h:1\n  streaming: \"true\"\n",
     {},
     "plan.yaml:3: target.streaming: expected true or false, got the string \"true\""},
    {"DoubleGotWord",
     "target:\n  url: http://h:1\n  timeout_s: soon\n",
     {},
     "plan.yaml:3: target.timeout_s: expected a number, got 'soon'"},
    {"DoubleNotFinite",
     "target:\n  url: http://h:1\n  timeout_s: inf\n",
     {},
     "plan.yaml:3: target.timeout_s: must be a finite number, got 'inf'"},
    {"StringGotMap",
     "target:\n  url: {host: h}\n",
     {},
     "plan.yaml:2: target.url: expected a string, got a map"},
    {"ListElementWrongType",
     WithMinimal("  rate:\n    - 5\n    - fast\n"),
     {},
     "plan.yaml:7: load.rate[1]: expected a number, got 'fast'"},
    {"ListEmptyEntry",
     "target:\n  url: http://h:1\nload:\n  concurrency:\n    - 1\n    -\n",
     {},
     "plan.yaml:4: load.concurrency[1]: empty entry"},
    {"ListGotMap",
     "target:\n  url: http://h:1\nload:\n  concurrency: {a: 1}\n",
     {},
     "plan.yaml:4: load.concurrency: expected a sequence, got a map"},
    // ---- YAML syntax
    {"YamlSyntaxError",
     "target:\n  url: http://h:1\nload:\n  iterations: 3\n   warmup: 2\n",
     {},
     "plan.yaml:5: illegal map value"},
    {"YamlTabIndentation",
     "load:\n  iterations: 3\n\tconcurrency: [1]\n",
     {},
     "plan.yaml:3: illegal tab when looking for indentation"},
    {"TwoDocuments",
     WithMinimal("---\nmode: run\n"),
     {},
     "plan.yaml:5: a plan file holds one YAML document (found a second)"},
    {"StrayComma", "# a plan\n,\n", {}, "plan.yaml:2: unexpected ','"},
    // ---- validation: required fields and values
    {"MissingUrl",
     "target:\n  voice: af\nload:\n  concurrency: [1]\n",
     {},
     "plan.yaml:1: target.url: required (http(s)://host[:port][/base])"},
    {"MissingTarget",
     "load:\n  concurrency: [1]\n",
     {},
     "plan.yaml: target.url: required (http(s)://host[:port][/base])"},
    {"EmptyFile", "", {}, "plan.yaml: target.url: required (http(s)://host[:port][/base])"},
    {"BadUrlScheme",
     "target:\n  url: ftp://h/x\n",
     {},
     "plan.yaml:2: target.url: invalid URL 'ftp://h/x': scheme must be http or https (grpc or "
     "grpcs for api riva)"},
    {"GrpcUrlWithHttpApi",
     "target:\n  url: grpc://h:1\n",
     {},
     "plan.yaml:2: target.url: grpc:// and grpcs:// URLs are for api: riva"},
    {"RivaWithHttpUrl",
     "target:\n  url: http://h:1\n  api: riva\n",
     {},
     "plan.yaml:2: target.url: api: riva needs grpc://host:port (or grpcs:// for TLS)"},
    {"RivaWavFormat",
     "target:\n  url: grpc://h:1\n  api: riva\n  format: wav\n",
     {},
     "plan.yaml:4: target.format: must be one of pcm, opus, ogg, got 'wav'"},
    {"RivaFunctionIdPasted",
     "target:\n  url: grpcs://h:443\n  api: riva\n  function_id_env: 0149dedb-2be8\n",
     {},
     "plan.yaml:4: target.function_id_env: must be the name of an environment variable "
     "(letters, digits, _), not the id"},
    {"FunctionIdWithoutRiva",
     "target:\n  url: http://h:1\n  function_id_env: FN\n",
     {},
     "plan.yaml:3: target.function_id_env: is only for api: riva"},
    {"PacingJitterOutOfRange",
     "target:\n  url: http://h:1\n  api: deepgram\npacing:\n  tokens_per_s: 10\n  jitter: 2\n"
     "load:\n  concurrency: [1]\n",
     {},
     "plan.yaml:6: pacing.jitter: must be in [0, 1), got 2"},
    {"PacingNeedsTextOverTime",
     "target:\n  url: http://h:1\npacing:\n  tokens_per_s: 10\nload:\n  concurrency: [1]\n",
     {},
     "plan.yaml:3: pacing: needs a WebSocket API that takes text over time (elevenlabs with "
     "stream_format ws, cartesia, deepgram, vllm-omni)"},
    {"ConversationJitterOutOfRange",
     "target:\n  url: http://h:1\nconversation:\n  turns: 3\n  think_jitter: 1.5\n"
     "load:\n  concurrency: [1]\n",
     {},
     "plan.yaml:5: conversation.think_jitter: must be in [0, 1), got 1.5"},
    {"ConversationNeedsTurns",
     "target:\n  url: http://h:1\nconversation:\n  think_time_ms: 300\n"
     "load:\n  concurrency: [1]\n",
     {},
     "plan.yaml:3: conversation.turns: must be >= 2 with a think time, got 0"},
    {"ConversationNeedsClosedLoop",
     "target:\n  url: http://h:1\nconversation:\n  turns: 3\n"
     "load:\n  model: open\n  rate: [5]\n",
     {},
     "plan.yaml:3: conversation: needs load.model: closed (each virtual user converses)"},
    {"ConversationRefusesAConnectionPerRequest",
     "target:\n  url: http://h:1\nconversation:\n  turns: 3\n"
     "load:\n  concurrency: [1]\n  connections: per_request\n",
     {},
     "plan.yaml:7: load.connections: per_request cannot be combined with conversation turns (a "
     "conversation keeps one connection for its turns)"},
    {"BadApi",
     "target:\n  url: http://h:1\n  api: openia\n",
     {},
     "plan.yaml:3: target.api: must be one of openai, torch-inference, coqui, opentts, piper, "
     "elevenlabs, template, command, riva, cartesia, deepgram, vllm-omni, got 'openia'"},
    {"BadFormat",
     "target:\n  url: http://h:1\n  format: ogg\n",
     {},
     "plan.yaml:3: target.format: must be one of wav, pcm, mp3, opus, aac, flac, ulaw, got 'ogg'"},
    {"SampleRateOutOfRange",
     "target:\n  url: http://h:1\n  sample_rate: 500\n",
     {},
     "plan.yaml:3: target.sample_rate: must be between 1000 and 768000"},
    {"MaxEventBytesOutOfRange",
     "target:\n  url: http://h:1\n  max_event_bytes: 100\n",
     {},
     "plan.yaml:3: target.max_event_bytes: must be between 1024 and 67108864"},
    {"ContinuityWithoutStreaming",
     "target:\n  url: http://h:1\nload:\n  concurrency: 1\nslo: [\"continuity_ok=99%\"]\n",
     {},
     "plan.yaml:5: slo[0]: continuity_ok needs streamed answers: add --streaming "
     "(target.streaming)"},
    {"WarmupByCountAndByTime",
     "target:\n  url: http://h:1\nload:\n  concurrency: 1\n  warmup: 3\n  warmup_s: 5\n",
     {},
     "plan.yaml:6: load.warmup_s: warm-up is by count (load.warmup) or by time, not both"},
    {"LevelTimeLimitShorterThanTheLevel",
     "target:\n  url: http://h:1\nload:\n  concurrency: 1\n  duration_s: 20\n  level_time_limit_s: "
     "5\n",
     {},
     "plan.yaml:6: load.level_time_limit_s: 5 s is shorter than the level itself (20 s of "
     "warm-up, ramp-up and duration)"},
    {"NegativeTimeout",
     "target:\n  url: http://h:1\n  timeout_s: -1\n",
     {},
     "plan.yaml:3: target.timeout_s: must be > 0"},
    {"SseOnlyForOpenai",
     "target:\n  url: http://h:1\n  api: piper\n  stream_format: sse\nload:\n  concurrency: 1\n",
     {},
     "plan.yaml:4: target.stream_format: sse is only for api: openai"},
    {"TokenEnvAndFileExclusive",
     "target:\n  url: http://h:1\n  auth_token_env: TTS_KEY\n  auth_token_file: /run/key\n",
     {},
     "plan.yaml:4: target.auth_token_file: give auth_token_env or auth_token_file, not both"},
    {"TokenPastedAsEnvName",
     "target:\n  url: http://h:1\n  auth_token_env: sk-12ab\n",
     {},
     "plan.yaml:3: target.auth_token_env: must be the name of an environment variable (letters, "
     "digits, _), not a token"},
    {"AuthSchemeWithoutToken",
     "target:\n  url: http://h:1\n  auth_scheme: Token\n",
     {},
     "plan.yaml:3: target.auth_scheme: needs auth_token_env or auth_token_file"},
    {"BadAuthScheme",
     "target:\n  url: http://h:1\n  auth_token_env: K\n  auth_scheme: Basic\n",
     {},
     "plan.yaml:4: target.auth_scheme: must be one of Bearer, Token, none, got 'Basic'"},
    {"CredentialsInHeaders",
     "target:\n  url: http://h:1\n  headers:\n    - name: authorization\n      value: Bearer x\n",
     {},
     "plan.yaml:4: target.headers[0].name: credentials go in auth_token_env or auth_token_file, "
     "not in headers"},
    {"BadHeaderName",
     "target:\n  url: http://h:1\n  headers:\n    - {name: 'X A', value: b}\n",
     {},
     "plan.yaml:4: target.headers[0].name: 'X A' is not a header name"},
    {"BadTextLength",
     WithMinimal("texts:\n  length: huge\n"),
     {},
     "plan.yaml:6: texts.length: must be one of short, medium, long, mixed, got 'huge'"},
    {"SessionNameWithSlash",
     WithMinimal("session_name: a/b\n"),
     {},
     "plan.yaml:5: session_name: must be a plain folder name (no '/')"},
    // ---- validation: load
    {"ConcurrencyOutOfRange",
     "target:\n  url: http://h:1\nload:\n  concurrency:\n    - 1\n    - 0\n",
     {},
     "plan.yaml:6: load.concurrency[1]: must be between 1 and 1000000"},
    {"ClosedNeedsConcurrency",
     "target:\n  url: http://h:1\nload:\n  iterations: 5\n",
     {},
     "plan.yaml:3: load.concurrency: required for the closed model (e.g. [1, 2, 4])"},
    {"OpenNeedsRate",
     "target:\n  url: http://h:1\nload:\n  model: open\n",
     {},
     "plan.yaml:3: load.rate: required for the open model (requests/s, e.g. [5, 10])"},
    {"RateMustBePositive",
     "target:\n  url: http://h:1\nload:\n  model: open\n  rate: [5, 0]\n",
     {},
     "plan.yaml:5: load.rate[1]: must be > 0"},
    {"RateInClosedModel",
     WithMinimal("  rate: [5]\n"),
     {},
     "plan.yaml:5: load.rate: only for load.model: open"},
    {"ConcurrencyInOpenModel",
     WithMinimal("  model: open\n  rate: 5\n"),
     {},
     "plan.yaml:4: load.concurrency: only for load.model: closed (open loop uses load.rate)"},
    {"BadLoadModel",
     WithMinimal("  model: closed-loop\n"),
     {},
     "plan.yaml:5: load.model: must be one of closed, open, got 'closed-loop'"},
    {"BadArrival",
     "target:\n  url: http://h:1\nload:\n  model: open\n  rate: 5\n  arrival: burst\n",
     {},
     "plan.yaml:6: load.arrival: must be one of constant, poisson, gamma, got 'burst'"},
    {"BurstinessNeedsGamma",
     "target:\n  url: http://h:1\nload:\n  model: open\n  rate: 5\n  burstiness: 0.5\n",
     {},
     "plan.yaml:6: load.burstiness: only used with arrival: gamma"},
    {"NegativeIterations",
     WithMinimal("  iterations: -3\n"),
     {},
     "plan.yaml:5: load.iterations: must be >= 1"},
    {"NegativeWarmup", WithMinimal("  warmup: -1\n"), {}, "plan.yaml:5: load.warmup: must be >= 0"},
    {"NegativeDuration",
     WithMinimal("  duration_s: -1\n"),
     {},
     "plan.yaml:5: load.duration_s: must be >= 0"},
    {"BadConnections",
     WithMinimal("  connections: close\n"),
     {},
     "plan.yaml:5: load.connections: must be one of keepalive, per_request, got 'close'"},
    // ---- validation: agents
    {"SpawnOutOfRange",
     WithMinimal("agents:\n  spawn: 300\n"),
     {},
     "plan.yaml:6: agents.spawn: must be between 1 and 256"},
    {"ExpectNeedsListen",
     WithMinimal("agents:\n  expect: 3\n"),
     {},
     "plan.yaml:5: agents.listen: required with agents.expect (e.g. 0.0.0.0:7070)"},
    {"SpawnAndExpect",
     WithMinimal("agents:\n  expect: 3\n  spawn: 2\n  listen: 0.0.0.0:7070\n"),
     {},
     "plan.yaml:7: agents.spawn: give agents.spawn (local) or agents.expect (remote), not both"},
    {"BadListen",
     WithMinimal("agents:\n  expect: 1\n  listen: 7070\n"),
     {},
     "plan.yaml:7: agents.listen: invalid address '7070' (HOST:PORT)"},
    {"WeightMustBePositive",
     WithMinimal("agents:\n  expect: 2\n  listen: 0.0.0.0:7070\n  weights: [1, 0]\n"),
     {},
     "plan.yaml:8: agents.weights[1]: must be > 0"},
    {"WeightPerAgent",
     WithMinimal("agents:\n  expect: 3\n  listen: 0.0.0.0:7070\n  weights: [1, 2]\n"),
     {},
     "plan.yaml:8: agents.weights: has 2 entries for 3 agents (one weight per agent)"},
    {"BadFailurePolicy",
     WithMinimal("agents:\n  failure_policy: retry\n"),
     {},
     "plan.yaml:6: agents.failure_policy: must be one of abort, continue, got 'retry'"},
    {"LeaseOutOfRange",
     WithMinimal("agents:\n  lease_s: 90\n"),
     {},
     "plan.yaml:6: agents.lease_s: must be between 1 and 60"},
    {"ClockUncertaintyPositive",
     WithMinimal("agents:\n  max_clock_uncertainty_ms: -2\n"),
     {},
     "plan.yaml:6: agents.max_clock_uncertainty_ms: must be > 0"},
    {"TlsAllOrNone",
     WithMinimal("agents:\n  tls_cert: c.pem\n  tls_ca: ca.pem\n"),
     {},
     "plan.yaml:5: agents.tls_key: tls_cert, tls_key and tls_ca go together (give all three or "
     "none)"},
    // ---- validation: slo, output, voices
    {"SloNotNameValue",
     WithMinimal("slo:\n  - ttfa_p95<300ms\n"),
     {},
     "plan.yaml:6: slo[0]: 'ttfa_p95<300ms' is not NAME=VALUE (e.g. ttfa_p95=300ms)"},
    {"SloUnknownMetric",
     WithMinimal("slo: [ttfa_p90=300ms]\n"),
     {},
     "plan.yaml:5: slo[0]: unknown metric 'ttfa_p90' (one of ttfa_p50, ttfa_p95, ttfa_p99, "
     "ttfa_mean, latency_p50, latency_p95, latency_p99, latency_mean, rtf_mean, rtf_p50, rtf_p95, "
     "rtf_p99, success_rate, continuity_ok, asps, rps, goodput)"},
    {"SloLatencyNeedsUnit",
     WithMinimal("slo:\n  - rtf_p95=0.5\n  - ttfa_p95=300\n"),
     {},
     "plan.yaml:7: slo[1]: ttfa_p95 needs a unit, ms or s (e.g. ttfa_p95=300ms)"},
    {"SloRateIsPercent",
     WithMinimal("slo: success_rate=0.99\n"),
     {},
     "plan.yaml:5: slo[0]: success_rate is a percentage (e.g. success_rate=99%)"},
    {"SloPercentAbove100",
     WithMinimal("slo: success_rate=101%\n"),
     {},
     "plan.yaml:5: slo[0]: success_rate must be <= 100%"},
    {"SloPlainNumberHasNoUnit",
     WithMinimal("slo: [rtf_p95=0.5ms]\n"),
     {},
     "plan.yaml:5: slo[0]: rtf_p95 takes a plain number, got unit 'ms'"},
    {"SloBadNumber",
     WithMinimal("slo: [ttfa_p95=fast]\n"),
     {},
     "plan.yaml:5: slo[0]: 'fast' is not a threshold (a number >= 0)"},
    {"SloDuplicate",
     WithMinimal("slo: [ttfa_p95=1s, ttfa_p95=2s]\n"),
     {},
     "plan.yaml:5: slo[1]: ttfa_p95 is already set by slo[0]"},
    {"BadMetricsAddr",
     WithMinimal("output:\n  metrics_addr: localhost\n"),
     {},
     "plan.yaml:6: output.metrics_addr: invalid address 'localhost' (HOST:PORT)"},
    {"DuplicateVoice",
     WithMinimal("voices: [af, bf, af]\n"),
     {},
     "plan.yaml:5: voices[2]: 'af' is already voices[0]"},
    // ---- overrides
    {"OverrideUnknownKey",
     kMinimal,
     {"load.concurency=4"},
     "--set load.concurency=4: unknown key 'concurency' in load (did you mean 'concurrency'?)"},
    {"OverrideWrongType",
     kMinimal,
     {"load.iterations=lots"},
     "--set load.iterations=lots: load.iterations: expected an integer, got 'lots'"},
    {"OverrideWithoutValue",
     kMinimal,
     {"load.iterations"},
     "--set load.iterations: expected KEY=VALUE"},
    {"OverrideBelowScalar",
     kMinimal,
     {"target.url.host=x"},
     "--set target.url.host=x: 'target.url' has no keys under it"},
    {"OverrideYamlError",
     kMinimal,
     {"load.concurrency=[1,2"},
     "--set load.concurrency=[1,2: invalid YAML value: end of sequence flow not found"},
    {"OverrideStrayComma",
     kMinimal,
     {"load.concurrency=,"},
     "--set load.concurrency=,: invalid YAML value: unexpected ','"},
    {"OverrideOutOfRangeNamesOverride",
     kMinimal,
     {"load.concurrency=[4, 0]"},
     "--set load.concurrency=[4, 0]: load.concurrency[1]: must be between 1 and 1000000"},
    {"OverrideSemanticError",
     kMinimal,
     {"load.iterations=-1"},
     "--set load.iterations=-1: load.iterations: must be >= 1"},
};

void PrintTo(const BrokenPlan& plan, std::ostream* os) { *os << plan.name; }

class BrokenPlanTest : public ::testing::TestWithParam<BrokenPlan> {};

TEST_P(BrokenPlanTest, FailsWithExactMessage) {
  EXPECT_EQ(PlanError(GetParam().yaml, GetParam().overrides), GetParam().error) << GetParam().yaml;
}

INSTANTIATE_TEST_SUITE_P(Table, BrokenPlanTest, ::testing::ValuesIn(kBrokenPlans),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ParsePlanYamlTest, FillsEveryDefault) {
  const v1::Plan plan = MustLoad(kMinimal);
  EXPECT_EQ(plan.mode(), "run");
  EXPECT_EQ(plan.output_dir(), "ttsbench-results");
  EXPECT_EQ(plan.session_name(), "");
  EXPECT_EQ(plan.target().api(), "openai");
  EXPECT_EQ(plan.target().format(), "wav");
  EXPECT_EQ(plan.target().timeout_s(), 30);
  EXPECT_EQ(plan.target().auth_scheme(), "");  // only with a token
  EXPECT_EQ(plan.texts().length(), "medium");
  EXPECT_EQ(plan.load().model(), "closed");
  EXPECT_EQ(plan.load().iterations(), 40);
  EXPECT_EQ(plan.load().warmup(), 0);
  EXPECT_EQ(plan.load().connections(), "keepalive");
  EXPECT_EQ(plan.load().stall_threshold_ms(), 100);
  EXPECT_EQ(plan.load().arrival(), "");  // open loop only
  EXPECT_EQ(plan.agents().spawn(), 2);
  EXPECT_EQ(plan.agents().connect_timeout_s(), 30);
  EXPECT_EQ(plan.agents().failure_policy(), "abort");
  EXPECT_EQ(plan.agents().max_clock_uncertainty_ms(), 10);
  EXPECT_EQ(plan.agents().lease_s(), 5);
}

TEST(ParsePlanYamlTest, OpenLoopAndTokenDefaults) {
  const v1::Plan plan = MustLoad(
      "target:\n  url: https://h\n  auth_token_file: /run/key\nload:\n  model: open\n  rate: 2.5\n"
      "  duration_s: 10\n");
  EXPECT_EQ(plan.target().auth_scheme(), "Bearer");
  EXPECT_EQ(plan.target().auth_header(), "Authorization");
  EXPECT_THAT(plan.load().rate(), ElementsAre(2.5));  // a scalar is a one-element list
  EXPECT_EQ(plan.load().arrival(), "poisson");
  EXPECT_EQ(plan.load().burstiness(), 1);
  EXPECT_EQ(plan.load().iterations(), 0);  // bounded by duration_s instead
}

TEST(ParsePlanYamlTest, RecordsLinesOfKeysAndListElements) {
  PlanSource source;
  MustLoad(
      "# comment\ntarget:\n  url: http://h:1\n  headers:\n    - name: X-A\n      value: b\n"
      "load:\n  concurrency:\n    - 1\n    - 4\n",
      {}, &source);
  EXPECT_EQ(source.file, "plan.yaml");
  EXPECT_EQ(source.lines.at("target"), 2);
  EXPECT_EQ(source.lines.at("target.url"), 3);
  EXPECT_EQ(source.lines.at("target.headers[0]"), 5);
  EXPECT_EQ(source.lines.at("target.headers[0].value"), 6);
  EXPECT_EQ(source.lines.at("load.concurrency"), 8);
  EXPECT_EQ(source.lines.at("load.concurrency[1]"), 10);
}

TEST(ParsePlanYamlTest, MaxEventBytesIsAPlanKey) {
  EXPECT_EQ(MustLoad(WithMinimal(""), {"target.max_event_bytes=262144"}).target().max_event_bytes(),
            262144u);
  EXPECT_EQ(MustLoad(WithMinimal("")).target().max_event_bytes(), 0u);  // the agent's 1 MiB
}

TEST(ParsePlanYamlTest, NullValueLeavesFieldUnset) {
  const v1::Plan plan = MustLoad(WithMinimal("  iterations:\ndescription: ~\n"));
  EXPECT_EQ(plan.load().iterations(), 40);
  EXPECT_EQ(plan.description(), "");
}

TEST(ParsePlanYamlTest, OverridesReplaceValuesAndForgetTheirLines) {
  PlanSource source;
  const v1::Plan plan =
      MustLoad(WithMinimal("  iterations: 10\n"),
               {"load.iterations=50", "target.voice=af", "load.concurrency=[1,2,4]",
                "target.streaming=true", "texts.seed=7"},
               &source);
  EXPECT_EQ(plan.load().iterations(), 50);
  EXPECT_EQ(plan.target().voice(), "af");
  EXPECT_THAT(plan.load().concurrency(), ElementsAre(1, 2, 4));
  EXPECT_TRUE(plan.target().streaming());
  EXPECT_EQ(plan.texts().seed(), 7u);
  EXPECT_EQ(source.lines.count("load.iterations"), 0u);
  EXPECT_EQ(source.lines.count("load.concurrency[1]"), 0u);
  EXPECT_EQ(source.overrides.at("load.concurrency"), "load.concurrency=[1,2,4]");
  EXPECT_EQ(source.lines.at("load"), 3);
}

TEST(ParsePlanYamlTest, EmptyOverrideValueClearsField) {
  const v1::Plan plan = MustLoad(WithMinimal("  iterations: 10\n"), {"load.iterations="});
  EXPECT_EQ(plan.load().iterations(), 40);
}

TEST(ParsePlanYamlTest, OverrideCanSetWholeSection) {
  const v1::Plan plan =
      MustLoad(kMinimal, {"agents={expect: 2, listen: '0.0.0.0:7070', weights: [1, 3]}"});
  EXPECT_EQ(plan.agents().expect(), 2);
  EXPECT_THAT(plan.agents().weights(), ElementsAre(1, 3));
}

TEST(ValidatePlanTest, FlagBuiltPlanErrorsNameOnlyThePath) {
  v1::Plan plan;
  plan.mutable_target()->set_url("http://h:1");
  plan.mutable_load()->add_concurrency(0);
  EXPECT_EQ(ValidatePlan(plan, nullptr).message(),
            "load.concurrency[0]: must be between 1 and 1000000");
}

TEST(ValidatePlanTest, StringsThatAreNotUtf8AreRefusedByPath) {
  v1::Plan plan;
  plan.mutable_target()->set_url("http://h:1");
  plan.add_voices("Grüße, \"x\"\n");
  plan.add_voices("bad\xff");
  EXPECT_EQ(ValidatePlan(plan, nullptr).message(), "voices[1]: not valid UTF-8 (byte 4)");
  plan.set_voices(1, "ok");
  plan.mutable_target()->add_headers()->set_value("\xc3");
  EXPECT_EQ(ValidatePlan(plan, nullptr).message(),
            "target.headers[0].value: not valid UTF-8 (byte 1)");
}

TEST(ValidatePlanTest, IsIdempotent) {
  v1::Plan plan = MustLoad(
      "target:\n  url: http://h:1\n  auth_token_env: KEY\nload:\n  model: open\n  rate: [1, 2]\n"
      "  arrival: gamma\n  burstiness: 0.5\nagents:\n  weights: [1, 2]\n");
  const v1::Plan once = plan;
  ASSERT_TRUE(ValidatePlan(plan, nullptr).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(plan, once));
}

// Fills every field group the YAML mapping handles: strings that YAML would read as something
// else, doubles, 64-bit integers, repeated messages, empty sections.
TEST(PlanToYamlTest, ValidPlanRoundTrips) {
  v1::Plan plan = MustLoad(
      "description: \"null\"\nmode: run\ntarget:\n  url: http://h:1/base\n"
      "  voice: '123'\n  instructions: \"Speak: slowly\\nthen stop # not a comment\"\n"
      "  model: ''\n  speed: 0.1\n  streaming: true\n  headers:\n    - {name: X-A, value: 'true'}\n"
      "    - {name: X-B, value: ~x}\ntexts:\n  seed: 18446744073709551615\n  file: ./tëxts.txt\n"
      "load:\n  concurrency: [1, 1000000]\n  ramp_up_s: 1.5e-3\n"
      "slo: [ttfa_p95=300ms, 'success_rate=99.5%']\nvoices: [af, 'yes']\noutput: {}\n");
  EXPECT_TRUE(plan.has_output());
  const std::string yaml = PlanToYaml(plan);
  PlanSource source;
  auto again = ParsePlanYaml(yaml, "printed.yaml", {}, &source);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << yaml;
  EXPECT_TRUE(MessageDifferencer::Equals(plan, *again)) << yaml;
  EXPECT_TRUE(ValidatePlan(*again, &source).ok());
  EXPECT_THAT(yaml, HasSubstr("concurrency: [1, 1000000]"));
  EXPECT_THAT(yaml, HasSubstr("speed: 0.1\n"));
}

TEST(PlanToYamlTest, PrintsOnlySetFieldsInProtoOrder) {
  v1::Plan plan;
  plan.set_mode("run");
  plan.mutable_target()->set_url("http://h:1");
  plan.mutable_load()->add_rate(2.5);
  EXPECT_EQ(PlanToYaml(plan), "mode: run\ntarget:\n  url: http://h:1\nload:\n  rate: [2.5]\n");
}

TEST(LoadPlanFileTest, MissingFileIsNotFound) {
  auto plan = LoadPlanFile("/nonexistent/plan.yaml", {}, nullptr);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(plan.status().message(), HasSubstr("/nonexistent/plan.yaml: cannot open"));
}

TEST(LoadPlanFileTest, DirectoryIsNotAPlan) {
  auto plan = LoadPlanFile(TTSBENCH_SOURCE_DIR "/examples", {}, nullptr);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("is a directory"));
}

TEST(ParsePlanYamlTest, CommentOnlyFileIsAnEmptyPlan) {
  auto plan = ParsePlanYaml("# nothing yet\n", "plan.yaml", {}, nullptr);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->ByteSizeLong(), 0u);
}

TEST(ExamplesTest, EveryExampleParsesAndValidates) {
  const std::filesystem::path dir = std::filesystem::path(TTSBENCH_SOURCE_DIR) / "examples";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    SCOPED_TRACE(entry.path().string());
    PlanSource source;
    auto plan = LoadPlanFile(entry.path().string(), {}, &source);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_TRUE(ValidatePlan(*plan, &source).ok()) << ValidatePlan(*plan, &source);
    EXPECT_FALSE(plan->description().empty());
    // What --print-plan shows must load again as the same plan.
    auto printed = ParsePlanYaml(PlanToYaml(*plan), "printed.yaml", {}, nullptr);
    ASSERT_TRUE(printed.ok()) << printed.status();
    EXPECT_TRUE(MessageDifferencer::Equals(*plan, *printed));
  }
  EXPECT_GE(count, 4);
}

// One SLO grammar: whatever `--slo` (common/slo) accepts, a plan file accepts, and the other way
// round; every metric name common/slo knows is valid in a plan.
TEST(PlanSloTest, ThePlanValidatorAndCommonSloAcceptAndRejectTheSameSet) {
  std::vector<std::string> texts = {"ttfa_mean=200ms",
                                    "latency_mean=1s",
                                    "rtf_p50=0.3",
                                    "rtf_mean=0.5",
                                    "ttfa_p95=300ms",
                                    "latency_p99=1.5s",
                                    "success_rate=99.5%",
                                    "continuity_ok=95%",
                                    "asps=20",
                                    "rps=3.5",
                                    "goodput=2",
                                    "TTFA_P50=100ms",
                                    "ttfa_p95 = 300 ms",
                                    "ttfa_p95=300",
                                    "ttfa_p95=300m",
                                    "success_rate=0.99",
                                    "success_rate=101%",
                                    "rtf_p95=0.5ms",
                                    "rtf_p95=-1",
                                    "asps=fast",
                                    "ttfa_p90=300ms",
                                    "ttfa_p95",
                                    "=5",
                                    "latency_p99=",
                                    "rps=1e3",
                                    "goodput=5/s"};
  for (const std::string& name : common::SloMetricNames()) {
    texts.push_back(
        absl::StrCat(name, "=1",
                     absl::StartsWith(name, "ttfa_") || absl::StartsWith(name, "latency_") ? "ms"
                     : name == "success_rate" || name == "continuity_ok"                   ? "%"
                                                                                           : ""));
  }
  int accepted = 0;
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    const auto parsed = common::ParseSlo(text);
    // Streamed, so that continuity_ok is a grammar question here, not a plan one.
    const std::string plan_error =
        PlanError(WithMinimal(absl::StrCat("slo: ['", text, "']\n")), {"target.streaming=true"});
    EXPECT_EQ(parsed.ok(), plan_error.empty()) << parsed.status() << " | " << plan_error;
    if (!parsed.ok()) {
      EXPECT_THAT(plan_error, HasSubstr(parsed.status().message()));
    }
    accepted += parsed.ok();
  }
  EXPECT_EQ(accepted, 14 + static_cast<int>(common::SloMetricNames().size()));
}

TEST(PlanFileTest, AudioQualityBoundsAreCheckedWithTheirKeyAndLine) {
  const std::string checks = "audio_checks:\n  enabled: true\n";
  EXPECT_EQ(PlanError(WithMinimal(checks + "  min_duration_ratio: 1.5\n")),
            "plan.yaml:7: audio_checks.min_duration_ratio: must be between 0.01 and 1");
  EXPECT_EQ(PlanError(WithMinimal(checks + "  max_duration_ratio: 0.5\n")),
            "plan.yaml:7: audio_checks.max_duration_ratio: must be between 1 and 100");
  EXPECT_EQ(PlanError(WithMinimal(checks + "  min_envelope_correlation: 2\n")),
            "plan.yaml:7: audio_checks.min_envelope_correlation: must be between -1 and 1");
  EXPECT_EQ(PlanError(WithMinimal(checks + "  max_flagged_pct: 150\n")),
            "plan.yaml:7: audio_checks.max_flagged_pct: must be between 0 and 100");
  EXPECT_EQ(PlanError(WithMinimal(checks + "  max_edge_silence_ms: -1\n")),
            "plan.yaml:7: audio_checks.max_edge_silence_ms: must be > 0");
  const v1::Plan plan = MustLoad(
      WithMinimal(checks + "  min_duration_ratio: 0.8\n" + "  min_envelope_correlation: -0.5\n"));
  EXPECT_EQ(plan.audio_checks().min_duration_ratio(), 0.8);
  EXPECT_EQ(plan.audio_checks().min_envelope_correlation(), -0.5);
}

}  // namespace
}  // namespace ttsbench::coordinator
