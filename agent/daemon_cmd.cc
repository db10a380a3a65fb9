#include "agent/daemon_cmd.h"

#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>

#include "agent/agent_config.h"
#include "agent/live_session.h"

namespace kiln::agent {
namespace {

int RunDaemon(const std::string& config_path, int timeout_ms) {
  auto c = LoadAgentConfig(config_path);
  if (!c.ok()) {
    fmt::print(stderr, "kiln-agent daemon: {}\n", c.status().message());
    return 1;
  }
  struct utsname u {};
  ::uname(&u);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  Json info = {{"mode", "daemon"}, {"image", c->image}, {"run", c->run},
               {"kernel", u.release}, {"hostname", host}, {"pid", ::getpid()}};
  // SIGTERM and SIGINT end the session cleanly (the znode goes at once).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  fmt::print(stderr, "kiln-agent daemon: node {} running {}, reporting to {}\n", c->node, c->image, c->server);
  {
    LiveSession session(c->server, c->token, c->node, std::chrono::milliseconds(timeout_ms), info);
    int sig = 0;
    sigwait(&set, &sig);
    fmt::print(stderr, "kiln-agent daemon: signal {}, closing the session\n", sig);
  }
  return 0;
}

}  // namespace

void RegisterDaemonCommand(CLI::App& app, int* exit_code) {
  static std::string config = kAgentConfigPath;
  static int timeout_ms = 15000;
  CLI::App* cmd = app.add_subcommand("daemon", "Stay in touch with the server from an installed machine");
  cmd->add_option("--config", config, "the agent's configuration (written by the install)")->capture_default_str();
  cmd->add_option("--session-timeout-ms", timeout_ms, "the server notices a silent machine after this long")
      ->capture_default_str();
  cmd->footer("Started at boot by the installed system. The server shows it as /kiln/nodes/<id>/agent.");
  cmd->callback([exit_code] { *exit_code = RunDaemon(config, timeout_ms); });
}

}  // namespace kiln::agent
