#pragma once
// kiln-agent daemon: the agent's life on an installed machine. It reads
// /etc/kiln/agent.json (written by the install), holds a live session with
// the server that says which image the machine runs, and stays until
// SIGTERM, running the jobs the server queues for it (host_jobs.h); it
// learns of them through a long poll (GET .../jobs?wait=S), falling back to
// asking every --poll-ms. SIGTERM waits for a job in flight to finish.

#include <CLI/CLI.hpp>

namespace kiln::agent {

void RegisterDaemonCommand(CLI::App& app, int* exit_code);

}  // namespace kiln::agent
