#pragma once
// Paths inside an image. A manifest path is relative to the image root,
// '/'-separated, with no empty, "." or ".." component, no NUL and at most
// kMaxPathLen bytes; the root itself is "". Every path that enters kiln from
// an archive, an upload or a stream passes ValidateEntryPath before use, so
// no later code has to wonder whether "a/../../etc" can appear.

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::imager {

inline constexpr size_t kMaxPathLen = 4096;
inline constexpr size_t kMaxNameLen = 255;

// OK for "" (the root) and for paths as described above.
Status ValidateEntryPath(std::string_view path);

// Turns an archive member name ("./etc/passwd", "etc/", "/abs") into a
// manifest path: strips one leading "./" chain and trailing slashes. Absolute
// names and ".." components are refused (kInvalidArgument naming the member);
// "." and "./" become the root "".
Result<std::string> NormalizeArchivePath(std::string_view name);

// "a/b/c" -> "a/b"; "a" -> ""; "" -> "".
std::string_view ParentPath(std::string_view path);
// "a/b/c" -> "c".
std::string_view BaseName(std::string_view path);
// How a path is shown to people: "/" for the root, "/etc/passwd" otherwise.
std::string DisplayPath(std::string_view path);
// True when `path` is `dir` or below it ("" is above everything).
bool IsUnder(std::string_view path, std::string_view dir);

}  // namespace kiln::imager
