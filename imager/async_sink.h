#pragma once
// AsyncSink: runs a StreamSink on a thread of its own, so that checking a
// stream (the reader's thread: parsing, zstd, SHA-256) overlaps applying it
// (this thread: writes, metadata system calls). On a two-core machine the
// two halves of a deploy then run side by side instead of one after the
// other.
//
// Contract:
//   - The inner sink sees exactly the calls made on this one, in the same
//     order, from one thread at a time (its own, or the caller's for OnEnd).
//   - The first error of the inner sink is sticky: the next call on this one
//     returns it (the reader then stops), and so does OnEnd.
//   - OnEnd waits until every queued call has been made, then calls the
//     inner OnEnd on the caller's thread: when it returns Ok, the inner sink
//     has applied the whole stream. Nothing is left running.
//   - Memory is bounded: a call waits while more than max_queued bytes of
//     chunk data are queued.
//   - The thread is woken for batches of calls (or by Wake, OnEnd, or a
//     producer that must wait), not for each: a wake-up costs more than
//     applying a small file.
//   - The destructor drops queued calls not yet made and joins the thread;
//     after it, the inner sink may be used (e.g. Applier::Abort) again.
//
// One producer: the StreamSink methods must be called from one thread at a
// time (StreamReader does).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "imager/stream.h"

namespace kiln::imager {

class AsyncSink : public StreamSink {
 public:
  explicit AsyncSink(StreamSink* inner, size_t max_queued = 32 << 20);
  ~AsyncSink() override;
  AsyncSink(const AsyncSink&) = delete;
  AsyncSink& operator=(const AsyncSink&) = delete;

  Status OnHeader(const StreamHeader& h) override;
  Status OnEntry(const StreamEntry& e) override;
  Status OnChunk(const Sha256Digest& digest, std::string_view data) override;
  // Takes data's buffer and leaves a spare one (of an earlier chunk) in its
  // place, so the reader decompresses into recycled memory.
  Status OnChunkData(const Sha256Digest& digest, std::string&& data) override;
  Status OnDelete(const std::string& path) override;
  Status OnEnd(const StreamCounts& counts) override;

  // Wakes the thread for what is queued (the producer's batch is complete),
  // from any thread.
  void Wake();

 private:
  struct Call {
    enum class Kind : uint8_t { kHeader, kEntry, kChunk, kDelete } kind;
    StreamHeader header;
    StreamEntry entry;
    Sha256Digest digest{};
    std::string data;  // chunk bytes, or the path of a delete
  };
  Status Push(Call call);
  // Waits (on room_) until ready(), waking the consumer for what is queued.
  template <typename Pred>
  void WaitForRoom(std::unique_lock<std::mutex>& lock, Pred ready);
  void Loop();

  StreamSink* inner_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable work_;  // the consumer waits here
  std::condition_variable room_;  // the producer waits here
  std::deque<Call> queue_;
  size_t queued_ = 0;  // chunk bytes in queue_
  bool busy_ = false;  // the thread is making a call
  bool stop_ = false;
  bool consumer_waiting_ = false, producer_waiting_ = false;
  Status error_;
  std::vector<std::string> spare_;  // chunk buffers to hand back to the reader
  std::thread thread_;
};

}  // namespace kiln::imager
