// kiln: the server and its command-line client. A thin table of
// subcommands; each lives in server/cli/ (or its module) as Register*().

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <string_view>

#ifdef KILN_WITH_MIMALLOC
#include <mimalloc.h>
#endif

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

namespace {

// mimalloc gives memory freed for 10 ms back to the system by default.
// kiln frees and reallocates large buffers all the time (upload bodies,
// chunks, stream pieces), and on the VMs measured each page the kernel has
// to supply afresh costs microseconds: a capture took 4-8 times the page
// faults of glibc's malloc and ran a third slower (docs/BENCHMARKS.md).
// Five seconds keeps a transfer's memory for the next piece and still
// returns it once the work is over. MIMALLOC_* settings win.
void TuneAllocator() {
#ifdef KILN_WITH_MIMALLOC
#if MI_MALLOC_VERSION >= 210  // one "purge" delay from 2.1 on
  if (std::getenv("MIMALLOC_PURGE_DELAY") == nullptr) mi_option_set(mi_option_purge_delay, 5000);
#else
  if (std::getenv("MIMALLOC_DECOMMIT_DELAY") == nullptr &&
      std::getenv("MIMALLOC_RESET_DELAY") == nullptr)
    mi_option_set(mi_option_decommit_delay, 5000);
  if (std::getenv("MIMALLOC_SEGMENT_DECOMMIT_DELAY") == nullptr)
    mi_option_set(mi_option_segment_decommit_delay, 5000);
#endif
#endif
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
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
  // Each command's flags, help and examples, by the name that runs it.
  // Building all of them is most of what `kiln` does at start (CLI11
  // allocates every option's strings and validators: about 75 of a
  // command's page faults), so a command builds only its own; a top-level
  // --help, --version or unknown command gets them all.
  struct Command {
    const char* name;
    void (*registers[2])(CLI::App&, kiln::cli::CliState*);
  };
  static constexpr Command kCommands[] = {
      {"serve", {kiln::cli::RegisterServeCommand}},
      {"status", {kiln::cli::RegisterStatusCommand}},
      {"watch", {kiln::cli::RegisterWatchCommand}},
      {"coord", {kiln::cli::RegisterCoordCommand}},
      {"node", {kiln::cli::RegisterNodeCommand, kiln::cli::RegisterNodeJobCommands}},
      {"pxe", {kiln::cli::RegisterPxeCommand}},
      {"initrd", {kiln::cli::RegisterInitrdCommand}},
      {"plan", {kiln::cli::RegisterPlanCommand}},
      {"config", {kiln::cli::RegisterConfigCommand}},
      {"image", {kiln::cli::RegisterImageCommand}},
  };
  std::string_view first = argc > 1 ? argv[1] : "";
  bool known = false;
  for (const Command& c : kCommands) known |= first == c.name;
  for (const Command& c : kCommands) {
    if (known && first != c.name) continue;
    for (auto reg : c.registers)
      if (reg) reg(app, &state);
  }

  kiln::cli::SplitTrailingCommand(&argc, argv, &state);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return kiln::cli::HandleParseError(app, e);
  }
  return state.exit_code;
}
