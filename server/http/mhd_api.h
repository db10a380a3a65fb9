#pragma once
// libmicrohttpd, opened when a process starts its first HTTP server rather
// than when it starts (common/shared_library.h says why: the other `kiln`
// commands then never load it, nor GnuTLS behind it). Calls go through
// Mhd().MHD_name(...), typed by libmicrohttpd's own header.

#include <microhttpd.h>

#include "common/shared_library.h"
#include "common/status.h"

namespace kiln::http {

// Every function of libmicrohttpd kiln calls.
// clang-format off
#define KILN_MHD_FUNCTIONS(X) \
  X(MHD_start_daemon) \
  X(MHD_quiesce_daemon) \
  X(MHD_stop_daemon) \
  X(MHD_suspend_connection) \
  X(MHD_resume_connection) \
  X(MHD_get_connection_values) \
  X(MHD_get_connection_info) \
  X(MHD_create_response_from_callback) \
  X(MHD_create_response_from_buffer) \
  X(MHD_create_response_from_fd_at_offset64) \
  X(MHD_add_response_header) \
  X(MHD_queue_response) \
  X(MHD_destroy_response)
// clang-format on

struct MhdApi {
#define KILN_MHD_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_MHD_FUNCTIONS(KILN_MHD_MEMBER)
#undef KILN_MHD_MEMBER
};

// Opens the library once per process; an error names it and its package.
Result<const MhdApi*> LoadMhd();

// REQUIRES: LoadMhd() succeeded (true wherever an HttpServer exists).
inline const MhdApi& Mhd() {
  return Table<MhdApi>();
}

}  // namespace kiln::http
