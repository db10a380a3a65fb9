#include "imager/scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/file_util.h"
#include "common/sha256_two.h"
#include "imager/chunker.h"
#include "imager/path_util.h"

namespace kiln::imager {
namespace {

constexpr size_t kReadBuffer = 8 * 1024 * 1024;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::vector<Xattr>> ReadXattrs(const std::string& path) {
  std::vector<Xattr> out;
  std::string names(1024, '\0');
  ssize_t n;
  for (;;) {
    n = ::llistxattr(path.c_str(), names.data(), names.size());
    if (n >= 0) break;
    if (errno == ENOTSUP) return out;
    if (errno != ERANGE) return ErrnoError("listxattr " + path, errno);
    names.resize(names.size() * 4);
  }
  names.resize(static_cast<size_t>(n));
  for (size_t pos = 0; pos < names.size();) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty()) continue;
    std::string value(256, '\0');
    ssize_t v;
    for (;;) {
      v = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (v >= 0) break;
      if (errno == ENODATA) break;
      if (errno != ERANGE) return ErrnoError(fmt::format("getxattr {} {}", path, name), errno);
      value.resize(value.size() * 4);
    }
    if (v < 0) continue;  // vanished between list and get
    value.resize(static_cast<size_t>(v));
    out.push_back({std::move(name), std::move(value)});
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

void ChunkInto(std::string_view data, bool final, std::vector<Chunk>* chunks, size_t* consumed,
               const ContentFn* on_content = nullptr) {
  size_t pos = 0;
  while (pos < data.size()) {
    size_t left = data.size() - pos;
    size_t n = NextChunkLength(reinterpret_cast<const uint8_t*>(data.data() + pos), left);
    if (n == left && left < kChunkMax && !final) break;  // need more bytes to find the cut
    chunks->push_back({Sha256Of(data.substr(pos, n)), n});
    if (on_content) (*on_content)(chunks->back().digest, data.substr(pos, n), nullptr);
    pos += n;
  }
  *consumed = pos;
}

struct InodeKey {
  uint64_t dev, ino;
  bool operator<(const InodeKey& o) const { return dev < o.dev || (dev == o.dev && ino < o.ino); }
};

class Scanner {
 public:
  Scanner(std::string root, const ScanOptions& opts)
      : root_(std::move(root)), opts_(opts), excludes_(opts.excludes) {}

  Result<ScanResult> Run() {
    start_ns_ = NowNs();
    struct stat st {};
    if (::lstat(root_.c_str(), &st) != 0) return ErrnoError("stat " + root_, errno);
    if (!S_ISDIR(st.st_mode)) return InvalidArgument(root_ + " is not a directory");
    root_dev_ = st.st_dev;
    Child root;
    KILN_RETURN_IF_ERROR(Prepare("", st, &root));
    KILN_RETURN_IF_ERROR(ListTree());
    Accept(std::move(root));
    KILN_RETURN_IF_ERROR(Walk(""));
    KILN_RETURN_IF_ERROR(HashAll());
    return Finish();
  }

 private:
  std::string Abs(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }

  // One entry as a listing thread prepared it: everything that needs no
  // order (its attributes, the stat cache's answer, xattrs and a symlink's
  // target when the cache has none) is done there, on every thread.
  struct Child {
    Entry e;
    StatKey key;
    bool hit = false;      // taken from the stat cache
    bool grouped = false;  // a non-directory with more than one link
    bool descend = false;  // a directory whose listing follows
    InodeKey inode{};
    size_t index = 0;  // where Accept put it in entries_
  };
  // A directory's children, and the order that puts the whole tree in path
  // order without a sort: each child's entry by its name, and each
  // subdirectory's contents as a block keyed "name/" (see KeyLess).
  struct Listing {
    std::vector<Child> children;
    std::vector<uint32_t> order;  // index * 2, +1 for a subdirectory's block
  };

  // Whether key a (name a, then '/' when a_block) sorts before key b. No
  // name holds a '/', so a block "x/" comes right after every sibling that
  // starts with x and a byte below '/' ("x-1", "x.conf"), as the paths
  // under x/ do in a sorted manifest.
  static bool KeyLess(std::string_view a, bool a_block, std::string_view b, bool b_block) {
    size_t n = std::min(a.size(), b.size());
    int c = std::memcmp(a.data(), b.data(), n);
    if (c != 0) return c < 0;
    if (a.size() == b.size()) return !a_block && b_block;
    // One is a proper prefix of the other: what follows it decides.
    if (a.size() < b.size()) return !a_block || '/' < static_cast<unsigned char>(b[n]);
    return b_block && static_cast<unsigned char>(a[n]) < '/';
  }

