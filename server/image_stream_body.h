#pragma once
// Serves an image stream (imager/stream.h) as an HTTP body: record bytes
// from memory, object frames straight from the store's files (File: the
// server sendfiles them, so a deploy's bytes are never copied through the
// server), starting at any byte offset (resume) without reading what comes
// before it.

#include <functional>
#include <memory>

#include "common/file_util.h"
#include "imager/object_store.h"
#include "imager/stream.h"
#include "server/http/http_types.h"

namespace kiln {

class ImageStreamBody : public http::BodyStream {
 public:
  // REQUIRES: offset <= plan.total. store must outlive the body. on_stale
  // runs when an object is gone or not the size the plan says: the client
  // sees the transfer break, and its resume must get a new plan.
  ImageStreamBody(const imager::ObjectStore* store, std::shared_ptr<const imager::StreamPlan> plan,
                  uint64_t offset, std::function<void()> on_stale = {});
  ssize_t Read(char* buf, size_t max, Parking& parking) override;
  bool File(FileRegion* region) override;

 private:
  const imager::ObjectStore* store_;
  std::shared_ptr<const imager::StreamPlan> plan_;  // shared with other deploys
  std::function<void()> on_stale_;
  bool stale_ = false;  // an object did not match the plan: the body is cut
  size_t seg_ = 0;
  uint64_t pos_ = 0;  // within the current segment (bytes, then object frame)
  // Moves past finished segments; false at the end of the stream.
  bool Skip();
  // Opens the current segment's object; false (logged) if it is gone.
  bool OpenObject();

  UniqueFd fd_;                // the current segment's object, once opened
  uint64_t frame_offset_ = 0;  // where its frame starts in fd_'s file (a pack)
};

}  // namespace kiln
