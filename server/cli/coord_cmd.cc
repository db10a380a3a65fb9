// kiln coord get|ls|create|set|rm|watch: the coordination store from the
// shell, through the HTTP API (docs/API.md, "Coordination").

#include "server/cli/coord_cmd.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <thread>

#include "common/sse_parser.h"
#include "common/strings.h"
#include "server/coord/path.h"
#include "server/coord_json.h"

namespace kiln::cli {
namespace {

struct CoordFlags {
  ClientFlags client;
  bool json = false;
  std::string path;
  std::string data;
  bool data_given = false;
  int version = -1;
  bool sequential = false;
  bool ephemeral = false;
  int64_t session = 0;
  // watch
  int64_t since = -1;
  bool no_recursive = false;
  int64_t count = 0;
  bool no_reconnect = false;
};

// /api/v1/coord/data + "/kiln/nodes/web 01" -> /api/v1/coord/data/kiln/nodes/web%2001
std::string ApiPath(std::string_view prefix, std::string_view path) {
  std::string out(prefix);
  for (const auto& comp : Split(path, '/')) {
    if (comp.empty()) continue;
    out += '/';
    out += UrlEncode(comp);
  }
  return out;
}

Result<std::string> DataArg(const CoordFlags& f) {
  if (f.data != "-") return f.data;
  std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return in;
}

void PrintData(const Json& j) {
  std::string data;
  if (j.contains("data_base64")) {
    data = coordjson::Base64Decode(j["data_base64"].get<std::string>()).value_or("");
  } else {
    data = j.value("data", "");
  }
  std::fwrite(data.data(), 1, data.size(), stdout);
  if (isatty(1) && (data.empty() || data.back() != '\n')) std::fputc('\n', stdout);
}

int RunGet(const CoordFlags& f) {
  if (Status s = coord::ValidatePath(f.path); !s.ok()) return Fail("coord get", s);
  ApiClient api(ResolveClientConfig(f.client));
  auto r = api.Get(ApiPath("/api/v1/coord/data", f.path));
  if (!r.ok()) return Fail("coord get", r.status());
  if (f.json)
    PrintJson(*r);
  else
    PrintData(*r);
  return kExitOk;
}

int RunLs(const CoordFlags& f) {
  if (Status s = coord::ValidatePath(f.path); !s.ok()) return Fail("coord ls", s);
  ApiClient api(ResolveClientConfig(f.client));
  auto r = api.Get(ApiPath("/api/v1/coord/children", f.path));
  if (!r.ok()) return Fail("coord ls", r.status());
  if (f.json) {
    PrintJson(*r);
  } else {
    for (const auto& c : (*r)["children"]) fmt::print("{}\n", c.get<std::string>());
  }
  return kExitOk;
}

int RunCreate(const CoordFlags& f) {
  if (Status s = coord::ValidatePath(f.path, f.sequential); !s.ok()) return Fail("coord create", s);
  ApiClient api(ResolveClientConfig(f.client));
  Json body = Json::object();
  if (f.data_given) {
    auto data = DataArg(f);
    if (!data.ok()) return Fail("coord create", data.status());
    coordjson::PutData(body, *data);
  }
  if (f.sequential) body["sequential"] = true;
  if (f.ephemeral) body["ephemeral"] = true;
  if (f.session != 0) body["session"] = f.session;
  Result<Json> r = Status(Code::kInternal, "unset");
  if (f.path.back() == '/') {
    // A URL cannot carry the trailing '/' of a sequential prefix such as
    // "/queue/": send it in a one-operation batch instead.
    body["op"] = "create";
    body["path"] = f.path;
    auto b = api.Post("/api/v1/coord/batch", Json{{"ops", Json::array({body})}});
    if (!b.ok()) return Fail("coord create", b.status());
    const Json& one = (*b)["results"][0];
    if (one.contains("error")) return Fail("coord create", StatusFromErrorJson(one.dump(), 400));
    r = one;
  } else {
    r = api.Post(ApiPath("/api/v1/coord/data", f.path), body);
  }
  if (!r.ok()) return Fail("coord create", r.status());
  if (f.json)
    PrintJson(*r);
  else
    fmt::print("{}\n", (*r)["path"].get<std::string>());
  return kExitOk;
}

int RunSet(const CoordFlags& f) {
  if (Status s = coord::ValidatePath(f.path); !s.ok()) return Fail("coord set", s);
  ApiClient api(ResolveClientConfig(f.client));
  auto data = DataArg(f);
  if (!data.ok()) return Fail("coord set", data.status());
  Json body = {{"version", f.version}};
  coordjson::PutData(body, *data);
  auto r = api.Put(ApiPath("/api/v1/coord/data", f.path), body);
  if (!r.ok()) return Fail("coord set", r.status());
  if (f.json)
    PrintJson(*r);
  else
    fmt::print("{} version {} zxid {}\n", f.path, (*r)["stat"]["version"].get<int>(),
               (*r)["zxid"].get<int64_t>());
  return kExitOk;
}

int RunRm(const CoordFlags& f) {
  if (Status s = coord::ValidatePath(f.path); !s.ok()) return Fail("coord rm", s);
  ApiClient api(ResolveClientConfig(f.client));
  std::string path = ApiPath("/api/v1/coord/data", f.path);
  if (f.version != -1) path += "?version=" + std::to_string(f.version);
  auto r = api.Delete(path);
  if (!r.ok()) return Fail("coord rm", r.status());
  if (f.json) PrintJson(*r);
  return kExitOk;
}

std::string OneLine(std::string s, size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

int RunWatch(const CoordFlags& f) {
  if (Status s = coord::ValidatePath(f.path); !s.ok()) return Fail("coord watch", s);
  int64_t position = f.since;  // resume point; -1 until the server names one
  int64_t printed = 0;
  auto backoff = std::chrono::milliseconds(100);
  bool announced_retry = false;
  for (;;) {
    // Resolved again for every connection: a restarted server may listen
    // elsewhere, and --data follows it through its serve.json.
    ApiClient api(ResolveClientConfig(f.client));
    std::string path =
        "/api/v1/watch?path=" + UrlEncode(f.path) + "&recursive=" + (f.no_recursive ? "0" : "1");
    if (position >= 0) path += "&since=" + std::to_string(position);
    SseParser parser;
    Status ended;       // the server's "end" event
    bool done = false;  // --count reached
    HttpRequestOptions opts;
    opts.timeout = std::chrono::milliseconds(0);
    auto reply = api.http().Stream(
        path,
        [&](std::string_view bytes) {
          return parser.Feed(
              bytes,
              [&](const SseParser::Event& e) {
                if (e.type == "end") {
                  ended = StatusFromErrorJson(e.data, 500);
                  return false;
                }
                if (f.json) {
                  fmt::print("{}\n", e.data);
                } else {
                  auto j = ParseJson(e.data);
                  if (j.ok()) {
                    std::string data = j->contains("data") ? (*j)["data"].get<std::string>()
                                       : j->contains("data_base64") ? "(binary)"
                                                                    : "";
                    fmt::print("{:>8} {:<8} {} {}\n", j->value("zxid", int64_t(0)),
                               j->value("type", ""), j->value("path", ""), OneLine(data, 120));
                  }
                }
                std::fflush(stdout);
                if (!e.id.empty())
                  if (auto z = ParseInt(e.id)) position = *z;
                if (f.count > 0 && ++printed >= f.count) {
                  done = true;
                  return false;
                }
                return true;
              },
              [&](std::string_view comment) {
                // ": kiln watch stream since=S zxid=Z": where this stream starts.
                size_t at = comment.find("since=");
                if (position < 0 && at != std::string_view::npos)
                  if (auto z = ParseInt(Split(comment.substr(at + 6), ' ')[0])) position = *z;
                backoff = std::chrono::milliseconds(100);
                announced_retry = false;
              });
        },
        opts);
    if (done) return kExitOk;
    if (reply.ok() && reply->status >= 300)
      return Fail("coord watch", StatusFromErrorJson(reply->body, reply->status));
    Status why = !reply.ok() ? reply.status() : !ended.ok() ? ended : Unavailable("stream closed");
    // A compacted resume cannot be fixed by retrying; a lost server can.
    if (why.code() != Code::kUnavailable && why.code() != Code::kTimeout)
      return Fail("coord watch", why);
    if (f.no_reconnect) return Fail("coord watch", why);
    if (!announced_retry) {
      fmt::print(stderr, "kiln coord watch: {}; reconnecting from zxid {}\n", why.message(),
                 position);
      announced_retry = true;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

CLI::App* Sub(CLI::App* parent, const char* name, const char* help,
              const std::shared_ptr<CoordFlags>& f) {
  CLI::App* cmd = parent->add_subcommand(name, help);
  AddClientOptions(cmd, &f->client);
  cmd->add_flag("--json", f->json, "print the server's JSON answer");
  return cmd;
}

}  // namespace

void RegisterCoordCommand(CLI::App& app, CliState* state) {
  CLI::App* coord = app.add_subcommand(
      "coord", "Read, change and watch the coordination store (ZooKeeper's data model)");
  coord->require_subcommand(1);
  coord->footer(
      "Paths are absolute znode paths such as /kiln/nodes/web01. Exit status: 0 ok,\n"
      "4 no such znode, 1 other errors (bad version, not empty, ...), 3 no server.\n\n"
      "Examples:\n"
      "  kiln coord ls /kiln/nodes\n"
      "  kiln coord create /app/config '{\"replicas\":3}'\n"
      "  kiln coord set /app/config '{\"replicas\":4}' --version 0\n"
      "  kiln coord watch /kiln --since 0 --json");

  {
    auto f = std::make_shared<CoordFlags>();
    CLI::App* cmd = Sub(coord, "get", "Print a znode's data (--json: data and stat)", f);
    cmd->add_option("PATH", f->path, "znode path")->required();
    cmd->footer("Example:\n  kiln coord get /kiln/nodes/web01 --json");
    cmd->callback([f, state] { state->exit_code = RunGet(*f); });
  }
  {
    auto f = std::make_shared<CoordFlags>();
    CLI::App* cmd = Sub(coord, "ls", "List a znode's children, one per line", f);
    cmd->add_option("PATH", f->path, "znode path")->required();
    cmd->footer("Example:\n  kiln coord ls /kiln/servers");
    cmd->callback([f, state] { state->exit_code = RunLs(*f); });
  }
  {
    auto f = std::make_shared<CoordFlags>();
    CLI::App* cmd = Sub(coord, "create", "Create a znode and print its path", f);
    cmd->add_option("PATH", f->path, "znode path (with --sequential, the prefix)")->required();
    cmd->add_option("DATA", f->data, "data to store ('-' reads stdin; default empty)")
        ->each([f](const std::string&) { f->data_given = true; });
    cmd->add_flag("--sequential", f->sequential,
                  "append a 10-digit counter to the name (ZooKeeper's sequential znodes)");
    cmd->add_flag("--ephemeral", f->ephemeral, "delete the znode when --session ends");
    cmd->add_option("--session", f->session, "the session owning an --ephemeral znode");
    cmd->footer(
        "Examples:\n  kiln coord create /app/config '{\"replicas\":3}'\n"
        "  kiln coord create /queue/item- --sequential < job.json");
    cmd->callback([f, state] { state->exit_code = RunCreate(*f); });
  }
  {
    auto f = std::make_shared<CoordFlags>();
    CLI::App* cmd = Sub(coord, "set", "Replace a znode's data", f);
    cmd->add_option("PATH", f->path, "znode path")->required();
    cmd->add_option("DATA", f->data, "the new data ('-' reads stdin)")->required();
    cmd->add_option("--version", f->version, "fail unless the znode is at this version (-1: any)")
        ->capture_default_str();
    cmd->footer("Example:\n  kiln coord set /app/config '{\"replicas\":4}' --version 0");
    cmd->callback([f, state] { state->exit_code = RunSet(*f); });
  }
  {
    auto f = std::make_shared<CoordFlags>();
    CLI::App* cmd = Sub(coord, "rm", "Delete a znode (it must have no children)", f);
    cmd->add_option("PATH", f->path, "znode path")->required();
    cmd->add_option("--version", f->version, "fail unless the znode is at this version (-1: any)")
        ->capture_default_str();
    cmd->footer("Example:\n  kiln coord rm /app/config --version 4");
    cmd->callback([f, state] { state->exit_code = RunRm(*f); });
  }
  {
    auto f = std::make_shared<CoordFlags>();
    CLI::App* cmd =
        Sub(coord, "watch", "Print every change under a path as it happens, in zxid order", f);
    cmd->add_option("PATH", f->path, "znode path")->required();
    cmd->add_option("--since", f->since,
                    "start after this zxid (0: from the oldest retained change); default: now");
    cmd->add_flag("--no-recursive", f->no_recursive,
                  "only the znode and its direct children, not the whole subtree");
    cmd->add_option("--count", f->count, "exit after this many changes");
    cmd->add_flag("--no-reconnect", f->no_reconnect,
                  "exit when the stream ends instead of reconnecting");
    cmd->footer(
        "Each change is printed as ZXID TYPE PATH DATA, or with --json as one JSON object\n"
        "per line (zxid, type, path, data, version). When the server goes away the\n"
        "command reconnects and resumes after the last change it printed, so nothing is\n"
        "missed or repeated while the server retains the changes; if it no longer does,\n"
        "it exits with a \"compacted\" error: re-read, then watch --since the read's zxid.\n\n"
        "Examples:\n  kiln coord watch /kiln --since 0\n"
        "  kiln coord watch /kiln/nodes --json | jq .path");
    cmd->callback([f, state] { state->exit_code = RunWatch(*f); });
  }
}

}  // namespace kiln::cli
