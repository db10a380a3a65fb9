#pragma once
// Test trees with every kind of entry a manifest records, and ways to
// compare two trees exactly.

#include <string>

namespace kiln::imager::test {

// Fills dir (created) with: nested directories with unusual modes (0700,
// sticky 1777, setgid 2775), empty, small and chunked large files, a
// setuid binary, files owned by other users, relative, absolute and
// dangling symlinks, a group of three hard links, a fifo, a socket, char
// and block devices, user xattrs, a file capability (security.capability)
// and POSIX access and default ACLs, and nanosecond mtimes everywhere.
void MakeRichTree(const std::string& dir, unsigned seed = 1);

// Deterministic pseudo-random bytes.
std::string RandomBytes(size_t n, unsigned seed);

// `rsync -aHAXn --itemize-changes --delete a/ b/` output (empty: identical),
// ignoring the given top-level name when not empty.
std::string RsyncDiff(const std::string& a, const std::string& b, const std::string& exclude = "");

// Manifests of both trees by a fresh scan, compared entry by entry; "" when
// identical, else the first difference.
std::string ScanDiff(const std::string& a, const std::string& b);

// Whether the filesystem under dir accepts an aligned O_DIRECT write (a
// tmpfs before Linux 6.6 does not): only there must DirectWriter use it.
bool DirectIoWorks(const std::string& dir);

// Sets a path's mtime (not following symlinks).
void SetMtime(const std::string& path, int64_t sec, long nsec);

}  // namespace kiln::imager::test
