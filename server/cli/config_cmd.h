#pragma once
// `kiln config check [DIR]`: loads a config space, runs every rule against
// sample facts and reports every problem at once with file:line.

#include <CLI/CLI.hpp>

#include "server/cli/cli.h"

namespace kiln::cli {

void RegisterConfigCommand(CLI::App& app, CliState* state);

}  // namespace kiln::cli
