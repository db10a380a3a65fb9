#pragma once
// Frames records for log segments and snapshots (wal_format.h).

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::coord::wal {

// Appends one framed record (header + payload) to out.
void AppendRecord(std::string* out, uint8_t type, std::string_view payload);

// The payload of a segment's header record: magic, format version and the
// zxid the segment starts after (its first transaction is first_zxid).
std::string SegmentHeaderPayload(int64_t first_zxid);

}  // namespace kiln::coord::wal
