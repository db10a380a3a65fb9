#include "agent/agent_unit.h"

#include <fcntl.h>
#include <unistd.h>

#include "agent/target_files.h"
#include "common/json.h"
#include "imager/tree_ops.h"

namespace kiln::agent {

std::string AgentUnitText() {
  return "# Written by kiln-agent at install time.\n"
         "[Unit]\n"
         "Description=kiln agent: reports this host to its kiln server and runs its jobs\n"
         "After=network-online.target\n"
         "Wants=network-online.target\n"
         "ConditionPathExists=/etc/kiln/agent.json\n\n"
         "[Service]\n"
         "ExecStart=/usr/bin/kiln-agent daemon\n"
         "Restart=always\n"
         "RestartSec=5\n\n"
         "[Install]\n"
         "WantedBy=multi-user.target\n";
}

Status InstallAgentUnit(const std::string& root,
                        const std::function<void(const std::string&)>& log) {
  KILN_ASSIGN_OR_RETURN(imager::Tree tree, imager::Tree::Open(root, false));
  if (!tree.Dir("etc/systemd/system").ok()) return Status::Ok();  // no systemd here
  Json unit = Json::array({Json{{"path", "/etc/systemd/system/kiln-agent.service"},
                                {"content", AgentUnitText()},
                                {"mode", "0644"},
                                {"source", "kiln-agent"}}});
  KILN_RETURN_IF_ERROR(InstallFiles(root, unit).status());
  KILN_ASSIGN_OR_RETURN(int dir, tree.Dir("etc/systemd/system"));
  ::mkdirat(dir, "multi-user.target.wants", 0755);
  KILN_ASSIGN_OR_RETURN(int wants, tree.Dir("etc/systemd/system/multi-user.target.wants"));
  ::unlinkat(wants, "kiln-agent.service", 0);
  if (::symlinkat("../kiln-agent.service", wants, "kiln-agent.service") != 0)
    return ErrnoError("enabling kiln-agent.service in the target", errno);
  if (log) log("enabled kiln-agent.service (the daemon starts at boot)");
  return Status::Ok();
}

}  // namespace kiln::agent
