#include "pxe/netif.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cerrno>

#include <fmt/format.h>

namespace kiln::pxe {

Result<InterfaceInfo> LookupInterface(const std::string& name) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return ErrnoError("getifaddrs", errno);
  InterfaceInfo info;
  info.name = name;
  bool exists = false;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (name != a->ifa_name) continue;
    exists = true;
    if (!a->ifa_addr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET && info.ipv4.empty() && a->ifa_netmask) {
      auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      auto* mask = reinterpret_cast<sockaddr_in*>(a->ifa_netmask);
      ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
      info.ipv4 = buf;
      ::inet_ntop(AF_INET, &mask->sin_addr, buf, sizeof buf);
      info.netmask = buf;
      in_addr net{sin->sin_addr.s_addr & mask->sin_addr.s_addr};
      ::inet_ntop(AF_INET, &net, buf, sizeof buf);
      info.network = buf;
      info.prefix = __builtin_popcount(ntohl(mask->sin_addr.s_addr));
    } else if (a->ifa_addr->sa_family == AF_INET6 && info.ipv6.empty()) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
        continue;
      ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
      info.ipv6 = buf;
    }
  }
  ::freeifaddrs(list);
  if (!exists && ::if_nametoindex(name.c_str()) == 0)
    return NotFound(fmt::format("network interface {} does not exist", name));
  if (info.ipv4.empty())
    return FailedPrecondition(fmt::format(
        "network interface {} has no IPv4 address (network boot needs one)", name));
  return info;
}

}  // namespace kiln::pxe
