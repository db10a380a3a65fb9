// kiln-agent: kiln's hands on a machine. A thin table of subcommands; each
// lives in agent/ as a Register*() function.

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "agent/daemon_cmd.h"
#include "agent/facts.h"
#include "agent/install_cmd.h"
#include "agent/modules_cmd.h"
#include "common/version.h"

namespace {

int RunFacts(const std::string& facts_file) {
  if (!facts_file.empty()) {
    auto f = kiln::agent::LoadFactsFile(facts_file);
    if (!f.ok()) {
      fmt::print(stderr, "kiln-agent facts: {}\n", f.status().message());
      return 1;
    }
    fmt::print("{}\n", f->dump(2));
    return 0;
  }
  fmt::print("{}\n", kiln::agent::CollectFacts().dump(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln-agent: installs, updates and captures this machine for a kiln server"};
  app.name("kiln-agent");
  app.set_version_flag("--version", kiln::kVersion);
  app.require_subcommand(1);
  int exit_code = 0;

  std::string facts_file;
  CLI::App* facts =
      app.add_subcommand("facts", "Print what this machine is, as the agent reports it");
  facts->add_option("--facts", facts_file,
                    "read and check facts from FILE instead of /sys and /proc");
  facts->footer("The schema is in docs/AGENT.md; class rules read these facts.");
  facts->callback([&] { exit_code = RunFacts(facts_file); });

  kiln::agent::RegisterInstallCommands(app, &exit_code);
  kiln::agent::RegisterDaemonCommand(app, &exit_code);
  kiln::agent::RegisterModulesCommand(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string what = e.what();
    for (char& c : what)
      if (c == '\n') c = ' ';
    fmt::print(stderr, "kiln-agent: {} (see kiln-agent --help)\n", what);
    return 2;
  }
  return exit_code;
}
