#pragma once
// The image streams asked for lately, planned once and shared.
//
// A fleet installing one image asks the server for the same stream once per
// machine (and again on every resume), and planning a stream reads the
// manifest and looks up every object's stored size: tens of thousands of
// lookups for a real root filesystem. Plans are deterministic for a
// (base, target), so the server keeps the last few and hands every deploy
// of the same stream the same plan; concurrent first requests wait for the
// one that is planning instead of planning too.
//
// The only thing that can make a kept plan wrong is gc removing objects
// (manifests and frames are immutable): the caller passes a generation that
// gc advances, and a plan made under an older generation is made again.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>

#include "common/hash.h"
#include "common/status.h"
#include "imager/stream.h"

namespace kiln::imager {

class StreamPlanCache {
 public:
  using PlanPtr = std::shared_ptr<const StreamPlan>;
  explicit StreamPlanCache(size_t capacity = 8) : capacity_(capacity) {}

  // The plan of the stream from base (zero for a full stream) to target:
  // a kept one made under this generation, or make()'s, which is kept if it
  // succeeded. Thread-safe; make runs without the cache's lock held.
  Result<PlanPtr> Get(const Sha256Digest& base, const Sha256Digest& target, uint64_t generation,
                      const std::function<Result<StreamPlan>()>& make);

  size_t made() const;  // plans made so far (tests, metrics)

 private:
  struct Slot {
    Sha256Digest base, target;
    uint64_t generation;
    uint64_t id;  // which Get made it
    std::shared_future<Result<PlanPtr>> plan;
  };
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Slot> slots_;  // most recently asked for first
  size_t made_ = 0;
};

}  // namespace kiln::imager