  // An open directory, kept open while its subdirectories wait to be opened
  // from it (a walk opens each directory from its parent: no path is looked
  // up from the root again, and none can lead through a symlink).
  struct OpenDir {
    DIR* d = nullptr;
    ~OpenDir() {
      if (d) ::closedir(d);
    }
  };
  struct DirItem {
    std::string rel;
    std::shared_ptr<OpenDir> parent;  // null for the root
  };

  // Reads one directory: its children (not excluded), each prepared, in
  // path order, and the subdirectories on this filesystem to read next.
  Status ReadDir(const DirItem& item, Listing* listing, std::vector<DirItem>* subdirs) {
    int at = item.parent ? ::dirfd(item.parent->d) : AT_FDCWD;
    // The name is rel's last component, NUL-terminated as rel is.
    const char* name = item.parent
                           ? item.rel.c_str() + (item.rel.size() - BaseName(item.rel).size())
                           : root_.c_str();
    UniqueFd fd(::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError("open directory " + Abs(item.rel), errno);
    auto self = std::make_shared<OpenDir>();
    self->d = ::fdopendir(fd.get());
    if (!self->d) return ErrnoError("opendir " + Abs(item.rel), errno);
    fd.Release();
    std::vector<Child>& children = listing->children;
    errno = 0;
    while (dirent* de = ::readdir(self->d)) {
      std::string_view n = de->d_name;
      if (n == "." || n == "..") continue;
      std::string rel = item.rel.empty() ? std::string(n) : item.rel + "/" + std::string(n);
      if (excludes_.Matches(rel)) continue;
      struct stat st {};
      if (::fstatat(::dirfd(self->d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // vanished while we looked
        return ErrnoError("stat " + Abs(rel), errno);
      }
      Child c;
      KILN_RETURN_IF_ERROR(Prepare(std::move(rel), st, &c));
      children.push_back(std::move(c));
    }
    // Children by name, then the order of their entries and blocks.
    auto name_of = [&](const Child& c) {
      return std::string_view(c.e.path).substr(item.rel.empty() ? 0 : item.rel.size() + 1);
    };
    std::sort(children.begin(), children.end(),
              [&](const Child& a, const Child& b) { return name_of(a) < name_of(b); });
    std::vector<uint32_t>& order = listing->order;
    for (uint32_t i = 0; i < children.size(); ++i) {
      order.push_back(i * 2);
      if (children[i].descend) {
        order.push_back(i * 2 + 1);
        subdirs->push_back({children[i].e.path, self});
      }
    }
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return KeyLess(name_of(children[a / 2]), a & 1, name_of(children[b / 2]), b & 1);
    });
    return Status::Ok();
  }

  // Lists every directory of the tree on opts_.threads threads: the
  // kernel's share of a scan (getdents, fstatat) is most of it, and one
  // directory does not wait for another. Directories are taken last in,
  // first out, so few stay open at once. The listing (a prepared entry per
  // child) lives until the walk below has taken it: about as much memory
  // as the manifest it becomes.
  Status ListTree() {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<DirItem> stack{{"", nullptr}};
    size_t active = 0;
    Status first_error;
    auto work = [&] {
      for (;;) {
        DirItem item;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !first_error.ok() || !stack.empty() || active == 0; });
          if (!first_error.ok() || stack.empty()) return;  // failed, or all read
          item = std::move(stack.back());
          stack.pop_back();
          ++active;
        }
        Listing listing;
        std::vector<DirItem> subdirs;
        Status s = ReadDir(item, &listing, &subdirs);
        item.parent.reset();
        std::lock_guard lock(mu);
        --active;
        if (!s.ok() && first_error.ok()) first_error = s;
        listing_[item.rel] = std::move(listing);
        // Reversed, so that the first subdirectory is taken first.
        for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it)
          stack.push_back(std::move(*it));
        cv.notify_all();
      }
    };
    std::vector<std::thread> threads;
    for (int t = 1; t < std::max(1, opts_.threads); ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    return first_error;
  }

