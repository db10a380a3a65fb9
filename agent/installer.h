#pragma once
// kiln-agent install and dirinstall: turns a machine (or a directory) into
// its plan, reporting every step (docs/AGENT.md "Install").
//
//   plan        facts to the server, the plan from it
//   partition   hooks, size check, sfdisk            (install only)
//   format      hooks, mkfs                          (install only)
//   mount       hooks, mount under the target        (install only)
//   image       hooks, the image streamed and applied (resumable)
//   files       hooks, fstab (install), class files
//   scripts     hooks, scripts chrooted into the target
//   bootloader  hooks, EXTLINUX                      (install only)
//   finish      hooks, unmount, the log to the server, report installed
//
// Progress events go through a journal on disk, so a server that goes away
// loses none of them; a live session with heartbeats tells the server the
// agent is alive (it marks the node lost when they stop). On failure the
// install log is still saved and the node is reported failed.

#include <functional>
#include <string>

#include "agent/command_runner.h"
#include "agent/progress_event.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

struct InstallOptions {
  std::string server;      // base URL
  std::string node_token;  // from enrollment (or an admin token)
  std::string node;        // node id
  std::string target = "/target";
  bool disks = true;                              // false: dirinstall (no disks, no boot loader)
  Json facts;                                     // what the agent found (or --facts)
  std::string state_dir = "/var/lib/kiln-agent";  // journals
  std::string log_path = "/tmp/kiln-install.log";
  std::string work_dir = "/tmp";
  std::string grub_efi_image;  // UEFI boot loader; empty: BootloaderOptions' default
  std::chrono::milliseconds session_timeout{15000};
  CommandRunner* runner = nullptr;
  // The local echo of every event (the console).
  std::function<void(const ProgressEvent&)> on_event;
};

struct InstallReport {
  std::string run;
  std::string image;  // NAME@V installed
  uint64_t events = 0;
  // The installed kernel is loaded for kexec (REBOOT = "kexec" and the
  // kernel took it): KexecReboot() starts it.
  bool kexec_loaded = false;
};

Result<InstallReport> RunInstall(const InstallOptions& opts);

}  // namespace kiln::agent
