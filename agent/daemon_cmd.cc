#include "agent/daemon_cmd.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

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

int RunDaemon(const std::string& config_path, const std::string& root, int timeout_ms, int poll_ms,
              int wait_s) {
  auto c = LoadAgentConfig(config_path);
  if (!c.ok()) {
    fmt::print(stderr, "kiln-agent daemon: {}\n", c.status().message());
    return 1;
  }
  // SIGTERM and SIGINT go to the signal thread below (blocked here before
  // any thread starts, so every thread inherits the mask).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  fmt::print(stderr, "kiln-agent daemon: node {} running {}, reporting to {}\n", c->node, c->image,
             c->server);
  auto session = std::make_unique<LiveSession>(
      c->server, c->token, c->node, std::chrono::milliseconds(timeout_ms), SessionInfo(*c));
  AgentApi api(c->server, c->token);
  HostJobsOptions ho;
  ho.root = root;
  ho.config_path = config_path;
  ho.on_image = [&session](const AgentConfig& now) { session->SetInfo(SessionInfo(now)); };
  HostJobs jobs(&api, *c, ho);
  // Held while jobs run: a signal ends the daemon between jobs, never in
  // the middle of an update.
  std::mutex job_mu;
  std::thread signals([&] {
    int sig = 0;
    sigwait(&set, &sig);
    std::lock_guard lock(job_mu);
    fmt::print(stderr, "kiln-agent daemon: signal {}, closing the session\n", sig);
    session.reset();  // the agent znode goes at once
    std::fflush(nullptr);
    // The job loop may sit in a long poll, which holds nothing to clean up.
    ::_exit(0);
  });
  signals.detach();
  for (;;) {
    // A long poll: the server answers as soon as a job is queued, so a job
    // starts within milliseconds without asking over and over.
    bool waited = false;
    auto queued = jobs.Queued(std::chrono::seconds(wait_s), &waited);
    int ran = 0;
    if (queued.ok()) {
      std::lock_guard lock(job_mu);
      for (const Json& job : *queued) ran += jobs.RunJob(job) ? 1 : 0;
    }
    if (ran > 0)
      fmt::print(stderr, "kiln-agent daemon: ran {} job(s); running {}\n", ran,
                 jobs.config().image);
    // The fallback: the server is unreachable, or did not hold the answer
    // (--wait-s 0, or a server without long polls): ask again after a pause.
    if (!queued.ok() || (!waited && ran == 0))
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

}  // namespace

void RegisterDaemonCommand(CLI::App& app, int* exit_code) {
  static std::string config = kAgentConfigPath, root = "/";
  static int timeout_ms = 15000, poll_ms = 1000, wait_s = 30;
  CLI::App* cmd = app.add_subcommand(
      "daemon", "Stay in touch with the server from an installed machine; run its jobs");
  cmd->add_option("--config", config, "the agent's configuration (written by the install)")
      ->capture_default_str();
  cmd->add_option("--root", root, "the installed tree updates and rollbacks act on")
      ->capture_default_str();
  cmd->add_option("--session-timeout-ms", timeout_ms,
                  "the server notices a silent machine after this long")
      ->capture_default_str();
  cmd->add_option("--wait-s", wait_s,
                  "hold each request for queued jobs this long (a long poll: a job starts as "
                  "soon as it is queued); 0 asks every --poll-ms instead")
      ->capture_default_str()
      ->check(CLI::Range(0, 60));
  cmd->add_option("--poll-ms", poll_ms,
                  "how often to ask for queued jobs when the server cannot hold a long poll "
                  "(unreachable, older, or --wait-s 0)")
      ->capture_default_str()
      ->check(CLI::Range(50, 60000));
  cmd->footer(
      "Started at boot by the installed system. The server shows it as /kiln/nodes/<id>/agent;\n"
      "`kiln node run|update|rollback` queue jobs it runs.");
  cmd->callback([exit_code] { *exit_code = RunDaemon(config, root, timeout_ms, poll_ms, wait_s); });

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
