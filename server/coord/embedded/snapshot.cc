#include "server/coord/embedded/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <mutex>

#include "common/file_util.h"
#include "common/strings.h"
#include "server/coord/embedded/coding.h"
#include "server/coord/embedded/wal_format.h"
#include "server/coord/embedded/wal_reader.h"
#include "server/coord/embedded/wal_writer.h"

namespace kiln::coord::embedded {

std::string SnapshotFileName(Zxid zxid) { return fmt::format("snapshot.{:020d}", zxid); }

bool ParseSnapshotFileName(const std::string& name, Zxid* zxid) {
  if (!StartsWith(name, "snapshot.") || name.size() != 9 + 20) return false;
  auto v = ParseUint(name.substr(9));
  if (!v) return false;
  *zxid = static_cast<Zxid>(*v);
  return true;
}

namespace {

void EncodeNode(std::string* out, const std::string& path, const NodeImage& n) {
  std::string p;
  p.reserve(path.size() + n.data->size() + 80);
  wal::PutBytes(&p, path);
  wal::PutBytes(&p, *n.data);
  wal::PutFixed64(&p, static_cast<uint64_t>(n.stat.czxid));
  wal::PutFixed64(&p, static_cast<uint64_t>(n.stat.mzxid));
  wal::PutFixed64(&p, static_cast<uint64_t>(n.stat.pzxid));
  wal::PutFixed64(&p, static_cast<uint64_t>(n.stat.ctime_ms));
  wal::PutFixed64(&p, static_cast<uint64_t>(n.stat.mtime_ms));
  wal::PutFixed32(&p, static_cast<uint32_t>(n.stat.version));
  wal::PutFixed32(&p, static_cast<uint32_t>(n.stat.cversion));
  wal::PutFixed64(&p, static_cast<uint64_t>(n.stat.ephemeral_owner));
  wal::AppendRecord(out, wal::kSnapshotNode, p);
}

// A file written through a buffer, flushed in large writes.
class BufferedFile {
 public:
  BufferedFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string* buf() { return &buf_; }
  Status MaybeFlush() { return buf_.size() >= (1u << 20) ? Flush() : Status::Ok(); }
  Status Flush() {
    KILN_RETURN_IF_ERROR(WriteAll(fd_.get(), buf_, "write " + path_));
    bytes_ += buf_.size();
    buf_.clear();
    return Status::Ok();
  }
  Status Sync() {
    if (::fdatasync(fd_.get()) != 0) return ErrnoError("fdatasync " + path_, errno);
    return Status::Ok();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string path_;
  UniqueFd fd_;
  std::string buf_;
  uint64_t bytes_ = 0;
};

}  // namespace

Result<SnapshotStats> WriteSnapshot(const std::string& dir, DataTree* tree, std::shared_mutex* mu) {
  SnapshotStats stats;
  std::map<SessionId, int64_t> sessions;
  {
    std::unique_lock lock(*mu);
    tree->BeginSnapshot();
    stats.zxid = tree->snapshot_zxid();
    sessions = tree->snapshot_sessions();
  }
  std::string final_path = dir + "/" + SnapshotFileName(stats.zxid);
  std::string tmp_path = final_path + ".tmp";
  int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::unique_lock lock(*mu);
    tree->FinishSnapshot([](const std::string&, const NodeImage&) {});
    return ErrnoError("open " + tmp_path, errno);
  }
  BufferedFile file(tmp_path, UniqueFd(fd));
  std::string header;
  wal::PutBytes(&header, wal::kSnapshotMagic);
  wal::PutFixed32(&header, wal::kFormatVersion);
  wal::PutFixed64(&header, static_cast<uint64_t>(stats.zxid));
  wal::AppendRecord(file.buf(), wal::kSnapshotHeader, header);

