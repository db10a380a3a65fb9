#pragma once
// TFTP packets (RFC 1350) with options (RFC 2347): parsing and building.
//
// Parsing never trusts the input: every length is checked, strings must be
// NUL-terminated, names and values have hard size caps, and the result owns
// its bytes (no views into the datagram). A packet that cannot be parsed
// gives kInvalidArgument with a message naming what was wrong; callers turn
// that into a TFTP error or silence. Building is infallible.
//
// Thread safety: pure functions.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"

namespace kiln::pxe::tftp {

enum class Opcode : uint16_t {
  kRrq = 1,
  kWrq = 2,
  kData = 3,
  kAck = 4,
  kError = 5,
  kOack = 6,
};

enum class ErrorCode : uint16_t {
  kNotDefined = 0,
  kFileNotFound = 1,
  kAccessViolation = 2,
  kDiskFull = 3,
  kIllegalOperation = 4,
  kUnknownTid = 5,
  kFileExists = 6,
  kNoSuchUser = 7,
  kOptionRefused = 8,  // RFC 2347
};

// Limits on what a request may carry. RFC 2347 caps a request at 512 bytes;
// we accept more (some firmware pads) but never unbounded strings.
inline constexpr size_t kMaxFilename = 1024;
inline constexpr size_t kMaxOptionName = 64;
inline constexpr size_t kMaxOptionValue = 64;
inline constexpr size_t kMaxOptions = 16;

// An option as it appeared on the wire; the name is lower-cased (RFC 2347:
// names are case-insensitive), the value is kept as sent.
using Option = std::pair<std::string, std::string>;

struct Request {
  Opcode op = Opcode::kRrq;  // kRrq or kWrq
  std::string filename;      // as sent (not normalised)
  std::string mode;          // lower-cased: "octet", "netascii", "mail", ...
  std::vector<Option> options;
};

struct Data {
  uint16_t block = 0;
  std::string payload;
};

struct Ack {
  uint16_t block = 0;
};

struct Error {
  uint16_t code = 0;
  std::string message;
};

struct Oack {
  std::vector<Option> options;
};

using Packet = std::variant<Request, Data, Ack, Error, Oack>;

// Parses one datagram. Leniency, on purpose (real PXE firmware does these):
// trailing NUL padding after the options and a dangling option name without
// a value are ignored. Duplicate options keep the first occurrence.
Result<Packet> Parse(std::span<const uint8_t> datagram);
inline Result<Packet> Parse(std::string_view datagram) {
  return Parse(std::span(reinterpret_cast<const uint8_t*>(datagram.data()), datagram.size()));
}

// The opcode of a datagram, or 0 if it is shorter than two bytes.
uint16_t PeekOpcode(std::span<const uint8_t> datagram);

std::string MakeRequest(Opcode op, std::string_view filename, std::string_view mode,
                        const std::vector<Option>& options = {});
std::string MakeData(uint16_t block, std::string_view payload);
// Writes the 4-byte DATA header for block into out[0..3].
void PutDataHeader(char* out, uint16_t block);
std::string MakeAck(uint16_t block);
std::string MakeError(ErrorCode code, std::string_view message);
std::string MakeOack(const std::vector<Option>& options);

std::string_view OpcodeName(uint16_t op);

}  // namespace kiln::pxe::tftp
