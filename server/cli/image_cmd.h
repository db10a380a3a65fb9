#pragma once
// `kiln image ...`: the image store from the command line.
//   image_cmd.cc           ls, log, show, diff, tag, rollback, gc, verify
//   image_transfer_cmd.cc  capture, deploy, export, undo

#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {

void RegisterImageCommand(CLI::App& app, CliState* state);

// Used by RegisterImageCommand; defined in image_transfer_cmd.cc.
void RegisterImageTransferCommands(CLI::App* image, CliState* state);

}  // namespace kiln::cli
