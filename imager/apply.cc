#include "imager/apply.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/file_util.h"
#include "imager/codec.h"
#include "imager/path_util.h"
#include "imager/scan.h"

namespace kiln::imager {
namespace {

constexpr std::string_view kUndoMagic = "KILNUNDO\n";

std::string What(std::string_view path) {
  return DisplayPath(path);
}

Status EntryError(std::string_view path, std::string_view msg) {
  return FailedPrecondition(fmt::format("entry {}: {}", What(path), msg));
}

mode_t NodeType(EntryType t) {
  switch (t) {
    case EntryType::kCharDev: return S_IFCHR;
    case EntryType::kBlockDev: return S_IFBLK;
    case EntryType::kFifo: return S_IFIFO;
    case EntryType::kSocket: return S_IFSOCK;
    default: return 0;
  }
}

// Copies len bytes at offset of `from` to the end of `to`, in the kernel
// when it can. On a filesystem that shares blocks between files (XFS with
// reflink, btrfs), copy_file_range shares a range's whole blocks instead
// of copying them, but only between block-aligned positions in both files:
// when the old and the new position differ by whole blocks (data kept in
// place around an overwrite, not shifted by an insertion), the head up to
// the next block boundary is copied on its own, so that the rest is shared.
// `to` is at position out (its end); block is its filesystem's block size.
Status CopyRange(int from, uint64_t offset, uint64_t len, int to, uint64_t out, uint64_t block,
                 std::string_view what) {
  loff_t in = static_cast<loff_t>(offset);
  uint64_t head = 0;
  if (block > 0 && offset % block != 0 && offset % block == out % block)
    head = std::min(len, block - offset % block);
  while (len > 0) {
    ssize_t n = ::copy_file_range(from, &in, to, nullptr, head > 0 ? head : len, 0);
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
      break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(fmt::format("copy from the existing {}", what), errno);
    }
    if (n == 0)
      return IoError(fmt::format("the existing {} is shorter than the base version", what));
    len -= static_cast<uint64_t>(n);
    head -= std::min(head, static_cast<uint64_t>(n));
  }
  std::string buf(std::min<uint64_t>(len, 1 << 20), '\0');
  while (len > 0) {
    ssize_t n = ::pread(from, buf.data(), std::min<uint64_t>(len, buf.size()), in);
    if (n <= 0) return IoError(fmt::format("read the existing {}", what));
    KILN_RETURN_IF_ERROR(WriteAll(to, std::string_view(buf.data(), static_cast<size_t>(n)), what));
    in += n;
    len -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

void EncodeUndoEntry(ByteWriter& w, const Entry& e) {
  EncodeEntryHeader(w, e);
  EncodeEntryTail(w, e);
}

bool DecodeUndoEntry(ByteReader& r, Entry* e) {
  uint8_t type;
  uint64_t mode, uid, gid, nsec, nx;
  if (!r.Bytes(kMaxPathLen, &e->path) || !r.U8(&type) || type < 1 || type > 8 ||
      !r.Bounded(07777, &mode) || !r.Bounded(UINT32_MAX, &uid) || !r.Bounded(UINT32_MAX, &gid) ||
      !r.Svarint(&e->mtime_sec) || !r.Bounded(999'999'999, &nsec))
    return false;
  e->type = static_cast<EntryType>(type);
  e->mode = static_cast<uint32_t>(mode);
  e->uid = static_cast<uint32_t>(uid);
  e->gid = static_cast<uint32_t>(gid);
  e->mtime_nsec = static_cast<uint32_t>(nsec);
  if (e->type == EntryType::kSymlink || e->type == EntryType::kHardlink) {
    if (!r.Bytes(kMaxPathLen, &e->target)) return false;
  } else if (e->type == EntryType::kCharDev || e->type == EntryType::kBlockDev) {
    uint64_t ma, mi;
    if (!r.Bounded(UINT32_MAX, &ma) || !r.Bounded(UINT32_MAX, &mi)) return false;
    e->dev_major = static_cast<uint32_t>(ma);
    e->dev_minor = static_cast<uint32_t>(mi);
  }
  if (!r.Bounded(1024, &nx)) return false;
  e->xattrs.resize(nx);
  for (auto& x : e->xattrs)
    if (!r.Bytes(kMaxNameLen, &x.name) || !r.Bytes(64 * 1024, &x.value)) return false;
  return ValidateEntryPath(e->path).ok();
}

}  // namespace

// The undo journal: for every path the apply touches, its state before the
// first touch. Saved content lives in data/<n>: a hard link to a replaced
// file's inode, or a removed directory tree moved there whole.
struct Applier::Undo {
  std::string dir;
  UniqueFd data;
  std::unordered_set<std::string> journaled;
  ByteWriter journal;
  uint64_t next = 1;
  bool written = false;

