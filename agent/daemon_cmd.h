#pragma once
// kiln-agent daemon: the agent's life on an installed machine. It reads
// /etc/kiln/agent.json (written by the install), holds a live session with
// the server that says which image the machine runs, and stays until
// SIGTERM. (Update, rollback and capture jobs come through here next.)

#include <CLI/CLI.hpp>

namespace kiln::agent {

void RegisterDaemonCommand(CLI::App& app, int* exit_code);

}  // namespace kiln::agent
