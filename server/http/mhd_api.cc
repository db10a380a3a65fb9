#include "server/http/mhd_api.h"

namespace kiln::http {
namespace {

Status Bind(const SharedLibrary& lib, MhdApi* t) {
#define KILN_MHD_BIND(name) KILN_RETURN_IF_ERROR(lib.Bind(#name, &t->name));
  KILN_MHD_FUNCTIONS(KILN_MHD_BIND)
#undef KILN_MHD_BIND
  return Status::Ok();
}

}  // namespace

Result<const MhdApi*> LoadMhd() {
  // The soname of the libmicrohttpd ABI the header belongs to.
  return LoadTable<MhdApi>("libmicrohttpd.so.12", "libmicrohttpd12", Bind);
}

}  // namespace kiln::http
