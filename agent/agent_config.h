#pragma once
// What an installed machine's agent needs to find its server again:
// /etc/kiln/agent.json in the target (mode 0600, it holds the node token),
// written at the end of an install.
//
//   {"server": URL, "node": ID, "token": NODE_TOKEN, "image": "web@3",
//    "installed_ms": ..., "run": RUN}

#include <string>

#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

inline constexpr const char* kAgentConfigPath = "/etc/kiln/agent.json";

struct AgentConfig {
  std::string server, node, token, image, run;
  std::string previous;  // the image before the last update (what rollback returns to)
  int64_t installed_ms = 0;
  Json ToJson() const;
};

// Errors name the file and the missing field.
Result<AgentConfig> LoadAgentConfig(const std::string& path);
Status SaveAgentConfig(const std::string& path, const AgentConfig& c);

}  // namespace kiln::agent
