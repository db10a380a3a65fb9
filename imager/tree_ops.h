#pragma once
// Confined filesystem operations under a root directory, for the applier and
// undo. Every path is a manifest path (validated, relative, no "..") and is
// resolved one component at a time with openat(O_NOFOLLOW | O_DIRECTORY)
// from a descriptor of the root, so no symlink in the target, whatever it
// points to, can make kiln read or write outside the root.

#include <sys/stat.h>

#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"
#include "imager/manifest.h"

namespace kiln::imager {

class Tree {
 public:
  // Opens (and with create, makes) the root directory.
  static Result<Tree> Open(const std::string& root, bool create);
  Tree(Tree&&) = default;
  Tree& operator=(Tree&&) = default;

  int root_fd() const { return root_.get(); }
  const std::string& root() const { return path_; }

  // A descriptor of directory `dir` (a manifest path; "" is the root), valid
  // until the next call. kNotFound when missing, kFailedPrecondition naming
  // the component when something on the way is not a directory (a symlink,
  // a file).
  Result<int> Dir(std::string_view dir);
  // Forgets cached descriptors at and below dir (after it was renamed or removed).
  void Forget(std::string_view dir);

  // A fresh temporary name in the directory: ".kiln-tmp-<n>".
  std::string TempName();

  // lstat of path; false when it does not exist.
  Result<bool> Stat(std::string_view path, struct stat* st);

  // Removes path and, for a directory, everything below it; never follows
  // symlinks. Missing is fine.
  Status RemoveTree(int dirfd, const std::string& name, std::string_view what);

  // Reads the attributes of an existing node into an entry (no content).
  Result<Entry> ReadEntry(int dirfd, const std::string& name, std::string_view path);

  // Applies owner, mode, xattrs (removing others) and mtime to a node
  // addressed by dirfd + name (fd >= 0: use the open file instead).
  Status SetAttributes(int dirfd, const std::string& name, int fd, const Entry& e, bool set_owner,
                       std::string_view what);

 private:
  Tree(std::string path, UniqueFd root) : path_(std::move(path)), root_(std::move(root)) {}
  std::string path_;
  UniqueFd root_;
  // Small cache of directory descriptors: entries arrive in path order, so
  // the directories in use are few at any time.
  std::unordered_map<std::string, UniqueFd> dirs_;
  uint64_t tmp_counter_ = 0;
};

std::string ProcPath(int dirfd, const std::string& name);

}  // namespace kiln::imager