  auto emit = [&](const std::string& path, const NodeImage& n) {
    EncodeNode(file.buf(), path, n);
    ++stats.nodes;
  };
  Status status;
  std::string cursor;
  for (bool more = true; more && status.ok();) {
    {
      std::shared_lock lock(*mu);
      more = tree->SnapshotChunk(&cursor, 1024, emit);
    }
    status = file.MaybeFlush();
  }
  {
    std::unique_lock lock(*mu);
    // Always end the snapshot, even after a failed write: the tree must stop
    // collecting pre-images.
    tree->FinishSnapshot(status.ok() ? DataTree::EmitNode(emit)
                                     : [](const std::string&, const NodeImage&) {});
  }
  if (status.ok()) {
    for (const auto& [id, timeout] : sessions) {
      std::string p;
      wal::PutFixed64(&p, static_cast<uint64_t>(id));
      wal::PutFixed64(&p, static_cast<uint64_t>(timeout));
      wal::AppendRecord(file.buf(), wal::kSnapshotSession, p);
    }
    std::string footer;
    wal::PutFixed64(&footer, stats.nodes);
    wal::PutFixed64(&footer, sessions.size());
    wal::AppendRecord(file.buf(), wal::kSnapshotFooter, footer);
    status = file.Flush();
  }
  if (status.ok()) status = file.Sync();
  if (status.ok() && ::rename(tmp_path.c_str(), final_path.c_str()) != 0)
    status = ErrnoError("rename " + tmp_path, errno);
  if (status.ok()) status = SyncDir(dir);
  if (!status.ok()) {
    ::unlink(tmp_path.c_str());
    return status;
  }
  stats.bytes = file.bytes();
  return stats;
}

Result<SnapshotStats> LoadSnapshot(const std::string& path, DataTree* tree) {
  KILN_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  wal::RecordReader reader(contents);
  wal::Record rec;
  std::string why;
  SnapshotStats stats;
  uint64_t sessions = 0;
  bool header = false, footer = false;
  auto bad = [&](uint64_t offset, const std::string& what) {
    return Corruption(fmt::format("snapshot {} offset {}: {}", path, offset, what));
  };
  for (;;) {
    auto outcome = reader.Next(&rec, &why);
    if (outcome == wal::RecordReader::Outcome::kEnd) break;
    if (outcome != wal::RecordReader::Outcome::kRecord) return bad(reader.good_end(), why);
    if (footer) return bad(rec.offset, "record after the footer");
    wal::Decoder d(rec.payload);
    if (!header) {
      if (rec.type != wal::kSnapshotHeader) return bad(rec.offset, "missing snapshot header");
      std::string_view magic = d.Bytes();
      uint32_t version = d.U32();
      stats.zxid = d.I64();
      if (d.failed() || magic != wal::kSnapshotMagic) return bad(rec.offset, "not a kiln snapshot");
      if (version != wal::kFormatVersion)
        return bad(rec.offset, fmt::format("unsupported format version {}", version));
      header = true;
      continue;
    }
    switch (rec.type) {
      case wal::kSnapshotNode: {
        std::string node_path(d.Bytes());
        NodeImage n;
        n.data = std::make_shared<const std::string>(d.Bytes());
        n.stat.czxid = d.I64();
        n.stat.mzxid = d.I64();
        n.stat.pzxid = d.I64();
        n.stat.ctime_ms = d.I64();
        n.stat.mtime_ms = d.I64();
        n.stat.version = d.I32();
        n.stat.cversion = d.I32();
        n.stat.ephemeral_owner = d.I64();
        n.stat.data_length = static_cast<int32_t>(n.data->size());
        if (d.failed() || !d.done()) return bad(rec.offset, "malformed znode record");
        if (node_path.empty() || node_path[0] != '/')
          return bad(rec.offset, "znode record with a malformed path");
        tree->LoadNode(std::move(node_path), std::move(n));
        ++stats.nodes;
        break;
      }
      case wal::kSnapshotSession: {
        SessionId id = d.I64();
        int64_t timeout = d.I64();
        if (d.failed() || !d.done()) return bad(rec.offset, "malformed session record");
        tree->LoadSession(id, timeout);
        ++sessions;
        break;
      }
      case wal::kSnapshotFooter: {
        uint64_t nodes = d.U64();
        uint64_t n_sessions = d.U64();
        if (d.failed() || nodes != stats.nodes || n_sessions != sessions)
          return bad(rec.offset, fmt::format("footer counts {} znodes and {} sessions, read {} and {}",
                                             nodes, n_sessions, stats.nodes, sessions));
        footer = true;
        break;
      }
      default:
        return bad(rec.offset, fmt::format("unexpected record type {}", rec.type));
    }
  }
  if (!footer) return bad(reader.good_end(), "snapshot ends without its footer");
  Status linked = tree->Link(stats.zxid);
  if (!linked.ok()) return Corruption(path + ": " + linked.message());
  stats.bytes = contents.size();
  return stats;
}

}  // namespace kiln::coord::embedded
