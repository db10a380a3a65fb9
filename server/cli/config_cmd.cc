#include "server/cli/config_cmd.h"

#include <fmt/format.h>

#include <memory>

#include "classes/config_check.h"

namespace kiln::cli {
namespace {

struct CheckFlags {
  std::string dir = ".";
  std::vector<std::string> facts;
  bool json = false;
};

int RunCheck(const CheckFlags& f) {
  auto report = classes::CheckSpace(f.dir, f.facts);
  if (!report.ok()) return Fail("config check", report.status());
  const auto& r = *report;
  if (f.json) {
    Json problems = Json::array();
    for (size_t i = 0; i < r.problems.size(); ++i) {
      const auto& d = r.problems.items()[i];
      problems.push_back({{"file", d.loc.file},
                          {"line", d.loc.line},
                          {"column", d.loc.column},
                          {"message", d.message},
                          {"text", d.OneLine()},
                          {"context", i < r.contexts.size() ? r.contexts[i] : ""}});
    }
    PrintJson({{"space", f.dir},
               {"ok", r.problems.empty()},
               {"digest", r.digest},
               {"plans", r.plans},
               {"problems", problems}});
    return r.problems.empty() ? kExitOk : kExitFailed;
  }
  if (r.problems.empty()) {
    fmt::print("{}: ok ({} classes, {} rules, {} files; {} sample plans resolved)\n", f.dir,
               r.classes, r.rules, r.files, r.plans);
    return kExitOk;
  }
  for (size_t i = 0; i < r.problems.size(); ++i) {
    fmt::print(stderr, "{}\n", r.problems.items()[i].Render());
    if (i < r.contexts.size()) fmt::print(stderr, "  (while {})\n", r.contexts[i]);
  }
  fmt::print(stderr, "kiln config check: {}: {} problem{}\n", f.dir, r.problems.size(),
             r.problems.size() == 1 ? "" : "s");
  return kExitFailed;
}

}  // namespace

void RegisterConfigCommand(CLI::App& app, CliState* state) {
  CLI::App* config = app.add_subcommand("config", "Work with a config space");
  config->require_subcommand(1);
  auto flags = std::make_shared<CheckFlags>();
  CLI::App* check = config->add_subcommand(
      "check", "Load a config space, run every rule against sample facts, report every problem");
  check->add_option("DIR", flags->dir, "the config space (default: the current directory)");
  check->add_option("--facts", flags->facts,
                    "sample facts: a JSON file or a directory of them, named HOSTNAME.json "
                    "(repeatable; default: a built-in sample node)");
  check->add_flag("--json", flags->json, "print the report as JSON");
  check->footer(
      "Every sample is resolved as itself and once per declared class forced on, and every\n"
      "host in hosts/ once, so each rule, variable file, layout and template runs.\n\n"
      "Exit status: 0 no problems, 1 problems (each printed with file:line), 2 bad usage.\n\n"
      "Examples:\n"
      "  kiln config check examples/space --facts examples/facts\n"
      "  kiln config check /etc/kiln/space --json");
  check->callback([flags, state] { state->exit_code = RunCheck(*flags); });
}

}  // namespace kiln::cli
