#include "coordinator/discover/discover_riva.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/client/riva_transport.h"
#include "agent/client/transport.h"
#include "common/clock.h"
#include "riva/proto/riva_tts.grpc.pb.h"

namespace ttsbench::coordinator {
namespace {

namespace net = boost::asio;
namespace tts = nvidia::riva::tts;

constexpr char kProbeText[] = "Hello from ttsbench discover.";

std::chrono::nanoseconds Seconds(double s) {
  return std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9));
}

struct ProbeRun {
  bool connected = false;
  agent::OpenResult open;
  v1::RequestRecord rec;
};

// One request on a fresh channel, through the load engine's connection.
ProbeRun RunProbe(const agent::Dialect& dialect, const common::Url& url, double timeout_s) {
  net::io_context ioc;
  ProbeRun run;
  net::ip::tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  const agent::Endpoints endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
  auto prepared = dialect.Prepare(kProbeText);
  if (!prepared.ok()) {
    run.open = {v1::ERROR_PROTOCOL, 0, std::string(prepared.status().message())};
    return run;
  }
  std::unique_ptr<agent::ClientConnection> conn =
      agent::MakeConnection(ioc, dialect.transport(), nullptr);
  std::atomic<bool> stopping{false};
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        run.open = co_await conn->Open(endpoints, Seconds(timeout_s));
        if (run.open.error != v1::ERROR_NONE) co_return;
        run.connected = true;
        run.rec.set_chars(prepared->chars);
        run.rec.set_streamed(dialect.transport().streamed);
        agent::ExchangeContext ctx{dialect, run.rec, nullptr, true, stopping, Seconds(timeout_s)};
        co_await conn->Exchange(*prepared, ctx);
        conn->Close();
      },
      net::detached);
  ioc.run();
  return run;
}

// GetRivaSynthesisConfig on a channel of its own; the models and the voices they name.
absl::Status ReadConfig(const v1::Target& target, const std::vector<v1::Header>& headers,
                        const common::Url& url, double timeout_s, DiscoveryResult& result) {
  agent::TlsOptions tls;
  tls.enabled = url.tls();
  tls.host = url.host;
  tls.ca_file = target.ca_file();
  tls.insecure = target.insecure();
  auto creds = agent::GrpcCredentials(tls);
  if (!creds.ok()) return creds.status();
  auto metadata = agent::GrpcMetadata(headers);
  if (!metadata.ok()) return metadata.status();
  const bool v6 = url.host.find(':') != std::string::npos;
  auto channel =
      grpc::CreateCustomChannel(absl::StrCat(v6 ? "[" : "", url.host, v6 ? "]" : "", ":", url.port),
                                *creds, agent::RivaChannelArguments());
  auto stub = tts::RivaSpeechSynthesis::NewStub(channel);
  grpc::ClientContext context;
  for (const auto& [name, value] : *metadata) context.AddMetadata(name, value);
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::duration_cast<std::chrono::system_clock::duration>(Seconds(timeout_s)));
  tts::RivaSynthesisConfigRequest request;
  tts::RivaSynthesisConfigResponse response;
  const auto sent = std::chrono::steady_clock::now();
  const grpc::Status status = stub->GetRivaSynthesisConfig(&context, request, &response);
  EndpointProbe probe;
  probe.dialect = "riva";
  probe.kind = "voices";
  probe.variant = "config";
  probe.method = "gRPC";
  probe.path = "GetRivaSynthesisConfig";
  probe.working = status.ok();
  // The channel's connection set-up is inside: the speech probes' channels had their own.
  probe.total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent).count();
  if (!status.ok()) probe.why = agent::GrpcStatusDetail(status);
  for (const auto& config : response.model_config()) {
    if (!config.model_name().empty() && std::find(result.models.begin(), result.models.end(),
                                                  config.model_name()) == result.models.end()) {
      result.models.push_back(config.model_name());
    }
    std::map<std::string, std::string> params(config.parameters().begin(),
                                              config.parameters().end());
    for (std::string& v : RivaConfigVoices(params)) {
      if (std::find(result.voices.begin(), result.voices.end(), v) == result.voices.end()) {
        result.voices.push_back(std::move(v));
      }
    }
  }
  result.probes.push_back(std::move(probe));
  return absl::OkStatus();
}

std::string ShellWordOf(absl::string_view s) { return ShellQuote(s); }

}  // namespace

