#include "pxe/tftp_packet.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace kiln::pxe::tftp {
namespace {

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

void Put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

std::string Lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// Reads a NUL-terminated string starting at *pos. Returns false when no NUL
// follows within the datagram or within max bytes.
bool ReadString(std::span<const uint8_t> d, size_t* pos, size_t max, std::string* out) {
  size_t start = *pos;
  auto end = std::find(d.begin() + static_cast<std::ptrdiff_t>(start), d.end(), uint8_t{0});
  if (end == d.end()) return false;
  size_t len = static_cast<size_t>(end - d.begin()) - start;
  if (len > max) return false;
  out->assign(reinterpret_cast<const char*>(d.data()) + start, len);
  *pos = start + len + 1;
  return true;
}

// Parses the option list of a request or an OACK from pos to the end.
// Options whose name or value exceeds the caps, and options beyond
// kMaxOptions, are ignored like unknown ones: a server must not fail a
// request for an option it does not understand.
std::vector<Option> ParseOptions(std::span<const uint8_t> d, size_t pos) {
  std::vector<Option> options;
  while (pos < d.size()) {
    std::string name, value;
    // An unterminated trailing name, or a name without a value, is junk
    // after the request: ignore it.
    if (!ReadString(d, &pos, d.size(), &name)) break;
    if (name.empty()) break;  // NUL padding
    if (!ReadString(d, &pos, d.size(), &value)) break;
    if (name.size() > kMaxOptionName || value.size() > kMaxOptionValue) continue;
    name = Lower(name);
    bool dup = std::any_of(options.begin(), options.end(),
                           [&](const Option& o) { return o.first == name; });
    if (dup || options.size() == kMaxOptions) continue;
    options.emplace_back(std::move(name), std::move(value));
  }
  return options;
}

}  // namespace

uint16_t PeekOpcode(std::span<const uint8_t> d) { return d.size() < 2 ? 0 : Get16(d.data()); }

std::string_view OpcodeName(uint16_t op) {
  switch (op) {
    case 1: return "RRQ";
    case 2: return "WRQ";
    case 3: return "DATA";
    case 4: return "ACK";
    case 5: return "ERROR";
    case 6: return "OACK";
    default: return "unknown";
  }
}

Result<Packet> Parse(std::span<const uint8_t> d) {
  if (d.size() < 2) return InvalidArgument(fmt::format("packet of {} bytes is too short", d.size()));
  uint16_t op = Get16(d.data());
  switch (op) {
    case 1:
    case 2: {
      Request r;
      r.op = static_cast<Opcode>(op);
      size_t pos = 2;
      if (!ReadString(d, &pos, kMaxFilename, &r.filename))
        return InvalidArgument(fmt::format(
            "file name is not NUL-terminated within {} bytes", kMaxFilename));
      if (r.filename.empty()) return InvalidArgument("empty file name");
      std::string mode;
      if (!ReadString(d, &pos, kMaxOptionName, &mode))
        return InvalidArgument("transfer mode is missing or not NUL-terminated");
      r.mode = Lower(mode);
      r.options = ParseOptions(d, pos);
      return Packet(std::move(r));
    }
    case 3: {
      if (d.size() < 4) return InvalidArgument("DATA packet shorter than 4 bytes");
      Data data;
      data.block = Get16(d.data() + 2);
      data.payload.assign(reinterpret_cast<const char*>(d.data()) + 4, d.size() - 4);
      return Packet(std::move(data));
    }
    case 4: {
      // Some clients pad ACKs; only the first four bytes count.
      if (d.size() < 4) return InvalidArgument("ACK packet shorter than 4 bytes");
      return Packet(Ack{Get16(d.data() + 2)});
    }
    case 5: {
      if (d.size() < 4) return InvalidArgument("ERROR packet shorter than 4 bytes");
      Error e;
      e.code = Get16(d.data() + 2);
      // The message should be NUL-terminated; take what is there either way.
      size_t end = 4;
      while (end < d.size() && d[end] != 0 && end - 4 < 512) ++end;
      e.message.assign(reinterpret_cast<const char*>(d.data()) + 4, end - 4);
      return Packet(std::move(e));
    }
    case 6: {
      Oack o;
      o.options = ParseOptions(d, 2);
      return Packet(std::move(o));
    }
    default:
      return InvalidArgument(fmt::format("unknown opcode {}", op));
  }
}

std::string MakeRequest(Opcode op, std::string_view filename, std::string_view mode,
                        const std::vector<Option>& options) {
  std::string out;
  Put16(out, static_cast<uint16_t>(op));
  out.append(filename);
  out.push_back('\0');
  out.append(mode);
  out.push_back('\0');
  for (const auto& [k, v] : options) {
    out.append(k);
    out.push_back('\0');
    out.append(v);
    out.push_back('\0');
  }
  return out;
}

void PutDataHeader(char* out, uint16_t block) {
  out[0] = 0;
  out[1] = 3;
  out[2] = static_cast<char>(block >> 8);
  out[3] = static_cast<char>(block & 0xff);
}

std::string MakeData(uint16_t block, std::string_view payload) {
  std::string out(4, '\0');
  PutDataHeader(out.data(), block);
  out.append(payload);
  return out;
}

std::string MakeAck(uint16_t block) {
  std::string out;
  Put16(out, 4);
  Put16(out, block);
  return out;
}

std::string MakeError(ErrorCode code, std::string_view message) {
  std::string out;
  Put16(out, 5);
  Put16(out, static_cast<uint16_t>(code));
  // Keep errors well inside one small datagram.
  out.append(message.substr(0, 400));
  out.push_back('\0');
  return out;
}

std::string MakeOack(const std::vector<Option>& options) {
  std::string out;
  Put16(out, 6);
  for (const auto& [k, v] : options) {
    out.append(k);
    out.push_back('\0');
    out.append(v);
    out.push_back('\0');
  }
  return out;
}

}  // namespace kiln::pxe::tftp
