// ttsbench-synth: the synthetic TTS server as a standalone process. Flags fill SynthOptions; the
// server runs until SIGINT or SIGTERM.
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "synth/riva_service.h"
#include "synth/synth_server.h"
#include "synth/tls_cert.h"

namespace {

using ttsbench::synth::RivaOptions;
using ttsbench::synth::RivaServer;
using ttsbench::synth::SynthOptions;
using ttsbench::synth::SynthServer;

constexpr const char* kProgram = "ttsbench-synth";

// "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces).
absl::StatusOr<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen must be HOST:PORT, got '", listen, "'"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  uint32_t port = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen port must be 0-65535, got '", listen.substr(colon + 1), "'"));
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

absl::Status ParseVoices(const std::vector<std::string>& voices, SynthOptions& options) {
  if (voices.empty()) return absl::OkStatus();
  // Voices on the command line replace the default set, so /v1/audio/voices lists exactly them.
  options.model.voice_speed.clear();
  for (const std::string& v : voices) {
    const size_t eq = v.find('=');
    double speed = 0;
    if (eq == std::string::npos || eq == 0 || !absl::SimpleAtod(v.substr(eq + 1), &speed)) {
      return absl::InvalidArgumentError(absl::StrCat("--voice must be NAME=SPEED, got '", v, "'"));
    }
    options.model.voice_speed[v.substr(0, eq)] = speed;
  }
  return absl::OkStatus();
}

