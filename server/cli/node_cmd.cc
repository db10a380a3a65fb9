#include "server/cli/node_cmd.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <memory>

#include "common/hash.h"
#include "common/strings.h"

namespace kiln::cli {
namespace {

struct NodeFlags {
  ClientFlags client;
  bool json = false;
  std::vector<std::string> names;
  std::vector<std::string> macs;
  std::vector<std::string> classes;
  std::string image;
  std::string hostname;
  std::string boot;
  std::string node;  // node boot: one node, then the target
  std::string target;
  int max_parallel = 0;  // node install: 0 = no wave
};

std::string Join(const Json& arr, const char* sep = ",") {
  std::string s;
  for (const auto& v : arr) {
    if (!s.empty()) s += sep;
    s += v.is_string() ? v.get<std::string>() : v.dump();
  }
  return s;
}

std::string NodePath(const std::string& id) {
  return "/api/v1/nodes/" + UrlEncode(id);
}

int Done(const NodeFlags& f, const Json& node, const std::string& line) {
  if (f.json)
    PrintJson(node);
  else
    fmt::print("{}\n", line);
  return kExitOk;
}

int RunAdd(const NodeFlags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  Json body = {{"name", f.names.at(0)}, {"macs", f.macs}, {"classes", f.classes}};
  if (!f.image.empty()) body["image"] = f.image;
  if (!f.hostname.empty()) body["hostname"] = f.hostname;
  if (!f.boot.empty()) body["boot"] = f.boot;
  auto n = api.Post("/api/v1/nodes", body);
  if (!n.ok()) return Fail("node add", n.status());
  return Done(f, *n,
              fmt::format("added {} ({}); next boot: {}", (*n)["id"].get<std::string>(),
                          Join((*n)["macs"], ", "), (*n)["boot"].get<std::string>()));
}

int RunList(const NodeFlags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  auto r = api.Get("/api/v1/nodes");
  if (!r.ok()) return Fail("node ls", r.status());
  if (f.json) {
    PrintJson(*r);
    return kExitOk;
  }
  const Json& nodes = (*r)["nodes"];
  if (nodes.empty()) {
    fmt::print("no nodes (kiln node add NAME --mac MAC, or boot an unknown machine)\n");
    return kExitOk;
  }
  fmt::print("{:<20} {:<11} {:<10} {:<14} {:<18} {}\n", "NAME", "STATE", "BOOT", "IMAGE", "MACS",
             "CLASSES");
  for (const auto& n : nodes) {
    // The image it is assigned, else the one it installed (from its plan).
    std::string image = n.value("image", "");
    if (image.empty()) image = n.value("installed_image", "");
    fmt::print("{:<20} {:<11} {:<10} {:<14} {:<18} {}\n", n.value("id", ""), n.value("state", ""),
               n.value("boot", ""), image.empty() ? "-" : image, Join(n["macs"]),
               n["classes"].empty() ? "-" : Join(n["classes"]));
  }
  return kExitOk;
}

int RunShow(const NodeFlags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  auto n = api.Get(NodePath(f.names.at(0)));
  if (!n.ok()) return Fail("node show", n.status());
  if (f.json) {
    PrintJson(*n);
    return kExitOk;
  }
  auto line = [](const char* k, const std::string& v) { fmt::print("{:<16} {}\n", k, v); };
  line("name", n->value("id", ""));
  line("hostname", n->value("hostname", ""));
  line("state",
       n->value("state", "") +
           (n->contains("state_message") ? " (" + n->value("state_message", "") + ")" : ""));
  line("next boot", n->value("boot", ""));
  line("macs", Join((*n)["macs"], ", "));
  line("classes", (*n)["classes"].empty() ? "-" : Join((*n)["classes"], ", "));
  line("image", n->value("image", "").empty() ? "-" : n->value("image", ""));
  if (n->contains("installed_image")) line("installed image", n->value("installed_image", ""));
  if ((*n)["wave"].is_object())
    line("install wave", fmt::format("{} (at most {} at once)", (*n)["wave"].value("id", ""),
                                     (*n)["wave"].value("max_parallel", 0)));
  // What the node's agent says now, and the last step of its story.
  std::string id = n->value("id", "");
  auto agent = api.Get("/api/v1/coord/data/kiln/nodes/" + id + "/agent");
  if (agent.ok()) {
    auto a = ParseJson(agent->value("data", "{}"));
    if (a.ok())
      line("agent", fmt::format("{} (image {}, kernel {}, session {})", a->value("mode", "?"),
                                a->value("image", "-"), a->value("kernel", "-"),
                                a->value("session", int64_t(0))));
  } else {
    line("agent", "none connected");
  }
  auto progress = api.Get("/api/v1/nodes/" + id + "/progress");
  if (progress.ok()) {
    const Json e = progress->value("event", Json::object());
    line("last event", fmt::format("#{} {} {}: {}", e.value("seq", 0), e.value("kind", ""),
                                   e.value("phase", ""), e.value("message", "")));
  }
  if (n->contains("facts") && !(*n)["facts"].empty()) line("facts", (*n)["facts"].dump());
  return kExitOk;
}

int RunRemove(const NodeFlags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  Json removed = Json::array();
  for (const auto& name : f.names) {
    auto r = api.Delete(NodePath(name));
    if (!r.ok()) return Fail("node rm", r.status());
    removed.push_back((*r)["removed"]);
    if (!f.json) fmt::print("removed {}\n", (*r)["removed"].get<std::string>());
  }
  if (f.json) PrintJson({{"removed", removed}});
  return kExitOk;
}

int RunBoot(const NodeFlags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  auto n = api.Put(NodePath(f.node) + "/boot", {{"target", f.target}});
  if (!n.ok()) return Fail("node boot", n.status());
  return Done(f, *n,
              fmt::format("{} boots {} next", (*n)["id"].get<std::string>(),
                          (*n)["boot"].get<std::string>()));
}

int RunInstall(const NodeFlags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  if (f.max_parallel < 0) return Fail("node install", InvalidArgument("--max-parallel: from 1"));
  Json body = Json::object();
  std::string wave;
  if (f.max_parallel > 0) {
    // One wave per command: its members share the slots.
    auto now = std::chrono::system_clock::now().time_since_epoch();
    wave = fmt::format("w-{}-{}", std::chrono::duration_cast<std::chrono::seconds>(now).count(),
                       RandomHex(3));
    body = {{"wave", wave}, {"max_parallel", f.max_parallel}};
  }
  Json all = Json::array();
  for (const auto& name : f.names) {
    auto n = api.Post(NodePath(name) + "/install", body);
    if (!n.ok()) return Fail("node install", n.status());
    all.push_back(*n);
    if (!f.json) {
      std::string image = n->value("image", "");
      fmt::print("{} installs {} at its next network boot\n", (*n)["id"].get<std::string>(),
                 image.empty() ? "the image its classes choose" : image);
    }
  }
  if (f.json) {
    PrintJson({{"nodes", all}, {"wave", wave.empty() ? Json() : Json(wave)}});
  } else if (!wave.empty()) {
    fmt::print(
        "wave {}: at most {} install at once, first booted first served; the others wait in\n"
        "their boot loader and ask again. Follow it with: kiln watch {}\n",
        wave, f.max_parallel, fmt::join(f.names, " "));
  }
  return kExitOk;
}

CLI::App* Sub(CLI::App* parent, const char* name, const char* help, NodeFlags* f) {
  CLI::App* c = parent->add_subcommand(name, help);
  AddClientOptions(c, &f->client);
  c->add_flag("--json", f->json, "print JSON");
  return c;
}

}  // namespace

void RegisterNodeCommand(CLI::App& app, CliState* state) {
  auto f = std::make_shared<NodeFlags>();
  CLI::App* node =
      app.add_subcommand("node", "Manage the machines kiln knows (the node inventory)");
  node->require_subcommand(1);
  node->footer(
      "A node is named by its name or any of its MACs. Unknown machines that boot through kiln\n"
      "appear as discovered nodes (mac-XXXXXXXXXXXX); `kiln node add` with their MAC adopts "
      "them.\n\n"
      "Examples:\n"
      "  kiln node add web01 --mac 52:54:00:12:34:56 --class WEB --image web@3\n"
      "  kiln node install web01\n"
      "  kiln node boot web01 localboot\n"
      "  kiln node ls --json");

  CLI::App* add = Sub(node, "add", "Add a node", f.get());
  add->add_option("name", f->names, "node name (lower-case letters, digits, '-')")
      ->required()
      ->expected(1);
  add->add_option("--mac", f->macs, "a MAC it boots from (repeatable)")->required();
  add->add_option("--class", f->classes, "a class (repeatable; the config space adds more)");
  add->add_option("--image", f->image, "image to install: NAME or NAME@VERSION");
  add->add_option("--hostname", f->hostname, "hostname (default: the name)");
  add->add_option("--boot", f->boot,
                  "first boot target (default localboot: never wipe a machine "
                  "just because it was added)")
      ->check(CLI::IsMember({"install", "localboot", "discover", "rescue"}));
  add->callback([f, state] { state->exit_code = RunAdd(*f); });

  CLI::App* ls = Sub(node, "ls", "List nodes", f.get());
  ls->callback([f, state] { state->exit_code = RunList(*f); });

  CLI::App* show = Sub(node, "show", "Show one node", f.get());
  show->add_option("node", f->names, "name or MAC")->required()->expected(1);
  show->callback([f, state] { state->exit_code = RunShow(*f); });

  CLI::App* rm = Sub(node, "rm", "Remove nodes, their progress and events", f.get());
  rm->add_option("nodes", f->names, "names or MACs")->required();
  rm->callback([f, state] { state->exit_code = RunRemove(*f); });

  CLI::App* boot = Sub(node, "boot", "Set what a node boots next", f.get());
  boot->add_option("node", f->node, "name or MAC")->required();
  boot->add_option("target", f->target, "install, localboot, discover or rescue")
      ->required()
      ->check(CLI::IsMember({"install", "localboot", "discover", "rescue"}));
  boot->callback([f, state] { state->exit_code = RunBoot(*f); });

  CLI::App* install = Sub(node, "install", "Install nodes at their next network boot", f.get());
  install->add_option("nodes", f->names, "names or MACs")->required();
  install->add_option("--max-parallel", f->max_parallel,
                      "an install wave: at most this many of these nodes install at once; the "
                      "rest wait their turn at boot");
  install->footer(
      "Examples:\n  kiln node install web01\n"
      "  kiln node install $(seq -f 'rack1-%02g' 1 40) --max-parallel 8\n"
      "A waiting machine's iPXE script says why, sleeps 30 s and asks again (PXELINUX and GRUB\n"
      "reboot to ask again). A slot frees when a node installs, fails or is lost.");
  install->callback([f, state] { state->exit_code = RunInstall(*f); });
}

}  // namespace kiln::cli
