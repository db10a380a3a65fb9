#pragma once
// A small epoll event loop: file-descriptor callbacks, one-shot timers and
// cross-thread posts. One thread calls Run(); everything else happens on
// that thread, so callbacks need no locks among themselves.
//
//   auto loop = EventLoop::Create();
//   loop->Watch(fd, EPOLLIN, [&](uint32_t events) { ... });
//   loop->AddTimer(EventLoop::Clock::now() + 1s, [&] { ... });
//   std::thread t([&] { loop->Run(); });
//   loop->Stop(); t.join();
//
// Thread safety: Post() and Stop() may be called from any thread. All other
// methods must be called on the loop thread (or before Run starts).
// Callbacks may add and remove watches and timers, including their own.
// An fd callback may be called spuriously (an fd number closed and reused
// within one epoll batch), so it must use non-blocking I/O.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"

namespace kiln::pxe {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using FdCallback = std::function<void(uint32_t events)>;
  using TimerId = uint64_t;

  static Result<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls cb with the epoll events whenever fd is ready. The loop does not
  // own fd; Unwatch it before closing it.
  Status Watch(int fd, uint32_t events, FdCallback cb);
  void Unwatch(int fd);

  // Runs cb once at (or soon after) when. Cancelling an expired or unknown
  // timer is harmless.
  TimerId AddTimer(Clock::time_point when, std::function<void()> cb);
  void CancelTimer(TimerId id);

  // Runs fn on the loop thread. Any thread.
  void Post(std::function<void()> fn);

  // Runs until Stop(). Returns at once if Stop() was already called.
  void Run();
  // Makes Run() return after the current callback. Any thread; idempotent.
  void Stop();

 private:
  EventLoop() = default;
  void RunTimers();
  void DrainPosts();
  int NextTimeoutMs() const;

  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd for Post and Stop
  // Callbacks are shared_ptrs so a callback that unwatches its own fd stays
  // alive until it returns.
  std::unordered_map<int, std::shared_ptr<FdCallback>> watches_;

  struct TimerEntry {
    Clock::time_point when;
    TimerId id;
    bool operator>(const TimerEntry& o) const { return when > o.when || (when == o.when && id > o.id); }
  };
  // Cancelled timers stay in the heap and are skipped when they surface.
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> heap_;
  std::unordered_map<TimerId, std::function<void()>> timers_;
  TimerId next_timer_ = 1;

  std::mutex post_mu_;
  std::vector<std::function<void()>> posts_;
  std::atomic<bool> stop_{false};
};

}  // namespace kiln::pxe
