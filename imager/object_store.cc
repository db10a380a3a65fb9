#include "imager/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/log.h"
#include "common/sha256_two.h"
#include "common/strings.h"
#include "imager/chunker.h"
#include "imager/direct_writer.h"
#include "imager/stored_frame.h"
#include "imager/zstd_util.h"

namespace kiln::imager {
namespace {

Status SyncFs(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open " + dir, errno);
  if (::syncfs(fd.get()) != 0) return ErrnoError("syncfs " + dir, errno);
  return Status::Ok();
}

Status WriteNew(const std::string& path, std::string_view data, bool early_writeback) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoError("create " + path, errno);
  KILN_RETURN_IF_ERROR(WriteAll(fd.get(), data, path));
  // Start the writeback now without waiting for it: the batch's syncfs then
  // finds most of the bytes on disk already instead of writing them all
  // while its caller waits. Only a hint; Commit's syncfs is what makes the
  // object durable.
  if (early_writeback) ::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  return Status::Ok();
}

// A pack's index: "KILNIDX1", the entry count (u64), per entry the digest,
// the frame's offset and size in the pack (u64 each), then the SHA-256 of
// everything before it. Little-endian. Written whole or not at all.
constexpr std::string_view kIdxMagic = "KILNIDX1";
constexpr size_t kIdxEntry = 32 + 8 + 8;

void PutU64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

using PackEntries = std::vector<std::pair<Sha256Digest, std::pair<uint64_t, uint64_t>>>;

std::string EncodeIdx(const PackEntries& entries) {
  std::string out(kIdxMagic);
  PutU64(entries.size(), &out);
  for (const auto& [d, where] : entries) {
    out.append(reinterpret_cast<const char*>(d.data()), d.size());
    PutU64(where.first, &out);
    PutU64(where.second, &out);
  }
  Sha256Digest sum = Sha256Of(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

// Every entry must lie inside a pack of pack_size bytes.
Result<PackEntries> DecodeIdx(std::string_view idx, uint64_t pack_size, const std::string& what) {
  if (idx.size() < kIdxMagic.size() + 8 + 32 || idx.substr(0, kIdxMagic.size()) != kIdxMagic)
    return Corruption(what + ": not a pack index");
  uint64_t n = GetU64(idx.data() + kIdxMagic.size());
  if (n > (idx.size() - kIdxMagic.size() - 8 - 32) / kIdxEntry ||
      idx.size() != kIdxMagic.size() + 8 + n * kIdxEntry + 32)
    return Corruption(what + ": truncated pack index");
  std::string_view body = idx.substr(0, idx.size() - 32);
  Sha256Digest sum = Sha256Of(body);
  if (std::memcmp(sum.data(), idx.data() + body.size(), 32) != 0)
    return Corruption(what + ": damaged pack index (checksum)");
  PackEntries out(n);
  const char* p = idx.data() + kIdxMagic.size() + 8;
  for (auto& [d, where] : out) {
    std::memcpy(d.data(), p, 32);
    where = {GetU64(p + 32), GetU64(p + 40)};
    if (where.first > pack_size || where.second > pack_size - where.first)
      return Corruption(what + ": an entry lies outside its pack");
    p += kIdxEntry;
  }
  return out;
}

// One (de)compressor per thread, freed when the thread ends (worker threads
// of the HTTP server come and go).
Compressor& ThreadCompressor() {
  thread_local std::unique_ptr<Compressor> c;
  if (!c) c = std::make_unique<Compressor>(kDefaultZstdLevel);
  return *c;
}
Decompressor& ThreadDecompressor() {
  thread_local std::unique_ptr<Decompressor> d;
  if (!d) d = std::make_unique<Decompressor>();
  return *d;
}

}  // namespace

Result<Sha256Digest> ParseDigest(std::string_view hex) {
  if (!IsSha256Hex(hex))
    return InvalidArgument(
        fmt::format("\"{}\" is not a SHA-256 digest (64 lower-case hex digits)", hex));
  Sha256Digest d;
  for (size_t i = 0; i < d.size(); ++i) {
    auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    d[i] = static_cast<uint8_t>(nib(hex[2 * i]) << 4 | nib(hex[2 * i + 1]));
  }
  return d;
}

Result<std::unique_ptr<ObjectStore>> ObjectStore::Open(const std::string& dir) {
  std::unique_ptr<ObjectStore> s(new ObjectStore(dir));
  KILN_RETURN_IF_ERROR(MakeDirs(dir + "/objects", 0755));
  // Temporaries of a crashed writer are garbage by construction.
  KILN_RETURN_IF_ERROR(RemoveAll(dir + "/tmp"));
  KILN_RETURN_IF_ERROR(MakeDirs(dir + "/tmp", 0700));
  // Temporaries are sharded like the objects: creating a file holds its
  // directory's lock while ext4 finds a free inode, and with every upload
  // thread creating in one tmp/ they queued there (a tenth of a capture's
  // samples spinning on that lock, docs/BENCHMARKS.md).
  KILN_RETURN_IF_ERROR(MakeDirs(dir + "/packs", 0755));
  s->objects_dir_ = UniqueFd(::open((dir + "/objects").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!s->objects_dir_.valid()) return ErrnoError("open " + dir + "/objects", errno);
  KILN_RETURN_IF_ERROR(s->LoadPacks());
  for (const char* top : {"objects", "tmp"}) {
    for (int i = 0; i < 256; ++i) {
      std::string shard = fmt::format("{}/{}/{:02x}", dir, top, i);
      if (::mkdir(shard.c_str(), 0755) != 0 && errno != EEXIST)
        return ErrnoError("mkdir " + shard, errno);
    }
  }
  return s;
}

std::string ObjectStore::ShardedName(const Sha256Digest& d) {
  std::string hex = ToHex(d);
  return fmt::format("{}/{}", hex.substr(0, 2), hex);
}

std::string ObjectStore::PathOf(const Sha256Digest& d) const {
  return fmt::format("{}/objects/{}", dir_, ShardedName(d));
}

std::string ObjectStore::TmpPath(const Sha256Digest& d) const {
  return fmt::format("{}/tmp/{}.{}", dir_, ShardedName(d), RandomHex(6));
}

Status ObjectStore::LoadPacks() {
  std::string dir = dir_ + "/packs";
  DIR* dp = ::opendir(dir.c_str());
  if (!dp) return ErrnoError("opendir " + dir, errno);
  std::vector<std::string> packs, idxs;
  while (dirent* de = ::readdir(dp)) {
    std::string_view name = de->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".pack")
      packs.emplace_back(name.substr(0, name.size() - 5));
    else if (name.size() > 4 && name.substr(name.size() - 4) == ".idx")
      idxs.emplace_back(name.substr(0, name.size() - 4));
  }
  ::closedir(dp);
  for (const auto& id : packs) {
    std::string pack = dir + "/" + id + ".pack";
    if (std::find(idxs.begin(), idxs.end(), id) == idxs.end()) {
      // Its writer crashed before the index: nothing in it was published.
      ::unlink(pack.c_str());
      continue;
    }
    UniqueFd fd(::open(pack.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0) return ErrnoError("open " + pack, errno);
    std::string idx_path = dir + "/" + id + ".idx";
    auto idx = ReadFile(idx_path);
    if (!idx.ok()) return idx.status();
    auto entries = DecodeIdx(*idx, static_cast<uint64_t>(st.st_size), idx_path);
    if (!entries.ok()) {
      // Its objects read as missing: verify and deploys name them.
      log::Error("imager", "pack index unusable", {{"error", entries.status().message()}});
      continue;
    }
    AddPack(id, std::move(fd), *entries);
  }
  return Status::Ok();
}

void ObjectStore::AddPack(const std::string& id, UniqueFd fd, const PackEntries& where) {
  std::unique_lock lock(packs_mu_);
  auto n = static_cast<uint32_t>(packs_.size());
  packs_.emplace_back(id, std::move(fd));
  for (const auto& [d, at] : where) packed_.insert_or_assign(d, PackLoc{n, at.first, at.second});
}

bool ObjectStore::Has(const Sha256Digest& d) const {
  {
    std::shared_lock lock(packs_mu_);
    if (packed_.count(d)) return true;
  }
  return ::faccessat(objects_dir_.get(), ShardedName(d).c_str(), F_OK, 0) == 0;
}

Result<Sha256Digest> ObjectStore::Put(std::string_view data) {
  if (data.size() > kMaxObjectSize && data.substr(0, 8) != "KILNMAN\n")
    return InvalidArgument(
        fmt::format("object of {} bytes is larger than {}", data.size(), kMaxObjectSize));
  Sha256Digest d = Sha256Of(data);
  if (Has(d)) return d;
  std::string frame;
  ThreadCompressor().Compress(data, &frame);
  ObjectBatch batch(this);
  KILN_RETURN_IF_ERROR(batch.AddTrusted(d, frame));
  KILN_RETURN_IF_ERROR(batch.Commit());
  return d;
}

Result<ObjectStore::Frame> ObjectStore::OpenFrame(const Sha256Digest& d) const {
  {
    // Found and opened under one lock: a gc rewriting the pack meanwhile
    // would otherwise close it between the two.
    std::shared_lock lock(packs_mu_);
    auto it = packed_.find(d);
    if (it != packed_.end()) {
      const PackLoc& at = it->second;
      int fd = ::fcntl(packs_[at.pack].second.get(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return ErrnoError("dup pack of object " + ToHex(d), errno);
      return Frame{UniqueFd(fd), at.size, at.offset};
    }
  }
  std::string path = PathOf(d);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound(fmt::format("object {} is not in the store", ToHex(d)));
    return ErrnoError("open " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat " + path, errno);
  return Frame{std::move(fd), static_cast<uint64_t>(st.st_size)};
}

Result<std::string> ObjectStore::Read(const Sha256Digest& d) const {
  KILN_ASSIGN_OR_RETURN(Frame f, OpenFrame(d));
  std::string what = "object " + ToHex(d);
  if (f.size > (1ULL << 34)) return Corruption(what + ": frame too large");
  std::string frame(f.size, '\0');
  size_t got = 0;
  while (got < f.size) {
    ssize_t n =
        ::pread(f.fd.get(), frame.data() + got, f.size - got, static_cast<off_t>(f.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read " + what, errno);
    if (n == 0) return Corruption(what + ": its file is shorter than the frame");
    got += static_cast<size_t>(n);
  }
  std::string out;
  // Manifests may exceed the chunk limit; nothing else does.
  KILN_RETURN_IF_ERROR(ThreadDecompressor().Decompress(frame, 1ULL << 34, &out, what));
  if (Sha256Of(out) != d)
    return Corruption(fmt::format("object {}: its bytes do not match its digest", ToHex(d)));
  return out;
}

Status ObjectStore::Verify(const Sha256Digest& d) const {
  return Read(d).status();
}

Status ObjectStore::Remove(const Sha256Digest& d) {
  {
    std::unique_lock lock(packs_mu_);
    auto it = packed_.find(d);
    if (it != packed_.end()) {
      dead_.insert(it->second.pack);
      packed_.erase(it);
      return Status::Ok();
    }
  }
  std::string path = PathOf(d);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink " + path, errno);
  return Status::Ok();
}

Status ObjectStore::ForEach(const std::function<void(const Sha256Digest&, uint64_t)>& fn) const {
  for (int i = 0; i < 256; ++i) {
    std::string shard = fmt::format("{}/objects/{:02x}", dir_, i);
    DIR* dir = ::opendir(shard.c_str());
    if (!dir) {
      if (errno == ENOENT) continue;
      return ErrnoError("opendir " + shard, errno);
    }
    while (dirent* de = ::readdir(dir)) {
      auto d = ParseDigest(de->d_name);
      if (!d.ok()) continue;
      struct stat st {};
      if (::fstatat(::dirfd(dir), de->d_name, &st, 0) != 0) continue;
      fn(*d, static_cast<uint64_t>(st.st_size));
    }
    ::closedir(dir);
  }
  std::vector<std::pair<Sha256Digest, uint64_t>> packed;
  {
    std::shared_lock lock(packs_mu_);
    for (const auto& [d, at] : packed_) packed.emplace_back(d, at.size);
  }
  for (const auto& [d, size] : packed) fn(d, size);
  return Status::Ok();
}

// The batch's pack while it is written: tmp/<id>.pack, O_DIRECT in large
// aligned pieces (DirectWriter), removed unless the batch commits.
class ObjectBatch::PackWriter {
 public:
  static Result<std::unique_ptr<PackWriter>> Create(const std::string& tmp_dir) {
    std::unique_ptr<PackWriter> w(new PackWriter());
    w->id_ = RandomHex(8);
    w->path_ = tmp_dir + "/" + w->id_ + ".pack";
    w->fd_ = UniqueFd(::open(w->path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!w->fd_.valid()) return ErrnoError("create " + w->path_, errno);
    w->writer_ = std::make_unique<DirectWriter>(w->fd_.get(), w->path_);
    return w;
  }
  ~PackWriter() {
    if (!committed_) ::unlink(path_.c_str());
  }
  Result<uint64_t> Append(std::string_view frame) {
    KILN_RETURN_IF_ERROR(writer_->Write(frame));
    uint64_t at = size_;
    size_ += frame.size();
    return at;
  }
  // The bytes on disk (the batch's syncfs makes them durable).
  Status Finish() { return writer_->Finish(); }
  const std::string& id() const { return id_; }
  const std::string& path() const { return path_; }
  void set_committed() { committed_ = true; }

 private:
  PackWriter() = default;
  std::string id_, path_;
  UniqueFd fd_;
  std::unique_ptr<DirectWriter> writer_;
  uint64_t size_ = 0;
  bool committed_ = false;
};

Status ObjectStore::CompactPacks() {
  std::set<uint32_t> dead;
  {
    std::unique_lock lock(packs_mu_);
    dead.swap(dead_);
  }
  for (uint32_t pack : dead) {
    std::vector<std::pair<Sha256Digest, PackLoc>> live;
    std::string id;
    int fd;
    {
      std::shared_lock lock(packs_mu_);
      for (const auto& [d, at] : packed_)
        if (at.pack == pack) live.emplace_back(d, at);
      id = packs_[pack].first;
      fd = packs_[pack].second.get();
    }
    std::string path = dir_ + "/packs/" + id;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return ErrnoError("stat " + path + ".pack", errno);
    uint64_t live_bytes = 0;
    for (const auto& [d, at] : live) live_bytes += at.size;
    if (!live.empty() && live_bytes * 4 >= static_cast<uint64_t>(st.st_size) * 3) {
      // Mostly live: rewriting it would copy much to free little. Its index
      // is rewritten without the removed objects; their bytes stay in the
      // pack until enough of it is dead.
      PackEntries keep;
      for (const auto& [d, at] : live) keep.push_back({d, {at.offset, at.size}});
      KILN_RETURN_IF_ERROR(WriteFileAtomic(path + ".idx", EncodeIdx(keep)));
      continue;
    }
    if (!live.empty()) {
      // Copied in pack order, so a later read of them stays sequential.
      std::sort(live.begin(), live.end(),
                [](const auto& a, const auto& b) { return a.second.offset < b.second.offset; });
      ObjectBatch batch(this, 0);
      batch.rewriting_ = true;
      std::string frame;
      for (const auto& [d, at] : live) {
        frame.resize(at.size);
        ssize_t got = ::pread(fd, frame.data(), at.size, static_cast<off_t>(at.offset));
        if (got != static_cast<ssize_t>(at.size))
          return got < 0 ? ErrnoError("read " + path + ".pack", errno)
                         : Corruption(path + ".pack: shorter than its index says");
        KILN_RETURN_IF_ERROR(batch.AddTrusted(d, frame, false));
      }
      KILN_RETURN_IF_ERROR(batch.Commit());  // the live objects now point at the new pack
    }
    // The index first: a pack without one is removed at the next Open.
    if (::unlink((path + ".idx").c_str()) != 0) return ErrnoError("unlink " + path + ".idx", errno);
    ::unlink((path + ".pack").c_str());
    std::unique_lock lock(packs_mu_);
    packs_[pack].second.Reset();
  }
  return Status::Ok();
}

ObjectBatch::ObjectBatch(ObjectStore* store, uint64_t loose_bytes)
    : store_(store), loose_bytes_(loose_bytes) {}

ObjectBatch::~ObjectBatch() {
  for (const auto& p : pending_)
    if (!p.tmp.empty()) ::unlink(p.tmp.c_str());
}

Result<uint64_t> ObjectBatch::AppendToPack(std::string_view frame) {
  std::lock_guard lock(pack_mu_);
  if (!pack_) {
    KILN_ASSIGN_OR_RETURN(pack_, PackWriter::Create(store_->dir_ + "/tmp"));
  }
  return pack_->Append(frame);
}

bool ObjectBatch::Known(const Sha256Digest& digest) const {
  {
    std::lock_guard lock(mu_);
    if (in_batch_.count(digest)) return true;
  }
  return !rewriting_ && store_->Has(digest);
}

Status ObjectBatch::AddTrusted(const Sha256Digest& digest, std::string_view frame,
                               bool early_writeback) {
  if (Known(digest)) return Status::Ok();
  bool to_pack;
  {
    std::lock_guard lock(mu_);
    to_pack = bytes_ >= loose_bytes_;
  }
  if (to_pack) {
    KILN_ASSIGN_OR_RETURN(uint64_t offset, AppendToPack(frame));
    std::lock_guard lock(mu_);
    // Added by another thread meanwhile: these bytes stay in the pack,
    // unindexed.
    if (!in_batch_.insert(digest).second) return Status::Ok();
    pending_.push_back({digest, "", frame.size(), offset});
    bytes_ += frame.size();
    return Status::Ok();
  }
  std::string tmp = store_->TmpPath(digest);
  Status s = WriteNew(tmp, frame, early_writeback);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  std::lock_guard lock(mu_);
  if (!in_batch_.insert(digest).second) {  // another thread added it meanwhile
    ::unlink(tmp.c_str());
    return Status::Ok();
  }
  pending_.push_back({digest, std::move(tmp), frame.size()});
  bytes_ += frame.size();
  return Status::Ok();
}

namespace {

// An uploaded object's bytes, as pieces to hash: a stored frame's blocks
// where they lie in the upload (no copy out of it first: most of a
// capture of large files), any other frame decompressed into scratch.
Status ObjectMessage(const Sha256Digest& claimed, std::string_view frame, std::string* scratch,
                     std::vector<std::string_view>* pieces) {
  pieces->clear();
  uint64_t size = 0;
  if (ForEachStoredBlock(frame, [&](std::string_view block) {
        pieces->push_back(block);
        size += block.size();
      })) {
    if (size > kMaxObjectSize)
      return Corruption(fmt::format("object {}: {} bytes, more than the {} allowed", ToHex(claimed),
                                    size, kMaxObjectSize));
    return Status::Ok();
  }
  pieces->clear();
  KILN_RETURN_IF_ERROR(
      ThreadDecompressor().Decompress(frame, kMaxObjectSize, scratch, "object " + ToHex(claimed)));
  pieces->push_back(*scratch);
  return Status::Ok();
}

Status MatchDigest(const Sha256Digest& claimed, const Sha256Digest& got) {
  if (got == claimed) return Status::Ok();
  return Corruption(fmt::format("object {}: its bytes hash to {}", ToHex(claimed), ToHex(got)));
}

struct VerifyScratch {
  std::string bytes[2];
  std::vector<std::string_view> pieces[2];
};

VerifyScratch& ThreadVerifyScratch() {
  thread_local VerifyScratch s;
  return s;
}

}  // namespace

Status ObjectBatch::Verify(const Sha256Digest& claimed, std::string_view frame) const {
  if (Known(claimed)) return Status::Ok();
  VerifyScratch& s = ThreadVerifyScratch();
  KILN_RETURN_IF_ERROR(ObjectMessage(claimed, frame, &s.bytes[0], &s.pieces[0]));
  Sha256 h;
  for (auto p : s.pieces[0]) h.Update(p);
  return MatchDigest(claimed, h.Final());
}

std::pair<Status, Status> ObjectBatch::VerifyTwo(const Sha256Digest& a, std::string_view frame_a,
                                                 const Sha256Digest& b,
                                                 std::string_view frame_b) const {
  if (Known(a)) return {Status::Ok(), Verify(b, frame_b)};
  if (Known(b)) return {Verify(a, frame_a), Status::Ok()};
  VerifyScratch& s = ThreadVerifyScratch();
  Status sa = ObjectMessage(a, frame_a, &s.bytes[0], &s.pieces[0]);
  Status sb = ObjectMessage(b, frame_b, &s.bytes[1], &s.pieces[1]);
  if (!sa.ok() || !sb.ok())
    return {sa.ok() ? Verify(a, frame_a) : sa, sb.ok() ? Verify(b, frame_b) : sb};
  Sha256Digest da, db;
  Sha256Two(s.pieces[0], s.pieces[1], &da, &db);
  return {MatchDigest(a, da), MatchDigest(b, db)};
}

Status ObjectBatch::AddVerified(const Sha256Digest& claimed, std::string_view frame) {
  KILN_RETURN_IF_ERROR(Verify(claimed, frame));
  return AddTrusted(claimed, frame);
}

void ObjectBatch::Truncate(size_t n) {
  while (pending_.size() > n) {
    // A packed object's bytes stay in the pack, unindexed.
    if (!pending_.back().tmp.empty()) ::unlink(pending_.back().tmp.c_str());
    in_batch_.erase(pending_.back().digest);
    bytes_ -= pending_.back().size;
    pending_.pop_back();
  }
}

Status ObjectBatch::Commit() {
  if (pending_.empty()) return Status::Ok();
  PackEntries packed;
  for (const auto& p : pending_)
    if (p.tmp.empty()) packed.push_back({p.digest, {p.offset, p.size}});
  if (pack_) KILN_RETURN_IF_ERROR(pack_->Finish());
  // One flush makes every temporary (and the pack) durable before any
  // becomes visible.
  KILN_RETURN_IF_ERROR(SyncFs(store_->dir_ + "/tmp"));
  if (!packed.empty()) {
    // The pack first, then its index: an index only ever names a whole
    // pack (WriteFileAtomic syncs the index and the directory).
    std::string packs = store_->dir_ + "/packs/" + pack_->id();
    if (::rename(pack_->path().c_str(), (packs + ".pack").c_str()) != 0)
      return ErrnoError("rename " + pack_->path() + " to " + packs + ".pack", errno);
    pack_->set_committed();
    KILN_RETURN_IF_ERROR(WriteFileAtomic(packs + ".idx", EncodeIdx(packed)));
    UniqueFd fd(::open((packs + ".pack").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError("open " + packs + ".pack", errno);
    store_->AddPack(pack_->id(), std::move(fd), packed);
  }
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i].tmp.empty()) continue;
    std::string final_path = store_->PathOf(pending_[i].digest);
    if (::rename(pending_[i].tmp.c_str(), final_path.c_str()) != 0) {
      Status s = ErrnoError("rename " + pending_[i].tmp + " to " + final_path, errno);
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(i));
      return s;
    }
  }
  pending_.clear();
  in_batch_.clear();
  pack_.reset();
  // And a second makes the renames durable.
  return SyncFs(store_->dir_ + "/objects");
}

}  // namespace kiln::imager
