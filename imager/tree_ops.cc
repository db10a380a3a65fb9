#include "imager/tree_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>

#include "common/hash.h"
#include "imager/path_util.h"

namespace kiln::imager {
namespace {
constexpr size_t kMaxCachedDirs = 256;
}

std::string ProcPath(int dirfd, const std::string& name) {
  return fmt::format("/proc/self/fd/{}/{}", dirfd, name);
}

Result<Tree> Tree::Open(const std::string& root, bool create) {
  if (create) KILN_RETURN_IF_ERROR(MakeDirs(root, 0755));
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound(root + " does not exist");
    return ErrnoError("open " + root, errno);
  }
  return Tree(root, std::move(fd));
}

std::string Tree::TempName() {
  return fmt::format(".kiln-tmp-{}-{}", ::getpid(), tmp_counter_++);
}

Result<int> Tree::Dir(std::string_view dir) {
  if (dir.empty()) return root_.get();
  auto it = dirs_.find(std::string(dir));
  if (it != dirs_.end()) return it->second.get();
  if (dirs_.size() >= kMaxCachedDirs) dirs_.clear();
  KILN_ASSIGN_OR_RETURN(int parent, Dir(ParentPath(dir)));
  std::string name(BaseName(dir));
  int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound(DisplayPath(dir) + " does not exist in " + path_);
    if (err == ENOTDIR || err == ELOOP)
      return FailedPrecondition(
          fmt::format("{} in {} is not a directory (kiln never follows a symlink there)",
                      DisplayPath(dir), path_));
    return ErrnoError("open " + DisplayPath(dir), err);
  }
  // Dir(parent) may have cleared the cache; the parent fd is used above
  // before that could matter, and this insert is the last step.
  auto [pos, _] = dirs_.emplace(std::string(dir), UniqueFd(fd));
  return pos->second.get();
}

void Tree::Forget(std::string_view dir) {
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (IsUnder(it->first, dir))
      it = dirs_.erase(it);
    else
      ++it;
  }
}

Result<bool> Tree::Stat(std::string_view path, struct stat* st) {
  if (path.empty()) {
    if (::fstat(root_.get(), st) != 0) return ErrnoError("stat " + path_, errno);
    return true;
  }
  auto dir = Dir(ParentPath(path));
  if (!dir.ok()) {
    if (dir.status().code() == Code::kNotFound || dir.status().code() == Code::kFailedPrecondition)
      return false;
    return dir.status();
  }
  std::string name(BaseName(path));
  if (::fstatat(*dir, name.c_str(), st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoError("stat " + DisplayPath(path), errno);
  }
  return true;
}

Status Tree::RemoveTree(int dirfd, const std::string& name, std::string_view what) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoError(fmt::format("stat {}", what), errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT)
      return ErrnoError(fmt::format("remove {}", what), errno);
    return Status::Ok();
  }
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoError(fmt::format("open {}", what), errno);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return ErrnoError(fmt::format("opendir {}", what), errno);
  }
  std::vector<std::string> names;
  while (dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  Status s;
  for (const auto& n : names) {
    s = RemoveTree(::dirfd(d), n, fmt::format("{}/{}", what, n));
    if (!s.ok()) break;
  }
  ::closedir(d);
  KILN_RETURN_IF_ERROR(s);
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return ErrnoError(fmt::format("remove directory {}", what), errno);
  return Status::Ok();
}

