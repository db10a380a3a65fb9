#pragma once
// Runs a user callback on a store thread: an exception must not kill the
// thread (or unwind through a C library's frames), so it is logged instead.

#include <exception>
#include <utility>

#include "common/log.h"

namespace kiln::coord {

template <typename F, typename... Args>
void Invoke(const char* what, F& f, Args&&... args) {
  if (!f) return;
  try {
    f(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    log::Error("coord", "callback threw", {{"callback", what}, {"error", e.what()}});
  } catch (...) {
    log::Error("coord", "callback threw", {{"callback", what}});
  }
}

}  // namespace kiln::coord
