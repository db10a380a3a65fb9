#pragma once
// Loads the kernel modules this machine needs out of the set its install
// environment carries, the way udev's coldplug would: a device driver only
// when a device it matches is present, everything else (filesystems,
// checksums, sd_mod) always, each after its dependencies. The environment
// carries drivers for many NICs and disk controllers; inserting all of them
// cost 4 s of every boot under emulation, and on real hardware it probes for
// devices that are not there.
//
// `kiln-agent load-modules` runs this from the install environment's /init;
// the init falls back to inserting the whole list if it fails.

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/initrd/module_deps.h"
#include "common/status.h"

namespace kiln::agent {

// Module name -> its modalias patterns, from modules.alias text
// ("alias PATTERN NAME" lines). Errors name the source and line.
using ModuleAliases = std::map<std::string, std::vector<std::string>>;
Result<ModuleAliases> ParseModuleAliases(std::string_view text, std::string_view source);

// True for a pattern that matches a device on a bus kiln can enumerate
// (pci:, virtio:, usb:, cpu:, acpi:, ...): a module with such a pattern is
// a driver, loaded only for a present device.
bool IsDevicePattern(std::string_view pattern);

// What an install environment carries.
struct ModuleSet {
  std::vector<std::string> load_order;  // relative paths, dependencies first
  std::set<std::string> roots;          // names asked for; empty: every module is one
  ModuleAliases aliases;
  initrd::ModuleIndex deps;
};

// The modules to insert (relative paths, dependencies first) for a machine
// with these device modaliases, leaving out the names already loaded.
std::vector<std::string> ModulesFor(const ModuleSet& set,
                                    const std::vector<std::string>& modaliases,
                                    const std::set<std::string>& loaded);

// The modaliases of the devices under SYSFS: every bus device, and the CPU.
std::vector<std::string> PresentModaliases(const std::string& sysfs = "/sys");
// Names of the modules loaded now (SYSFS/module).
std::set<std::string> LoadedModules(const std::string& sysfs = "/sys");

// Reads the set from MODULES_DIR (modules.dep, modules.alias), LIST (load
// order) and ROOTS (names; a missing file makes every module a root).
Result<ModuleSet> ReadModuleSet(const std::string& modules_dir, const std::string& list,
                                const std::string& roots);

struct ModuleLoadReport {
  size_t carried = 0;                 // modules in the set
  std::vector<std::string> loaded;    // names, in the order inserted
  std::vector<std::string> failures;  // "NAME: why"
};

// Inserts ModulesFor() in passes until no new device turns up (virtio_pci,
// once in, makes the virtio devices that virtio_net and virtio_blk match).
ModuleLoadReport LoadModulesForDevices(const ModuleSet& set, const std::string& modules_dir,
                                       const std::string& sysfs = "/sys");

}  // namespace kiln::agent
