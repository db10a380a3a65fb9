#pragma once
// The /init of kiln's install environment, and the udhcpc hook it uses.
//
// Kernel command line it reads (set by the boot configs kiln renders):
//   kiln.server=URL     the kiln server (required for install/discover)
//   kiln.token=TOKEN    one-time enrollment token for this node
//   kiln.mode=MODE      install (default), discover or rescue
//   kiln.node=ID        the node's id, when the server knows it
//   kiln.debug=1        a shell on the console if the agent fails
//   BOOTIF=01-aa-bb-... the interface PXE booted from (PXELINUX IPAPPEND 2)

#include <string>

namespace kiln::initrd {

std::string InitScript();
std::string UdhcpcScript();

}  // namespace kiln::initrd
