#include "server/store_waits.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace kiln {

using Clock = std::chrono::steady_clock;

struct StoreWaits::Core {
  struct Waiter {
    std::string key;
    Clock::time_point deadline;
    Check check;
    http::Responder res;
  };
  struct Watched {
    std::string path;
    bool recursive = false;
    std::unique_ptr<coord::WatchStream> stream;
    bool ended = false;  // the stream ended (store closing): reopen or answer
    std::set<uint64_t> ids;
  };

  coord::CoordStore* store = nullptr;
  // Serialises opening streams, so that a request never runs its first
  // check before the stream that will wake it is open.
  std::mutex open_mu;
  mutable std::mutex mu;  // everything below
  std::condition_variable cv;
  bool stop = false;
  uint64_t next_id = 1;
  std::map<uint64_t, Waiter> waiters;
  std::set<std::pair<Clock::time_point, uint64_t>> deadlines;
  std::map<std::string, Watched> watched;  // by key: "r:"/"c:" + path
  std::deque<std::string> woken;           // keys whose stream saw a change
  std::thread thread;

  // Takes a request out (it is answered by whoever took it). A stream that
  // no request needs any more is handed back in *drop, to be destroyed
  // without mu held (its destructor waits for running handlers, which take
  // mu).
  std::optional<Waiter> Claim(uint64_t id, std::unique_ptr<coord::WatchStream>* drop) {
    auto it = waiters.find(id);
    if (it == waiters.end()) return std::nullopt;
    Waiter w = std::move(it->second);
    waiters.erase(it);
    deadlines.erase({w.deadline, id});
    auto wit = watched.find(w.key);
    if (wit != watched.end()) {
      wit->second.ids.erase(id);
      if (wit->second.ids.empty()) {
        *drop = std::move(wit->second.stream);
        watched.erase(wit);
      }
    }
    return w;
  }

  // Claims and answers; false when someone else answered first.
  bool Answer(uint64_t id, http::HttpResponse r) {
    std::unique_ptr<coord::WatchStream> drop;
    std::optional<Waiter> w;
    {
      std::lock_guard lock(mu);
      w = Claim(id, &drop);
    }
    drop.reset();
    if (!w) return false;
    w->res.Send(std::move(r));
    return true;
  }

  // Opens the key's stream unless one is open. REQUIRES: open_mu held.
  Status EnsureStream(const std::shared_ptr<Core>& self, const std::string& key) {
    std::string path;
    bool recursive;
    {
      std::lock_guard lock(mu);
      auto it = watched.find(key);
      if (it == watched.end() || (it->second.stream && !it->second.ended)) return Status::Ok();
      path = it->second.path;
      recursive = it->second.recursive;
    }
    std::weak_ptr<Core> weak = self;
    auto wake = [weak, key](bool ended) {
      auto c = weak.lock();
      if (!c) return;
      std::lock_guard lock(c->mu);
      auto it = c->watched.find(key);
      if (it != c->watched.end() && ended) it->second.ended = true;
      c->woken.push_back(key);
      c->cv.notify_all();
    };
    coord::StreamHandlers h;
    h.on_change = [wake](const coord::ChangePtr&) { wake(false); };
    h.on_end = [wake](Status) { wake(true); };
    auto opened = store->OpenStream({.path = path, .recursive = recursive, .since = -1}, h);
    if (!opened.ok()) return opened.status();
    std::unique_ptr<coord::WatchStream> drop;
    {
      std::lock_guard lock(mu);
      auto it = watched.find(key);
      if (it == watched.end()) {
        drop = std::move(*opened);  // every request was answered meanwhile
      } else {
        drop = std::move(it->second.stream);  // the ended one, if any
        it->second.stream = std::move(*opened);
        it->second.ended = false;
      }
    }
    return Status::Ok();
  }

  void Loop(const std::shared_ptr<Core>& self) {
    std::unique_lock lock(mu);
    for (;;) {
      if (stop) return;
      if (woken.empty()) {
        if (deadlines.empty())
          cv.wait(lock);
        else
          cv.wait_until(lock, Clock::time_point(deadlines.begin()->first));  // a copy
      }
      if (stop) return;
      auto now = Clock::now();
      std::vector<uint64_t> due;
      for (auto it = deadlines.begin(); it != deadlines.end() && it->first <= now; ++it)
        due.push_back(it->second);
      std::deque<std::string> keys;
      keys.swap(woken);
      lock.unlock();
      for (uint64_t id : due) Finish(id);
      std::set<std::string> seen;
      for (const auto& key : keys)
        if (seen.insert(key).second) Recheck(self, key);
      lock.lock();
    }
  }