int Fail(int code, absl::string_view message) {
  std::cerr << kProgram << ": " << message << std::endl;
  return code;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct TlsFlags {
  std::string cert_file;
  std::string key_file;
  bool self_signed = false;
  std::string cert_out;
};

// Fills the options' PEM fields from files, or from a certificate made now for the listen host
// (written to cert_out so clients can trust it).
absl::Status LoadTls(const TlsFlags& f, SynthOptions& options) {
  if (f.self_signed) {
    if (!f.cert_file.empty() || !f.key_file.empty()) {
      return absl::InvalidArgumentError("--tls-self-signed replaces --tls-cert and --tls-key");
    }
    std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
    if (options.listen_host != "0.0.0.0" && options.listen_host != "::" &&
        options.listen_host != "localhost" && options.listen_host != "127.0.0.1") {
      names.insert(names.begin(), options.listen_host);
    }
    auto pem = ttsbench::synth::MakeSelfSignedCertificate(names);
    if (!pem.ok()) return pem.status();
    options.tls_cert_pem = pem->cert;
    options.tls_key_pem = pem->key;
    if (!f.cert_out.empty()) {
      std::ofstream out(f.cert_out, std::ios::binary | std::ios::trunc);
      out << pem->cert;
      if (!out) return absl::InvalidArgumentError(absl::StrCat("cannot write ", f.cert_out));
    }
    return absl::OkStatus();
  }
  if (!f.cert_out.empty())
    return absl::InvalidArgumentError("--tls-cert-out needs --tls-self-signed");
  if (f.cert_file.empty() != f.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (f.cert_file.empty()) return absl::OkStatus();
  auto cert = ReadFile(f.cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(f.key_file);
  if (!key.ok()) return key.status();
  options.tls_cert_pem = *cert;
  options.tls_key_pem = *key;
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  SynthOptions options;
  auto& m = options.model;
  std::string listen = "127.0.0.1:8000";
  std::vector<std::string> voices;
  TlsFlags tls;
  std::string api_key_env;
  std::string riva_listen;
  std::string riva_function_id_env;

  CLI::App app{
      "Synthetic TTS server speaking the OpenAI (incl. SSE), torch-inference (incl. WebSocket), "
      "Coqui, OpenTTS, Piper and ElevenLabs (incl. WebSocket) APIs (and NVIDIA Riva over gRPC with "
      "--riva-listen) with a GPU-like latency "
      "model, over HTTP and TLS.",
      kProgram};
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 = ephemeral)")
      ->capture_default_str();
  app.add_option("--slots", m.slots, "parallel synthesis slots; more requests queue FIFO")
      ->capture_default_str();
  app.add_option("--base-ms", m.base_ms, "fixed synthesis time per request (ms)")
      ->capture_default_str();
  app.add_option("--per-char-ms", m.per_char_ms, "synthesis time per character (ms)")
      ->capture_default_str();
  app.add_option("--first-chunk-ms", m.first_chunk_ms,
                 "slot acquisition to first streamed chunk (ms)")
      ->capture_default_str();
  app.add_option("--audio-per-char", m.audio_s_per_char, "seconds of audio per character")
      ->capture_default_str();
  app.add_option("--jitter", m.jitter, "relative jitter of synthesis time, e.g. 0.1 = +-10%")
      ->capture_default_str();
  app.add_option("--seed", m.seed, "seed of jitter and fault injection")->capture_default_str();
  app.add_option("--sample-rate", m.sample_rate, "sample rate of the audio (Hz)")
      ->capture_default_str();
  app.add_option("--chunk-ms", m.chunk_ms, "audio per streamed chunk (ms)")->capture_default_str();
  app.add_option("--voice", voices,
                 "NAME=SPEED synthesis speed factor of a voice (repeatable; replaces the "
                 "defaults default=1, fast=2, premium=0.5)");
  app.add_option("--error-rate", options.error_rate, "fraction of audio requests answered 500")
      ->capture_default_str();
  app.add_option("--truncate-rate", options.truncate_rate,
                 "fraction of audio responses cut off after about half the body")
      ->capture_default_str();
  app.add_option("--truncate-above", m.degrade.truncate_above,
                 "cut the end off answers while more than N audio requests are in flight "
                 "(0 = never): a server that degrades under load")
      ->capture_default_str();
  app.add_option("--truncate-fraction", m.degrade.truncate_fraction,
                 "with --truncate-above: share of the audio cut off, in (0, 1)")
      ->capture_default_str();
  app.add_option("--speedup-above", m.degrade.speedup_above,
                 "shorten answers (the same text spoken faster) while more than N audio "
                 "requests are in flight (0 = never)")
      ->capture_default_str();
  app.add_option("--speedup", m.degrade.speedup,
                 "with --speedup-above: the audio is this many times shorter, > 1")
      ->capture_default_str();
  app.add_option("--leading-silence-ms", options.leading_silence_ms,
                 "digital silence before the tone of every answer (ms): TTFA stays, the first "
                 "audible sound comes this much later")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "io threads")->capture_default_str();
  app.add_option("--tls-cert", tls.cert_file,
                 "PEM certificate chain: TLS clients are served on the same port");
  app.add_option("--tls-key", tls.key_file, "PEM private key of --tls-cert");
  app.add_flag("--tls-self-signed", tls.self_signed,
               "serve TLS with a certificate made at start for localhost, 127.0.0.1, ::1 and "
               "the listen host");
  app.add_option("--tls-cert-out", tls.cert_out,
                 "with --tls-self-signed: write the certificate here (a client's CA file)");
  app.add_option("--api-key-env", api_key_env,
                 "require the key in this environment variable on audio endpoints (Bearer, "
                 "X-API-Key or xi-api-key)");
  app.add_option("--riva-listen", riva_listen,
                 "also serve NVIDIA Riva's RivaSpeechSynthesis over gRPC on HOST:PORT (port 0 = "
                 "ephemeral; TLS only when TLS is configured); --api-key-env then requires "
                 "`authorization: Bearer KEY`");
  app.add_option("--riva-function-id-env", riva_function_id_env,
                 "with --riva-listen: require gRPC metadata `function-id` equal to this "
                 "environment variable's value, as a hosted endpoint does");
  app.add_option("--ws-encoding", options.ws_encoding,
                 "torch-inference /audio/ws frames: pcm_f32le or pcm_s16le")
      ->capture_default_str();
  app.add_option("--log-first-event", options.log_first_event,
                 "append a line per streamed answer as its first audio is sent: received_ns, "
                 "sent_ns (steady clock, CLOCK_MONOTONIC) and the text, tab-separated");
  app.add_option("--misbehave", options.misbehave,
                 "a broken server: endless-sse-line (SSE answers), endless-json (JSON answers) "
                 "or endless-ws-text (torch-inference /audio/ws): one that never ends; for text "
                 "over time (ElevenLabs/Cartesia/Deepgram WebSockets): never-flush, "
                 "close-mid-turn, unknown-message, talk-after-cancel, close-after-turn");
  app.add_option("--idle-watts", options.idle_watts,
                 "GET /metrics: simulated power draw with no slot busy (W)")
      ->capture_default_str();
  app.add_option("--watts-per-slot", options.watts_per_busy_slot,
                 "GET /metrics: simulated power added per busy slot (W)")
      ->capture_default_str();
  // Text that arrives over time (issue 13).
  app.add_option("--paced-mode", options.paced_mode,
                 "WebSockets taking text over time: honest (speak as text arrives) or buffering "
                 "(wait for the end of input)")
      ->capture_default_str();
  app.add_option("--lookahead-chars", options.lookahead_chars,
                 "honest mode: speak once this many characters (or a punctuation mark) came")
      ->capture_default_str();
  app.add_option("--stop-delay-ms", options.stop_delay_ms,
                 "after a cancel / Clear / close, audio keeps going out this long (ms)")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(1, e.what());
  }

  auto host_port = ParseListen(listen);
  if (!host_port.ok()) return Fail(1, host_port.status().message());
  options.listen_host = host_port->first;
  options.port = host_port->second;
  if (auto st = ParseVoices(voices, options); !st.ok()) return Fail(1, st.message());
  if (auto st = LoadTls(tls, options); !st.ok()) return Fail(1, st.message());
  if (!api_key_env.empty()) {
    const char* key = std::getenv(api_key_env.c_str());
    if (key == nullptr || *key == '\0') {
      return Fail(1, absl::StrCat("--api-key-env: ", api_key_env, " is not set"));
    }
    options.api_key = key;
  }

  RivaOptions riva;
  if (!riva_listen.empty()) {
    auto riva_host_port = ParseListen(riva_listen);
    if (!riva_host_port.ok()) {
      return Fail(1, absl::StrCat("--riva-listen: ", riva_host_port.status().message()));
    }
    riva.listen_host = riva_host_port->first;
    riva.port = riva_host_port->second;
    riva.model = options.model;
    riva.error_rate = options.error_rate;
    riva.tls_cert_pem = options.tls_cert_pem;
    riva.tls_key_pem = options.tls_key_pem;
    riva.api_key = options.api_key;
    if (!riva_function_id_env.empty()) {
      const char* id = std::getenv(riva_function_id_env.c_str());
      if (id == nullptr || *id == '\0') {
        return Fail(1,
                    absl::StrCat("--riva-function-id-env: ", riva_function_id_env, " is not set"));
      }
      riva.function_id = id;
    }
  } else if (!riva_function_id_env.empty()) {
    return Fail(1, "--riva-function-id-env needs --riva-listen");
  }

  // Registered before the server's threads exist, so no signal can end the process untidily.
  boost::asio::io_context signals_ioc;
  boost::asio::signal_set signals(signals_ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { signals_ioc.stop(); });

  auto server = SynthServer::Start(options);
  if (!server.ok()) {
    // Bad values are usage errors (1); anything else (port in use) means it could not run (2).
    const int code = absl::IsInvalidArgument(server.status()) ? 1 : 2;
    return Fail(code, server.status().message());
  }
  std::unique_ptr<RivaServer> riva_server;
  if (!riva_listen.empty()) {
    auto started = RivaServer::Start(riva);
    if (!started.ok()) {
      return Fail(absl::IsInvalidArgument(started.status()) ? 1 : 2, started.status().message());
    }
    riva_server = std::move(*started);
  }
  const bool v6 = options.listen_host.find(':') != std::string::npos;
  const std::string where =
      absl::StrCat(v6 ? "[" : "", options.listen_host, v6 ? "]" : "", ":", (*server)->port());
  std::cout << kProgram << " listening on http://" << where;
  if (!options.tls_cert_pem.empty()) std::cout << " and https://" << where;
  if (riva_server != nullptr) {
    const bool riva_v6 = riva.listen_host.find(':') != std::string::npos;
    std::cout << " and riva " << (riva.tls_cert_pem.empty() ? "grpc://" : "grpcs://")
              << (riva_v6 ? "[" : "") << riva.listen_host << (riva_v6 ? "]" : "") << ":"
              << riva_server->port();
  }
  std::cout << std::endl;

  signals_ioc.run();
  if (riva_server != nullptr) riva_server->Stop();
  (*server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    return Fail(2, e.what());
  }
}
