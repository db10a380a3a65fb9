#pragma once
// TFTP option negotiation: blksize (RFC 2348), timeout and tsize
// (RFC 2349), windowsize (RFC 7440).
//
// The server answers only the options it accepts, with the values it will
// use; anything it does not understand or cannot honour is left out of the
// OACK, and the transfer falls back to RFC 1350 defaults for it. Values out
// of range are treated as follows (and tested):
//   blksize     < 8 or junk: ignored; > limit: lowered to the limit
//   timeout     outside 1..255 or junk: ignored (RFC 2349: the server must
//               accept it exactly or not at all)
//   tsize       in a read request: answered with the file size when known
//   windowsize  0 or junk: ignored; > limit: lowered to the limit, and
//               lowered further so that one window fits max_window_bytes
//
// Thread safety: pure functions.

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "pxe/tftp_packet.h"

namespace kiln::pxe::tftp {

struct Limits {
  uint32_t max_blksize = 65464;  // RFC 2348's maximum
  uint32_t max_windowsize = 64;
  // One window's payload is buffered per transfer, so this bounds memory:
  // 500 transfers at the default cost at most 500 x 256 KiB.
  uint32_t max_window_bytes = 256 * 1024;
  // First retransmission timeout when the client asks for none; doubled
  // after each retransmission up to max_timeout.
  std::chrono::milliseconds default_timeout{1000};
  std::chrono::milliseconds max_timeout{8000};
  // Retransmissions of one packet (or window) before the transfer is given up.
  uint32_t max_retries = 5;
};

struct Negotiated {
  uint32_t blksize = 512;
  uint32_t windowsize = 1;
  std::chrono::milliseconds timeout{1000};
  bool client_set_timeout = false;
  std::optional<uint64_t> tsize;  // answered to the client
  // The OACK's options, in the client's order; empty means "send no OACK".
  std::vector<Option> oack;
};

// REQUIRES: requested comes from a parsed read request (names lower-case).
// file_size is the size the transfer will send, when known (nullopt for
// netascii, whose converted size is not known ahead).
Negotiated Negotiate(const std::vector<Option>& requested, const Limits& limits,
                     std::optional<uint64_t> file_size);

}  // namespace kiln::pxe::tftp
