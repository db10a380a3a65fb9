#pragma once
// Small helpers shared by bench/coord's drivers: fatal errors, a counting
// gate for requests in flight, medians. Not thread-safe except Slots.

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::bench {

[[noreturn]] inline void Die(const std::string& what) {
  fmt::print(stderr, "{}\n", what);
  std::exit(1);
}

template <typename T>
T Check(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.status().ToString());
  return std::move(r).value();
}

// A counting gate: at most n requests in flight. Thread-safe.
class Slots {
 public:
  explicit Slots(int n) : free_(n) {}
  void Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      ++free_;
    }
    cv_.notify_one();
  }
  void WaitAll(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return free_ == n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

// Reads argv as "--flag value" pairs:
//   for (FlagReader r("coord_x_bench", argc, argv); r.Next();)
//     if (r.flag() == "--url") f.url = r.Value(); else ...
class FlagReader {
 public:
  FlagReader(std::string program, int argc, char** argv)
      : program_(std::move(program)), argc_(argc), argv_(argv) {}
  bool Next() {
    if (++i_ >= argc_) return false;
    flag_ = argv_[i_];
    return true;
  }
  const std::string& flag() const { return flag_; }
  // The flag's value; dies when there is none.
  std::string Value() {
    if (i_ + 1 >= argc_) Die(program_ + ": " + flag_ + " needs a value");
    return argv_[++i_];
  }

 private:
  std::string program_;
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string flag_;
};

inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

inline double Median(std::vector<double> v) {
  return Percentile(std::move(v), 0.5);
}

}  // namespace kiln::bench
