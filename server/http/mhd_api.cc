#include "server/http/mhd_api.h"

#include "common/shared_library.h"

namespace kiln::http {

namespace internal {
const MhdApi* loaded_mhd = nullptr;
}

Result<const MhdApi*> LoadMhd() {
  // Built once, by the first caller; function-local statics are
  // initialised exactly once even when servers start on several threads.
  static const Result<MhdApi> api = []() -> Result<MhdApi> {
    // The soname of libmicrohttpd's ABI that the header belongs to.
    KILN_ASSIGN_OR_RETURN(SharedLibrary lib,
                          SharedLibrary::Open("libmicrohttpd.so.12", "libmicrohttpd12"));
    MhdApi t;
#define KILN_MHD_BIND(name) KILN_RETURN_IF_ERROR(lib.Bind(#name, &t.name));
    KILN_MHD_FUNCTIONS(KILN_MHD_BIND)
#undef KILN_MHD_BIND
    return t;
  }();
  if (!api.ok()) return api.status();
  internal::loaded_mhd = &*api;
  return &*api;
}

}  // namespace kiln::http
