#include "imager/path_util.h"

#include <fmt/format.h>

namespace kiln::imager {

Status ValidateEntryPath(std::string_view path) {
  if (path.empty()) return Status::Ok();
  if (path.size() > kMaxPathLen)
    return InvalidArgument(fmt::format("path is longer than {} bytes", kMaxPathLen));
  if (path.find('\0') != std::string_view::npos) return InvalidArgument("path contains a NUL byte");
  if (path.front() == '/') return InvalidArgument(fmt::format("path \"{}\" is absolute", path));
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view comp = path.substr(start, end - start);
    if (comp.empty())
      return InvalidArgument(fmt::format("path \"{}\" has an empty component", path));
    if (comp == "." || comp == "..")
      return InvalidArgument(fmt::format("path \"{}\" has a \"{}\" component", path, comp));
    if (comp.size() > kMaxNameLen)
      return InvalidArgument(
          fmt::format("path \"{}\" has a component longer than {} bytes", path, kMaxNameLen));
    start = end + 1;
  }
  return Status::Ok();
}

Result<std::string> NormalizeArchivePath(std::string_view name) {
  std::string_view n = name;
  if (!n.empty() && n.front() == '/')
    return InvalidArgument(fmt::format("archive member \"{}\" has an absolute path", name));
  while (n.size() >= 2 && n.substr(0, 2) == "./") {
    n.remove_prefix(2);
    while (!n.empty() && n.front() == '/') n.remove_prefix(1);
  }
  while (!n.empty() && n.back() == '/') n.remove_suffix(1);
  if (n == ".") n = "";
  Status s = ValidateEntryPath(n);
  if (!s.ok()) return InvalidArgument(fmt::format("archive member \"{}\": {}", name, s.message()));
  return std::string(n);
}

std::string_view ParentPath(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string DisplayPath(std::string_view path) {
  return "/" + std::string(path);
}

bool IsUnder(std::string_view path, std::string_view dir) {
  if (dir.empty()) return true;
  if (path.size() < dir.size() || path.substr(0, dir.size()) != dir) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

}  // namespace kiln::imager
