#pragma once
// Reads framed records (wal_format.h) from a file's bytes and decides what
// a damaged record means:
//
//   torn tail   the damaged record is the last thing in the file: nothing
//               valid follows it. A crash during an append leaves exactly
//               this; recovery cuts the file back to the last good record.
//   corruption  a valid record follows the damaged one, so acknowledged
//               data sits behind it: recovery refuses to start.
//
// Pure: works on bytes in memory, never touches files (fuzzed directly).

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::coord::wal {

struct Record {
  uint8_t type = 0;
  std::string_view payload;
  uint64_t offset = 0;  // where the record's header starts
};

class RecordReader {
 public:
  enum class Outcome { kRecord, kEnd, kTornTail, kCorrupt };

  explicit RecordReader(std::string_view contents) : in_(contents) {}

  // kRecord: *out is the next record. kEnd: clean end of input. kTornTail /
  // kCorrupt: *why says what was wrong; the damaged record starts at
  // good_end(). Once it returns anything but kRecord it keeps returning it.
  Outcome Next(Record* out, std::string* why);

  // The offset just past the last good record.
  uint64_t good_end() const { return pos_; }

 private:
  // Checks for a valid record at off without consuming it; sets *why.
  bool ValidAt(uint64_t off, std::string* why) const;

  std::string_view in_;
  uint64_t pos_ = 0;
  Outcome stuck_ = Outcome::kRecord;
  std::string stuck_why_;
};

}  // namespace kiln::coord::wal
