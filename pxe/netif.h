#pragma once
// The addresses of a network interface, for DHCP configuration: the boot
// network is whatever subnet kiln's interface sits on.

#include <string>

#include "common/status.h"

namespace kiln::pxe {

struct InterfaceInfo {
  std::string name;
  std::string ipv4;     // "10.0.0.1"
  std::string netmask;  // "255.255.255.0"
  std::string network;  // "10.0.0.0"
  int prefix = 0;       // 24
  // A global or unique-local IPv6 address (dnsmasq can send router
  // advertisements from it); empty when there is none.
  std::string ipv6;
};

// kNotFound when the interface does not exist, kFailedPrecondition when it
// has no IPv4 address. Messages name the interface.
Result<InterfaceInfo> LookupInterface(const std::string& name);

}  // namespace kiln::pxe
