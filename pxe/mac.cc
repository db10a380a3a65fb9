#include "pxe/mac.h"

#include <fmt/format.h>

namespace kiln::pxe {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Join(const Mac& m, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < 6; ++i) {
    if (i) out += sep;
    out += fmt::format("{:02x}", m.bytes[i]);
  }
  return out;
}

}  // namespace

std::string Mac::ToString() const { return Join(*this, ":"); }
std::string Mac::Dashed() const { return Join(*this, "-"); }
std::string Mac::Hex() const { return Join(*this, ""); }
bool Mac::IsZero() const {
  for (auto b : bytes)
    if (b) return false;
  return true;
}

Result<Mac> ParseMac(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument(fmt::format(
        "\"{}\" is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)", text));
  };
  Mac m;
  std::string digits;
  if (text.size() == 12) {
    digits = text;
  } else if (text.size() == 17) {
    char sep = text[2];
    if (sep != ':' && sep != '-') return bad();
    for (size_t i = 0; i < 17; ++i) {
      if (i % 3 == 2) {
        if (text[i] != sep) return bad();
      } else {
        digits.push_back(text[i]);
      }
    }
  } else {
    return bad();
  }
  for (size_t i = 0; i < 6; ++i) {
    int hi = HexValue(digits[2 * i]), lo = HexValue(digits[2 * i + 1]);
    if (hi < 0 || lo < 0) return bad();
    m.bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  if (m.IsZero())
    return InvalidArgument(fmt::format("\"{}\" is the zero MAC address; no card boots with it", text));
  if (m.IsMulticast())
    return InvalidArgument(fmt::format(
        "\"{}\" is a multicast or broadcast MAC address; no card boots with it", text));
  return m;
}

}  // namespace kiln::pxe
