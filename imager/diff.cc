#include "imager/diff.h"

#include "imager/path_util.h"

namespace kiln::imager {

std::vector<Change> DiffManifests(const Manifest& a, const Manifest& b) {
  std::vector<Change> out;
  size_t i = 0, j = 0;
  while (i < a.entries.size() || j < b.entries.size()) {
    const Entry* ea = i < a.entries.size() ? &a.entries[i] : nullptr;
    const Entry* eb = j < b.entries.size() ? &b.entries[j] : nullptr;
    if (ea && (!eb || ea->path < eb->path)) {
      out.push_back({Change::Kind::kRemoved, ea, nullptr, {}});
      ++i;
      continue;
    }
    if (eb && (!ea || eb->path < ea->path)) {
      out.push_back({Change::Kind::kAdded, nullptr, eb, {}});
      ++j;
      continue;
    }
    ++i;
    ++j;
    if (*ea == *eb) continue;
    Change c{Change::Kind::kChanged, ea, eb, {}};
    if (ea->type != eb->type) {
      c.what.push_back("type");
    } else {
      if (ea->size != eb->size || ea->chunks != eb->chunks) c.what.push_back("content");
      if (ea->target != eb->target) c.what.push_back("target");
      if (ea->dev_major != eb->dev_major || ea->dev_minor != eb->dev_minor)
        c.what.push_back("device");
    }
    if (ea->mode != eb->mode) c.what.push_back("mode");
    if (ea->uid != eb->uid || ea->gid != eb->gid) c.what.push_back("owner");
    if (ea->mtime_sec != eb->mtime_sec || ea->mtime_nsec != eb->mtime_nsec)
      c.what.push_back("mtime");
    if (ea->xattrs != eb->xattrs) c.what.push_back("xattrs");
    out.push_back(std::move(c));
  }
  return out;
}

Json ChangeToJson(const Change& c) {
  const char* kind = c.kind == Change::Kind::kAdded     ? "added"
                     : c.kind == Change::Kind::kRemoved ? "removed"
                                                        : "changed";
  Json j = {{"path", DisplayPath(c.path())}, {"change", kind}};
  if (c.kind == Change::Kind::kChanged) j["what"] = c.what;
  if (c.a) j["a"] = EntryToJson(*c.a);
  if (c.b) j["b"] = EntryToJson(*c.b);
  return j;
}

}  // namespace kiln::imager