  // The timeout passed: the check's final answer.
  void Finish(uint64_t id) {
    Check check;
    {
      std::lock_guard lock(mu);
      auto it = waiters.find(id);
      if (it == waiters.end()) return;
      check = it->second.check;
    }
    auto r = check(true);
    Answer(id, r ? std::move(*r) : http::HttpResponse::Error(Internal("long poll gave no answer")));
  }

  // Something changed under key: ask its requests again.
  void Recheck(const std::shared_ptr<Core>& self, const std::string& key) {
    std::vector<std::pair<uint64_t, Check>> checks;
    bool ended = false;
    {
      std::lock_guard lock(mu);
      auto it = watched.find(key);
      if (it == watched.end()) return;
      ended = it->second.ended;
      for (uint64_t id : it->second.ids)
        if (auto w = waiters.find(id); w != waiters.end()) checks.emplace_back(id, w->second.check);
    }
    if (ended) {
      std::lock_guard open_lock(open_mu);
      if (!EnsureStream(self, key).ok()) {
        // The store is going away: answer with what is there now.
        for (auto& [id, check] : checks) {
          auto r = check(true);
          Answer(id, r ? std::move(*r) : http::HttpResponse::Error(Unavailable("store closing")));
        }
        return;
      }
    }
    for (auto& [id, check] : checks)
      if (auto r = check(false)) Answer(id, std::move(*r));
  }
};

StoreWaits::StoreWaits(coord::CoordStore* store) : core_(std::make_shared<Core>()) {
  core_->store = store;
  // The thread holds the core only through this object: it is joined in
  // the destructor, before the core can go.
  Core* c = core_.get();
  std::shared_ptr<Core> self = core_;
  c->thread = std::thread([c, weak = std::weak_ptr<Core>(self)] {
    if (auto s = weak.lock()) c->Loop(s);
  });
}

StoreWaits::~StoreWaits() {
  std::map<uint64_t, Core::Waiter> left;
  std::map<std::string, Core::Watched> streams;
  {
    std::lock_guard lock(core_->mu);
    core_->stop = true;
    core_->cv.notify_all();
  }
  core_->thread.join();
  {
    std::lock_guard lock(core_->mu);
    left.swap(core_->waiters);
    streams.swap(core_->watched);
    core_->deadlines.clear();
  }
  streams.clear();  // closes the streams, without mu held
  for (auto& [id, w] : left) w.res.SendError(Unavailable("the server is stopping"));
}

size_t StoreWaits::waiting() const {
  std::lock_guard lock(core_->mu);
  return core_->waiters.size();
}

void StoreWaits::Wait(const std::string& path, bool recursive, std::chrono::milliseconds timeout,
                      Check check, http::Responder res) {
  const std::string key = (recursive ? "r:" : "c:") + path;
  uint64_t id;
  {
    std::lock_guard open_lock(core_->open_mu);
    {
      std::lock_guard lock(core_->mu);
      if (core_->stop) return res.SendError(Unavailable("the server is stopping"));
      id = core_->next_id++;
      auto deadline = Clock::now() + timeout;
      Core::Watched& w = core_->watched[key];
      w.path = path;
      w.recursive = recursive;
      w.ids.insert(id);
      core_->waiters[id] = {key, deadline, check, res};
      core_->deadlines.insert({deadline, id});
      core_->cv.notify_all();  // a new earliest deadline
    }
    // Without a stream the request still ends at its deadline; it only
    // misses the early answer.
    (void)core_->EnsureStream(core_, key);
  }
  if (auto r = check(false)) core_->Answer(id, std::move(*r));
}

Result<std::chrono::milliseconds> ParseWaitSeconds(const std::string& text, double max_s) {
  double v = -1;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v, std::chars_format::fixed);
  if (text.empty() || ec != std::errc() || p != end || !std::isfinite(v) || v < 0 || v > max_s)
    return InvalidArgument(
        fmt::format("wait: expected seconds from 0 to {:g}, got \"{}\"", max_s, text));
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(v * 1000)));
}

}  // namespace kiln
