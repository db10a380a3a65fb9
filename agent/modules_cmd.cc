#include "agent/modules_cmd.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/utsname.h>

#include "agent/module_loader.h"

namespace kiln::agent {

void RegisterModulesCommand(CLI::App& app, int* exit_code) {
  static std::string list = "/etc/kiln/modules", roots = "/etc/kiln/module-roots", dir,
                     sysfs = "/sys";
  static bool dry_run = false;
  CLI::App* cmd = app.add_subcommand(
      "load-modules", "Insert the kernel modules this machine's devices need, dependencies first");
  cmd->add_option("--list", list, "the modules carried, in load order (paths under --dir)")
      ->capture_default_str();
  cmd->add_option("--roots", roots, "the module names asked for (the rest are dependencies)")
      ->capture_default_str();
  cmd->add_option("--dir", dir, "modules.dep and modules.alias (default /lib/modules/$(uname -r))");
  cmd->add_option("--sysfs", sysfs, "where the devices are listed")->capture_default_str();
  cmd->add_flag("--dry-run", dry_run, "print what would be inserted, insert nothing");
  cmd->footer(
      "A driver (a module with pci:, virtio:, usb:, cpu: ... aliases) is inserted only when a\n"
      "present device matches it; filesystems and helpers always. Run by the install\n"
      "environment's /init; prints one line: what it inserted.");
  cmd->callback([exit_code] {
    std::string modules_dir = dir;
    if (modules_dir.empty()) {
      utsname u{};
      ::uname(&u);
      modules_dir = std::string("/lib/modules/") + u.release;
    }
    auto set = ReadModuleSet(modules_dir, list, roots);
    if (!set.ok()) {
      fmt::print(stderr, "kiln-agent load-modules: {}\n", set.status().message());
      *exit_code = 1;
      return;
    }
    if (dry_run) {
      for (const auto& p : ModulesFor(*set, PresentModaliases(sysfs), LoadedModules(sysfs)))
        fmt::print("{}\n", p);
      return;
    }
    ModuleLoadReport r = LoadModulesForDevices(*set, modules_dir, sysfs);
    fmt::print("loaded {} of {} modules for this machine's devices ({})\n", r.loaded.size(),
               r.carried, fmt::join(r.loaded, " "));
    for (const auto& f : r.failures) fmt::print(stderr, "kiln-agent load-modules: {}\n", f);
  });
}

}  // namespace kiln::agent
