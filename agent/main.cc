// ttsbench-agent: dials a coordinator and runs the load it assigns.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "agent/agent_session.h"
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
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
