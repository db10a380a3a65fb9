#pragma once
// One entry of a node's install story: a phase change, a progress sample,
// a log line or the final result. The agent numbers events 1, 2, 3, ... per
// run; the server stores them under /kiln/nodes/<id>/events in that order and
// ignores a number it already has, so resending is always safe.

#include <cstdint>
#include <string>

#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

struct ProgressEvent {
  enum class Kind { kPhase, kProgress, kLog, kResult };

  uint64_t seq = 0;      // assigned by the journal
  int64_t time_ms = 0;   // wall clock, ms since the epoch
  Kind kind = Kind::kProgress;
  std::string phase;     // "partition", "deploy", ...
  std::string step;      // what inside the phase
  uint64_t done = 0;     // bytes (or items) done
  uint64_t total = 0;    // bytes (or items) in all; 0 when unknown
  double rate = 0;       // per second, smoothed
  double eta_s = -1;     // seconds left; negative when unknown
  std::string level = "info";  // info, warn, error
  std::string message;
  bool ok = true;        // for kResult

  Json ToJson() const;
  static Result<ProgressEvent> FromJson(const Json& j);
};

std::string KindName(ProgressEvent::Kind k);

}  // namespace kiln::agent
