#pragma once
// Image records in the coordination store: /kiln/images/<name> holds the
// record's JSON (imager/catalog.h), so every kiln server sharing a store
// (and anything watching it) sees the same versions, current pointer and
// tags. Updates are compare-and-set on the znode version, retried on
// conflict, so concurrent rollbacks and captures never lose each other.

#include <memory>

#include "imager/catalog.h"
#include "server/coord/coord_store.h"

namespace kiln {

inline constexpr const char* kImagesZnode = "/kiln/images";

class CoordImageCatalog : public imager::ImageCatalog {
 public:
  // Creates /kiln/images when missing. store must outlive the catalog.
  static Result<std::unique_ptr<CoordImageCatalog>> Open(coord::CoordStore* store);

  Result<std::vector<std::string>> List() override;
  Result<imager::ImageRecord> Get(const std::string& name) override;
  Result<imager::ImageRecord> Update(const std::string& name, const Mutator& fn) override;

 private:
  explicit CoordImageCatalog(coord::CoordStore* store) : store_(store) {}
  coord::CoordStore* store_;
};

}  // namespace kiln
