#pragma once
// Kernel module dependency resolution from modules.dep, so the install
// environment carries exactly the modules it needs, in load order.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::initrd {

class ModuleIndex {
 public:
  // Reads DIR/modules.dep (DIR is lib/modules/VERSION). Errors name the
  // file and line of anything it cannot parse.
  static Result<ModuleIndex> Load(const std::string& modules_dir);
  // Parses modules.dep text (for tests).
  static Result<ModuleIndex> Parse(std::string_view text, std::string_view source);

  // Relative paths ("kernel/drivers/net/virtio_net.ko") of the named modules
  // and everything they need, dependencies before dependents, each once.
  // Names match with '-' and '_' treated alike. Unknown names fail unless
  // optional, when they are skipped (built-in or absent in this kernel).
  Result<std::vector<std::string>> Resolve(const std::vector<std::string>& names,
                                           bool optional) const;

  bool Has(std::string_view name) const;

 private:
  std::map<std::string, std::string> path_by_name_;
  std::map<std::string, std::vector<std::string>> deps_by_path_;
};

// "virtio-net" and "virtio_net" and "kernel/.../virtio_net.ko.xz" -> "virtio_net".
std::string ModuleName(std::string_view name_or_path);

}  // namespace kiln::initrd
