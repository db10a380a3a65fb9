#pragma once
// Runs a helper program (dnsmasq) as a supervised child: restarted with
// exponential backoff whenever it exits, its output forwarded line by line,
// its true state observable at any time.
//
//   state      meaning
//   starting   about to fork
//   running    alive (pid set)
//   backoff    exited or failed to start; restarts after the backoff
//   stopped    Stop() ended it
//
// The child runs in its own process group with the signal mask cleared,
// and gets SIGTERM if the supervising thread dies (PR_SET_PDEATHSIG), so a
// crashed kiln leaves no orphan dnsmasq holding the DHCP port.
//
// Thread safety: Describe() and pid() from any thread; Stop() from any one
// thread (idempotent; the destructor calls it). on_line runs on the
// supervisor's thread.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln::pxe {

struct SupervisorOptions {
  std::string name;  // for logs and status: "dnsmasq"
  std::vector<std::string> argv;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  // A run at least this long resets the backoff to initial_backoff.
  std::chrono::milliseconds healthy_after{10000};
  // On Stop: SIGTERM, then SIGKILL after this long.
  std::chrono::milliseconds stop_grace{3000};
  // Each line the child writes on stdout or stderr, without the newline.
  std::function<void(std::string_view line)> on_line;
};

class Supervisor {
 public:
  static Result<std::unique_ptr<Supervisor>> Start(SupervisorOptions options);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  void Stop();

  // {"state":"running","pid":123,"starts":2,"last_exit":"exit status 1",
  //  "uptime_s":12.5} ("uptime_s" while running, "restart_in_s" in backoff).
  Json Describe() const;
  pid_t pid() const;
  uint64_t starts() const;

 private:
  explicit Supervisor(SupervisorOptions options) : opts_(std::move(options)) {}
  void Loop();
  // Runs the child once, until it exits or Stop; returns how it ended.
  std::string RunOnce();
  bool WaitBackoff(std::chrono::milliseconds d);  // false when stopping

  SupervisorOptions opts_;
  UniqueFd stop_fd_;  // eventfd: wakes the thread for Stop
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string state_ = "starting";
  pid_t pid_ = -1;
  uint64_t starts_ = 0;
  std::string last_exit_;
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point restart_at_{};
};

}  // namespace kiln::pxe
