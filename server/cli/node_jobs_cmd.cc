#include "server/cli/node_jobs_cmd.h"

#include <chrono>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "common/api_client.h"
#include "common/strings.h"

namespace kiln::cli {
namespace {

struct JobFlags {
  ClientFlags client;
  std::vector<std::string> nodes;
  std::string command_text;
  std::string to;
  int timeout_s = 600;
  int wait_s = 900;
  bool json = false;
};

// Queues one job per node, then polls each until it is done or failed.
int RunJobs(const JobFlags& f, const std::string& cmd, const std::string& kind, const Json& args) {
  ApiClient api(ResolveClientConfig(f.client));
  std::vector<std::pair<std::string, std::string>> queued;  // node, job id
  for (const auto& n : f.nodes) {
    auto j = api.Post("/api/v1/nodes/" + n + "/jobs", Json{{"kind", kind}, {"args", args}});
    if (!j.ok()) return Fail(cmd, j.status().WithContext(n));
    queued.emplace_back(n, (*j)["id"]);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(f.wait_s);
  std::vector<Json> results(queued.size());
  size_t left = queued.size();
  while (left > 0) {
    for (size_t i = 0; i < queued.size(); ++i) {
      if (!results[i].is_null()) continue;
      auto j = api.Get("/api/v1/nodes/" + queued[i].first + "/jobs/" + queued[i].second);
      if (!j.ok()) return Fail(cmd, j.status().WithContext(queued[i].first));
      std::string state = j->value("state", "");
      if (state == "done" || state == "failed") {
        results[i] = *j;
        --left;
        if (f.json) {
          fmt::print("{}\n", j->dump());
        } else {
          fmt::print("{}: {} ({})\n", queued[i].first, state == "done" ? "ok" : "FAILED", j->value("message", ""));
          std::string out = j->value("output", "");
          for (const auto& line : Split(std::string(Trim(out)), '\n'))
            if (!out.empty()) fmt::print("  {}\n", line);
        }
        std::fflush(stdout);
      }
    }
    if (left == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t i = 0; i < queued.size(); ++i)
        if (results[i].is_null())
          fmt::print(stderr, "kiln {}: {} has not answered job {} (is its agent running? see kiln node show)\n", cmd,
                     queued[i].first, queued[i].second);
      return kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  size_t failed = 0;
  for (const Json& r : results)
    if (r.value("state", "") != "done") ++failed;
  if (!f.json && queued.size() > 1)
    fmt::print("{} of {} hosts ok{}\n", queued.size() - failed, queued.size(), failed ? fmt::format(", {} failed", failed) : "");
  return failed ? kExitFailed : kExitOk;
}

CLI::App* Sub(CLI::App* node, const char* name, const char* help, JobFlags* f) {
  CLI::App* c = node->add_subcommand(name, help);
  AddClientOptions(c, &f->client);
  c->add_flag("--json", f->json, "print each host's job as a JSON line");
  c->add_option("--wait", f->wait_s, "give up waiting for the hosts after this many seconds")->capture_default_str();
  return c;
}

}  // namespace

void RegisterNodeJobCommands(CLI::App& app, CliState* state) {
  CLI::App* node = app.get_subcommand("node");

  auto run = std::make_shared<JobFlags>();
  CLI::App* r = Sub(node, "run", "Run a shell command on installed hosts, output and exit codes back", run.get());
  r->add_option("nodes", run->nodes, "the hosts")->required();
  r->add_option("--timeout", run->timeout_s, "kill the command on a host after this many seconds")
      ->capture_default_str();
  r->add_option("-c,--command", run->command_text, "the shell command (sh -c on each host, in its root)")->required();
  r->footer("Example:\n  kiln node run web01 web02 -c 'uptime; df -h /'\nExit status 1 when any host failed.");
  r->callback([run, state] {
    const std::string& command = run->command_text;
    state->exit_code = RunJobs(*run, "node run", "run", Json{{"command", command}, {"timeout_s", run->timeout_s}});
  });

  auto up = std::make_shared<JobFlags>();
  CLI::App* u = Sub(node, "update", "Update installed hosts to an image version (delta, undone on failure)", up.get());
  u->add_option("nodes", up->nodes, "the hosts")->required();
  u->add_option("--to", up->to, "IMAGE@VERSION")->required();
  u->footer("Example:\n  kiln node update web01 web02 --to web@4\nkiln node rollback returns them to where they were.");
  u->callback([up, state] {
    size_t at = up->to.rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == up->to.size()) {
      state->exit_code = Fail("node update", InvalidArgument("--to " + up->to + ": expected IMAGE@VERSION"));
      return;
    }
    state->exit_code = RunJobs(*up, "node update", "update",
                               Json{{"image", up->to.substr(0, at)}, {"version", up->to.substr(at + 1)}});
  });

  auto rb = std::make_shared<JobFlags>();
  CLI::App* b = Sub(node, "rollback", "Return installed hosts to the version before their last update", rb.get());
  b->add_option("nodes", rb->nodes, "the hosts")->required();
  b->callback([rb, state] { state->exit_code = RunJobs(*rb, "node rollback", "rollback", Json::object()); });
}

}  // namespace kiln::cli
