#pragma once
// Differences between two manifests, for `kiln image diff` and for delta
// streams.

#include <string>
#include <vector>

#include "common/json.h"
#include "imager/manifest.h"

namespace kiln::imager {

struct Change {
  enum class Kind { kAdded, kRemoved, kChanged };
  Kind kind;
  const Entry* a = nullptr;  // null when added
  const Entry* b = nullptr;  // null when removed
  // For kChanged: which aspects: "type", "content", "target", "device",
  // "mode", "owner", "mtime", "xattrs".
  std::vector<std::string> what;
  const std::string& path() const { return b ? b->path : a->path; }
};

// In path order. Hard links compare by the path they name.
std::vector<Change> DiffManifests(const Manifest& a, const Manifest& b);

Json ChangeToJson(const Change& c);

}  // namespace kiln::imager
