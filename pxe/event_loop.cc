#include "pxe/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::pxe {

Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_.valid()) return ErrnoError("epoll_create1", errno);
  loop->wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!loop->wake_.valid()) return ErrnoError("eventfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = loop->wake_.get();
  if (::epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, loop->wake_.get(), &ev) != 0)
    return ErrnoError("epoll_ctl add eventfd", errno);
  return loop;
}

EventLoop::~EventLoop() = default;

Status EventLoop::Watch(int fd, uint32_t events, FdCallback cb) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  bool known = watches_.count(fd) > 0;
  if (::epoll_ctl(epoll_.get(), known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
    return ErrnoError("epoll_ctl", errno);
  watches_[fd] = std::make_shared<FdCallback>(std::move(cb));
  return Status::Ok();
}

void EventLoop::Unwatch(int fd) {
  if (watches_.erase(fd) == 0) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::AddTimer(Clock::time_point when, std::function<void()> cb) {
  TimerId id = next_timer_++;
  timers_.emplace(id, std::move(cb));
  heap_.push({when, id});
  return id;
}

void EventLoop::CancelTimer(TimerId id) { timers_.erase(id); }

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(post_mu_);
    posts_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

void EventLoop::Stop() {
  stop_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

int EventLoop::NextTimeoutMs() const {
  if (heap_.empty()) return -1;
  auto d = heap_.top().when - Clock::now();
  if (d <= Clock::duration::zero()) return 0;
  // Round up so a timer never fires early and spins the loop.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::min<int64_t>(ms, 60000));
}

void EventLoop::RunTimers() {
  auto now = Clock::now();
  while (!heap_.empty() && heap_.top().when <= now) {
    TimerId id = heap_.top().id;
    heap_.pop();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    auto cb = std::move(it->second);
    timers_.erase(it);
    cb();
  }
  // Bound the heap when most entries are cancelled ones.
  if (heap_.size() > 1024 && heap_.size() > 4 * timers_.size()) {
    decltype(heap_) fresh;
    while (!heap_.empty()) {
      if (timers_.count(heap_.top().id)) fresh.push(heap_.top());
      heap_.pop();
    }
    heap_ = std::move(fresh);
  }
}

void EventLoop::DrainPosts() {
  uint64_t n;
  while (::read(wake_.get(), &n, sizeof n) > 0) {
  }
  std::vector<std::function<void()>> todo;
  {
    std::lock_guard lock(post_mu_);
    todo.swap(posts_);
  }
  for (auto& fn : todo) fn();
}

void EventLoop::Run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_.load()) {
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, NextTimeoutMs());
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n && !stop_.load(); ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_.get()) {
        DrainPosts();
        continue;
      }
      auto it = watches_.find(fd);
      if (it == watches_.end()) continue;  // unwatched by an earlier callback
      auto cb = it->second;
      (*cb)(events[i].events);
    }
    RunTimers();
  }
}

}  // namespace kiln::pxe
