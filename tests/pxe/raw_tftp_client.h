#pragma once
// A deliberately simple TFTP client for tests: one UDP socket on loopback,
// raw datagrams in and out, so tests can send exactly the bad packets they
// want and see exactly what comes back.

#include <netinet/in.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "pxe/tftp_packet.h"

namespace kiln::test {

struct Reply {
  std::string bytes;
  uint16_t port = 0;  // the sender's port (the server's TID)
};

class RawTftpClient {
 public:
  explicit RawTftpClient(uint16_t server_port);
  uint16_t local_port() const;
  void SendTo(uint16_t port, const std::string& bytes);
  void SendRequest(const std::string& bytes) { SendTo(server_port_, bytes); }
  // Waits for the next datagram (nullopt after timeout).
  std::optional<Reply> Receive(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Downloads a whole file in lock-step (windowsize w: ACK the window's
  // last block). Returns the content, or the error text "ERROR n: msg".
  std::string Fetch(const std::string& name, const std::vector<pxe::tftp::Option>& options = {},
                    const std::string& mode = "octet");
  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
  uint16_t server_port_;
};

// Parses a reply or FAILs the test.
pxe::tftp::Packet ParseReply(const Reply& r);
std::string ErrorText(const Reply& r);  // "ERROR 2: message", or "not an error"

}  // namespace kiln::test
