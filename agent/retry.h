#pragma once
// Retries a call to the server while the server is unreachable (restarting,
// a network blip), with backoff, for a bounded time. Any other error (the
// server answered no) returns at once: retrying cannot fix it.

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/status.h"

namespace kiln::agent {

inline bool Transient(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kTimeout;
}

// f returns Status or Result<T>; on_retry hears about the first failure.
template <typename F>
auto RetryWhileUnavailable(F f, std::chrono::milliseconds budget,
                           const std::function<void(const Status&)>& on_retry = nullptr)
    -> decltype(f()) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  auto backoff = std::chrono::milliseconds(100);
  bool told = false;
  for (;;) {
    auto r = f();
    Status s;
    if constexpr (std::is_same_v<decltype(r), Status>)
      s = r;
    else
      s = r.status();
    if (s.ok() || !Transient(s) || std::chrono::steady_clock::now() + backoff > deadline) return r;
    if (!told && on_retry) on_retry(s);
    told = true;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace kiln::agent
