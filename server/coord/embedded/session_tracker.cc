#include "server/coord/embedded/session_tracker.h"

#include <fmt/format.h>

namespace kiln::coord::embedded {

void SessionTracker::Add(SessionId id, std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu_);
  sessions_[id] = Entry{timeout, Clock::now() + timeout, false};
}

void SessionTracker::Remove(SessionId id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
}

Status SessionTracker::Touch(SessionId id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.expiring)
    return {Code::kSessionExpired, fmt::format("session {} has expired or does not exist", id)};
  it->second.deadline = Clock::now() + it->second.timeout;
  return Status::Ok();
}

std::vector<SessionId> SessionTracker::TakeExpired(Clock::time_point now) {
  std::lock_guard lock(mu_);
  std::vector<SessionId> out;
  for (auto& [id, e] : sessions_) {
    if (!e.expiring && e.deadline <= now) {
      e.expiring = true;
      out.push_back(id);
    }
  }
  return out;
}

std::optional<SessionTracker::Clock::time_point> SessionTracker::NextDeadline() const {
  std::lock_guard lock(mu_);
  std::optional<Clock::time_point> next;
  for (const auto& [id, e] : sessions_)
    if (!e.expiring && (!next || e.deadline < *next)) next = e.deadline;
  return next;
}

size_t SessionTracker::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace kiln::coord::embedded
