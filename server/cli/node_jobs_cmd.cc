#include "server/cli/node_jobs_cmd.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "common/api_client.h"
#include "common/strings.h"

namespace kiln::cli {
namespace {

// How long one request waits on the server for a verdict: with one host in
// flight, long; with several, short, so that each is looked at often.
constexpr std::chrono::milliseconds kLongPoll{30000};
constexpr std::chrono::milliseconds kShortPoll{500};

struct JobFlags {
  ClientFlags client;
  std::vector<std::string> nodes;
  std::string command_text;
  std::string to;
  int timeout_s = 600;
  int wait_s = 900;
  int max_parallel = 0;  // 0: all at once
  std::vector<std::string> classes;
  std::vector<std::string> excludes;
  bool json = false;
};

// The nodes named, or every node whose plan has one of the --class classes.
Result<std::vector<std::string>> SelectNodes(ApiClient& api, const JobFlags& f) {
  if (f.classes.empty()) return f.nodes;
  KILN_ASSIGN_OR_RETURN(Json list, api.Get("/api/v1/nodes"));
  std::vector<std::string> out = f.nodes;
  for (const Json& n : list["nodes"]) {
    std::string id = n.value("id", "");
    if (std::find(out.begin(), out.end(), id) != out.end()) continue;
    auto plan = api.Get("/api/v1/nodes/" + id + "/plan");
    if (!plan.ok()) continue;  // a node that cannot be planned has no classes
    for (const Json& c : (*plan)["classes"])
      if (std::find(f.classes.begin(), f.classes.end(), c.get<std::string>()) != f.classes.end()) {
        out.push_back(id);
        break;
      }
  }
  if (out.empty()) return NotFound("no node has class " + f.classes.front());
  return out;
}

// Queues the job on every node, at most --max-parallel at a time (a wave
// moves on as hosts finish), and reports each host as it answers.
int RunJobs(const JobFlags& f, const std::string& cmd, const std::string& kind, const Json& args) {
  ApiClient api(ResolveClientConfig(f.client));
  auto selected = SelectNodes(api, f);
  if (!selected.ok()) return Fail(cmd, selected.status());
  if (selected->empty())
    return Fail(cmd, InvalidArgument("name the nodes, or select them with --class"));
  const std::vector<std::string>& nodes = *selected;
  size_t limit = f.max_parallel > 0 ? static_cast<size_t>(f.max_parallel) : nodes.size();
  std::vector<std::string> job_of(nodes.size());
  std::vector<Json> results(nodes.size());
  size_t next = 0, in_flight = 0, left = nodes.size();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(f.wait_s);
  std::chrono::milliseconds poll(20);
  while (left > 0) {
    while (next < nodes.size() && in_flight < limit) {
      auto j =
          api.Post("/api/v1/nodes/" + nodes[next] + "/jobs", Json{{"kind", kind}, {"args", args}});
      if (!j.ok()) return Fail(cmd, j.status().WithContext(nodes[next]));
      job_of[next++] = (*j)["id"];
      ++in_flight;
    }
    // The server holds the answer until the job is done (a long poll on the
    // oldest unfinished job), so a verdict arrives the moment it is given.
    // With several hosts in flight the wait is short, so that the others
    // are looked at often too.
    bool waited_one = false, answered_early = false;
    for (size_t i = 0; i < next; ++i) {
      if (!results[i].is_null()) continue;
      std::string path = "/api/v1/nodes/" + nodes[i] + "/jobs/" + job_of[i];
      std::chrono::milliseconds wait{0};
      if (!waited_one) {
        waited_one = true;
        auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        wait =
            in_flight == 1 ? std::min<std::chrono::milliseconds>(remaining, kLongPoll) : kShortPoll;
        wait = std::max(wait, std::chrono::milliseconds(1));
        path += fmt::format("?wait={:.3f}", wait.count() / 1000.0);
      }
      auto asked = std::chrono::steady_clock::now();
      auto j = api.Call("GET", path, std::nullopt, std::chrono::seconds(30) + wait);
      if (!j.ok()) return Fail(cmd, j.status().WithContext(nodes[i]));
      std::string state = j->value("state", "");
      if (state != "done" && state != "failed") {
        // A server that cannot hold the answer gives it at once.
        if (wait.count() > 0 && std::chrono::steady_clock::now() - asked < wait / 2)
          answered_early = true;
        continue;
      }
      results[i] = *j;
      --left;
      --in_flight;
      if (f.json) {
        fmt::print("{}\n", j->dump());
      } else {
        fmt::print("{}: {} ({})\n", nodes[i], state == "done" ? "ok" : "FAILED",
                   j->value("message", ""));
        std::string out = j->value("output", "");
        for (const auto& line : Split(std::string(Trim(out)), '\n'))
          if (!out.empty()) fmt::print("  {}\n", line);
      }
      std::fflush(stdout);
    }
    if (left == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t i = 0; i < nodes.size(); ++i)
        if (results[i].is_null())
          fmt::print(stderr, "kiln {}: {} {}\n", cmd, nodes[i],
                     i < next ? "has not answered job " + job_of[i] +
                                    " (is its agent running? see kiln node show)"
                              : std::string("was never started (--wait ran out)"));
      return kExitFailed;
    }
    // Only without long polls: ask again soon, then less often.
    if (answered_early) {
      std::this_thread::sleep_for(poll);
      poll = std::min(poll * 3 / 2, std::chrono::milliseconds(500));
    }
  }
  size_t failed = 0;
  for (const Json& r : results)
    if (r.value("state", "") != "done") ++failed;
  if (!f.json && nodes.size() > 1)
    fmt::print("{} of {} hosts ok{}\n", nodes.size() - failed, nodes.size(),
               failed ? fmt::format(", {} failed", failed) : "");
  return failed ? kExitFailed : kExitOk;
}

CLI::App* Sub(CLI::App* node, const char* name, const char* help, JobFlags* f) {
  CLI::App* c = node->add_subcommand(name, help);
  AddClientOptions(c, &f->client);
  c->add_flag("--json", f->json, "print each host's job as a JSON line");
  c->add_option("--wait", f->wait_s, "give up waiting for the hosts after this many seconds")
      ->capture_default_str();
  c->add_option("--class", f->classes, "also every node whose plan has this class (repeatable)");
  c->add_option("--max-parallel", f->max_parallel,
                "at most this many hosts at once; the rest wait their turn");
  return c;
}

}  // namespace

