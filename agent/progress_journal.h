#pragma once
// The agent's on-disk queue of progress events, so that nothing is lost or
// reordered while the server is unreachable (or restarts mid-install).
//
//   DIR/events.jsonl   one event per line, appended, fdatasync'd per event
//   DIR/acked          the highest seq the server confirmed (atomic rewrite)
//
// A line cut short by a crash is dropped on Open (it was never sent: an
// event is sent only after its line is on disk). Not thread-safe; the
// reporter serialises access.

#include <cstdint>
#include <string>
#include <vector>

#include "agent/progress_event.h"
#include "common/file_util.h"
#include "common/status.h"

namespace kiln::agent {

class ProgressJournal {
 public:
  static Result<ProgressJournal> Open(const std::string& dir);

  // Numbers the event (last seq + 1), writes it durably, returns the seq.
  Result<uint64_t> Append(ProgressEvent e);

  // Up to max events with seq > acked(), in order.
  std::vector<ProgressEvent> Pending(size_t max) const;
  uint64_t acked() const { return acked_; }
  uint64_t last_seq() const { return events_.empty() ? 0 : events_.back().seq; }
  Status MarkAcked(uint64_t seq);

 private:
  ProgressJournal() = default;
  std::string dir_;
  UniqueFd fd_;
  std::vector<ProgressEvent> events_;
  uint64_t acked_ = 0;
};

}  // namespace kiln::agent
