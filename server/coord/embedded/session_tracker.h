#pragma once
// Session deadlines for the embedded store. A session lives while
// heartbeats come at least every `timeout`; the store's expiry thread asks
// for expired sessions and closes them through the log like any update.
// Deadlines are not durable: after a restart every session gets a full
// timeout again (as in ZooKeeper).
//
// Thread-safe.

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "common/status.h"
#include "server/coord/coord_types.h"

namespace kiln::coord::embedded {

class SessionTracker {
 public:
  using Clock = std::chrono::steady_clock;

  void Add(SessionId id, std::chrono::milliseconds timeout);
  void Remove(SessionId id);
  // Extends the deadline. kSessionExpired for unknown or expiring sessions.
  Status Touch(SessionId id);
  // Sessions past their deadline; each is returned once and refuses Touch
  // from then on.
  std::vector<SessionId> TakeExpired(Clock::time_point now);
  // The earliest deadline of a live session, if any.
  std::optional<Clock::time_point> NextDeadline() const;
  size_t size() const;

 private:
  struct Entry {
    std::chrono::milliseconds timeout;
    Clock::time_point deadline;
    bool expiring = false;
  };
  mutable std::mutex mu_;
  std::map<SessionId, Entry> sessions_;
};

}  // namespace kiln::coord::embedded
