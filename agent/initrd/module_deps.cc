#include "agent/initrd/module_deps.h"

#include <fmt/format.h>

#include <functional>
#include <set>

#include "common/file_util.h"
#include "common/strings.h"

namespace kiln::initrd {

std::string ModuleName(std::string_view s) {
  size_t slash = s.rfind('/');
  if (slash != std::string_view::npos) s = s.substr(slash + 1);
  size_t ko = s.find(".ko");
  if (ko != std::string_view::npos) s = s.substr(0, ko);
  std::string out(s);
  for (char& c : out)
    if (c == '-') c = '_';
  return out;
}

Result<ModuleIndex> ModuleIndex::Load(const std::string& modules_dir) {
  std::string path = modules_dir + "/modules.dep";
  auto text = ReadFile(path);
  if (!text.ok())
    return text.status().WithContext("no module index (run depmod -b ROOT VERSION)");
  return Parse(*text, path);
}

Result<ModuleIndex> ModuleIndex::Parse(std::string_view text, std::string_view source) {
  ModuleIndex idx;
  int line_no = 0;
  for (const auto& raw : Split(text, '\n')) {
    ++line_no;
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return Corruption(fmt::format("{}:{}: expected \"module.ko: deps...\"", source, line_no));
    std::string path(Trim(line.substr(0, colon)));
    std::vector<std::string> deps;
    for (const auto& d : Split(Trim(line.substr(colon + 1)), ' '))
      if (!d.empty()) deps.push_back(d);
    idx.path_by_name_[ModuleName(path)] = path;
    idx.deps_by_path_[path] = std::move(deps);
  }
  return idx;
}

bool ModuleIndex::Has(std::string_view name) const {
  return path_by_name_.count(ModuleName(name)) > 0;
}

Result<std::vector<std::string>> ModuleIndex::Resolve(const std::vector<std::string>& names,
                                                      bool optional) const {
  std::vector<std::string> order;
  std::set<std::string> done, visiting;
  std::function<Status(const std::string&)> visit = [&](const std::string& path) -> Status {
    if (done.count(path)) return Status::Ok();
    if (visiting.count(path))
      return Corruption(fmt::format("module dependency cycle at {}", path));
    visiting.insert(path);
    auto it = deps_by_path_.find(path);
    if (it == deps_by_path_.end())
      return Corruption(fmt::format("modules.dep names {} as a dependency but has no entry for it",
                                    path));
    // modules.dep lists dependencies closest first; load the farthest first.
    for (auto d = it->second.rbegin(); d != it->second.rend(); ++d) KILN_RETURN_IF_ERROR(visit(*d));
    visiting.erase(path);
    done.insert(path);
    order.push_back(path);
    return Status::Ok();
  };
  for (const auto& n : names) {
    auto it = path_by_name_.find(ModuleName(n));
    if (it == path_by_name_.end()) {
      if (optional) continue;
      return NotFound(fmt::format("kernel module {} is not in modules.dep", n));
    }
    KILN_RETURN_IF_ERROR(visit(it->second));
  }
  return order;
}

}  // namespace kiln::initrd
