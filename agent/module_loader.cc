#include "agent/module_loader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::agent {

namespace fs = std::filesystem;

Result<ModuleAliases> ParseModuleAliases(std::string_view text, std::string_view source) {
  ModuleAliases out;
  int line_no = 0;
  for (const auto& raw : Split(text, '\n')) {
    ++line_no;
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string> words;
    for (const auto& w : Split(line, ' '))
      if (!w.empty()) words.push_back(w);
    if (words.size() != 3 || words[0] != "alias")
      return Corruption(fmt::format("{}:{}: expected \"alias PATTERN MODULE\"", source, line_no));
    out[initrd::ModuleName(words[2])].push_back(words[1]);
  }
  return out;
}

bool IsDevicePattern(std::string_view pattern) {
  static const char* const kBuses[] = {
      "pci:", "virtio:", "usb:", "cpu:", "acpi:", "of:", "vmbus:", "platform:", "xen:"};
  for (const char* bus : kBuses)
    if (pattern.substr(0, std::strlen(bus)) == bus) return true;
  return false;
}

namespace {

// -1: not a driver (no device patterns); 0: a driver no device matches;
// 1: a driver for a present device.
int DriverMatch(const ModuleSet& set, const std::string& name,
                const std::vector<std::string>& modaliases) {
  auto it = set.aliases.find(name);
  if (it == set.aliases.end()) return -1;
  int verdict = -1;
  for (const auto& pattern : it->second) {
    if (!IsDevicePattern(pattern)) continue;
    verdict = 0;
    for (const auto& a : modaliases)
      if (::fnmatch(pattern.c_str(), a.c_str(), 0) == 0) return 1;
  }
  return verdict;
}

}  // namespace

std::vector<std::string> ModulesFor(const ModuleSet& set,
                                    const std::vector<std::string>& modaliases,
                                    const std::set<std::string>& loaded) {
  std::vector<std::string> wanted;
  for (const auto& path : set.load_order) {
    std::string name = initrd::ModuleName(path);
    if (!set.roots.empty() && !set.roots.count(name)) continue;  // only as a dependency
    int match = DriverMatch(set, name, modaliases);
    if (match == 0) continue;
    if (match < 0) {
      // Not a driver itself, but built on one (mlx4_en on mlx4_core): only
      // with that driver's device.
      auto closure = set.deps.Resolve({name}, /*optional=*/true);
      bool unmatched_driver = false;
      if (closure.ok())
        for (const auto& dep : *closure)
          unmatched_driver |= DriverMatch(set, initrd::ModuleName(dep), modaliases) == 0;
      if (unmatched_driver) continue;
    }
    wanted.push_back(name);
  }
  // Resolve() orders dependencies first; every name came from modules.dep.
  auto order = set.deps.Resolve(wanted, /*optional=*/true);
  std::vector<std::string> out;
  if (!order.ok()) return out;
  for (auto& path : *order)
    if (!loaded.count(initrd::ModuleName(path))) out.push_back(std::move(path));
  return out;
}

std::vector<std::string> PresentModaliases(const std::string& sysfs) {
  std::vector<std::string> out;
  auto add = [&](const fs::path& p) {
    auto text = ReadFile(p.string());
    if (!text.ok()) return;
    std::string_view v = Trim(*text);
    if (!v.empty()) out.emplace_back(v);
  };
  std::error_code ec;
  for (const auto& bus : fs::directory_iterator(sysfs + "/bus", ec))
    for (const auto& dev : fs::directory_iterator(bus.path() / "devices", ec))
      add(dev.path() / "modalias");
  add(fs::path(sysfs) / "devices/system/cpu/modalias");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::set<std::string> LoadedModules(const std::string& sysfs) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& m : fs::directory_iterator(sysfs + "/module", ec))
    out.insert(m.path().filename().string());
  return out;
}

Result<ModuleSet> ReadModuleSet(const std::string& modules_dir, const std::string& list,
                                const std::string& roots) {
  ModuleSet set;
  KILN_ASSIGN_OR_RETURN(std::string order, ReadFile(list));
  for (const auto& l : Split(order, '\n'))
    if (!Trim(l).empty()) set.load_order.emplace_back(Trim(l));
  if (fs::exists(roots)) {
    KILN_ASSIGN_OR_RETURN(std::string root_text, ReadFile(roots));
    for (const auto& l : Split(root_text, '\n'))
      if (!Trim(l).empty()) set.roots.insert(initrd::ModuleName(Trim(l)));
  }
  std::string alias_path = modules_dir + "/modules.alias";
  KILN_ASSIGN_OR_RETURN(std::string alias_text, ReadFile(alias_path));
  KILN_ASSIGN_OR_RETURN(set.aliases, ParseModuleAliases(alias_text, alias_path));
  KILN_ASSIGN_OR_RETURN(set.deps, initrd::ModuleIndex::Load(modules_dir));
  return set;
}

ModuleLoadReport LoadModulesForDevices(const ModuleSet& set, const std::string& modules_dir,
                                       const std::string& sysfs) {
  ModuleLoadReport report;
  report.carried = set.load_order.size();
  std::set<std::string> tried;
  // A pass can only add devices through the drivers it inserted, so a few
  // passes reach the fixed point (PCI -> virtio -> nothing new).
  for (int pass = 0; pass < 4; ++pass) {
    std::set<std::string> skip = LoadedModules(sysfs);
    skip.insert(tried.begin(), tried.end());
    auto todo = ModulesFor(set, PresentModaliases(sysfs), skip);
    if (todo.empty()) break;
    for (const auto& path : todo) {
      std::string name = initrd::ModuleName(path);
      tried.insert(name);
      UniqueFd fd(::open((modules_dir + "/" + path).c_str(), O_RDONLY | O_CLOEXEC));
      int err = 0;
      if (!fd.valid())
        err = errno;
      else if (::syscall(SYS_finit_module, fd.get(), "", 0) != 0)
        err = errno;
      if (err == 0 || err == EEXIST) {
        if (err == 0) report.loaded.push_back(name);
      } else {
        report.failures.push_back(fmt::format("{}: {}", name, std::strerror(err)));
      }
    }
  }
  return report;
}

}  // namespace kiln::agent
