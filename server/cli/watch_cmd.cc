// kiln watch: every node's install story as it happens. The server writes
// each agent event to /kiln/nodes/<id>/events/e-N (server/node_events.h);
// this follows them through one recursive watch stream, keeps the latest
// state per node and draws one progress bar per node on a terminal (one line
// per phase, log and result otherwise; JSON lines with --json).

#include "server/cli/watch_cmd.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "common/api_client.h"
#include "common/sse_parser.h"
#include "common/strings.h"

namespace kiln::cli {
namespace {

struct WatchFlags {
  ClientFlags client;
  std::vector<std::string> nodes;
  std::vector<std::string> classes;
  bool json = false;
  bool until_done = false;
  bool plain = false;
};

struct NodeView {
  std::string run, phase, step, message, state;
  uint64_t done = 0, total = 0;
  double rate = 0, eta = -1;
  bool finished = false, ok = true;
};

class Watcher {
 public:
  explicit Watcher(const WatchFlags& f) : f_(f), tty_(!f.plain && !f.json && ::isatty(1)) {}

  int Run() {
    std::set<std::string> want(f_.nodes.begin(), f_.nodes.end());
    // The nodes asked for must exist; their current state starts the view.
    ApiClient api(ResolveClientConfig(f_.client));
    auto list = api.Get("/api/v1/nodes");
    if (!list.ok()) return Fail("watch", list.status());
    std::set<std::string> known;
    for (const Json& n : (*list)["nodes"]) known.insert(n.value("id", ""));
    for (const auto& n : want)
      if (!known.count(n)) return Fail("watch", NotFound("no node " + n + " (see kiln node ls)"));
    for (const Json& n : (*list)["nodes"]) {
      std::string id = n.value("id", "");
      if (!Wanted(api, id)) continue;
      NodeView& v = views_[id];
      v.state = n.value("state", "");
      if (v.state == "installing" || v.state == "updating") pending_.insert(id);
    }
    if (f_.until_done && !want.empty()) pending_ = want;
    if (f_.until_done && pending_.empty()) {
      fmt::print(stderr, "kiln watch: no node is installing or updating\n");
      return kExitOk;
    }

    int64_t position = -1;
    for (;;) {
      ApiClient stream_api(ResolveClientConfig(f_.client));
      std::string path = "/api/v1/watch?path=%2Fkiln%2Fnodes&recursive=1";
      if (position >= 0) path += "&since=" + std::to_string(position);
      SseParser parser;
      bool stop = false;
      Status ended;
      HttpRequestOptions opts;
      opts.timeout = std::chrono::milliseconds(0);
      auto reply = stream_api.http().Stream(
          path,
          [&](std::string_view bytes) {
            return parser.Feed(
                bytes,
                [&](const SseParser::Event& e) {
                  if (e.type == "end") {
                    ended = StatusFromErrorJson(e.data, 500);
                    return false;
                  }
                  if (auto z = ParseInt(e.id)) position = *z;
                  OnChange(api, e.data);
                  if (f_.until_done && pending_.empty()) {
                    stop = true;
                    return false;
                  }
                  return true;
                },
                [&](std::string_view comment) {
                  size_t at = comment.find("since=");
                  if (position < 0 && at != std::string_view::npos)
                    if (auto z = ParseInt(Split(comment.substr(at + 6), ' ')[0])) position = *z;
                  if (!announced_ && at != std::string_view::npos) {
                    announced_ = true;
                    fmt::print(stderr, "kiln watch: following {}\n",
                               f_.nodes.empty() ? std::string("every node")
                                                : fmt::format("{}", fmt::join(f_.nodes, " ")));
                  }
                });
          },
          opts);
      if (stop) break;
      if (reply.ok() && reply->status >= 300)
        return Fail("watch", StatusFromErrorJson(reply->body, reply->status));
      Status why = !reply.ok()   ? reply.status()
                   : !ended.ok() ? ended
                                 : Unavailable("stream closed");
      if (why.code() != Code::kUnavailable && why.code() != Code::kTimeout)
        return Fail("watch", why);
      fmt::print(stderr, "kiln watch: {}; reconnecting\n", why.message());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (tty_) Draw();
    bool all_ok = true;
    for (const auto& [id, v] : views_)
      if (v.finished && !v.ok) all_ok = false;
    return all_ok ? kExitOk : kExitFailed;
  }

 private:
  bool Wanted(ApiClient& api, const std::string& id) {
    if (!f_.nodes.empty() && std::find(f_.nodes.begin(), f_.nodes.end(), id) == f_.nodes.end())
      return false;
    if (f_.classes.empty()) return true;
    auto it = classes_of_.find(id);
    if (it == classes_of_.end()) {
      std::set<std::string> cs;
      auto plan = api.Get("/api/v1/nodes/" + id + "/plan");
      if (plan.ok())
        for (const Json& c : (*plan)["classes"]) cs.insert(c.get<std::string>());
      it = classes_of_.emplace(id, std::move(cs)).first;
    }
    for (const auto& c : f_.classes)
      if (it->second.count(c)) return true;
    return false;
  }

  void OnChange(ApiClient& api, const std::string& data) {
    auto j = ParseJson(data);
    if (!j.ok()) return;
    std::string path = j->value("path", "");
    std::string type = j->value("type", "");
    if (type == "deleted") return;
    std::string prefix = "/kiln/nodes/";
    if (!StartsWith(path, prefix)) return;
    auto parts = Split(path.substr(prefix.size()), '/');
    if (parts.empty() || !Wanted(api, parts[0])) return;
    const std::string& id = parts[0];
    auto body = ParseJson(j->value("data", ""));
    if (!body.ok()) return;
    if (parts.size() == 1) {  // the node record: its state
      views_[id].state = body->value("state", "");
      if (tty_) Draw();
      return;
    }
    if (parts.size() != 3 || parts[1] != "events") return;
    const Json& e = (*body)["event"];
    NodeView& v = views_[id];
    std::string run = body->value("run", "");
    if (run != v.run) {
      v = NodeView{.run = run, .state = v.state};
      if (f_.until_done) pending_.insert(id);
    }
    std::string kind = e.value("kind", "");
    if (kind == "phase") {
      v.phase = e.value("phase", "");
      v.message = e.value("message", "");
      v.done = v.total = 0;
      v.step.clear();
    } else if (kind == "progress") {
      v.step = e.value("step", "");
      v.done = e.value("done", uint64_t(0));
      v.total = e.value("total", uint64_t(0));
      v.rate = e.value("rate", 0.0);
      v.eta = e.value("eta_s", -1.0);
    } else if (kind == "log") {
      v.message = e.value("message", "");
    } else if (kind == "result") {
      v.finished = true;
      v.ok = e.value("ok", false);
      v.message = e.value("message", "");
      pending_.erase(id);
    }
    if (f_.json) {
      fmt::print("{}\n", Json{{"node", id}, {"run", run}, {"event", e}}.dump());
      std::fflush(stdout);
    } else if (tty_) {
      Draw();
    } else if (kind != "progress") {
      std::string what = kind == "phase" ? fmt::format("{}: {}", v.phase, v.message)
                         : kind == "result"
                             ? fmt::format("{}: {}", v.ok ? "done" : "FAILED", v.message)
                             : fmt::format("  {}", v.message);
      fmt::print("{:<16} {}\n", id, what);
      std::fflush(stdout);
    }
  }

  // One line per node, redrawn in place.
  void Draw() {
    auto now = std::chrono::steady_clock::now();
    if (drawn_lines_ > 0 && now - last_draw_ < std::chrono::milliseconds(100) && !pending_.empty())
      return;
    last_draw_ = now;
    std::string out;
    if (drawn_lines_ > 0) out += fmt::format("\033[{}A", drawn_lines_);
    int lines = 0;
    for (const auto& [id, v] : views_) {
      std::string status = v.finished        ? (v.ok ? "done" : "FAILED")
                           : v.phase.empty() ? v.state
                                             : v.phase;
      std::string bar;
      if (!v.finished && v.total > 0) {
        double frac = std::min(1.0, double(v.done) / double(v.total));
        int fill = static_cast<int>(frac * 20);
        bar = fmt::format("[{}{}] {:3.0f}%", std::string(size_t(fill), '#'),
                          std::string(size_t(20 - fill), ' '), frac * 100);
        if (v.rate > 0 && v.step == "stream")
          bar += fmt::format(" {}/s", HumanBytes(uint64_t(v.rate)));
        if (v.eta >= 0) bar += " ETA " + HumanDuration(v.eta);
      }
      out += fmt::format("\r\033[K{:<16} {:<10} {:<40} {}\n", id, status, bar,
                         v.message.substr(0, 60));
      ++lines;
    }
    drawn_lines_ = lines;
    fmt::print("{}", out);
    std::fflush(stdout);
  }

  const WatchFlags& f_;
  bool tty_;
  std::map<std::string, NodeView> views_;
  std::map<std::string, std::set<std::string>> classes_of_;
  std::set<std::string> pending_;  // --until-done: nodes without a result yet
  int drawn_lines_ = 0;
  bool announced_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace

void RegisterWatchCommand(CLI::App& app, CliState* state) {
  auto f = std::make_shared<WatchFlags>();
  CLI::App* cmd =
      app.add_subcommand("watch", "Follow installs and updates live, one progress bar per node");
  AddClientOptions(cmd, &f->client);
  cmd->add_option("nodes", f->nodes, "only these nodes (default: every node)");
  cmd->add_option("--class", f->classes, "only nodes whose plan has this class (repeatable)");
  cmd->add_flag("--json", f->json, "print every event as a JSON line {node, run, event}");
  cmd->add_flag("--plain", f->plain, "one line per phase, log and result even on a terminal");
  cmd->add_flag(
      "--until-done", f->until_done,
      "exit when the nodes named (or every node installing now) have a result: 0 if all succeeded, "
      "1 if any failed");
  cmd->footer(
      "Examples:\n"
      "  kiln watch                      every node, until Ctrl-C\n"
      "  kiln watch web01 web02 --until-done\n"
      "  kiln watch --class WEB --json   events for scripts\n"
      "The events come from /kiln/nodes/<id>/events in the coordination store (docs/API.md).");
  cmd->callback([f, state] { state->exit_code = Watcher(*f).Run(); });
}

}  // namespace kiln::cli