int RunHostJob(const ClientFlags& client, const std::vector<std::string>& nodes,
               const std::string& cmd, const std::string& kind, const Json& args, bool json,
               int wait_s) {
  JobFlags f;
  f.client = client;
  f.nodes = nodes;
  f.json = json;
  f.wait_s = wait_s;
  return RunJobs(f, cmd, kind, args);
}

void RegisterNodeJobCommands(CLI::App& app, CliState* state) {
  CLI::App* node = app.get_subcommand("node");

  auto run = std::make_shared<JobFlags>();
  CLI::App* r = Sub(
      node, "run", "Run a shell command on installed hosts, output and exit codes back", run.get());
  r->add_option("nodes", run->nodes, "the hosts");
  r->add_option("--timeout", run->timeout_s, "kill the command on a host after this many seconds")
      ->capture_default_str();
  r->add_option("-c,--command", run->command_text,
                "the shell command (sh -c on each host, in its root); or give it after --");
  r->footer(
      "Examples:\n  kiln node run web01 web02 -c 'uptime; df -h /'\n"
      "  kiln node run --class WEB --max-parallel 10 -- systemctl reload nginx\n"
      "  kiln node run db01 --timeout 30 -- 'pg_isready && echo up'\n"
      "The words after -- are joined with spaces (as ssh does) and run by sh -c.\n"
      "Exit status 1 when any host failed or timed out.");
  r->callback([run, state] {
    if (!run->command_text.empty() && state->has_trailing_command) {
      state->exit_code =
          Fail("node run", InvalidArgument("give the command with -c or after --, not both"));
      return;
    }
    const std::string command =
        state->has_trailing_command ? state->trailing_command : run->command_text;
    if (command.empty()) {
      state->exit_code =
          Fail("node run",
               InvalidArgument("no command: kiln node run HOSTS -- COMMAND (or -c COMMAND)"));
      return;
    }
    state->exit_code =
        RunJobs(*run, "node run", "run", Json{{"command", command}, {"timeout_s", run->timeout_s}});
  });

  auto up = std::make_shared<JobFlags>();
  CLI::App* u =
      Sub(node, "update", "Update installed hosts to an image version (delta, undone on failure)",
          up.get());
  u->add_option("nodes", up->nodes, "the hosts");
  u->add_option("--to", up->to, "IMAGE@VERSION")->required();
  u->add_option("--exclude", up->excludes,
                "leave these paths alone on the hosts (glob, repeatable; added to the defaults "
                "and the class variable UPDATE_EXCLUDE)");
  u->footer(
      "Examples:\n  kiln node update web01 web02 --to web@4\n  kiln node update --class WEB --to "
      "web@4 --max-parallel 5   (waves of 5)\n"
      "  kiln node update db01 --to db@7 --exclude /etc/postgresql --exclude '*.pem'\n"
      "Always left alone: /etc/hostname /etc/machine-id /etc/fstab /etc/ssh/ssh_host_* /var/log\n"
      "and the agent's own state. kiln watch follows the updates; kiln node rollback\n"
      "returns the hosts to where they were.");
  u->callback([up, state] {
    size_t at = up->to.rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == up->to.size()) {
      state->exit_code =
          Fail("node update", InvalidArgument("--to " + up->to + ": expected IMAGE@VERSION"));
      return;
    }
    Json args = {{"image", up->to.substr(0, at)}, {"version", up->to.substr(at + 1)}};
    if (!up->excludes.empty()) args["excludes"] = up->excludes;
    state->exit_code = RunJobs(*up, "node update", "update", args);
  });

  auto df = std::make_shared<JobFlags>();
  CLI::App* d =
      Sub(node, "diff", "List what on installed hosts differs from the image version they run",
          df.get());
  d->add_option("nodes", df->nodes, "the hosts");
  d->footer(
      "Example:\n  kiln node diff web01\nchanged /etc/motd (content) -- class files and scripts "
      "show up here too.");
  d->callback(
      [df, state] { state->exit_code = RunJobs(*df, "node diff", "diff", Json::object()); });

  auto rb = std::make_shared<JobFlags>();
  CLI::App* b = Sub(node, "rollback",
                    "Return installed hosts to the version before their last update", rb.get());
  b->add_option("nodes", rb->nodes, "the hosts");
  b->callback([rb, state] {
    state->exit_code = RunJobs(*rb, "node rollback", "rollback", Json::object());
  });
}

}  // namespace kiln::cli
