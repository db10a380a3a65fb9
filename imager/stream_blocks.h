#pragma once
// StreamBlocks: gathers an image stream's bytes, which arrive in pieces the
// size of a recv(), into blocks that end where a record ends. The deploy's
// transfer thread copies each received byte once, into a block; the
// StreamReader on the worker thread then finds every record whole in its
// block and parses it where it lies. Handing raw pieces over instead cost a
// second copy (a record split between pieces is reassembled by the reader)
// and a thread wake-up per piece: a 1.2 GB deploy made 73,000 context
// switches and spent more of its time in the kernel than in user space.
//
// It only frames: the header's fixed size, then each record's tag and
// length. Checking stays the reader's. From a length it cannot read, or one
// larger than any record may be, it passes the bytes through as they come
// and lets the reader report the error.
//
// A block ends where a record ends, and is handed over once it holds
// kTarget bytes, or earlier when the next record would not fit its buffer
// (so that a block is not copied into a larger one). Only the rest taken
// at the end of a transfer (Flush) may end inside a record.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::imager {

class StreamBlocks {
 public:
  static constexpr size_t kTarget = 2 << 20;

  // Receives each finished block; it may hand back a used buffer through
  // Recycle to be filled again.
  using Emit = std::function<void(std::string&&)>;

  explicit StreamBlocks(Emit emit);

  // Appends data; emits every block it completes.
  void Add(std::string_view data);
  // Emits what is held, complete or not (the end of a transfer). Framing
  // carries on from there with the next Add.
  void Flush();
  // A block's buffer the consumer has finished with, to be filled again.
  void Recycle(std::string&& buf);

 private:
  void StartRecord(uint64_t len);
  void EmitUpTo(size_t end);
  std::string FreshBuffer(size_t capacity);

  Emit emit_;
  std::string cur_;
  size_t boundary_ = 0;  // cur_[0, boundary_) holds whole records
  uint64_t need_;        // bytes of the current record still to come
  std::string head_;     // the next record's tag and length, while incomplete
  bool passthrough_ = false;
  std::vector<std::string> spare_;
};

}  // namespace kiln::imager
