#pragma once
// kiln watch [NODE...] [--class C]: live progress of installs and updates,
// from the coordination store's watch stream on /kiln/nodes.

#include "server/cli/cli.h"

namespace kiln::cli {

void RegisterWatchCommand(CLI::App& app, CliState* state);

}  // namespace kiln::cli
