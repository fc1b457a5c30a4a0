// ttsbench-agent: dials a coordinator and runs the load it assigns.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "agent/agent_session.h"
#include "agent/client/command_allowlist.h"
#include "common/url.h"

int main(int argc, char** argv) {
  ttsbench::agent::AgentOptions options;
  bool once = false;
  CLI::App app{"ttsbench-agent: load generator that dials a ttsbench coordinator"};
  app.add_option("--coordinator", options.coordinator, "coordinator address HOST:PORT")->required();
  app.add_option("--id", options.id, "agent id (default: HOSTNAME-PID)");
  app.add_option("--threads", options.threads, "worker threads (default: cores)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--connect-timeout", options.connect_timeout_s,
                 "seconds to wait for the coordinator")
      ->check(CLI::PositiveNumber);
  app.add_flag("--once", once, "serve one session, then exit");
  std::string tls_cert, tls_key, tls_ca, token_file;
  app.add_option("--tls-cert", tls_cert, "this agent's certificate (PEM) for mutual TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key, "this agent's private key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--tls-ca", tls_ca, "CA that signed the coordinator's certificate (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--token-file", token_file, "file holding the shared agent token")
      ->check(CLI::ExistingFile);
  app.add_option("--allow-target", options.allow_targets,
                 "hosts, addresses or CIDRs this agent may send load to (default: loopback only)")
      ->expected(1, -1);
  app.add_option("--allow-command", options.allow_commands,
                 "a command line the command target (api: command) may run, e.g. \"espeak-ng "
                 "--stdout -v {voice}\": a plan's argv must be it word for word, the program "
                 "(a path or a name on PATH) compared by its real path (repeatable; default: "
                 "none)")
      ->expected(1, -1);
  app.add_option("--max-concurrency", options.max_concurrency,
                 "refuse assignments above this many concurrent requests")
      ->check(CLI::Range(0, 10000000));
  app.add_option("--max-rate", options.max_rate, "refuse assignments above this request rate")
      ->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "ttsbench-agent: " << e.what() << "\n";
    return 1;
  }
  auto read = [](const std::string& path, std::string* out) {
    if (path.empty()) return true;
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
    return static_cast<bool>(in);
  };
  if (!read(tls_cert, &options.tls_cert_pem) || !read(tls_key, &options.tls_key_pem) ||
      !read(tls_ca, &options.tls_ca_pem) || !read(token_file, &options.token)) {
    std::cerr << "ttsbench-agent: cannot read a --tls-* or --token-file file\n";
    return 1;
  }
  options.token = std::string(absl::StripAsciiWhitespace(options.token));
  if (auto st = ttsbench::agent::CheckTransportSecurity(options); !st.ok()) {
    std::cerr << "ttsbench-agent: " << st.message() << "\n";
    return 1;
  }
  if (options.tls_ca_pem.empty() && options.token.empty() && !once) {
    std::cerr << "ttsbench-agent: no TLS and no token: only a loopback coordinator is allowed\n";
  }
  // The operator's own PATH finds --allow-command names and a plan's bare program names.
  if (const char* path = std::getenv("PATH"); path != nullptr) options.path_env = path;
  if (auto list =
          ttsbench::agent::CommandAllowlist::Parse(options.allow_commands, options.path_env);
      !list.ok()) {
    std::cerr << "ttsbench-agent: " << list.status().message() << "\n";
    return 1;
  }
  if (auto st = ttsbench::common::ValidateHostPort(options.coordinator); !st.ok()) {
    std::cerr << "ttsbench-agent: " << st.message() << "\n";
    return 1;
  }
  if (options.id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    options.id = std::string(host) + "-" + std::to_string(getpid());
  }
  auto backoff = std::chrono::seconds(1);
  for (;;) {
    const auto began = std::chrono::steady_clock::now();
    absl::Status st = ttsbench::agent::RunAgentSession(options);
    if (!st.ok()) std::cerr << "ttsbench-agent " << options.id << ": " << st.message() << "\n";
    if (once) return st.ok() ? 0 : 2;
    // A session that ran for a while resets the backoff; quick failures back off to 30 s.
    if (std::chrono::steady_clock::now() - began > std::chrono::seconds(30)) {
      backoff = std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::seconds(30));
  }
}
