#include "server/coord/path.h"

#include <fmt/format.h>

#include "server/coord/coord_types.h"

namespace kiln::coord {
namespace {

size_t Utf8Length(std::string_view s, size_t i);

Status Bad(std::string_view path, std::string_view why) {
  // Control characters and invalid UTF-8 would garble the message (and
  // cannot go into JSON): show those bytes escaped.
  std::string shown;
  std::string_view head = path.substr(0, 200);
  for (size_t i = 0; i < head.size(); ++i) {
    auto c = static_cast<unsigned char>(head[i]);
    size_t n = c < 0x20 || c == 0x7f ? 0 : Utf8Length(path, i);
    if (n == 0 || i + n > head.size()) {
      shown += fmt::format("\\x{:02x}", c);
    } else {
      shown.append(head.substr(i, n));
      i += n - 1;
    }
  }
  if (path.size() > 200) shown += "...";
  return InvalidArgument(fmt::format("malformed path \"{}\": {}", shown, why));
}

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not valid
// (overlong forms, surrogates and C1 controls included).
size_t Utf8Length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  auto cont = [&](size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) {
    if (!cont(i + 1)) return 0;
    if (c == 0xC2 && b(i + 1) < 0xA0) return 0;  // U+0080..U+009F: C1 controls
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0;
    return 4;
  }
  return 0;
}

}  // namespace

Status ValidatePath(std::string_view path, bool sequential) {
  if (path.empty()) return Bad(path, "empty (paths start with '/')");
  if (path[0] != '/') return Bad(path, "must start with '/'");
  if (path.size() > kMaxPathLength)
    return Bad(path, fmt::format("longer than {} bytes", kMaxPathLength));
  if (path.size() == 1) {
    if (sequential) return Bad(path, "a sequential znode needs a name or a parent ending in '/'");
    return Status::Ok();
  }
  if (path.back() == '/' && !sequential) return Bad(path, "must not end with '/'");
  size_t comp_start = 1;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string_view comp = path.substr(comp_start, i - comp_start);
      bool last = i == path.size();
      if (comp.empty() && !(last && sequential))
        return Bad(path, fmt::format("empty component at byte {}", i));
      if (comp == "." || comp == "..")
        return Bad(path, fmt::format("relative component \"{}\" at byte {}", comp, comp_start));
      comp_start = i + 1;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (c == 0) return Bad(path, fmt::format("NUL byte at byte {}", i));
    if (c < 0x20 || c == 0x7f) return Bad(path, fmt::format("control character at byte {}", i));
    size_t n = Utf8Length(path, i);
    if (n == 0) return Bad(path, fmt::format("invalid UTF-8 at byte {}", i));
    i += n - 1;
  }
  return Status::Ok();
}

std::string_view ParentPath(std::string_view path) {
  if (path.size() <= 1) return {};
  size_t slash = path.rfind('/');
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  if (path.size() <= 1) return {};
  return path.substr(path.rfind('/') + 1);
}

std::string JoinPath(std::string_view parent, std::string_view child) {
  std::string out(parent);
  if (out.empty() || out.back() != '/') out += '/';
  out += child;
  return out;
}

bool IsUnder(std::string_view path, std::string_view root) {
  if (root == "/") return !path.empty() && path[0] == '/';
  if (path.size() < root.size() || path.substr(0, root.size()) != root) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

std::string SequenceSuffix(int32_t counter) { return fmt::format("{:010d}", counter); }

}  // namespace kiln::coord
