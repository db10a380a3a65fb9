#include "server/plan_service.h"

#include "classes/plan.h"

namespace kiln {

PlanService::PlanService(classes::SpaceServiceOptions options, Metrics* metrics)
    : metrics_(metrics) {
  if (!options.dir.empty()) space_ = std::make_unique<classes::SpaceService>(std::move(options));
}

PlanService::~PlanService() {
  Stop();
}

void PlanService::Start() {
  if (!space_) return;
  space_->Start();
  classes::SpaceService* s = space_.get();
  metrics_->Gauge("kiln_classes_space_generation", "config space loads that succeeded", {},
                  [s] { return static_cast<double>(s->generation()); });
  metrics_->Gauge("kiln_classes_space_ok", "1 if the last load of the config space succeeded", {},
                  [s] { return s->last_error().empty() ? 1.0 : 0.0; });
}

void PlanService::Stop() {
  if (space_) space_->Stop();
}

Result<Json> PlanService::PlanFor(const classes::NodeRecord& node, bool explain) {
  auto count = [this](const char* result) {
    metrics_->Counter("kiln_plans_total", "plans resolved, by result", {{"result", result}})
        .fetch_add(1, std::memory_order_relaxed);
  };
  if (!space_)
    return Unavailable("this server has no config space (start it with kiln serve --space DIR)");
  auto resolver = space_->current();
  if (!resolver)
    return Unavailable("the config space " + space_->dir() +
                       " has errors and no good version to plan with: " + space_->last_error());
  classes::Plan plan;
  classes::Diagnostic err;
  if (!resolver->Resolve(node, {.explain = explain}, &plan, &err)) {
    count("error");
    return InvalidArgument(err.Render());
  }
  count("ok");
  return classes::PlanToJson(plan, explain);
}

Result<Json> PlanService::PlanForNode(const std::string& id, bool explain) {
  NodeLookup lookup;
  {
    std::lock_guard lock(mu_);
    lookup = lookup_;
  }
  // TODO(lead): the node inventory (branch pxe, on the coordination store)
  // calls SetNodeLookup when it lands; until then only POST /api/v1/plan
  // (a node record in the body) can resolve plans.
  if (!lookup)
    return FailedPrecondition(
        "no node inventory on this server yet: use POST /api/v1/plan with the node record");
  KILN_ASSIGN_OR_RETURN(classes::NodeRecord node, lookup(id));
  return PlanFor(node, explain);
}

void PlanService::SetNodeLookup(NodeLookup lookup) {
  std::lock_guard lock(mu_);
  lookup_ = std::move(lookup);
}

Json PlanService::StatusJson() const {
  if (!space_) return {{"state", "no config space (--space)"}};
  return space_->StatusJson();
}

}  // namespace kiln
