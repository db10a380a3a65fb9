#pragma once
// The content-addressed object store under DATA/images:
//
//   objects/ab/ab12...ef   one zstd frame; the name is the SHA-256 of the
//                          frame's uncompressed bytes
//   tmp/ab/ab12...ef.RAND  objects being written (sharded as objects/ are,
//                          so that creating them does not queue on one
//                          directory's lock); removed at Open
//
// Objects are immutable. A new object is written to tmp/, and becomes
// visible only by rename(2) into objects/ after its bytes are on disk, so a
// crash leaves either a whole, durable object or nothing under objects/ (at
// worst a stray temporary, which Open removes). Many objects share one
// syncfs(2) through ObjectBatch: a capture of thousands of files costs one
// flush, not one fsync per file. Each temporary's writeback is started as
// soon as it is written (sync_file_range, not waited for), so the disk
// works while the batch grows and the flush at Commit has little left.
//
//   packs/<id>.pack        frames of many objects back to back (a large
//   packs/<id>.idx         batch's objects beyond its first kLooseBytes),
//                          and where each one is: see docs/IMAGE_FORMAT.md
//
// Packs exist because a file per object costs a large capture dearly: the
// 1 GiB file alone is 16,000 chunks, and creating 16,000 files and filling
// fresh page-cache pages for them took 3 s of system time here where one
// file written with O_DIRECT took 0.1-0.5 s (docs/BENCHMARKS.md). A pack
// is written by one batch with O_DIRECT (imager/direct_writer.h), made
// durable, then its index is written (temporary, fsync, rename): an index
// names only a whole, durable pack, and a pack without one is a crashed
// writer's, removed at Open. Packs are immutable; gc rewrites a pack that
// holds objects no longer needed.
//
// Reads verify: Read() decompresses and re-hashes, and a mismatch is
// kCorruption naming the digest. OpenFrame() hands out the stored frame for
// sendfile(2); the receiver verifies (the image stream reader and the
// agent do).
//
// Thread safety: every method may be called from any thread. A batch's
// AddTrusted and AddVerified may be called from several threads at once
// (an upload verifies on every core); Commit and Truncate need the adds to
// be finished.

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/file_util.h"
#include "common/hash.h"
#include "common/status.h"

namespace kiln::imager {

struct DigestHash {
  size_t operator()(const Sha256Digest& d) const {
    size_t h;
    std::memcpy(&h, d.data(), sizeof h);
    return h;
  }
};
using DigestSet = std::unordered_set<Sha256Digest, DigestHash>;

// Parses 64 hex characters; kInvalidArgument otherwise.
Result<Sha256Digest> ParseDigest(std::string_view hex);

class ObjectStore;

class ObjectBatch {
 public:
  // The first loose_bytes of frames become a file each; the rest go into
  // one pack (a large capture's chunks). Tests pass small values.
  static constexpr uint64_t kLooseBytes = 8 << 20;
  explicit ObjectBatch(ObjectStore* store, uint64_t loose_bytes = kLooseBytes);
  ~ObjectBatch();  // removes the temporaries of an uncommitted batch
  ObjectBatch(const ObjectBatch&) = delete;
  ObjectBatch& operator=(const ObjectBatch&) = delete;

  // Adds an object whose digest the caller computed from the uncompressed
  // bytes itself (a local capture). Objects already stored are skipped.
  // early_writeback starts the object's writeback at once (the commit's
  // flush then finds most of a large upload on disk already); a small
  // upload, committed a moment later, is better flushed in one go.
  Status AddTrusted(const Sha256Digest& digest, std::string_view frame,
                    bool early_writeback = true);
  // Adds an object from an untrusted sender: decompresses the frame, hashes
  // it and refuses (kCorruption naming the claimed digest) when they differ.
  Status AddVerified(const Sha256Digest& claimed, std::string_view frame);
  // AddVerified's check alone (thread-safe): Ok when the object is known
  // already or the frame's bytes hash to `claimed`.
  Status Verify(const Sha256Digest& claimed, std::string_view frame) const;
  // Two checks at once (sha256_two.h: nearly twice as fast): the statuses
  // of the first and the second.
  std::pair<Status, Status> VerifyTwo(const Sha256Digest& a, std::string_view frame_a,
                                      const Sha256Digest& b, std::string_view frame_b) const;
  // Makes every added object durable, then visible. After an error nothing
  // of this batch that was not already visible becomes visible.
  Status Commit();
  // Drops the objects added after the first `n` (their temporaries are
  // removed): undoes part of a batch, e.g. one request of an upload that
  // failed half way.
  void Truncate(size_t n);