  // Takes what ListTree prepared in path order: a directory's entries and
  // blocks as ReadDir ordered them. The manifest, the hard-link groups and
  // the stat cache come out the same however many threads listed.
  Status Walk(const std::string& dir_rel) {
    auto it = listing_.find(dir_rel);
    if (it == listing_.end()) return Status::Ok();
    Listing listing = std::move(it->second);
    listing_.erase(it);
    for (uint32_t o : listing.order) {
      Child& c = listing.children[o / 2];
      if (o & 1) {
        std::string rel = entries_[c.index].path;  // entries_ may grow meanwhile
        KILN_RETURN_IF_ERROR(Walk(rel));
      } else {
        Accept(std::move(c));
      }
    }
    return Status::Ok();
  }

  // The part of an entry's work that needs no order; safe on any thread
  // (the stat cache is only read while the tree is listed).
  Status Prepare(std::string rel, const struct stat& st, Child* c) {
    if (Status v = ValidateEntryPath(rel); !v.ok()) return v.WithContext(Abs(rel));
    Entry& e = c->e;
    e.path = std::move(rel);
    const std::string& path = e.path;
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime_sec = st.st_mtim.tv_sec;
    e.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
    std::string abs_path;  // made only when needed: most entries come from the cache
    auto abs = [&]() -> const std::string& {
      if (abs_path.empty()) abs_path = Abs(path);
      return abs_path;
    };
    // An inode whose stat fields are as the cache recorded them has the
    // xattrs, target and content it had then (any change sets its ctime).
    c->key = KeyOf(st);
    const StatCache::Item* hit = opts_.cache ? opts_.cache->Find(path, c->key) : nullptr;
    if (hit && S_ISREG(st.st_mode) && st.st_size > 0 && hit->chunks.empty()) hit = nullptr;
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR: e.type = EntryType::kDir; break;
      case S_IFREG: e.type = EntryType::kFile; break;
      case S_IFLNK: {
        e.type = EntryType::kSymlink;
        if (hit) {
          e.target = hit->target;
          break;
        }
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlink(abs().c_str(), target.data(), target.size());
        if (n < 0) return ErrnoError("readlink " + abs(), errno);
        target.resize(static_cast<size_t>(n));
        e.target = std::move(target);
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
        e.type = S_ISCHR(st.st_mode) ? EntryType::kCharDev : EntryType::kBlockDev;
        e.dev_major = ::major(st.st_rdev);
        e.dev_minor = ::minor(st.st_rdev);
        break;
      case S_IFIFO: e.type = EntryType::kFifo; break;
      case S_IFSOCK: e.type = EntryType::kSocket; break;
      default: return InvalidArgument(abs() + ": unknown file type");
    }
    if (hit) {
      e.xattrs = hit->xattrs;
    } else {
      KILN_ASSIGN_OR_RETURN(e.xattrs, ReadXattrs(abs()));
    }
    if (e.type == EntryType::kFile) {
      e.size = c->key.size;
      if (hit) e.chunks = hit->chunks;
    }
    c->hit = hit != nullptr;
    c->grouped = e.type != EntryType::kDir && st.st_nlink > 1;
    c->inode = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
    c->descend = S_ISDIR(st.st_mode) && !(opts_.one_file_system && st.st_dev != root_dev_);
    return Status::Ok();
  }

  // The part that needs the walk's order: the entry's place, its hard-link
  // group, the stat cache's new records and the files left to read.
  void Accept(Child&& c) {
    Entry& e = c.e;
    // Files are recorded with their content, after HashAll.
    if (!c.hit && opts_.cache && e.type != EntryType::kFile)
      opts_.cache->Record(e.path, {c.key, {}, e.xattrs, e.target}, start_ns_);
    c.index = entries_.size();
    if (c.grouped) {
      auto [it, inserted] = links_.try_emplace(c.inode, std::vector<size_t>{});
      it->second.push_back(c.index);
      if (!inserted) {
        // Content is the first-seen path's; Finish() picks the group's primary.
        entries_.push_back(std::move(e));
        return;
      }
    }
    if (e.type == EntryType::kFile) {
      ++result_.files;
      if (c.hit) {
        bytes_ += e.size;
        if (opts_.progress) opts_.progress(bytes_, result_.files);
      } else {
        ++result_.files_hashed;
        hash_.push_back({c.index, Abs(e.path), c.key});
      }
    }
    entries_.push_back(std::move(e));
  }

