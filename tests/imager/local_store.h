#pragma once
// A local image store for tests: capture into it and deploy from it without
// a server, through the same stream bytes a server would send.

#include <memory>
#include <string>

#include "imager/apply.h"
#include "imager/capture.h"
#include "imager/image_store.h"
#include "imager/stream.h"
#include "tests/support/temp_dir.h"

namespace kiln::imager::test {

class LocalStore {
 public:
  LocalStore();
  ImageStore& store() { return *store_; }

  // Captures dir as the next version of `image`; REQUIREs success.
  CaptureReport Capture(const std::string& image, const std::string& dir, CaptureOptions opts = {});
  Result<CaptureReport> TryCapture(const std::string& image, const std::string& dir,
                                   CaptureOptions opts = {});

  // The stream bytes for image@version (delta from `from` when not empty).
  std::string Stream(const std::string& image, const std::string& version,
                     const std::string& from = "");

  // Feeds stream bytes into an Applier on root.
  Result<ApplyStats> Apply(const std::string& stream, const std::string& root,
                           ApplyOptions opts = {});
  Result<ApplyStats> Deploy(const std::string& image, const std::string& version,
                            const std::string& root, const std::string& from = "",
                            ApplyOptions opts = {});

 private:
  kiln::test::TempDir tmp_;
  std::unique_ptr<ImageStore> store_;
};

// Serialises a plan into bytes, reading frames from the store.
std::string Materialize(const ObjectStore& store, const StreamPlan& plan);

}  // namespace kiln::imager::test
