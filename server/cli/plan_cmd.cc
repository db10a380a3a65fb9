#include "server/cli/plan_cmd.h"

#include <fmt/format.h>

#include <memory>

#include "classes/node.h"
#include "classes/plan_text.h"
#include "classes/resolver.h"
#include "classes/space.h"
#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::cli {
namespace {

struct PlanFlags {
  ClientFlags client;
  std::string node;
  std::string space;
  std::string facts;
  std::string hostname;
  std::vector<std::string> classes;
  std::vector<std::string> macs;
  bool json = false;
  bool explain = false;
};

// Errors of the config space print in full (file:line, the line, a caret).
int FailPlan(const std::string& text, int code = kExitFailed) {
  fmt::print(stderr, "kiln plan: {}\n", text);
  return code;
}

Result<classes::NodeRecord> BuildNode(const PlanFlags& f) {
  Json rec = {{"id", f.node}};
  if (!f.hostname.empty()) rec["hostname"] = f.hostname;
  if (!f.facts.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(f.facts));
    KILN_ASSIGN_OR_RETURN(Json facts, ParseJson(text, f.facts));
    rec["facts"] = std::move(facts);
  }
  if (!f.macs.empty()) rec["macs"] = f.macs;
  if (!f.classes.empty()) rec["classes"] = f.classes;
  auto node = classes::NodeFromJson(rec);
  if (!node.ok() && !f.facts.empty() && node.status().message().find("facts") != std::string::npos)
    return node.status().WithContext(f.facts);
  return node;
}

int Print(const PlanFlags& f, const Json& plan) {
  if (f.json)
    PrintJson(plan);
  else if (f.explain)
    fmt::print("{}", classes::RenderExplainText(plan));
  else
    fmt::print("{}", classes::RenderPlanText(plan));
  return kExitOk;
}

int RunOffline(const PlanFlags& f) {
  auto node = BuildNode(f);
  if (!node.ok()) return Fail("plan", node.status());
  classes::Diagnostics diags;
  auto space = classes::LoadSpace(f.space, &diags);
  if (!space) return FailPlan("config space " + f.space + " has problems:\n" + diags.Render());
  classes::Resolver resolver(space);
  classes::Plan plan;
  classes::Diagnostic err;
  if (!resolver.Resolve(*node, {.explain = f.explain}, &plan, &err)) return FailPlan(err.Render());
  return Print(f, classes::PlanToJson(plan, f.explain));
}

int RunOnline(const PlanFlags& f) {
  ApiClient api(ResolveClientConfig(f.client));
  Result<Json> plan = Status(Code::kInternal, "unset");
  if (!f.facts.empty()) {
    auto node = BuildNode(f);
    if (!node.ok()) return Fail("plan", node.status());
    plan = api.Post("/api/v1/plan", {{"node", classes::NodeToJson(*node)}, {"explain", f.explain}});
  } else {
    plan =
        api.Get("/api/v1/nodes/" + UrlEncode(f.node) + "/plan" + (f.explain ? "?explain=1" : ""));
  }
  if (!plan.ok()) {
    // The space cannot make a plan for this node: exit 1, as offline (the
    // server's message is the problem with its file:line and caret).
    if (plan.status().code() == Code::kInvalidArgument) return FailPlan(plan.status().message());
    return Fail("plan", plan.status());
  }
  return Print(f, *plan);
}

}  // namespace

void RegisterPlanCommand(CLI::App& app, CliState* state) {
  auto flags = std::make_shared<PlanFlags>();
  CLI::App* cmd =
      app.add_subcommand("plan", "Show what a node becomes: classes, image, disks, files, scripts");
  cmd->add_option("NODE", flags->node, "node id (also its hostname unless --hostname)")->required();
  cmd->add_option("--space", flags->space,
                  "resolve offline against this config space directory (no server needed)");
  cmd->add_option("--facts", flags->facts, "the node's facts, as the agent reports them (JSON)");
  cmd->add_option("--hostname", flags->hostname, "hostname, if not the node id");
  cmd->add_option("--class", flags->classes,
                  "an explicit class, as on the node record (repeatable)");
  cmd->add_option("--mac", flags->macs,
                  "a MAC address (repeatable; default: the MACs in the facts)");
  cmd->add_flag("--json", flags->json, "print the plan as JSON (the form the agent consumes)");
  cmd->add_flag(
      "--explain", flags->explain,
      "show every decision with the class and file:line that made it, and what it overrode");
  AddClientOptions(cmd, &flags->client);
  cmd->footer(
      "With --space the plan is resolved here, so a config space can be tried before it is\n"
      "deployed. Without it the server resolves the plan: with --facts for the node described\n"
      "on the command line, without for the node in the server's inventory.\n\n"
      "Exit status: 0 ok, 1 the space cannot make a plan for this node, 2 bad usage,\n"
      "3 server unreachable, 4 no such node.\n\n"
      "Examples:\n"
      "  kiln plan web01 --space examples/space --facts examples/facts/web01.json --explain\n"
      "  kiln plan db01 --space /etc/kiln/space --facts db01.json --json\n"
      "  kiln plan web01 --facts web01.json          # resolved by the server");
  cmd->callback([flags, state] {
    state->exit_code = flags->space.empty() ? RunOnline(*flags) : RunOffline(*flags);
  });
}

}  // namespace kiln::cli