  static StatKey KeyOf(const struct stat& st) {
    return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
            static_cast<uint64_t>(st.st_size),
            st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
            st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
  }

  // Reads and hashes the queued files on opts_.threads threads, biggest
  // first so one large file does not finish last alone.
  Status HashAll() {
    std::sort(hash_.begin(), hash_.end(),
              [&](const Job& a, const Job& b) { return a.key.size > b.key.size; });
    std::atomic<size_t> next{0};
    std::mutex mu;
    Status first_error;
    int nthreads = std::max(1, opts_.threads);
    const ContentFn* on_content = opts_.on_content ? &opts_.on_content : nullptr;
    ChunkHasher hasher(nthreads, ChunkHasher::kDefaultMaxQueued, on_content);
    auto work = [&] {
      std::string buffer;
      for (;;) {
        size_t i = next.fetch_add(1);
        if (i >= hash_.size()) break;
        Job& job = hash_[i];
        Entry& e = entries_[job.index];
        Status s;
        if (e.size > 0) {
          UniqueFd fd(::open(job.abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME));
          if (!fd.valid() && errno == EPERM)
            fd.Reset(::open(job.abs.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
          if (!fd.valid()) {
            s = ErrnoError("open " + job.abs, errno);
          } else {
            ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
            s = HashContent(fd.get(), e.size, job.abs, &e.chunks, &buffer, &hasher, on_content);
          }
        }
        std::lock_guard lock(mu);
        if (!s.ok()) {
          if (first_error.ok()) first_error = s;
          next = hash_.size();  // stop the others
          break;
        }
        result_.bytes_hashed += e.size;
        bytes_ += e.size;
        if (opts_.progress) opts_.progress(bytes_, result_.files);
      }
      // Out of files: hash the chunks of the large files others are cutting.
      hasher.Help();
    };
    std::vector<std::thread> threads;
    for (int t = 1; t < nthreads; ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    KILN_RETURN_IF_ERROR(first_error);
    for (const auto& job : hash_)
      for (const auto& c : entries_[job.index].chunks) result_.read_objects.push_back(c.digest);
    if (opts_.cache)
      for (const auto& job : hash_) {
        const Entry& e = entries_[job.index];
        opts_.cache->Record(e.path, {job.key, e.chunks, e.xattrs, {}}, start_ns_);
      }
    return Status::Ok();
  }

  Result<ScanResult> Finish() {
    // Hard-link groups: the smallest path holds the inode's attributes and
    // content, the rest name it.
    for (auto& [key, idx] : links_) {
      if (idx.size() < 2) continue;
      size_t first = idx[0];  // the one that was read
      size_t primary = *std::min_element(idx.begin(), idx.end(), [&](size_t a, size_t b) {
        return entries_[a].path < entries_[b].path;
      });
      if (primary != first) {
        std::string p = entries_[primary].path;
        entries_[primary] = entries_[first];
        entries_[primary].path = std::move(p);
      }
      for (size_t i : idx) {
        if (i == primary) continue;
        Entry link;
        link.path = std::move(entries_[i].path);
        link.type = EntryType::kHardlink;
        link.target = entries_[primary].path;
        entries_[i] = std::move(link);
      }
    }
    // No sort: the walk's order is path order (ReadDir), and
    // ValidateManifest below refuses any other.
    result_.manifest.entries = std::move(entries_);
    KILN_RETURN_IF_ERROR(ValidateManifest(result_.manifest).WithContext("capture of " + root_));
    return std::move(result_);
  }

  std::string root_;
  const ScanOptions& opts_;
  ExcludeSet excludes_;
  std::unordered_map<std::string, Listing> listing_;  // by directory, from ListTree
  int64_t start_ns_ = 0;
  dev_t root_dev_ = 0;
  std::vector<Entry> entries_;
  std::map<InodeKey, std::vector<size_t>> links_;
  ScanResult result_;
  uint64_t bytes_ = 0;
  struct Job {
    size_t index;  // into entries_
    std::string abs;
    StatKey key;
  };
  std::vector<Job> hash_;
};

}  // namespace

SourceMap FindSources(const std::string& root, const Manifest& m, const DigestSet& want) {
  SourceMap out;
  if (want.empty()) return out;
  std::string prefix = root;  // as the scan named files: no trailing '/'
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  for (const auto& e : m.entries) {
    if (e.type != EntryType::kFile) continue;
    uint64_t off = 0;
    for (const auto& c : e.chunks) {
      if (want.count(c.digest))
        out.try_emplace(c.digest, ChunkSource{prefix + "/" + e.path, off, c.size});
      off += c.size;
    }
  }
  return out;
}

std::vector<Chunk> ChunkBytes(std::string_view data) {
  std::vector<Chunk> chunks;
  if (data.empty()) return chunks;
  if (data.size() <= kWholeFileMax) return {Chunk{Sha256Of(data), data.size()}};
  size_t consumed;
  ChunkInto(data, true, &chunks, &consumed);
  return chunks;
}

void ChunkHasher::Post(Group* g, std::shared_ptr<const std::string> buf, std::string_view piece,
                       Sha256Digest* out) {
  std::unique_lock lock(mu_);
  while (queued_ >= max_queued_ && RunTasksLocked(lock)) {
  }
  tasks_.push_back({g, std::move(buf), piece, out});
  queued_ += piece.size();
  ++g->pending;
  cv_.notify_all();
}

bool ChunkHasher::RunTasksLocked(std::unique_lock<std::mutex>& lock) {
  if (tasks_.empty()) return false;
  // Two at a time when there are two and the CPU hashes two at once
  // (sha256_two.h: nearly twice as fast).
  Task t[2];
  size_t count = std::min<size_t>(Sha256TwoInterleaved() ? 2 : 1, tasks_.size());
  for (size_t k = 0; k < count; ++k) {
    t[k] = std::move(tasks_.front());
    tasks_.pop_front();
    queued_ -= t[k].piece.size();
  }
  lock.unlock();
  if (count == 2)
    Sha256Two(t[0].piece, t[1].piece, t[0].out, t[1].out);
  else
    *t[0].out = Sha256Of(t[0].piece);
  for (size_t k = 0; k < count; ++k) {
    if (on_content_) (*on_content_)(*t[k].out, t[k].piece, t[k].buf);
    t[k].buf.reset();
  }
  lock.lock();
  for (size_t k = 0; k < count; ++k)
    if (--t[k].group->pending == 0) cv_.notify_all();
  return true;
}

void ChunkHasher::Wait(Group* g) {
  std::unique_lock lock(mu_);
  while (g->pending > 0)
    if (!RunTasksLocked(lock)) cv_.wait(lock);
}

void ChunkHasher::Help() {
  std::unique_lock lock(mu_);
  --cutters_;
  cv_.notify_all();
  for (;;) {
    if (RunTasksLocked(lock)) continue;
    if (cutters_ <= 0) return;
    cv_.wait(lock);
  }
}

namespace {

// HashContent for a large file through a ChunkHasher: each block read gets
// its own buffer, shared by the chunk tasks cut from it.
Status HashShared(int fd, uint64_t size, std::string_view what, std::vector<Chunk>* chunks,
                  ChunkHasher* hasher) {
  std::deque<Chunk> cut;  // stable addresses for the tasks' results
  ChunkHasher::Group group;
  Status s;
  std::string carry;  // the tail of the last block, not cut yet
  // Blocks are recycled once every chunk cut from them is hashed: fresh 8
  // MiB buffers would cost a page fault per 4 KiB.
  std::vector<std::shared_ptr<std::string>> blocks;
  auto free_block = [&] {
    for (auto& b : blocks) {
      if (b.use_count() == 1) {
        // Pairs with the release in the last task's reference drop, so its
        // reads of the block happen before this thread writes to it.
        std::atomic_thread_fence(std::memory_order_acquire);
        return b;
      }
    }
    blocks.push_back(std::make_shared<std::string>());
    return blocks.back();
  };
  uint64_t left = size;
  while (s.ok() && (left > 0 || !carry.empty())) {
    std::shared_ptr<std::string> block = free_block();
    size_t want = static_cast<size_t>(std::min<uint64_t>(left, kReadBuffer));
    block->resize(carry.size() + want);
    std::memcpy(block->data(), carry.data(), carry.size());
    size_t have = carry.size();
    while (have < block->size()) {
      ssize_t n = ::read(fd, block->data() + have, block->size() - have);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        s = ErrnoError(fmt::format("read {}", what), errno);
        break;
      }
      if (n == 0) {
        s = IoError(fmt::format("{}: file shrank while it was read", what));
        break;
      }
      have += static_cast<size_t>(n);
    }
    if (!s.ok()) break;
    left -= want;
    std::string_view data(*block);
    size_t pos = 0;
    while (pos < data.size()) {
      size_t rest = data.size() - pos;
      size_t n = NextChunkLength(reinterpret_cast<const uint8_t*>(data.data() + pos), rest);
      if (n == rest && rest < kChunkMax && left > 0) break;  // need more bytes to find the cut
      cut.push_back({Sha256Digest{}, n});
      hasher->Post(&group, block, data.substr(pos, n), &cut.back().digest);
      pos += n;
    }
    carry.assign(data.substr(pos));
  }
  // The tasks point into `cut`: they must be done before it goes.
  hasher->Wait(&group);
  KILN_RETURN_IF_ERROR(s);
  chunks->assign(cut.begin(), cut.end());
  return Status::Ok();
}

}  // namespace

Status HashContent(int fd, uint64_t size, std::string_view what, std::vector<Chunk>* chunks,
                   std::string* buffer, ChunkHasher* hasher, const ContentFn* on_content) {
  chunks->clear();
  if (size == 0) return Status::Ok();
  if (hasher && size > kWholeFileMax) return HashShared(fd, size, what, chunks, hasher);
  size_t cap = size <= kWholeFileMax ? static_cast<size_t>(size) : kReadBuffer;
  if (buffer->size() < cap) buffer->resize(cap);
  size_t have = 0;
  uint64_t left = size;
  while (left > 0 || have > 0) {
    while (left > 0 && have < cap) {
      ssize_t n = ::read(fd, buffer->data() + have, std::min<uint64_t>(cap - have, left));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(fmt::format("read {}", what), errno);
      }
      if (n == 0) return IoError(fmt::format("{}: file shrank while it was read", what));
      have += static_cast<size_t>(n);
      left -= static_cast<uint64_t>(n);
    }
    std::string_view data(buffer->data(), have);
    if (size <= kWholeFileMax) {
      chunks->push_back({Sha256Of(data), data.size()});
      if (on_content) (*on_content)(chunks->back().digest, data, nullptr);
      break;
    }
    size_t consumed;
    ChunkInto(data, left == 0, chunks, &consumed, on_content);
    std::memmove(buffer->data(), buffer->data() + consumed, have - consumed);
    have -= consumed;
  }
  return Status::Ok();
}

