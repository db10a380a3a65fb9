// CoordStore::Open: picks the backend named by the URL.

#include "server/coord/coord_store.h"
#include "server/coord/embedded/embedded_store.h"

namespace kiln::coord {

Result<std::unique_ptr<CoordStore>> CoordStore::Open(const CoordOptions& options) {
  KILN_ASSIGN_OR_RETURN(CoordUrl url, ParseCoordUrl(options.url));
  if (url.kind == CoordUrl::Kind::kEmbedded) return OpenEmbeddedStore(options, url.dir);
  return Unavailable("the zookeeper backend is not in this build yet (" + options.url + ")");
}

}  // namespace kiln::coord
