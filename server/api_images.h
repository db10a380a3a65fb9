#pragma once
// The image API (docs/API.md, "Images"): records, versions, diffs, the
// capture upload protocol, streams and objects. Handlers call into
// kiln_imager's ImageStore; work that takes more than a moment (verifying an
// upload, committing, gc, verify) runs on a small worker pool so the HTTP
// event loops stay responsive.

#include <memory>

namespace kiln {
class Server;
namespace http {
class Router;
}
namespace imager {
class ImageStore;
}

class ImagesApi;

// Registers the routes; the returned object owns the worker pool and must
// be destroyed after the HTTP server stops and before the store.
std::unique_ptr<ImagesApi> RegisterImageRoutes(http::Router& router, Server& server,
                                               imager::ImageStore& store);

// Defined in api_images.cc; public only so unique_ptr can delete it.
class ImagesApi {
 public:
  virtual ~ImagesApi() = default;
};

}  // namespace kiln
