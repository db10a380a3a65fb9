#pragma once
// How other threads reach an HTTP event loop: a handler's late answer, a
// stream's new data, the server stopping. Posting takes a mutex and writes
// the loop's eventfd only when the mailbox was empty, so a store commit
// that wakes 1,000 watch streams costs one wake of each loop, not 1,000
// (libmicrohttpd's resume took a lock shared with its loops and wrote an
// eventfd per connection; docs/BENCHMARKS.md, watch fan-out).
//
// Shared by the loop and by every Responder and stream that may post to it,
// so that a late post after the server stopped is dropped, not a use after
// free.

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"

namespace kiln::http {

class Mailbox {
 public:
  enum class Kind : uint8_t {
    kAnswer,  // the connection's handler has answered
    kWake,    // the connection's parked stream has more to send
    kStop,    // the server is stopping (connection id 0)
    kAdopt,   // a connection accepted by another loop: conn is its descriptor
  };
  struct Item {
    uint64_t conn;
    Kind kind;
  };

  static Result<std::shared_ptr<Mailbox>> Create();

  // Any thread. Dropped once Close() ran (a kAdopt's descriptor closed).
  void Post(uint64_t conn, Kind kind);
  // The loop's thread, when fd() is readable: takes everything posted.
  void Take(std::vector<Item>* items);
  // Nothing posted after this is delivered; descriptors waiting in kAdopt
  // items are closed.
  void Close();

  int fd() const { return event_fd_.get(); }

 private:
  UniqueFd event_fd_;
  std::mutex mu_;
  std::vector<Item> items_;
  bool closed_ = false;
};

}  // namespace kiln::http