bool IsExcluded(const std::vector<std::string>& patterns, std::string_view rel) {
  return !patterns.empty() && ExcludeSet(patterns).Matches(rel);
}

ExcludeSet::ExcludeSet(const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) {
    Pattern pat{p, p.find('/') != std::string::npos, false};
    if (pat.path) {
      std::string_view t = p;
      while (!t.empty() && t.front() == '/') t.remove_prefix(1);
      while (!t.empty() && t.back() == '/') t.remove_suffix(1);
      pat.text = std::string(t);
    }
    // A pattern without wildcards or escapes matches only itself: a
    // comparison gives fnmatch's answer without its cost.
    pat.literal = pat.text.find_first_of("*?[\\") == std::string::npos;
    patterns_.push_back(std::move(pat));
  }
}

bool ExcludeSet::Matches(std::string_view rel) const {
  if (patterns_.empty() || rel.empty()) return false;
  std::string_view base = BaseName(rel);
  std::string path, name;  // NUL-terminated copies for fnmatch, made once
  for (const auto& p : patterns_) {
    if (p.literal) {
      if ((p.path ? rel : base) == p.text) return true;
      continue;
    }
    if (p.path) {
      if (path.empty()) path = rel;
      if (::fnmatch(p.text.c_str(), path.c_str(), FNM_PATHNAME) == 0) return true;
    } else {
      if (name.empty()) name = base;
      if (::fnmatch(p.text.c_str(), name.c_str(), 0) == 0) return true;
    }
  }
  return false;
}

Result<ScanResult> ScanDirectory(const std::string& root, const ScanOptions& opts) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return Scanner(r, opts).Run();
}

}  // namespace kiln::imager
