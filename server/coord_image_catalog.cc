#include "server/coord_image_catalog.h"

#include <fmt/format.h>

namespace kiln {
namespace {

constexpr int kMaxAttempts = 50;

std::string PathOf(const std::string& name) {
  return std::string(kImagesZnode) + "/" + name;
}

}  // namespace

Result<std::unique_ptr<CoordImageCatalog>> CoordImageCatalog::Open(coord::CoordStore* store) {
  KILN_RETURN_IF_ERROR(store->EnsurePath(kImagesZnode));
  return std::unique_ptr<CoordImageCatalog>(new CoordImageCatalog(store));
}

Result<std::vector<std::string>> CoordImageCatalog::List() {
  KILN_ASSIGN_OR_RETURN(auto children, store_->Children(kImagesZnode));
  return children.children;
}

Result<imager::ImageRecord> CoordImageCatalog::Get(const std::string& name) {
  KILN_RETURN_IF_ERROR(imager::ValidateImageName(name));
  auto r = store_->Get(PathOf(name));
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound)
      return NotFound(fmt::format("no image named \"{}\"", name));
    return r.status();
  }
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(r->data, PathOf(name)));
  return imager::ImageRecordFromJson(j);
}

Result<imager::ImageRecord> CoordImageCatalog::Update(const std::string& name, const Mutator& fn) {
  KILN_RETURN_IF_ERROR(imager::ValidateImageName(name));
  std::string path = PathOf(name);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto cur = store_->Get(path);
    bool exists = cur.ok();
    if (!exists && cur.status().code() != Code::kNotFound) return cur.status();
    imager::ImageRecord r;
    if (exists) {
      KILN_ASSIGN_OR_RETURN(Json j, ParseJson(cur->data, path));
      KILN_ASSIGN_OR_RETURN(r, imager::ImageRecordFromJson(j));
    } else {
      r.name = name;
    }
    KILN_RETURN_IF_ERROR(fn(r, exists));
    std::string data = imager::ImageRecordToJson(r).dump();
    Status s = exists ? store_->Set(path, data, cur->stat.version).status()
                      : store_->Create(path, data).status();
    if (s.ok()) return r;
    // Someone else changed the record between our read and write: redo.
    if (s.code() != Code::kBadVersion && s.code() != Code::kAlreadyExists &&
        s.code() != Code::kNotFound)
      return s.WithContext(path);
  }
  return Unavailable(fmt::format("{}: too many concurrent updates", path));
}

}  // namespace kiln
