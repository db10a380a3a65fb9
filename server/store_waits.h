#pragma once
// Long polls on the coordination store: an HTTP request that should be
// answered "as soon as something under PATH changes, or after T at the
// latest" (GET .../jobs?wait=S, GET .../jobs/<job>?wait=S). The handler
// hands a check and its Responder to Wait and returns; the connection stays
// suspended, costing no thread, until the check has an answer.
//
// How a change is noticed: one watch stream (CoordStore::OpenStream, from
// now on) per watched path, shared by every request waiting on it, opened
// by the first and closed when the last is answered. A stream, unlike a
// one-shot watch, leaves nothing behind in the store when a request times
// out, so thousands of idle agents polling for hours cost nothing there.
// Race-free: a request's first check runs after its stream is open, so a
// change it did not see wakes it.
//
// Thread safety: Wait may be called from any thread except a store thread
// (it opens streams, which may wait). Checks run on the caller's thread (the
// first) and on this object's own thread (the others), never on a store
// thread, so they may read the store synchronously. A check may run on both
// at once for one request; it must only read. Exactly one answer is sent
// per request.
//
// Lifetime: destroy before the store. The destructor answers requests still
// waiting with 503 (the HTTP server has usually answered them already).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "server/coord/coord_store.h"
#include "server/http/http_types.h"

namespace kiln {

class StoreWaits {
 public:
  explicit StoreWaits(coord::CoordStore* store);
  ~StoreWaits();
  StoreWaits(const StoreWaits&) = delete;
  StoreWaits& operator=(const StoreWaits&) = delete;

  // The answer now, or nullopt to wait for the next change. With final set
  // (the timeout passed) it must answer.
  using Check = std::function<std::optional<http::HttpResponse>(bool final)>;

  // Answers res with check's first answer: at once if it has one, else after
  // a change under path (recursive: the path and everything below; else the
  // path and its children), else check(true) after timeout.
  void Wait(const std::string& path, bool recursive, std::chrono::milliseconds timeout, Check check,
            http::Responder res);

  // Requests waiting now (for /metrics and tests).
  size_t waiting() const;

  struct Core;  // shared with the streams' handlers, which may outlive this

 private:
  std::shared_ptr<Core> core_;
};

// Parses a ?wait= value: seconds from 0 to max_s, fractions allowed
// ("0.5"). The error names the parameter and what was wrong.
Result<std::chrono::milliseconds> ParseWaitSeconds(const std::string& text, double max_s);

}  // namespace kiln
