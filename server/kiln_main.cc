// kiln: the server and its command-line client. A thin table of
// subcommands; each lives in server/cli/ (or its module) as Register*().

#include <CLI/CLI.hpp>

#include "common/version.h"
#include "server/cli/cli.h"
#include "server/cli/config_cmd.h"
#include "server/cli/coord_cmd.h"
#include "server/cli/image_cmd.h"
#include "server/cli/initrd_cmd.h"
#include "server/cli/node_cmd.h"
#include "server/cli/node_jobs_cmd.h"
#include "server/cli/plan_cmd.h"
#include "server/cli/pxe_cmd.h"
#include "server/cli/serve_cmd.h"
#include "server/cli/status_cmd.h"
#include "server/cli/watch_cmd.h"

int main(int argc, char** argv) {
  CLI::App app{
      "kiln: bare-metal provisioning and golden-image deployment.\n"
      "Answers PXE boots, decides from a tree of classes what each machine becomes,\n"
      "streams it a versioned golden image and reports every step live."};
  app.name("kiln");
  app.set_version_flag("--version", kiln::kVersion);
  app.require_subcommand(1);
  app.footer(
      "Client commands find the server from --server or KILN_SERVER and the token from\n"
      "--token, KILN_TOKEN or the data directory's admin.token (--data or KILN_DATA).\n"
      "Run `kiln COMMAND --help` for each command's flags and examples.");

  kiln::cli::CliState state;
  kiln::cli::RegisterServeCommand(app, &state);
  kiln::cli::RegisterStatusCommand(app, &state);
  kiln::cli::RegisterWatchCommand(app, &state);
  kiln::cli::RegisterCoordCommand(app, &state);
  kiln::cli::RegisterNodeCommand(app, &state);
  kiln::cli::RegisterNodeJobCommands(app, &state);
  kiln::cli::RegisterPxeCommand(app, &state);
  kiln::cli::RegisterInitrdCommand(app, &state);
  kiln::cli::RegisterPlanCommand(app, &state);
  kiln::cli::RegisterConfigCommand(app, &state);
  kiln::cli::RegisterImageCommand(app, &state);

  kiln::cli::SplitTrailingCommand(&argc, argv, &state);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return kiln::cli::HandleParseError(app, e);
  }
  return state.exit_code;
}
