#include "common/libarchive_api.h"

#include "common/shared_library.h"

namespace kiln {

namespace internal {
const LibArchive* loaded_libarchive = nullptr;
}

Result<const LibArchive*> LoadLibArchive() {
  // Built once, by the first caller (function-local statics are
  // initialised exactly once, whichever thread comes first).
  static const Result<LibArchive> api = []() -> Result<LibArchive> {
    // The soname of the ABI archive.h describes.
    KILN_ASSIGN_OR_RETURN(SharedLibrary lib,
                          SharedLibrary::Open("libarchive.so.13", "libarchive13"));
    LibArchive t;
#define KILN_LIBARCHIVE_BIND(name) KILN_RETURN_IF_ERROR(lib.Bind(#name, &t.name));
    KILN_LIBARCHIVE_FUNCTIONS(KILN_LIBARCHIVE_BIND)
#undef KILN_LIBARCHIVE_BIND
    return t;
  }();
  if (!api.ok()) return api.status();
  internal::loaded_libarchive = &*api;
  return &*api;
}

}  // namespace kiln
