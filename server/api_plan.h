#pragma once
// Plan routes: POST /api/v1/plan and GET /api/v1/nodes/{id}/plan.

#include "server/http/router.h"

namespace kiln {

class PlanService;

void RegisterPlanRoutes(http::Router& router, PlanService& plans);

}  // namespace kiln
