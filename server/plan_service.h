#pragma once
// The server's side of classes: the config space given by `kiln serve
// --space DIR` (hot-reloaded by classes::SpaceService) and plan resolution
// for the HTTP API (POST /api/v1/plan, GET /api/v1/nodes/<id>/plan).
//
// The node inventory (server/inventory, another module) plugs in through
// SetNodeLookup: until it does, GET /api/v1/nodes/<id>/plan answers
// failed_precondition. Thread-safe.

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "classes/node.h"
#include "classes/space_service.h"
#include "common/json.h"
#include "common/status.h"
#include "server/metrics.h"

namespace kiln {

class PlanService {
 public:
  // Finds a node record by id (kNotFound if there is none).
  using NodeLookup = std::function<Result<classes::NodeRecord>(const std::string& id)>;

  // An empty options.dir means the server runs without a config space.
  PlanService(classes::SpaceServiceOptions options, Metrics* metrics);
  ~PlanService();

  void Start();
  void Stop();

  // The plan's JSON (docs/API.md). kUnavailable without a good space;
  // kInvalidArgument, with file:line and caret, when the space cannot make
  // a plan for this node.
  Result<Json> PlanFor(const classes::NodeRecord& node, bool explain);
  // The same for a node of the inventory.
  Result<Json> PlanForNode(const std::string& id, bool explain);

  void SetNodeLookup(NodeLookup lookup);

  // The "classes" section of GET /api/v1/status.
  Json StatusJson() const;
  classes::SpaceService* space() { return space_.get(); }

 private:
  std::unique_ptr<classes::SpaceService> space_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  NodeLookup lookup_;
};

}  // namespace kiln
