#pragma once
// Applying an image stream to a directory: the one code path that both
// `kiln image deploy` and kiln-agent use.
//
// Guarantees:
//   - Confinement: nothing is created, changed or removed outside the
//     target root, whatever the stream says. Paths are validated by the
//     reader and resolved through tree_ops.h (openat, O_NOFOLLOW, one
//     component at a time); hard links may only name paths under the root.
//   - Each file, symlink, device or link is made under a temporary name in
//     its directory, given its exact owner, mode, xattrs and mtime, then
//     renamed over its path: a reader sees the old node or the new one.
//   - Every byte that arrives is verified against its digest before it is
//     written (StreamReader). In a delta, ranges copied from the file already
//     in place are used only when that file's size and mtime match the base
//     version's, as rsync's quick check does.
//   - Deletions and pruning come last; directory attributes are set after
//     everything inside them, deepest first, so their mtimes come out exact.
//   - With undo_dir set, everything the apply replaces, deletes or changes is
//     recorded there first (replaced inodes are kept by hard link, removed
//     trees are moved), and RestoreUndo() puts the tree back as it was.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "imager/direct_writer.h"
#include "imager/stream.h"
#include "imager/tree_ops.h"

namespace kiln::imager {

struct ApplyProgress {
  uint64_t entries = 0;
  uint64_t bytes = 0;  // file bytes written or copied
};

struct ApplyOptions {
  bool allow_devices = true;  // refuse device nodes (naming the entry) when false
  bool set_owner = true;      // chown to the image's owners (needs root)
  // Full streams: remove what is in the target but not in the image.
  // Never across a mount point: a directory on another filesystem (an ESP
  // mounted at /boot/efi by the installer) is left whole.
  bool prune = true;
  std::string undo_dir;  // record an undo snapshot here (same filesystem)
  // Paths left exactly as they are in the target (IsExcluded's globs: a
  // pattern with a '/' matches the path from the root, one without matches
  // a name anywhere; a kept directory keeps everything under it). The
  // stream's entries, deletions and pruning skip them: an update leaves a
  // host's /etc/hostname, host keys and logs alone.
  std::vector<std::string> keep;
  bool sync = false;  // syncfs(2) the target at the end
  // Write large files that come whole from the stream with O_DIRECT
  // (direct_writer.h): no page-cache copy, and less left for a sync.
  bool direct_io = true;
  std::function<void(const ApplyProgress&)> progress;
};

struct ApplyStats {
  uint64_t entries = 0, files = 0, meta_only = 0, deleted = 0, pruned = 0;
  uint64_t kept = 0;           // entries of the stream skipped by ApplyOptions::keep
  uint64_t bytes_written = 0;  // from the stream
  uint64_t bytes_copied = 0;   // reused from the existing file (delta)
  uint64_t bytes_direct = 0;   // of bytes_written, those written with O_DIRECT
  double sync_ms = 0;          // ApplyOptions::sync's syncfs and the undo journal's write
};

class Applier : public StreamSink {
 public:
  static Result<std::unique_ptr<Applier>> Open(const std::string& root, ApplyOptions opts);
  ~Applier() override;

  Status OnHeader(const StreamHeader& h) override;
  Status OnEntry(const StreamEntry& e) override;
  Status OnChunk(const Sha256Digest& digest, std::string_view data) override;
  Status OnDelete(const std::string& path) override;
  Status OnEnd(const StreamCounts& counts) override;

  // After a failure: removes the temporary file in progress and writes the
  // undo journal so far, so `kiln image undo` can revert a partial apply.
  void Abort();

  const ApplyStats& stats() const { return stats_; }
  // Entries applied so far; safe to read from any thread (progress).
  uint64_t entries_done() const { return entries_done_.load(std::memory_order_relaxed); }
  const StreamHeader& header() const { return header_; }

 private:
  struct Undo;
  Applier(Tree tree, ApplyOptions opts);
  Status Place(const Entry& e, int dirfd, const std::string& name, const std::string& tmp);
  Status MakeNode(const StreamEntry& se, int dirfd, const std::string& name);
  Status ContinueFile();
  Status FinishFile();
  Status ApplyMeta(const Entry& e);
  bool Kept(const std::string& path) const;
  Status Delete(const std::string& path, bool pruning);
  Status Prune();
  Status PruneDir(const std::string& dir, dev_t root_dev);
  Status Journal(int dirfd, const std::string& name, const std::string& path, bool save_data);
  Status JournalParent(const std::string& path);
  // Before anything is created, renamed or removed in path's directory:
  // journals it for undo and remembers its mtime, which the end restores
  // when the stream does not set the directory's attributes itself.
  Status BeforeChange(const std::string& path);
  void Progress();

  Tree tree_;
  ApplyOptions opts_;
  StreamHeader header_;
  ApplyStats stats_;
  std::unique_ptr<Undo> undo_;

  // The file being written.
  struct Current {
    bool active = false;
    StreamEntry se;
    std::string name, tmp;
    UniqueFd dir, fd, base;
    std::unique_ptr<DirectWriter> direct;  // large files written whole
    uint64_t block = 0;                    // the target filesystem's block size
    size_t piece = 0;
    uint64_t written = 0;
  } cur_;

  std::vector<Entry> dirs_;                  // attributes to set at the end
  std::vector<std::string> deletes_;         // delta deletions, deepest first
  std::unordered_set<std::string> seen_;     // full stream: every path it had
  std::map<std::string, timespec> touched_;  // directories changed, their mtime before
  uint64_t last_progress_ = 0;
  size_t skip_chunks_ = 0;  // chunks still to come of a kept file
  std::atomic<uint64_t> entries_done_{0};
};

// Puts a tree back as it was before the apply that recorded undo_dir, then
// removes undo_dir.
Status RestoreUndo(const std::string& root, const std::string& undo_dir, bool set_owner);

inline constexpr const char* kDefaultUndoName = ".kiln-undo";

}  // namespace kiln::imager
