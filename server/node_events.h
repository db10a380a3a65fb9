#pragma once
// A node's install story in the coordination store, as its agent reports it
// (agent/progress_event.h):
//
//   /kiln/nodes/<id>/progress              {"run","seq","count","event":{...},"updated_ms"}
//   /kiln/nodes/<id>/events/e-0000000042   one event each, in order (sequential)
//
// The agent numbers its events 1, 2, 3, ... per run and resends what was
// not acknowledged, so Append keeps only events after the last seq it has
// for that run, and writes them with the new progress in one multi that is
// conditional on the progress version: concurrent or repeated sends can
// never store an event twice or out of order. A new run id starts over at
// seq 1. The history is bounded: past kMaxEvents, the oldest are deleted.
//
// Append never blocks: it chains asynchronous store calls and completes
// from a store thread, so an HTTP handler can answer from there.

#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "server/coord/coord_store.h"

namespace kiln {

class NodeEvents {
 public:
  static constexpr size_t kMaxEvents = 1000;

  explicit NodeEvents(coord::CoordStore& store) : store_(store) {}

  struct Appended {
    uint64_t acked = 0;    // the highest seq stored for the run
    size_t added = 0;      // events this call stored
    bool new_run = false;  // the first events of a run
  };

  // events: JSON objects with "seq" (validated by the caller), ascending.
  // kFailedPrecondition when they leave a gap after what is stored;
  // kNotFound when the node does not exist.
  void Append(const std::string& node, const std::string& run, std::vector<Json> events,
              std::function<void(Result<Appended>)> done);

  static std::string ProgressPath(const std::string& node);
  static std::string EventsPath(const std::string& node);

 private:
  void Attempt(std::string node, std::string run, std::vector<Json> events,
               std::function<void(Result<Appended>)> done, int attempt);
  void Trim(const std::string& node);

  coord::CoordStore& store_;
};

}  // namespace kiln
