#include "server/coord/embedded/recovery.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>

#include "common/file_util.h"
#include "common/log.h"
#include "common/strings.h"
#include "server/coord/embedded/coding.h"
#include "server/coord/embedded/snapshot.h"
#include "server/coord/embedded/wal_format.h"
#include "server/coord/embedded/wal_reader.h"

namespace kiln::coord::embedded {

std::string SegmentFileName(Zxid first_zxid) { return fmt::format("log.{:020d}", first_zxid); }

bool ParseSegmentFileName(const std::string& name, Zxid* first_zxid) {
  if (!StartsWith(name, "log.") || name.size() != 4 + 20) return false;
  auto v = ParseUint(name.substr(4));
  if (!v) return false;
  *first_zxid = static_cast<Zxid>(*v);
  return true;
}

namespace {

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ErrnoError("opendir " + dir, errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  return names;
}

Status Truncate(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open " + path, errno);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    return ErrnoError("truncate " + path, errno);
  if (::fsync(fd.get()) != 0) return ErrnoError("fsync " + path, errno);
  return Status::Ok();
}

// One transaction record before the snapshot, kept undecoded until we know
// it falls inside the retention.
struct Pending {
  Zxid zxid;
  std::string payload;
};

}  // namespace

Result<RecoveredState> Recover(const std::string& dir, DataTree* tree, ChangeLog* changes,
                               size_t retain_txns) {
  auto start = std::chrono::steady_clock::now();
  RecoveredState out;
  KILN_ASSIGN_OR_RETURN(auto names, ListDir(dir));
  Zxid snap_zxid = -1;
  for (const auto& name : names) {
    Zxid z;
    if (EndsWith(name, ".tmp")) {
      ::unlink((dir + "/" + name).c_str());  // an interrupted snapshot
    } else if (ParseSnapshotFileName(name, &z)) {
      snap_zxid = std::max(snap_zxid, z);
    } else if (ParseSegmentFileName(name, &z)) {
      out.segments.push_back(Segment{z, dir + "/" + name, 0});
    }
  }
  std::sort(out.segments.begin(), out.segments.end(),
            [](const Segment& a, const Segment& b) { return a.first_zxid < b.first_zxid; });

  if (snap_zxid >= 0) {
    KILN_ASSIGN_OR_RETURN(SnapshotStats st,
                          LoadSnapshot(dir + "/" + SnapshotFileName(snap_zxid), tree));
    if (st.zxid != snap_zxid)
      return Corruption(fmt::format("snapshot {}/{} holds zxid {}", dir,
                                    SnapshotFileName(snap_zxid), st.zxid));
    out.report.snapshot_zxid = st.zxid;
    out.report.snapshot_nodes = st.nodes;
  } else {
    snap_zxid = 0;
  }

  std::deque<Pending> before;  // pre-snapshot transactions, newest retain_txns
  std::vector<ChangePtr> after;
  Zxid expect = out.segments.empty() ? snap_zxid + 1 : out.segments.front().first_zxid;
  Zxid trimmed = expect - 1;  // changes up to here are gone with deleted segments
  if (expect > snap_zxid + 1)
    return Corruption(fmt::format("{}: the log starts at zxid {} but the snapshot ends at {}",
                                  out.segments.front().path, expect, snap_zxid));

  for (size_t i = 0; i < out.segments.size(); ++i) {
    Segment& seg = out.segments[i];
    bool last = i + 1 == out.segments.size();
    KILN_ASSIGN_OR_RETURN(std::string contents, ReadFile(seg.path));
    out.report.log_bytes += contents.size();
    wal::RecordReader reader(contents);
    wal::Record rec;
    std::string why;
    bool header = false;
    auto corrupt = [&](uint64_t offset, const std::string& what) {
      return Corruption(fmt::format("coordination log {} offset {}: {}", seg.path, offset, what));
    };
    if (seg.first_zxid != expect)
      return corrupt(0, fmt::format("segment starts at zxid {}, expected {}", seg.first_zxid, expect));
    for (;;) {
      auto outcome = reader.Next(&rec, &why);
      if (outcome == wal::RecordReader::Outcome::kEnd) break;
      if (outcome == wal::RecordReader::Outcome::kCorrupt) return corrupt(reader.good_end(), why);
      if (outcome == wal::RecordReader::Outcome::kTornTail) {
        if (!last)
          return corrupt(reader.good_end(), why + " (in a segment that is not the last)");
        uint64_t cut = contents.size() - reader.good_end();
        out.report.torn_tail = fmt::format("{}: {} bytes at offset {} ({})", seg.path, cut,
                                           reader.good_end(), why);
        log::Warn("coord", "torn tail of the coordination log cut off",
                  {{"file", seg.path}, {"offset", reader.good_end()}, {"bytes", cut},
                   {"reason", why}});
        KILN_RETURN_IF_ERROR(Truncate(seg.path, reader.good_end()));
        break;
      }
      if (!header) {
        wal::Decoder d(rec.payload);
        std::string_view magic = d.Bytes();
        uint32_t version = d.U32();
        Zxid first = d.I64();
        if (rec.type != wal::kSegmentHeader || d.failed() || magic != wal::kSegmentMagic)
          return corrupt(rec.offset, "missing segment header");
        if (version != wal::kFormatVersion)
          return corrupt(rec.offset, fmt::format("unsupported format version {}", version));
        if (first != seg.first_zxid)
          return corrupt(rec.offset, fmt::format("header says zxid {}", first));
        header = true;
        continue;
      }
      if (rec.type != wal::kTxn)
        return corrupt(rec.offset, fmt::format("unexpected record type {}", rec.type));
      if (rec.payload.size() < 8) return corrupt(rec.offset, "transaction record too short");
      Zxid zxid = static_cast<Zxid>(wal::DecodeFixed64(rec.payload.data()));
      if (zxid != expect)
        return corrupt(rec.offset, fmt::format("expected zxid {}, found {}", expect, zxid));
      ++expect;
      if (zxid <= snap_zxid) {
        before.push_back(Pending{zxid, std::string(rec.payload)});
        if (before.size() > retain_txns) {
          trimmed = before.front().zxid;
          before.pop_front();
        }
        continue;
      }
      auto txn = DecodeTxn(rec.payload);
      if (!txn.ok()) return corrupt(rec.offset, txn.status().message());
      Status applied = tree->Apply(*txn);
      if (!applied.ok()) return corrupt(rec.offset, applied.message());
      ChangesOf(*txn, &after);
      ++out.report.replayed_txns;
    }
    if (!header) {
      // Only the last segment can lack a header: a crash right after it was
      // created. It holds nothing; start it again.
      if (!last) return corrupt(0, "segment without a header");
      ::unlink(seg.path.c_str());
      out.segments.pop_back();
      break;
    }
    seg.size = reader.good_end();
  }
  if (expect - 1 < snap_zxid)
    return Corruption(fmt::format("{}: the log ends at zxid {} before the snapshot's {}", dir,
                                  expect - 1, snap_zxid));

  // Refill the change log: retained pre-snapshot transactions, then the
  // replayed ones.
  std::vector<ChangePtr> all;
  for (const auto& p : before) {
    auto txn = DecodeTxn(p.payload);
    if (!txn.ok())
      return Corruption(fmt::format("{}: zxid {}: {}", dir, p.zxid, txn.status().message()));
    ChangesOf(*txn, &all);
  }
  all.insert(all.end(), after.begin(), after.end());
  changes->SetTrimmedThrough(std::max<Zxid>(trimmed, 0));
  changes->Append(all);

  out.last_zxid = std::max(tree->last_zxid(), expect - 1);
  out.report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace kiln::coord::embedded
