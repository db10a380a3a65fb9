#include "server/http/listen_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/strings.h"

namespace kiln::http {

std::string ListenAddress::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  ListenAddress a;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return InvalidArgument(fmt::format("bad listen address \"{}\": expected [IPV6]:PORT", text));
    a.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      a.host = "0.0.0.0";
      port_text = text;
    } else {
      a.host = std::string(text.substr(0, colon));
      if (a.host.empty()) a.host = "0.0.0.0";
      port_text = text.substr(colon + 1);
    }
  }
  auto port = ParseUint(port_text);
  if (!port || *port > 65535)
    return InvalidArgument(
        fmt::format("bad listen address \"{}\": the port must be a number from 0 to 65535", text));
  a.port = static_cast<uint16_t>(*port);
  return a;
}

Result<UniqueFd> BindSocket(const ListenAddress& addr, int type) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = type;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(addr.port);
  int rc = ::getaddrinfo(addr.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0)
    return InvalidArgument(fmt::format("listen {}: {}", addr.ToString(), gai_strerror(rc)));
  std::string what = fmt::format("listen {}", addr.ToString());
  UniqueFd fd(::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    ::freeaddrinfo(res);
    return ErrnoError(what, errno);
  }
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (res->ai_family == AF_INET6) {
    int zero = 0;  // "::" serves IPv4 too
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
  rc = ::bind(fd.get(), res->ai_addr, res->ai_addrlen);
  int err = errno;
  ::freeaddrinfo(res);
  if (rc != 0) return Status(Code::kUnavailable, fmt::format("{}: {}", what, std::strerror(err)));
  if (type == SOCK_STREAM && ::listen(fd.get(), 1024) != 0) return ErrnoError(what, errno);
  return fd;
}

Result<ListenAddress> LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return ErrnoError("getsockname", errno);
  char host[INET6_ADDRSTRLEN] = {};
  ListenAddress a;
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    a.port = ntohs(sin->sin_port);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    a.port = ntohs(sin6->sin6_port);
  }
  a.host = host;
  return a;
}

}  // namespace kiln::http
