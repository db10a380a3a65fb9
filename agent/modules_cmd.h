#pragma once
// `kiln-agent load-modules`: the install environment's driver coldplug
// (module_loader.h).

#include <CLI/CLI.hpp>

namespace kiln::agent {

void RegisterModulesCommand(CLI::App& app, int* exit_code);

}  // namespace kiln::agent
