#include "imager/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "common/strings.h"
#include "imager/chunker.h"
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
  for (const char* top : {"objects", "tmp"}) {
    for (int i = 0; i < 256; ++i) {
      std::string shard = fmt::format("{}/{}/{:02x}", dir, top, i);
      if (::mkdir(shard.c_str(), 0755) != 0 && errno != EEXIST)
        return ErrnoError("mkdir " + shard, errno);
    }
  }
  return s;
}

std::string ObjectStore::PathOf(const Sha256Digest& d) const {
  std::string hex = ToHex(d);
  return fmt::format("{}/objects/{}/{}", dir_, hex.substr(0, 2), hex);
}

std::string ObjectStore::TmpPath(const Sha256Digest& d) const {
  std::string hex = ToHex(d);
  return fmt::format("{}/tmp/{}/{}.{}", dir_, hex.substr(0, 2), hex, RandomHex(6));
}

bool ObjectStore::Has(const Sha256Digest& d) const {
  return ::access(PathOf(d).c_str(), F_OK) == 0;
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
  std::string path = PathOf(d);
  auto frame = ReadFile(path);
  if (!frame.ok()) {
    if (::access(path.c_str(), F_OK) != 0)
      return NotFound(fmt::format("object {} is not in the store", ToHex(d)));
    return frame.status();
  }
  std::string out;
  // Manifests may exceed the chunk limit; nothing else does.
  KILN_RETURN_IF_ERROR(
      ThreadDecompressor().Decompress(*frame, 1ULL << 34, &out, "object " + ToHex(d)));
  if (Sha256Of(out) != d)
    return Corruption(fmt::format("object {}: its bytes do not match its digest", ToHex(d)));
  return out;
}

Status ObjectStore::Verify(const Sha256Digest& d) const {
  return Read(d).status();
}

Status ObjectStore::Remove(const Sha256Digest& d) {
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
  return Status::Ok();
}

ObjectBatch::~ObjectBatch() {
  for (const auto& p : pending_) ::unlink(p.tmp.c_str());
}

bool ObjectBatch::Known(const Sha256Digest& digest) const {
  {
    std::lock_guard lock(mu_);
    if (in_batch_.count(digest)) return true;
  }
  return store_->Has(digest);
}

Status ObjectBatch::AddTrusted(const Sha256Digest& digest, std::string_view frame,
                               bool early_writeback) {
  if (Known(digest)) return Status::Ok();
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

Status ObjectBatch::Verify(const Sha256Digest& claimed, std::string_view frame) const {
  if (Known(claimed)) return Status::Ok();
  thread_local std::string scratch;
  std::string what = "object " + ToHex(claimed);
  KILN_RETURN_IF_ERROR(ThreadDecompressor().Decompress(frame, kMaxObjectSize, &scratch, what));
  Sha256Digest got = Sha256Of(scratch);
  if (got != claimed) return Corruption(fmt::format("{}: its bytes hash to {}", what, ToHex(got)));
  return Status::Ok();
}

Status ObjectBatch::AddVerified(const Sha256Digest& claimed, std::string_view frame) {
  KILN_RETURN_IF_ERROR(Verify(claimed, frame));
  return AddTrusted(claimed, frame);
}

void ObjectBatch::Truncate(size_t n) {
  while (pending_.size() > n) {
    ::unlink(pending_.back().tmp.c_str());
    in_batch_.erase(pending_.back().digest);
    bytes_ -= pending_.back().size;
    pending_.pop_back();
  }
}

Status ObjectBatch::Commit() {
  if (pending_.empty()) return Status::Ok();
  // One flush makes every temporary durable before any becomes visible.
  KILN_RETURN_IF_ERROR(SyncFs(store_->dir_ + "/tmp"));
  for (size_t i = 0; i < pending_.size(); ++i) {
    std::string final_path = store_->PathOf(pending_[i].digest);
    if (::rename(pending_[i].tmp.c_str(), final_path.c_str()) != 0) {
      Status s = ErrnoError("rename " + pending_[i].tmp + " to " + final_path, errno);
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(i));
      return s;
    }
  }
  pending_.clear();
  in_batch_.clear();
  // And a second makes the renames durable.
  return SyncFs(store_->dir_ + "/objects");
}

}  // namespace kiln::imager
