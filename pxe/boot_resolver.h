#pragma once
// What pxe/ asks the server: "what does MAC m boot now?". pxe never reaches
// into the server; the server implements BootResolver (from its node
// inventory) and hands it to the TFTP content and the HTTP boot routes.

#include <string>
#include <string_view>

#include "common/status.h"
#include "pxe/mac.h"

namespace kiln::pxe {

// A node's next boot:
//   install    the install environment installs the node's image
//   localboot  boot from the local disk (an installed node)
//   discover   the install environment only reports facts (unknown MACs)
//   rescue     the install environment with a shell, nothing installed
enum class BootTarget { kInstall, kLocalboot, kDiscover, kRescue };

std::string_view BootTargetName(BootTarget t);
// "install", "localboot", "discover", "rescue"; anything else is
// kInvalidArgument naming the choices.
Result<BootTarget> ParseBootTarget(std::string_view text);

struct BootQuery {
  Mac mac;
  std::string client_ip;  // may be empty
  std::string via;        // who asks: "pxelinux", "grub", "ipxe"
  std::string firmware;   // "bios", "efi" when the client said (iPXE), else ""
};

struct BootDecision {
  BootTarget target = BootTarget::kDiscover;
  std::string node;      // the node's id; "" if none
  std::string hostname;  // for comments in the rendered file
  // One-time enrollment token for install and discover: the agent trades
  // it for a node token. Empty for localboot and rescue.
  std::string token;
  // Extra kernel arguments for this node, appended after kiln's own.
  std::string kernel_args;
  // Not empty: the node is to install but must wait its turn (its install
  // wave has max-parallel nodes in flight); says why. The rendered configs
  // wait and ask again (iPXE) or reboot to ask again (PXELINUX, GRUB).
  std::string wait;
};

class BootResolver {
 public:
  virtual ~BootResolver() = default;
  // Decides what q.mac boots. A MAC the server does not know is recorded
  // as a discovered node and boots discover. Called from the TFTP thread
  // and HTTP threads: must be thread-safe and answer from memory (it may
  // start writes, but must not wait for them).
  virtual Result<BootDecision> Resolve(const BootQuery& q) = 0;
};

}  // namespace kiln::pxe
