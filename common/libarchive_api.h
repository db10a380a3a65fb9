#pragma once
// libarchive, opened when a command first reads or writes an archive
// (`image capture --from-tar`, `image export`, `initrd build`) rather than
// when every `kiln` command starts: with libxml2, ICU and the compression
// libraries behind it, it was about 90 of the ~490 page faults of a
// `kiln --version` (common/shared_library.h). Calls go through
// Archive().archive_name(...), typed by libarchive's own headers.

#include <archive.h>
#include <archive_entry.h>

#include "common/shared_library.h"
#include "common/status.h"

namespace kiln {

// Every function of libarchive kiln calls.
// clang-format off
#define KILN_LIBARCHIVE_FUNCTIONS(X) \
  X(archive_entry_acl_next) \
  X(archive_entry_acl_reset) \
  X(archive_entry_filetype) \
  X(archive_entry_free) \
  X(archive_entry_gid) \
  X(archive_entry_hardlink) \
  X(archive_entry_mtime) \
  X(archive_entry_mtime_is_set) \
  X(archive_entry_mtime_nsec) \
  X(archive_entry_new) \
  X(archive_entry_pathname) \
  X(archive_entry_perm) \
  X(archive_entry_rdevmajor) \
  X(archive_entry_rdevminor) \
  X(archive_entry_set_filetype) \
  X(archive_entry_set_gid) \
  X(archive_entry_set_hardlink) \
  X(archive_entry_set_mode) \
  X(archive_entry_set_mtime) \
  X(archive_entry_set_nlink) \
  X(archive_entry_set_pathname) \
  X(archive_entry_set_perm) \
  X(archive_entry_set_rdevmajor) \
  X(archive_entry_set_rdevminor) \
  X(archive_entry_set_size) \
  X(archive_entry_set_symlink) \
  X(archive_entry_set_uid) \
  X(archive_entry_size) \
  X(archive_entry_size_is_set) \
  X(archive_entry_symlink) \
  X(archive_entry_uid) \
  X(archive_entry_xattr_add_entry) \
  X(archive_entry_xattr_next) \
  X(archive_entry_xattr_reset) \
  X(archive_error_string) \
  X(archive_read_data) \
  X(archive_read_free) \
  X(archive_read_new) \
  X(archive_read_next_header) \
  X(archive_read_open_fd) \
  X(archive_read_open_filename) \
  X(archive_read_support_filter_all) \
  X(archive_read_support_format_all) \
  X(archive_write_add_filter_gzip) \
  X(archive_write_add_filter_xz) \
  X(archive_write_add_filter_zstd) \
  X(archive_write_close) \
  X(archive_write_data) \
  X(archive_write_free) \
  X(archive_write_header) \
  X(archive_write_new) \
  X(archive_write_open_fd) \
  X(archive_write_open_filename) \
  X(archive_write_set_bytes_in_last_block) \
  X(archive_write_set_format_cpio_newc) \
  X(archive_write_set_format_pax_restricted)
// clang-format on

struct LibArchive {
#define KILN_LIBARCHIVE_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_LIBARCHIVE_FUNCTIONS(KILN_LIBARCHIVE_MEMBER)
#undef KILN_LIBARCHIVE_MEMBER
};

// Opens the library once per process; an error names it and its package.
Result<const LibArchive*> LoadLibArchive();

// REQUIRES: LoadLibArchive() succeeded (the entry points that make
// archive objects call it first).
inline const LibArchive& Archive() {
  return Table<LibArchive>();
}

}  // namespace kiln
