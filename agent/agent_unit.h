#pragma once
// The installed system starts `kiln-agent daemon` at boot: on a target with
// systemd (it has /etc/systemd/system), the install writes
// kiln-agent.service and enables it for multi-user.target, through the
// confined tree like every other write into the target. Targets without
// systemd start the daemon their own way (the small test image's init).

#include <functional>
#include <string>

#include "common/status.h"

namespace kiln::agent {

std::string AgentUnitText();

// Does nothing when the target has no /etc/systemd/system.
Status InstallAgentUnit(const std::string& root,
                        const std::function<void(const std::string&)>& log);

}  // namespace kiln::agent
