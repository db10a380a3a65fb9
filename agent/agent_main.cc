// kiln-agent: kiln's hands on a machine. Install, dirinstall and the
// installed-host daemon arrive with the agent issues; this is its shell.

#include <CLI/CLI.hpp>

#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln-agent: installs, updates and captures this machine for a kiln server"};
  app.name("kiln-agent");
  app.set_version_flag("--version", kiln::kVersion);
  app.require_subcommand(0);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
