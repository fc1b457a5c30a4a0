// ttsbench-synth: the synthetic TTS server as a standalone process. Flags fill SynthOptions; the
// server runs until SIGINT or SIGTERM.
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "synth/synth_server.h"

namespace {

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

int Run(int argc, char** argv) {
  SynthOptions options;
  auto& m = options.model;
  std::string listen = "127.0.0.1:8000";
  std::vector<std::string> voices;

  CLI::App app{
      "Synthetic TTS server speaking the OpenAI and torch-inference HTTP APIs with a "
      "GPU-like latency model.",
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
  app.add_option("--threads", options.threads, "io threads")->capture_default_str();

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
  const bool v6 = options.listen_host.find(':') != std::string::npos;
  std::cout << kProgram << " listening on http://" << (v6 ? "[" : "") << options.listen_host
            << (v6 ? "]" : "") << ":" << (*server)->port() << std::endl;

  signals_ioc.run();
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
