#include "common/shared_library.h"

#include <fmt/format.h>

namespace kiln {

Result<SharedLibrary> SharedLibrary::Open(const char* soname, const char* package) {
  // RTLD_NOW: a missing function shows here, at the first use, not as a
  // crash halfway through a command.
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return FailedPrecondition(fmt::format("cannot load {} (Debian package {}): {}", soname, package,
                                          why ? why : "unknown reason"));
  }
  return SharedLibrary(handle, soname);
}

Status SharedLibrary::MissingSymbol(const char* name) const {
  return FailedPrecondition(
      fmt::format("{} has no function {}: a different version than kiln "
                  "was built for?",
                  soname_, name));
}

}  // namespace kiln
