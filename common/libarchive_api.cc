#include "common/libarchive_api.h"

namespace kiln {
namespace {

Status Bind(const SharedLibrary& lib, LibArchive* t) {
#define KILN_LIBARCHIVE_BIND(name) KILN_RETURN_IF_ERROR(lib.Bind(#name, &t->name));
  KILN_LIBARCHIVE_FUNCTIONS(KILN_LIBARCHIVE_BIND)
#undef KILN_LIBARCHIVE_BIND
  return Status::Ok();
}

}  // namespace

Result<const LibArchive*> LoadLibArchive() {
  // The soname of the libarchive ABI archive.h describes.
  return LoadTable<LibArchive>("libarchive.so.13", "libarchive13", Bind);
}

}  // namespace kiln