  Status Write() {
    std::string bytes(kUndoMagic);
    bytes += journal.str();
    written = true;
    return WriteFileAtomic(dir + "/journal", bytes, 0600);
  }
};

Result<std::unique_ptr<Applier>> Applier::Open(const std::string& root, ApplyOptions opts) {
  KILN_ASSIGN_OR_RETURN(Tree tree, Tree::Open(root, true));
  std::unique_ptr<Applier> a(new Applier(std::move(tree), std::move(opts)));
  if (!a->opts_.undo_dir.empty()) {
    // The root as it was, before the undo directory (often inside it)
    // changes its mtime.
    KILN_ASSIGN_OR_RETURN(Entry root_before, a->tree_.ReadEntry(a->tree_.root_fd(), ".", ""));
    a->touched_[""] = timespec{root_before.mtime_sec, static_cast<long>(root_before.mtime_nsec)};
    auto u = std::make_unique<Undo>();
    u->dir = a->opts_.undo_dir;
    KILN_RETURN_IF_ERROR(RemoveAll(u->dir));
    KILN_RETURN_IF_ERROR(MakeDirs(u->dir + "/data", 0700));
    u->data.Reset(::open((u->dir + "/data").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!u->data.valid()) return ErrnoError("open " + u->dir + "/data", errno);
    struct stat a_st {
    }, b_st{};
    ::fstat(a->tree_.root_fd(), &a_st);
    ::fstat(u->data.get(), &b_st);
    if (a_st.st_dev != b_st.st_dev)
      return InvalidArgument(
          fmt::format("the undo directory {} must be on the same filesystem as {}", u->dir, root));
    a->undo_ = std::move(u);
    a->undo_->journal.U8(1);
    a->undo_->journal.Varint(0);
    EncodeUndoEntry(a->undo_->journal, root_before);
    a->undo_->journaled.insert("");
  }
  return a;
}

Applier::Applier(Tree tree, ApplyOptions opts) : tree_(std::move(tree)), opts_(std::move(opts)) {}

Applier::~Applier() {
  Abort();
}

void Applier::Abort() {
  if (cur_.active) {
    ::unlinkat(cur_.dir.get(), cur_.tmp.c_str(), 0);
    cur_.active = false;
  }
  if (undo_ && !undo_->written) {
    Status s = undo_->Write();
    (void)s;  // best effort on the failure path; the apply's own error is what matters
  }
}

void Applier::Progress() {
  if (!opts_.progress) return;
  uint64_t b = stats_.bytes_written + stats_.bytes_copied;
  if (stats_.entries - last_progress_ < 64 && b == 0) return;
  last_progress_ = stats_.entries;
  opts_.progress({stats_.entries, b});
}

Status Applier::OnHeader(const StreamHeader& h) {
  header_ = h;
  return Status::Ok();
}

Status Applier::Journal(int dirfd, const std::string& name, const std::string& path,
                        bool save_data) {
  if (!undo_ || undo_->journaled.count(path)) return Status::Ok();
  struct stat st {};
  bool existed = ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  uint64_t data = 0;
  Entry old;
  if (existed) {
    KILN_ASSIGN_OR_RETURN(old, tree_.ReadEntry(dirfd, name, path));
    if (save_data && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
      data = undo_->next++;
      std::string dn = std::to_string(data);
      // A file's inode is kept by a second link; a directory tree is moved
      // here whole (the caller is about to remove it).
      int rc = S_ISDIR(st.st_mode)
                   ? ::renameat(dirfd, name.c_str(), undo_->data.get(), dn.c_str())
                   : ::linkat(dirfd, name.c_str(), undo_->data.get(), dn.c_str(), 0);
      if (rc != 0) return ErrnoError("save " + What(path) + " for undo", errno);
      if (S_ISDIR(st.st_mode)) tree_.Forget(path);
    }
  } else {
    old.path = path;
  }
  undo_->journal.U8(existed ? 1 : 0);
  undo_->journal.Varint(data);
  EncodeUndoEntry(undo_->journal, old);
  undo_->journaled.insert(path);
  return Status::Ok();
}

Status Applier::JournalParent(const std::string& path) {
  if (!undo_ || path.empty()) return Status::Ok();
  std::string parent(ParentPath(path));
  if (undo_->journaled.count(parent)) return Status::Ok();
  if (parent.empty()) {
    // The root: journal it through its own parent-less form.
    undo_->journal.U8(1);
    undo_->journal.Varint(0);
    KILN_ASSIGN_OR_RETURN(Entry root, tree_.ReadEntry(tree_.root_fd(), ".", ""));
    EncodeUndoEntry(undo_->journal, root);
    undo_->journaled.insert("");
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(int gp, tree_.Dir(ParentPath(parent)));
  return Journal(gp, std::string(BaseName(parent)), parent, false);
}

Status Applier::BeforeChange(const std::string& path) {
  KILN_RETURN_IF_ERROR(JournalParent(path));
  std::string parent(ParentPath(path));
  if (touched_.count(parent)) return Status::Ok();
  struct stat st {};
  KILN_ASSIGN_OR_RETURN(bool exists, tree_.Stat(parent, &st));
  if (exists) touched_[parent] = st.st_mtim;
  return Status::Ok();
}

Status Applier::OnEntry(const StreamEntry& se) {
  const Entry& e = se.entry;
  ++stats_.entries;
  entries_done_.store(stats_.entries, std::memory_order_relaxed);
  if (header_.kind == StreamKind::kFull && opts_.prune) seen_.insert(e.path);
  if (Kept(e.path)) {
    ++stats_.kept;
    if (e.type == EntryType::kFile && !se.meta_only)
      skip_chunks_ =
          static_cast<size_t>(std::count_if(se.pieces.begin(), se.pieces.end(), [](const Piece& p) {
            return p.kind == Piece::Kind::kChunk;
          }));
    return Status::Ok();
  }
  if (undo_ && IsUnder(tree_.root() + "/" + e.path, undo_->dir) && !e.path.empty())
    return EntryError(e.path, "collides with the undo directory " + undo_->dir);
  if ((e.type == EntryType::kCharDev || e.type == EntryType::kBlockDev) && !opts_.allow_devices)
    return EntryError(e.path, "device nodes are not allowed here");

  if (e.type == EntryType::kDir || se.meta_only) {
    if (e.type != EntryType::kDir) {
      ++stats_.meta_only;
      return ApplyMeta(e);
    }
    if (!e.path.empty()) {
      KILN_ASSIGN_OR_RETURN(int dirfd, tree_.Dir(ParentPath(e.path)));
      std::string name(BaseName(e.path));
      struct stat st {};
      bool exists = ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
      if (exists && !S_ISDIR(st.st_mode)) {
        KILN_RETURN_IF_ERROR(BeforeChange(e.path));
        KILN_RETURN_IF_ERROR(Journal(dirfd, name, e.path, true));
        if (::unlinkat(dirfd, name.c_str(), 0) != 0)
          return ErrnoError("remove " + What(e.path), errno);
        exists = false;
      }
      if (!exists) {
        KILN_RETURN_IF_ERROR(BeforeChange(e.path));
        KILN_RETURN_IF_ERROR(Journal(dirfd, name, e.path, false));
        // Owner-only until its attributes are set at the end, so nothing
        // can slip into a directory meant to be closed.
        if (::mkdirat(dirfd, name.c_str(), 0700) != 0)
          return ErrnoError("mkdir " + What(e.path), errno);
      } else {
        KILN_RETURN_IF_ERROR(Journal(dirfd, name, e.path, false));
      }
    } else if (undo_ && !undo_->journaled.count("")) {
      undo_->journal.U8(1);
      undo_->journal.Varint(0);
      KILN_ASSIGN_OR_RETURN(Entry root, tree_.ReadEntry(tree_.root_fd(), ".", ""));
      EncodeUndoEntry(undo_->journal, root);
      undo_->journaled.insert("");
    }
    if (se.meta_only) ++stats_.meta_only;
    dirs_.push_back(e);
    Progress();
    return Status::Ok();
  }
  // Before the temporary file appears in the directory.
  KILN_RETURN_IF_ERROR(BeforeChange(e.path));
  KILN_ASSIGN_OR_RETURN(int dirfd, tree_.Dir(ParentPath(e.path)));
  return MakeNode(se, dirfd, std::string(BaseName(e.path)));
}

Status Applier::MakeNode(const StreamEntry& se, int dirfd, const std::string& name) {
  const Entry& e = se.entry;
  std::string tmp;
  // Temporary names can collide with what is already there: try the next.
  for (int attempt = 0;; ++attempt) {
    tmp = tree_.TempName();
    int rc = 0;
    switch (e.type) {
      case EntryType::kFile: {
        int fd = ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          0600);
        if (fd >= 0) {
          cur_ = Current{};
          cur_.fd.Reset(fd);
        }
        rc = fd >= 0 ? 0 : -1;
        break;
      }
      case EntryType::kSymlink: rc = ::symlinkat(e.target.c_str(), dirfd, tmp.c_str()); break;
      case EntryType::kHardlink: {
        auto tdir = tree_.Dir(ParentPath(e.target));
        if (!tdir.ok()) return EntryError(e.path, "hard link target: " + tdir.status().message());
        std::string tname(BaseName(e.target));
        struct stat st {};
        if (::fstatat(*tdir, tname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
          return EntryError(e.path, "hard link target " + What(e.target) + " does not exist");
        if (S_ISDIR(st.st_mode))
          return EntryError(e.path, "hard link target " + What(e.target) + " is a directory");
        // Dir() for the target may have evicted dirfd: look it up again.
        UniqueFd t(::dup(*tdir));
        KILN_ASSIGN_OR_RETURN(dirfd, tree_.Dir(ParentPath(e.path)));
        rc = ::linkat(t.get(), tname.c_str(), dirfd, tmp.c_str(), 0);
        break;
      }
      case EntryType::kCharDev:
      case EntryType::kBlockDev:
      case EntryType::kFifo:
      case EntryType::kSocket:
        rc = ::mknodat(dirfd, tmp.c_str(), NodeType(e.type) | 0600,
                       ::makedev(e.dev_major, e.dev_minor));
        break;
      default: return EntryError(e.path, "unexpected type");
    }
    if (rc == 0) break;
    if (errno != EEXIST || attempt > 100) return ErrnoError("create " + What(e.path), errno);
  }
  if (e.type == EntryType::kFile) {
    cur_.active = true;
    cur_.se = se;
    cur_.name = name;
    cur_.tmp = tmp;
    cur_.dir.Reset(::dup(dirfd));
    if (se.has_base) {
      cur_.base.Reset(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      struct stat st {};
      if (!cur_.base.valid() || ::fstat(cur_.base.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
          static_cast<uint64_t>(st.st_size) != se.base_size ||
          st.st_mtim.tv_sec != se.base_mtime_sec || st.st_mtim.tv_nsec != se.base_mtime_nsec)
        return EntryError(e.path,
                          "the file in the target is not the base version (its size or mtime "
                          "differ); deploy without --from to rewrite the tree");
    }
    // Reserved whole even when ranges will be shared (XFS gives the space
    // back): on ext4, deltas of a 1 GiB file in four alternating pairs took
    // 0.74, 0.72, 0.87 and 2.79 s with the reservation, 1.33, 1.42, 3.26
    // and 3.17 s without (copied into delayed allocation).
    if (e.size > 0) ::posix_fallocate(cur_.fd.get(), 0, static_cast<off_t>(e.size));
    // Ranges of the old version are copied with the target's block size in
    // mind (CopyRange).
    cur_.block = 0;
    struct statfs fs {};
    if (se.has_base && ::fstatfs(cur_.fd.get(), &fs) == 0 && fs.f_bsize > 0)
      cur_.block = static_cast<uint64_t>(fs.f_bsize);
    // A large file written whole from the stream bypasses the page cache
    // (direct_writer.h); one that reuses ranges of its old version does not.
    // On ext4, which cannot share blocks, direct writes were tried for those
    // too (reading the old ranges straight into the aligned buffer): a 1 GiB
    // file's delta took 1.4-2.5 s, bound by the disk's 1 GB/s, against
    // 1.0-3.6 s through the page cache in the same alternating runs (its
    // cost is how fresh the memory it is given is), and 0.6 s at best.
    if (opts_.direct_io && !se.has_base && e.size >= DirectWriter::kMinFileSize) {
      cur_.direct = std::make_unique<DirectWriter>(cur_.fd.get(), What(e.path));
      if (!cur_.direct->direct()) cur_.direct.reset();  // refused: plain writes
    }
    return ContinueFile();
  }
  return Place(e, dirfd, name, tmp);
}

// Copies ranges until the next chunk is needed; finishes the file at the end.
Status Applier::ContinueFile() {
  const auto& pieces = cur_.se.pieces;
  while (cur_.piece < pieces.size() && pieces[cur_.piece].kind == Piece::Kind::kCopy) {
    const Piece& p = pieces[cur_.piece];
    KILN_RETURN_IF_ERROR(CopyRange(cur_.base.get(), p.offset, p.size, cur_.fd.get(), cur_.written,
                                   cur_.block, What(cur_.se.entry.path)));
    cur_.written += p.size;
    stats_.bytes_copied += p.size;
    ++cur_.piece;
  }
  if (cur_.piece == pieces.size()) return FinishFile();
  return Status::Ok();
}

Status Applier::OnChunk(const Sha256Digest&, std::string_view data) {
  if (skip_chunks_ > 0) {  // content of a kept file: verified by the reader, not written
    --skip_chunks_;
    return Status::Ok();
  }
  if (!cur_.active) return Internal("object outside a file");
  if (cur_.direct)
    KILN_RETURN_IF_ERROR(cur_.direct->Write(data));
  else
    KILN_RETURN_IF_ERROR(WriteAll(cur_.fd.get(), data, What(cur_.se.entry.path)));
  cur_.written += data.size();
  stats_.bytes_written += data.size();
  ++cur_.piece;
  Progress();
  return ContinueFile();
}

Status Applier::FinishFile() {
  const Entry& e = cur_.se.entry;
  if (cur_.written != e.size) return Internal("file size mismatch for " + What(e.path));
  if (cur_.direct) {
    KILN_RETURN_IF_ERROR(cur_.direct->Finish());
    stats_.bytes_direct += cur_.direct->direct_bytes();
    cur_.direct.reset();
  }
  // posix_fallocate may have reserved nothing more than the size; nothing to trim.
  KILN_RETURN_IF_ERROR(
      tree_.SetAttributes(cur_.dir.get(), cur_.tmp, cur_.fd.get(), e, opts_.set_owner, e.path));
  cur_.fd.Reset();
  cur_.base.Reset();
  ++stats_.files;
  Status s = Place(e, cur_.dir.get(), cur_.name, cur_.tmp);
  cur_.active = false;
  return s;
}

// Gives the node at tmp its attributes (not for files: done on the open fd)
// and renames it over name.
Status Applier::Place(const Entry& e, int dirfd, const std::string& name, const std::string& tmp) {
  auto cleanup = [&](Status s) {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return s;
  };
  if (e.type != EntryType::kFile && e.type != EntryType::kHardlink) {
    Status s = tree_.SetAttributes(dirfd, tmp, -1, e, opts_.set_owner, e.path);
    if (!s.ok()) return cleanup(s);
  }
  Status s;
  struct stat st {};
  bool existed = ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (existed) {
    // Journal (and keep) what is there before it goes.
    s = Journal(dirfd, name, e.path, true);
    if (!s.ok()) return cleanup(s);
    if (S_ISDIR(st.st_mode) && ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      // A directory where the image has something else: remove it first.
      s = tree_.RemoveTree(dirfd, name, What(e.path));
      tree_.Forget(e.path);
      if (!s.ok()) return cleanup(s);
    }
  } else {
    s = Journal(dirfd, name, e.path, false);
    if (!s.ok()) return cleanup(s);
  }
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0)
    return cleanup(ErrnoError("rename into place " + What(e.path), errno));
  // rename(2) does nothing when both names are links to one inode (only
  // possible when the name existed: otherwise tmp is gone).
  if (existed) ::unlinkat(dirfd, tmp.c_str(), 0);
  Progress();
  return Status::Ok();
}

Status Applier::ApplyMeta(const Entry& e) {
  KILN_ASSIGN_OR_RETURN(int dirfd, tree_.Dir(ParentPath(e.path)));
  std::string name(BaseName(e.path));
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return EntryError(e.path,
                      "is missing from the target; deploy without --from to rewrite the tree");
  KILN_RETURN_IF_ERROR(Journal(dirfd, name, e.path, false));
  return tree_.SetAttributes(dirfd, name, -1, e, opts_.set_owner, e.path);
}

Status Applier::OnDelete(const std::string& path) {
  deletes_.push_back(path);
  return Status::Ok();
}

bool Applier::Kept(const std::string& path) const {
  if (opts_.keep.empty() || path.empty()) return false;
  // The path or any directory above it.
  for (size_t end = path.size(); end != std::string::npos && end > 0;
       end = path.rfind('/', end - 1)) {
    if (IsExcluded(opts_.keep, std::string_view(path).substr(0, end))) return true;
  }
  return false;
}

Status Applier::Delete(const std::string& path, bool pruning) {
  if (Kept(path)) {
    ++stats_.kept;
    return Status::Ok();
  }
  auto dirfd = tree_.Dir(ParentPath(path));
  if (!dirfd.ok()) {
    // Already gone with its parent (a removed or replaced directory).
    if (dirfd.status().code() == Code::kNotFound) return Status::Ok();
    return dirfd.status();
  }
  std::string name(BaseName(path));
  struct stat st {};
  if (::fstatat(*dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Status::Ok();
  KILN_RETURN_IF_ERROR(BeforeChange(path));
  KILN_RETURN_IF_ERROR(Journal(*dirfd, name, path, true));
  KILN_ASSIGN_OR_RETURN(int again, tree_.Dir(ParentPath(path)));
  KILN_RETURN_IF_ERROR(tree_.RemoveTree(again, name, What(path)));
  tree_.Forget(path);
  ++(pruning ? stats_.pruned : stats_.deleted);
  return Status::Ok();
}

Status Applier::PruneDir(const std::string& dir, dev_t root_dev) {
  KILN_ASSIGN_OR_RETURN(int fd, tree_.Dir(dir));
  int dup = ::dup(fd);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return ErrnoError("opendir " + What(dir), errno);
  }
  ::rewinddir(d);
  std::vector<std::pair<std::string, bool>> children;
  while (dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n == "." || n == "..") continue;
    bool is_dir = de->d_type == DT_DIR;
    if (de->d_type == DT_UNKNOWN) {  // some filesystems do not say
      struct stat st {};
      is_dir =
          ::fstatat(::dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    children.emplace_back(n, is_dir);
  }
  ::closedir(d);
  std::sort(children.begin(), children.end());
  for (const auto& [n, is_dir] : children) {
    std::string p = dir.empty() ? n : dir + "/" + n;
    if (undo_ && tree_.root() + "/" + p == undo_->dir) continue;
    if (is_dir) {
      // Another filesystem mounted under the target is not the image's to
      // remove or to look into (the installer's ESP at /boot/efi).
      struct stat st {};
      if (::fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev != root_dev)
        continue;
    }
    if (!seen_.count(p)) {
      KILN_RETURN_IF_ERROR(Delete(p, true));
    } else if (is_dir) {
      KILN_RETURN_IF_ERROR(PruneDir(p, root_dev));
    }
  }
  return Status::Ok();
}

Status Applier::Prune() {
  KILN_ASSIGN_OR_RETURN(int fd, tree_.Dir(""));
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("stat " + What(""), errno);
  return PruneDir("", st.st_dev);
}

Status Applier::OnEnd(const StreamCounts&) {
  for (const auto& p : deletes_) KILN_RETURN_IF_ERROR(Delete(p, false));
  if (header_.kind == StreamKind::kFull && opts_.prune) KILN_RETURN_IF_ERROR(Prune());
  // Directories the stream changed inside but whose own attributes it does
  // not set keep the mtime they had.
  std::unordered_set<std::string> set_by_stream;
  for (const auto& e : dirs_) set_by_stream.insert(e.path);
  for (const auto& [path, mtime] : touched_) {
    if (set_by_stream.count(path)) continue;
    int dirfd = tree_.root_fd();
    std::string name = ".";
    if (!path.empty()) {
      auto d = tree_.Dir(ParentPath(path));
      if (!d.ok()) continue;  // removed since
      dirfd = *d;
      name = std::string(BaseName(path));
    }
    timespec ts[2] = {mtime, mtime};
    if (::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT)
      return ErrnoError("set times on " + What(path), errno);
  }
  // Directory attributes last, deepest first: adding and removing children
  // changed their mtimes.
  std::sort(dirs_.begin(), dirs_.end(),
            [](const Entry& a, const Entry& b) { return a.path > b.path; });
  for (const auto& e : dirs_) {
    if (e.path.empty()) {
      KILN_RETURN_IF_ERROR(
          tree_.SetAttributes(tree_.root_fd(), ".", -1, e, opts_.set_owner, e.path));
      continue;
    }
    KILN_ASSIGN_OR_RETURN(int dirfd, tree_.Dir(ParentPath(e.path)));
    KILN_RETURN_IF_ERROR(
        tree_.SetAttributes(dirfd, std::string(BaseName(e.path)), -1, e, opts_.set_owner, e.path));
  }
  auto sync_start = std::chrono::steady_clock::now();
  if (opts_.sync && ::syncfs(tree_.root_fd()) != 0)
    return ErrnoError("syncfs " + tree_.root(), errno);
  if (undo_) KILN_RETURN_IF_ERROR(undo_->Write());
  stats_.sync_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sync_start)
          .count();
  if (opts_.progress) opts_.progress({stats_.entries, stats_.bytes_written + stats_.bytes_copied});
  return Status::Ok();
}

// ---- undo ----

Status RestoreUndo(const std::string& root, const std::string& undo_dir, bool set_owner) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFile(undo_dir + "/journal"));
  if (bytes.substr(0, kUndoMagic.size()) != kUndoMagic)
    return Corruption(undo_dir + "/journal: not an undo journal");
  struct Rec {
    bool existed;
    uint64_t data;
    Entry e;
  };
  std::vector<Rec> recs;
  ByteReader r(std::string_view(bytes).substr(kUndoMagic.size()));
  while (!r.done()) {
    Rec rec;
    uint8_t ex;
    if (!r.U8(&ex) || !r.Varint(&rec.data) || !DecodeUndoEntry(r, &rec.e))
      return Corruption(fmt::format("{}/journal: damaged at byte {}", undo_dir, r.pos()));
    rec.existed = ex != 0;
    recs.push_back(std::move(rec));
  }
  KILN_ASSIGN_OR_RETURN(Tree tree, Tree::Open(root, false));
  UniqueFd data(::open((undo_dir + "/data").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!data.valid()) return ErrnoError("open " + undo_dir + "/data", errno);

  // 1. Remove what did not exist, deepest first.
  std::vector<const Rec*> order;
  for (const auto& rec : recs) order.push_back(&rec);
  std::sort(order.begin(), order.end(),
            [](const Rec* a, const Rec* b) { return a->e.path > b->e.path; });
  for (const Rec* rec : order) {
    if (rec->existed || rec->e.path.empty()) continue;
    auto dirfd = tree.Dir(ParentPath(rec->e.path));
    if (!dirfd.ok()) continue;
    KILN_RETURN_IF_ERROR(
        tree.RemoveTree(*dirfd, std::string(BaseName(rec->e.path)), What(rec->e.path)));
    tree.Forget(rec->e.path);
  }
  // 2. Put back what existed, parents first.
  std::sort(order.begin(), order.end(),
            [](const Rec* a, const Rec* b) { return a->e.path < b->e.path; });
  for (const Rec* rec : order) {
    if (!rec->existed || rec->e.path.empty()) continue;
    const Entry& e = rec->e;
    KILN_ASSIGN_OR_RETURN(int dirfd, tree.Dir(ParentPath(e.path)));
    std::string name(BaseName(e.path));
    struct stat st {};
    bool present = ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    std::string dn = std::to_string(rec->data);
    if (e.type == EntryType::kDir) {
      if (rec->data) {
        if (present) KILN_RETURN_IF_ERROR(tree.RemoveTree(dirfd, name, What(e.path)));
        if (::renameat(data.get(), dn.c_str(), dirfd, name.c_str()) != 0)
          return ErrnoError("restore " + What(e.path), errno);
        tree.Forget(e.path);
      } else if (present && !S_ISDIR(st.st_mode)) {
        KILN_RETURN_IF_ERROR(tree.RemoveTree(dirfd, name, What(e.path)));
        if (::mkdirat(dirfd, name.c_str(), 0700) != 0)
          return ErrnoError("mkdir " + What(e.path), errno);
      } else if (!present) {
        if (::mkdirat(dirfd, name.c_str(), 0700) != 0)
          return ErrnoError("mkdir " + What(e.path), errno);
      }
      continue;
    }
    std::string tmp = tree.TempName();
    int rc;
    if (rec->data) {
      rc = ::linkat(data.get(), dn.c_str(), dirfd, tmp.c_str(), 0);
    } else if (e.type == EntryType::kFile) {
      continue;  // unchanged inode; attributes below
    } else if (e.type == EntryType::kSymlink) {
      rc = ::symlinkat(e.target.c_str(), dirfd, tmp.c_str());
    } else {
      rc = ::mknodat(dirfd, tmp.c_str(), NodeType(e.type) | 0600,
                     ::makedev(e.dev_major, e.dev_minor));
    }
    if (rc != 0) return ErrnoError("restore " + What(e.path), errno);
    if (present && S_ISDIR(st.st_mode)) {
      KILN_RETURN_IF_ERROR(tree.RemoveTree(dirfd, name, What(e.path)));
      tree.Forget(e.path);
    }
    if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0)
      return ErrnoError("restore " + What(e.path), errno);
    ::unlinkat(dirfd, tmp.c_str(), 0);
  }
  // 3. Attributes, deepest first so directory mtimes come out as they were.
  std::sort(order.begin(), order.end(),
            [](const Rec* a, const Rec* b) { return a->e.path > b->e.path; });
  for (const Rec* rec : order) {
    if (!rec->existed) continue;
    const Entry& e = rec->e;
    if (e.path.empty()) {
      KILN_RETURN_IF_ERROR(tree.SetAttributes(tree.root_fd(), ".", -1, e, set_owner, e.path));
      continue;
    }
    KILN_ASSIGN_OR_RETURN(int dirfd, tree.Dir(ParentPath(e.path)));
    KILN_RETURN_IF_ERROR(
        tree.SetAttributes(dirfd, std::string(BaseName(e.path)), -1, e, set_owner, e.path));
  }
  KILN_RETURN_IF_ERROR(RemoveAll(undo_dir));
  // Removing a snapshot kept inside the root changed the root's mtime.
  for (const auto& rec : recs)
    if (rec.existed && rec.e.path.empty())
      KILN_RETURN_IF_ERROR(tree.SetAttributes(tree.root_fd(), ".", -1, rec.e, set_owner, ""));
  return Status::Ok();
}

}  // namespace kiln::imager
