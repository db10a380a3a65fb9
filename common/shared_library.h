#pragma once
// Shared libraries opened when a command first needs them rather than when
// the program starts.
//
// `kiln` is one executable for the server and every command. Linked the
// usual way, every `kiln` command mapped and relocated libarchive (with
// libxml2, ICU, nettle ...), which only the tar and cpio paths use (with
// libmicrohttpd, which kiln used then, about 4.5 of the 7 ms a `kiln
// --version` took), paid again by every command an operator or a script
// runs. Such a library is described by a table of the functions kiln calls
// (see LibArchive in common/libarchive_api.h), filled here from the library
// the first time it is asked for; its header still types every call at
// compile time.

#include <dlfcn.h>

#include <atomic>
#include <string>

#include "common/status.h"

namespace kiln {

class SharedLibrary {
 public:
  // Opens soname (for example "libarchive.so.13"); a failure names the
  // library, the Debian package that ships it and the loader's reason. The
  // handle is never closed: the library stays for the life of the process.
  static Result<SharedLibrary> Open(const char* soname, const char* package);

  // Sets *fn to the library's function name.
  template <typename Fn>
  Status Bind(const char* name, Fn** fn) const {
    void* sym = Find(name);
    if (!sym) return MissingSymbol(name);
    *fn = reinterpret_cast<Fn*>(sym);
    return Status::Ok();
  }

 private:
  SharedLibrary(void* handle, std::string soname) : handle_(handle), soname_(std::move(soname)) {}
  void* Find(const char* name) const { return ::dlsym(handle_, name); }
  Status MissingSymbol(const char* name) const;

  void* handle_;
  std::string soname_;
};

// A table of one library's functions (struct T, one member per function),
// filled once per process: LoadTable<T> opens the library and runs bind on
// the first call, and returns the same table or error on every later one;
// Table<T>() hands the table out where a successful load is known to have
// happened (a server started, an archive opened).
template <typename T>
inline std::atomic<const T*> loaded_table{nullptr};

template <typename T>
Result<const T*> LoadTable(const char* soname, const char* package,
                           Status (*bind)(const SharedLibrary&, T*)) {
  // Function-local statics are initialised exactly once, whichever thread
  // comes first.
  static const Result<const T*> table = [&]() -> Result<const T*> {
    KILN_ASSIGN_OR_RETURN(SharedLibrary lib, SharedLibrary::Open(soname, package));
    static T t;
    KILN_RETURN_IF_ERROR(bind(lib, &t));
    loaded_table<T>.store(&t, std::memory_order_release);
    return &t;
  }();
  return table;
}

template <typename T>
const T& Table() {
  return *loaded_table<T>.load(std::memory_order_acquire);
}

}  // namespace kiln
