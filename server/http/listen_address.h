#pragma once
// "ADDR:PORT" parsing and listening sockets, shared by the HTTP and TFTP
// servers so that both report a busy port the same way.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/file_util.h"
#include "common/status.h"

namespace kiln::http {

struct ListenAddress {
  std::string host;  // "127.0.0.1", "::", "0.0.0.0"
  uint16_t port = 0;
  std::string ToString() const;  // "[::1]:80" for IPv6
};

// Accepts "HOST:PORT", "[V6]:PORT", ":PORT" (all addresses) and "PORT".
Result<ListenAddress> ParseListenAddress(std::string_view text);

// Creates, binds and (for TCP) listens. Errors name the address:
// "listen 127.0.0.1:7070: Address already in use".
Result<UniqueFd> BindSocket(const ListenAddress& addr, int type /*SOCK_STREAM|SOCK_DGRAM*/);

// The address a bound socket ended up on (the port chosen for port 0).
Result<ListenAddress> LocalAddress(int fd);

}  // namespace kiln::http
