#pragma once
// kiln-agent install, dirinstall and discover: the command-line side of
// agent/installer.h.

#include <CLI/CLI.hpp>

namespace kiln::agent {

void RegisterInstallCommands(CLI::App& app, int* exit_code);

}  // namespace kiln::agent
