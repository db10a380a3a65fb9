#include "agent/agent_config.h"

#include "common/file_util.h"

namespace kiln::agent {

Json AgentConfig::ToJson() const {
  Json j = {{"server", server}, {"node", node}, {"token", token},
            {"image", image},   {"run", run},   {"installed_ms", installed_ms}};
  if (!previous.empty()) j["previous"] = previous;
  return j;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(text, path));
  AgentConfig c;
  for (auto [field, out] :
       {std::pair{"server", &c.server}, {"node", &c.node}, {"token", &c.token}}) {
    auto v = JsonField<std::string>(j, field);
    if (!v.ok()) return v.status().WithContext(path);
    *out = *v;
  }
  c.image = j.value("image", "");
  c.run = j.value("run", "");
  c.previous = j.value("previous", "");
  c.installed_ms = j.value("installed_ms", int64_t(0));
  return c;
}

Status SaveAgentConfig(const std::string& path, const AgentConfig& c) {
  return WriteFileAtomic(path, c.ToJson().dump(2) + "\n", 0600);
}

}  // namespace kiln::agent
