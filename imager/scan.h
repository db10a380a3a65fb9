#pragma once
// Capturing a directory tree into a manifest (the first half of a capture;
// capture.h sends or stores the objects).
//
// The walk never follows a symlink, stays on the root's filesystem unless
// told otherwise, reads every attribute the manifest records (including
// xattrs, so file capabilities and POSIX ACLs come along as the kernel
// stores them) and hashes file contents into chunks (chunker.h). A stat
// cache (stat_cache.h) lets unchanged files skip the read. Hard links are
// found by (device, inode): the smallest path of a group holds the content,
// the others become hard-link entries naming it.
//
// The content itself is not kept: FindSources says where a chunk's bytes
// are, so the caller can read just the objects a server lacks.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "imager/manifest.h"
#include "imager/object_store.h"
#include "imager/stat_cache.h"

namespace kiln::imager {

// An object's digest and bytes, as a scan hashes them. owner, when set,
// holds the bytes and may be kept to use them later; when null they live
// only for the call.
using ContentFn = std::function<void(const Sha256Digest&, std::string_view bytes,
                                     const std::shared_ptr<const std::string>& owner)>;

struct ScanOptions {
  // Shell globs (fnmatch). A pattern with a '/' matches the path from the
  // root ("var/cache/*", a leading '/' is allowed); one without matches any
  // component's name ("*.pyc"). An excluded directory is skipped whole.
  std::vector<std::string> excludes;
  bool one_file_system = true;  // do not descend into other mounts
  StatCache* cache = nullptr;   // read and updated when set
  int threads = 2;              // files are hashed in parallel
  // Called now and then with the file bytes and files scanned so far.
  std::function<void(uint64_t bytes, uint64_t files)> progress;
  // Called with each object's bytes as soon as they are hashed, on the
  // hashing thread (any of them, so it must be thread-safe), for files read
  // (not those the stat cache answered): a first capture sends them while
  // the scan goes on (capture_stream.h). A large file's blocks are shared
  // (see ContentFn): keeping one makes the scan read into another.
  ContentFn on_content;
};

// Where an object's bytes can be read again.
struct ChunkSource {
  std::string file;  // absolute path
  uint64_t offset = 0;
  uint64_t size = 0;
};
using SourceMap = std::unordered_map<Sha256Digest, ChunkSource, DigestHash>;

struct ScanResult {
  Manifest manifest;
  uint64_t files = 0;
  uint64_t files_hashed = 0;  // the rest came from the stat cache
  uint64_t bytes_hashed = 0;
  // The objects of the files that were read (not taken from the stat cache).
  std::vector<Sha256Digest> read_objects;
};

Result<ScanResult> ScanDirectory(const std::string& root, const ScanOptions& opts);

// Where the objects in `want` are in the tree at root that m was scanned
// from: the first file and offset holding each. Made only for the objects a
// capture must send (a re-capture: a few), not for the whole tree.
SourceMap FindSources(const std::string& root, const Manifest& m, const DigestSet& want);

// Shares the SHA-256 of a large file's chunks among threads: the thread
// that reads and cuts the file (content-defined chunking is sequential)
// posts each block's chunks here and goes on cutting, and threads without
// a file of their own hash them (Help), so one big file does not leave the
// other cores idle. Memory is bounded: a poster hashes queued chunks itself
// while more than max_queued bytes wait. Thread-safe.
class ChunkHasher {
 public:
  // on_content (may be null) is given each chunk once it is hashed.
  static constexpr size_t kDefaultMaxQueued = 32 << 20;
  explicit ChunkHasher(int cutters, size_t max_queued = kDefaultMaxQueued,
                       const ContentFn* on_content = nullptr)
      : cutters_(cutters), max_queued_(max_queued), on_content_(on_content) {}
  // One file's outstanding chunks.
  struct Group {
    size_t pending = 0;  // guarded by the hasher's mutex
  };
  // Queues *out = SHA-256(piece); buf keeps piece's bytes alive until then.
  void Post(Group* g, std::shared_ptr<const std::string> buf, std::string_view piece,
            Sha256Digest* out);
  // Hashes queued chunks (anyone's) until g has none outstanding.
  void Wait(Group* g);
  // Called once by each of the `cutters` threads when it has no more files:
  // hashes queued chunks until every cutter has called it and nothing is
  // queued.
  void Help();

 private:
  struct Task {
    Group* group;
    std::shared_ptr<const std::string> buf;
    std::string_view piece;
    Sha256Digest* out;
  };
  // Runs the next task, or the next two (hashed together); false if none.
  bool RunTasksLocked(std::unique_lock<std::mutex>& lock);
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  size_t queued_ = 0;
  int cutters_;
  size_t max_queued_;
  const ContentFn* on_content_;
};

// Chunks and hashes `size` bytes read from fd (from its current offset).
// buffer is scratch space the caller may reuse between calls. With a
// hasher, a large file's chunks are hashed through it (by any thread);
// chunks come back complete either way.
// on_content (may be null): as ScanOptions::on_content.
Status HashContent(int fd, uint64_t size, std::string_view what, std::vector<Chunk>* chunks,
                   std::string* buffer, ChunkHasher* hasher = nullptr,
                   const ContentFn* on_content = nullptr);
// Chunks and hashes bytes already in memory.
std::vector<Chunk> ChunkBytes(std::string_view data);

// True when rel (a manifest path) matches one of the exclude patterns.
bool IsExcluded(const std::vector<std::string>& patterns, std::string_view rel);

// IsExcluded with the patterns examined once, for a caller that asks about
// every entry of a tree (a scan).
class ExcludeSet {
 public:
  explicit ExcludeSet(const std::vector<std::string>& patterns);
  bool Matches(std::string_view rel) const;

 private:
  struct Pattern {
    std::string text;  // a path pattern without its leading and trailing '/'
    bool path;         // had a '/': matched against the whole path
    bool literal;      // no wildcards or escapes: a comparison is enough
  };
  std::vector<Pattern> patterns_;
};

}  // namespace kiln::imager
