#include "server/coord/embedded/wal_writer.h"

#include "common/hash.h"
#include "server/coord/embedded/coding.h"
#include "server/coord/embedded/wal_format.h"

namespace kiln::coord::wal {

void AppendRecord(std::string* out, uint8_t type, std::string_view payload) {
  uint32_t crc = Crc32c(&type, 1);
  crc = Crc32cExtend(crc, payload.data(), payload.size());
  PutFixed32(out, MaskCrc(crc));
  PutFixed32(out, static_cast<uint32_t>(payload.size()));
  out->push_back(static_cast<char>(type));
  out->append(payload);
}

std::string SegmentHeaderPayload(int64_t first_zxid) {
  std::string p;
  PutBytes(&p, kSegmentMagic);
  PutFixed32(&p, kFormatVersion);
  PutFixed64(&p, static_cast<uint64_t>(first_zxid));
  return p;
}

}  // namespace kiln::coord::wal
