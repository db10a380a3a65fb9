#pragma once
// Human forms of a plan, rendered from its JSON (so `kiln plan` prints the
// same whether the plan was resolved locally or by the server).

#include <string>

#include "common/json.h"

namespace kiln::classes {

// A summary: classes, image, disks, files, scripts, hooks, variables.
std::string RenderPlanText(const Json& plan);

// The story (needs a plan with "explain"): for every decision, the class
// and file:line that made it and what it overrode.
std::string RenderExplainText(const Json& plan);

}  // namespace kiln::classes
