#include "agent/daemon_cmd.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/agent_config.h"
#include "agent/host_jobs.h"
#include "agent/live_session.h"

namespace kiln::agent {
namespace {

Json SessionInfo(const AgentConfig& c) {
  struct utsname u {};
  ::uname(&u);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return {{"mode", "daemon"},    {"image", c.image}, {"run", c.run},
          {"kernel", u.release}, {"hostname", host}, {"pid", ::getpid()}};
}

int RunDaemon(const std::string& config_path, const std::string& root, int timeout_ms,
              int poll_ms) {
  auto c = LoadAgentConfig(config_path);
  if (!c.ok()) {
    fmt::print(stderr, "kiln-agent daemon: {}\n", c.status().message());
    return 1;
  }
  // SIGTERM and SIGINT end the session cleanly (the znode goes at once).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  fmt::print(stderr, "kiln-agent daemon: node {} running {}, reporting to {}\n", c->node, c->image,
             c->server);
  LiveSession session(c->server, c->token, c->node, std::chrono::milliseconds(timeout_ms),
                      SessionInfo(*c));
  AgentApi api(c->server, c->token);
  HostJobsOptions ho;
  ho.root = root;
  ho.config_path = config_path;
  ho.on_image = [&session](const AgentConfig& now) { session.SetInfo(SessionInfo(now)); };
  HostJobs jobs(&api, *c, ho);
  timespec wait{poll_ms / 1000, (poll_ms % 1000) * 1000000L};
  for (;;) {
    int sig = sigtimedwait(&set, nullptr, &wait);
    if (sig > 0) {
      fmt::print(stderr, "kiln-agent daemon: signal {}, closing the session\n", sig);
      return 0;
    }
    auto ran = jobs.RunQueued();
    if (ran.ok() && *ran > 0)
      fmt::print(stderr, "kiln-agent daemon: ran {} job(s); running {}\n", *ran,
                 jobs.config().image);
  }
}

}  // namespace

void RegisterDaemonCommand(CLI::App& app, int* exit_code) {
  static std::string config = kAgentConfigPath, root = "/";
  static int timeout_ms = 15000, poll_ms = 1000;
  CLI::App* cmd = app.add_subcommand(
      "daemon", "Stay in touch with the server from an installed machine; run its jobs");
  cmd->add_option("--config", config, "the agent's configuration (written by the install)")
      ->capture_default_str();
  cmd->add_option("--root", root, "the installed tree updates and rollbacks act on")
      ->capture_default_str();
  cmd->add_option("--session-timeout-ms", timeout_ms,
                  "the server notices a silent machine after this long")
      ->capture_default_str();
  cmd->add_option("--poll-ms", poll_ms, "how often to ask for queued jobs")
      ->capture_default_str()
      ->check(CLI::Range(50, 60000));
  cmd->footer(
      "Started at boot by the installed system. The server shows it as /kiln/nodes/<id>/agent;\n"
      "`kiln node run|update|rollback` queue jobs it runs.");
  cmd->callback([exit_code] { *exit_code = RunDaemon(config, root, timeout_ms, poll_ms); });

  static std::string rb_config = kAgentConfigPath, rb_root = "/";
  CLI::App* rb = app.add_subcommand(
      "rollback", "Return this host to the version before its last update (no server needed)");
  rb->add_option("--config", rb_config, "the agent's configuration")->capture_default_str();
  rb->add_option("--root", rb_root, "the installed tree")->capture_default_str();
  rb->callback([exit_code] {
    auto c = LoadAgentConfig(rb_config);
    if (!c.ok()) {
      fmt::print(stderr, "kiln-agent rollback: {}\n", c.status().message());
      *exit_code = 1;
      return;
    }
    AgentApi api(c->server, c->token);
    HostJobs jobs(&api, *c, {.root = rb_root, .config_path = rb_config, .on_image = nullptr});
    auto r = jobs.Rollback();
    if (!r.ok()) {
      fmt::print(stderr, "kiln-agent rollback: {}\n", r.status().message());
      *exit_code = 1;
      return;
    }
    fmt::print("{}\n", (*r)["message"].get<std::string>());
    *exit_code = 0;
  });
}

}  // namespace kiln::agent
