#pragma once
// Ethernet MAC addresses as kiln spells them: lower-case, colon-separated
// ("52:54:00:12:34:56") in JSON, the CLI and logs; PXELINUX's
// "01-52-54-00-12-34-56" in boot-file names.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::pxe {

struct Mac {
  std::array<uint8_t, 6> bytes{};

  // "52:54:00:12:34:56"
  std::string ToString() const;
  // "52-54-00-12-34-56"
  std::string Dashed() const;
  // "525400123456"
  std::string Hex() const;
  bool IsMulticast() const { return bytes[0] & 1; }
  bool IsZero() const;
  bool operator==(const Mac&) const = default;
  auto operator<=>(const Mac&) const = default;
};

// Accepts six hex pairs separated by ':' or '-' (any case), or twelve hex
// digits with no separator. Refuses the zero, broadcast and multicast
// addresses, which no network card boots with. Errors quote the input and
// say what form is expected.
Result<Mac> ParseMac(std::string_view text);

}  // namespace kiln::pxe
