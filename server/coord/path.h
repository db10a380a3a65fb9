#pragma once
// Znode paths, with ZooKeeper's rules: absolute, '/'-separated, no empty,
// "." or ".." components, no trailing '/' (except the root), no control
// characters, valid UTF-8, at most kMaxPathLength bytes.

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::coord {

// kInvalidArgument naming the path and what is wrong with it. A sequential
// create's path may end in '/' (the sequence number becomes the last
// component), so pass sequential=true for those.
Status ValidatePath(std::string_view path, bool sequential = false);

// "/a/b" -> "/a"; "/a" -> "/"; "/" -> "".
std::string_view ParentPath(std::string_view path);
// "/a/b" -> "b"; "/" -> "".
std::string_view BaseName(std::string_view path);
// "/" + "x" -> "/x"; "/a" + "x" -> "/a/x".
std::string JoinPath(std::string_view parent, std::string_view child);
// True when path is root itself or lies below it ("/a" is under "/a" and
// "/", not under "/ab").
bool IsUnder(std::string_view path, std::string_view root);
// The 10-digit, zero-padded suffix of a sequential znode: 7 -> "0000000007".
// ZooKeeper's format; counters beyond 2^31-1 wrap negative as in ZooKeeper.
std::string SequenceSuffix(int32_t counter);

}  // namespace kiln::coord