std::vector<std::string> RivaConfigVoices(const std::map<std::string, std::string>& parameters) {
  std::vector<std::string> out;
  auto name = parameters.find("voice_name");
  if (name == parameters.end() || name->second.empty()) return out;
  auto subvoices = parameters.find("subvoices");
  if (subvoices == parameters.end() || subvoices->second.empty()) {
    out.push_back(name->second);
    return out;
  }
  for (absl::string_view entry : absl::StrSplit(subvoices->second, ',', absl::SkipEmpty())) {
    absl::string_view sub = absl::StripAsciiWhitespace(entry.substr(0, entry.find(':')));
    if (!sub.empty()) out.push_back(absl::StrCat(name->second, ".", sub));
  }
  return out;
}

absl::StatusOr<DiscoveryResult> DiscoverRiva(const DiscoverOptions& options,
                                             const common::Url& url) {
  DiscoveryResult result;
  const bool v6 = url.host.find(':') != std::string::npos;
  result.url =
      absl::StrCat(url.scheme, "://", v6 ? "[" : "", url.host, v6 ? "]" : "", ":", url.port);
  v1::Target target;
  target.set_url(result.url);
  target.set_api("riva");
  target.set_format("pcm");
  target.set_ca_file(options.ca_file);
  target.set_insecure(options.insecure);
  const double timeout_s = std::min(options.timeout_s, options.budget_s);

  // The first speech probe also tells whether the server is there at all.
  struct Variant {
    const char* name;
    const char* method;
    bool streaming;
  };
  static constexpr Variant kVariants[] = {{"stream", "SynthesizeOnline", true},
                                          {"unary", "Synthesize", false}};
  const auto started = std::chrono::steady_clock::now();
  std::vector<EndpointProbe> speech;
  for (const Variant& v : kVariants) {
    EndpointProbe probe;
    probe.dialect = "riva";
    probe.kind = "speech";
    probe.variant = v.name;
    probe.method = "gRPC";
    probe.path = v.method;
    probe.formats = {"pcm"};
    probe.server_flags = v.streaming ? "--api riva --streaming" : "--api riva";
    if (std::chrono::steady_clock::now() - started > Seconds(options.budget_s)) {
      probe.why = "skipped: time budget spent";
      speech.push_back(std::move(probe));
      continue;
    }
    target.set_streaming(v.streaming);
    auto dialect = agent::MakeDialect(target, url, options.headers);
    if (!dialect.ok()) return dialect.status();
    ProbeRun run = RunProbe(**dialect, url, timeout_s);
    if (!run.connected) {
      if (speech.empty()) {
        return absl::UnavailableError(
            absl::StrCat("cannot reach ", result.url, ": ", run.open.detail));
      }
      probe.why = run.open.detail;
      speech.push_back(std::move(probe));
      continue;
    }
    const v1::RequestRecord& rec = run.rec;
    probe.working = rec.error() == v1::ERROR_NONE;
    if (!probe.working) probe.why = rec.error_detail();
    probe.sample_rate = rec.sample_rate();
    probe.rate_source = "request";  // LINEAR_PCM at the rate the request names
    probe.streaming = v.streaming && rec.chunks() > 0;
    probe.audio_s = rec.audio_s();
    if (rec.first_audio_ns() > 0)
      probe.first_audio_ms = (rec.first_audio_ns() - rec.start_ns()) / 1e6;
    probe.total_ms = (rec.end_ns() - rec.start_ns()) / 1e6;
    speech.push_back(std::move(probe));
  }
  if (absl::Status st = ReadConfig(target, options.headers, url, timeout_s, result); !st.ok()) {
    return st;
  }
  for (EndpointProbe& p : speech) result.probes.push_back(std::move(p));

  // The best match: streaming first (the rate is always the one asked for), then unary.
  for (size_t i = 0; i < result.probes.size(); ++i) {
    const EndpointProbe& p = result.probes[i];
    if (p.kind != "speech" || !p.working) continue;
    result.best_probe = static_cast<int>(i);
    break;
  }
  if (result.best_probe >= 0) {
    const EndpointProbe& best = result.probes[static_cast<size_t>(result.best_probe)];
    result.best_dialect = best.dialect;
    result.suggested_command =
        absl::StrCat("ttsbench server --url ", ShellWordOf(result.url), " ", best.server_flags,
                     " --format pcm --sample-rate ", best.sample_rate);
    if (!result.voices.empty()) {
      absl::StrAppend(&result.suggested_command, " --voice ", ShellWordOf(result.voices.front()));
    }
    if (url.tls() && !options.ca_file.empty()) {
      absl::StrAppend(&result.suggested_command, " --ca-file ", ShellWordOf(options.ca_file));
    }
    if (url.tls() && options.insecure) absl::StrAppend(&result.suggested_command, " --insecure");
    if (!options.auth_flags.empty()) {
      absl::StrAppend(&result.suggested_command, " ", options.auth_flags);
    }
  }
  return result;
}

}  // namespace ttsbench::coordinator
