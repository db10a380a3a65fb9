#include "server/cli/status_cmd.h"

#include <fmt/format.h>

#include <memory>

#include "common/strings.h"

namespace kiln::cli {
namespace {

struct StatusFlags {
  ClientFlags client;
  bool json = false;
};

void PrintHuman(const ApiClient& api, const Json& s) {
  fmt::print("kiln {} (api {}) at {}: healthy\n", s.value("version", "?"), s.value("api", 0),
             api.config().server);
  if (s.contains("uptime_s")) {
    fmt::print("  {:<10} {}\n", "uptime", HumanDuration(s["uptime_s"].get<double>()));
    fmt::print("  {:<10} {}\n", "pid", s.value("pid", 0));
    fmt::print("  {:<10} {}\n", "data", s.value("data_dir", ""));
  }
  // Component sections: one line each with their state and details.
  for (const auto& [name, section] : s.items()) {
    if (!section.is_object()) continue;
    std::string line;
    for (const auto& [k, v] : section.items()) {
      if (!line.empty()) line += ", ";
      line += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
    }
    fmt::print("  {:<10} {}\n", name, line);
  }
}

int RunStatus(const StatusFlags& flags) {
  ApiClient api(ResolveClientConfig(flags.client));
  Result<Json> status = Status(Code::kInternal, "unset");
  if (api.config().token.empty()) {
    // Without a token only the public endpoints answer; say so.
    auto health = api.http().Do("GET", "/healthz");
    if (!health.ok()) return Fail("status", health.status());
    status = api.Get("/api/v1/version");
    if (status.ok() && !flags.json)
      fmt::print(stderr, "kiln status: no token (--token, KILN_TOKEN or --data): public status only\n");
  } else {
    status = api.Get("/api/v1/status");
  }
  if (!status.ok()) return Fail("status", status.status());
  if (flags.json)
    PrintJson(*status);
  else
    PrintHuman(api, *status);
  return kExitOk;
}

}  // namespace

void RegisterStatusCommand(CLI::App& app, CliState* state) {
  auto flags = std::make_shared<StatusFlags>();
  CLI::App* cmd = app.add_subcommand("status", "Show the server's health and its components");
  AddClientOptions(cmd, &flags->client);
  cmd->add_flag("--json", flags->json, "print the server's status document as JSON");
  cmd->footer(
      "Exit status: 0 healthy, 3 server unreachable, 1 other errors.\n\n"
      "Examples:\n  kiln status --data /var/lib/kiln\n  KILN_SERVER=http://10.0.0.1:7070 "
      "KILN_TOKEN=... kiln status --json");
  cmd->callback([flags, state] { state->exit_code = RunStatus(*flags); });
}

}  // namespace kiln::cli