Result<Entry> Tree::ReadEntry(int dirfd, const std::string& name, std::string_view path) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return ErrnoError("stat " + DisplayPath(path), errno);
  Entry e;
  e.path = std::string(path);
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime_sec = st.st_mtim.tv_sec;
  e.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR: e.type = EntryType::kDir; break;
    case S_IFREG: e.type = EntryType::kFile; break;
    case S_IFLNK: {
      e.type = EntryType::kSymlink;
      std::string t(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(dirfd, name.c_str(), t.data(), t.size());
      if (n < 0) return ErrnoError("readlink " + DisplayPath(path), errno);
      t.resize(static_cast<size_t>(n));
      e.target = t;
      break;
    }
    case S_IFCHR:
    case S_IFBLK:
      e.type = S_ISCHR(st.st_mode) ? EntryType::kCharDev : EntryType::kBlockDev;
      e.dev_major = ::major(st.st_rdev);
      e.dev_minor = ::minor(st.st_rdev);
      break;
    case S_IFIFO: e.type = EntryType::kFifo; break;
    default: e.type = EntryType::kSocket; break;
  }
  std::string proc = ProcPath(dirfd, name);
  std::string names(4096, '\0');
  ssize_t n = ::llistxattr(proc.c_str(), names.data(), names.size());
  if (n > 0) {
    names.resize(static_cast<size_t>(n));
    for (size_t pos = 0; pos < names.size();) {
      std::string xn(names.c_str() + pos);
      pos += xn.size() + 1;
      std::string v(65536, '\0');
      ssize_t vn = ::lgetxattr(proc.c_str(), xn.c_str(), v.data(), v.size());
      if (vn < 0) continue;
      v.resize(static_cast<size_t>(vn));
      e.xattrs.push_back({xn, v});
    }
    std::sort(e.xattrs.begin(), e.xattrs.end(),
              [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  }
  return e;
}

Status Tree::SetAttributes(int dirfd, const std::string& name, int fd, const Entry& e,
                           bool set_owner, std::string_view what) {
  auto fail = [&](std::string_view op, int err) {
    return ErrnoError(fmt::format("{} {}", op, DisplayPath(what)), err);
  };
  bool symlink = e.type == EntryType::kSymlink;
  // Owner first: chown clears setuid/setgid bits and file capabilities.
  if (set_owner) {
    int rc = fd >= 0 ? ::fchown(fd, e.uid, e.gid)
                     : ::fchownat(dirfd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return fail("chown", errno);
  }
  if (!symlink) {
    int rc = fd >= 0 ? ::fchmod(fd, e.mode) : ::fchmodat(dirfd, name.c_str(), e.mode, 0);
    if (rc != 0) return fail("chmod", errno);
  }
  // xattrs: exactly the entry's set (a parent's default ACL may have added
  // one to a new node; an old node may carry stale ones).
  std::string proc = fd >= 0 ? std::string() : ProcPath(dirfd, name);
  std::string names(4096, '\0');
  ssize_t n = fd >= 0 ? ::flistxattr(fd, names.data(), names.size())
                      : ::llistxattr(proc.c_str(), names.data(), names.size());
  if (n > 0) {
    names.resize(static_cast<size_t>(n));
    for (size_t pos = 0; pos < names.size();) {
      std::string xn(names.c_str() + pos);
      pos += xn.size() + 1;
      bool keep = std::any_of(e.xattrs.begin(), e.xattrs.end(),
                              [&](const Xattr& x) { return x.name == xn; });
      if (keep) continue;
      int rc = fd >= 0 ? ::fremovexattr(fd, xn.c_str()) : ::lremovexattr(proc.c_str(), xn.c_str());
      if (rc != 0 && errno != ENODATA) return fail("removexattr " + xn + " on", errno);
    }
  }
  for (const auto& x : e.xattrs) {
    int rc = fd >= 0 ? ::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0)
                     : ::lsetxattr(proc.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0);
    if (rc != 0) return fail("setxattr " + x.name + " on", errno);
  }
  timespec ts[2] = {{e.mtime_sec, static_cast<long>(e.mtime_nsec)},
                    {e.mtime_sec, static_cast<long>(e.mtime_nsec)}};
  int rc = fd >= 0 ? ::futimens(fd, ts) : ::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return fail("set times on", errno);
  return Status::Ok();
}

}  // namespace kiln::imager
