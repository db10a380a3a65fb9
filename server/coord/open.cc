// CoordStore::Open: picks the backend named by the URL.

#include "server/coord/coord_store.h"
#include "server/coord/embedded/embedded_store.h"
#include "server/coord/zk/zk_store.h"

namespace kiln::coord {

Result<std::unique_ptr<CoordStore>> CoordStore::Open(const CoordOptions& options) {
  KILN_ASSIGN_OR_RETURN(CoordUrl url, ParseCoordUrl(options.url));
  if (url.kind == CoordUrl::Kind::kEmbedded) return OpenEmbeddedStore(options, url.dir);
  return OpenZooKeeperStore(options, url.hosts, url.chroot);
}

}  // namespace kiln::coord