  size_t added() const { return pending_.size(); }
  // Whether digest was added to this batch (committed or not).
  bool Contains(const Sha256Digest& digest) const {
    std::lock_guard lock(mu_);
    return in_batch_.count(digest) != 0;
  }
  uint64_t bytes_written() const { return bytes_; }

 private:
  struct Pending {
    Sha256Digest digest;
    std::string tmp;  // empty: in the pack, at offset
    uint64_t size;    // frame bytes
    uint64_t offset = 0;
  };
  class PackWriter;
  // Appends frame to the batch's pack (made at the first call).
  Result<uint64_t> AppendToPack(std::string_view frame);
  // In this batch or in the store already.
  bool Known(const Sha256Digest& digest) const;

  friend class ObjectStore;
  ObjectStore* store_;
  const uint64_t loose_bytes_;
  bool rewriting_ = false;  // CompactPacks: objects are stored already, elsewhere
  mutable std::mutex mu_;   // guards the three below during adds
  std::vector<Pending> pending_;
  DigestSet in_batch_;
  uint64_t bytes_ = 0;
  std::mutex pack_mu_;  // the pack's writes, in order
  std::unique_ptr<PackWriter> pack_;
};

class ObjectStore {
 public:
  // dir is DATA/images; created when missing.
  static Result<std::unique_ptr<ObjectStore>> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string PathOf(const Sha256Digest& d) const;
  bool Has(const Sha256Digest& d) const;

  // Stores one object now (compress, write, sync, publish). For manifests
  // and tests; captures use a batch.
  Result<Sha256Digest> Put(std::string_view data);

  // The uncompressed bytes, verified against the digest.
  Result<std::string> Read(const Sha256Digest& d) const;
  struct Frame {
    UniqueFd fd;
    uint64_t size = 0;
    uint64_t offset = 0;  // in fd's file (a pack's objects share one)
  };
  // The stored frame, unverified, for sendfile(2) and streams.
  Result<Frame> OpenFrame(const Sha256Digest& d) const;
  // Re-reads and re-hashes one object.
  Status Verify(const Sha256Digest& d) const;
  // A packed object is dropped from the index in memory at once, from its
  // pack by CompactPacks.
  Status Remove(const Sha256Digest& d);
  // Drops removed objects from their packs (gc, after its removals): a pack
  // with a quarter or more of its bytes removed is rewritten (the live
  // objects into a new pack, then the old one goes), any other gets a new
  // index without them and keeps their bytes until then.
  Status CompactPacks();
  // Every stored object with its stored (compressed) size.
  Status ForEach(const std::function<void(const Sha256Digest&, uint64_t)>& fn) const;

  int zstd_level() const { return zstd_level_; }

 private:
  friend class ObjectBatch;
  explicit ObjectStore(std::string dir) : dir_(std::move(dir)) {}
  std::string TmpPath(const Sha256Digest& d) const;

  // A committed batch's pack becomes readable.
  void AddPack(const std::string& id, UniqueFd fd,
               const std::vector<std::pair<Sha256Digest, std::pair<uint64_t, uint64_t>>>& where);
  Status LoadPacks();
  struct PackLoc {
    uint32_t pack;
    uint64_t offset, size;
  };

  // "ab/abcdef...": an object's name under objects/, and a temporary's
  // stem under tmp/ (both sharded by the digest's first byte).
  static std::string ShardedName(const Sha256Digest& d);

  std::string dir_;
  // objects/, for lookups by name that do not walk dir_ again each time
  // (3.3 us against 1.1 us per lookup here; a capture makes two per object).
  UniqueFd objects_dir_;
  int zstd_level_ = 3;
  mutable std::shared_mutex packs_mu_;
  std::vector<std::pair<std::string, UniqueFd>> packs_;  // id, open file
  std::unordered_map<Sha256Digest, PackLoc, DigestHash> packed_;
  std::set<uint32_t> dead_;  // packs objects were removed from since CompactPacks
};

}  // namespace kiln::imager
