#include "server/api_plan.h"

#include "server/plan_service.h"

namespace kiln {
namespace {

bool ExplainRequested(const http::HttpRequest& req) {
  std::string e = req.Query("explain");
  return e == "1" || e == "true" || e == "yes";
}

}  // namespace

void RegisterPlanRoutes(http::Router& router, PlanService& plans) {
  using http::Access;
  using http::HttpRequest;
  using http::HttpResponse;

  // Resolve a plan for the node record in the body: {"node": {...},
  // "explain": false}. Admin only: the caller describes the node itself.
  router.AddSync("POST", "/api/v1/plan",
                 [&plans](HttpRequest& req) {
                   auto body = req.JsonBody();
                   if (!body.ok()) return HttpResponse::Error(body.status());
                   if (!body->is_object() || !body->contains("node"))
                     return HttpResponse::Error(InvalidArgument(
                         "request body: expected {\"node\": {...}, \"explain\": false}"));
                   auto explain = JsonFieldOr<bool>(*body, "explain", false);
                   if (!explain.ok())
                     return HttpResponse::Error(explain.status().WithContext("request body"));
                   auto node = classes::NodeFromJson((*body)["node"]);
                   if (!node.ok()) return HttpResponse::Error(node.status());
                   auto plan = plans.PlanFor(*node, *explain || ExplainRequested(req));
                   if (!plan.ok()) return HttpResponse::Error(plan.status());
                   return HttpResponse::JsonBody(*plan);
                 },
                 {.access = Access::kAdmin, .max_body = 4 << 20});

  // A node's plan, for its agent (node token) or an operator (admin).
  router.AddSync("GET", "/api/v1/nodes/{id}/plan",
                 [&plans](HttpRequest& req) {
                   std::string id = req.Param("id");
                   if (!req.principal.MayActAs(id))
                     return HttpResponse::Error(
                         PermissionDenied("this token may not read the plan of node " + id));
                   auto plan = plans.PlanForNode(id, ExplainRequested(req));
                   if (!plan.ok()) return HttpResponse::Error(plan.status());
                   return HttpResponse::JsonBody(*plan);
                 },
                 {.access = Access::kAuthenticated});
}

}  // namespace kiln
