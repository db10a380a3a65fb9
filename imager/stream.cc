#include "imager/stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "common/sha256_two.h"
#include "imager/chunker.h"
#include "imager/codec.h"
#include "imager/path_util.h"

namespace kiln::imager {
namespace {

constexpr uint8_t kFlagMetaOnly = 1;
constexpr uint8_t kFlagBase = 2;

void AppendRecord(std::string* out, char tag, std::string_view payload) {
  ByteWriter w;
  w.U8(static_cast<uint8_t>(tag));
  w.Varint(payload.size());
  out->append(w.str());
  out->append(payload);
}

class PlanBuilder {
 public:
  explicit PlanBuilder(const ObjectStore& store) : store_(store) {}

  void Header(const StreamHeader& h) {
    ByteWriter w;
    w.Raw(kStreamMagic);
    w.U8(kStreamFormat);
    w.U8(static_cast<uint8_t>(h.kind));
    w.Digest(h.target);
    w.Digest(h.base);
    Cur().bytes.append(w.str());
  }

  Status Entry(const StreamEntry& e) {
    AppendRecord(&Cur().bytes, 'E', EncodeStreamEntry(e));
    ++plan_.counts.entries;
    for (const auto& p : e.pieces) {
      if (p.kind != Piece::Kind::kChunk) continue;
      auto frame = store_.OpenFrame(p.digest);
      if (!frame.ok())
        return frame.status().WithContext(fmt::format("stream of {}", DisplayPath(e.entry.path)));
      ByteWriter w;
      w.U8('O');
      w.Varint(32 + frame->size);
      w.Digest(p.digest);
      StreamSegment& s = Cur();
      s.bytes.append(w.str());
      s.has_object = true;
      s.object = p.digest;
      s.object_size = frame->size;
      ++plan_.counts.objects;
      plan_.counts.object_bytes += frame->size;
      plan_.counts.content_bytes += p.size;
    }
    return Status::Ok();
  }

  void Delete(const std::string& path) {
    AppendRecord(&Cur().bytes, 'D', path);
    ++plan_.counts.deletes;
  }

  StreamPlan Finish() {
    ByteWriter w;
    w.Varint(plan_.counts.entries);
    w.Varint(plan_.counts.objects);
    w.Varint(plan_.counts.deletes);
    AppendRecord(&Cur().bytes, 'Z', w.str());
    uint64_t off = 0;
    for (const auto& s : plan_.segments) {
      plan_.starts.push_back(off);
      off += s.bytes.size() + (s.has_object ? s.object_size : 0);
    }
    plan_.total = off;
    return std::move(plan_);
  }

 private:
  // The segment records are appended to: a new one after an object.
  StreamSegment& Cur() {
    if (plan_.segments.empty() || plan_.segments.back().has_object) plan_.segments.emplace_back();
    return plan_.segments.back();
  }
  const ObjectStore& store_;
  StreamPlan plan_;
};

StreamEntry FullEntry(const Entry& e) {
  StreamEntry s;
  s.entry = e;
  s.entry.chunks.clear();
  for (const auto& c : e.chunks) s.pieces.push_back({Piece::Kind::kChunk, c.digest, 0, c.size});
  return s;
}

}  // namespace

std::string EncodeStreamEntry(const StreamEntry& e) {
  ByteWriter w;
  w.U8((e.meta_only ? kFlagMetaOnly : 0) | (e.has_base ? kFlagBase : 0));
  EncodeEntryHeader(w, e.entry);
  if (e.entry.type == EntryType::kFile && !e.meta_only) {
    w.Varint(e.entry.size);
    if (e.has_base) {
      w.Varint(e.base_size);
      w.Svarint(e.base_mtime_sec);
      w.Varint(e.base_mtime_nsec);
    }
    w.Varint(e.pieces.size());
    for (const auto& p : e.pieces) {
      w.U8(static_cast<uint8_t>(p.kind));
      if (p.kind == Piece::Kind::kChunk) {
        w.Digest(p.digest);
      } else {
        w.Varint(p.offset);
      }
      w.Varint(p.size);
    }
  }
  EncodeEntryTail(w, e.entry);
  return w.Take();
}

Result<StreamPlan> PlanFullStream(const ObjectStore& store, const Manifest& target,
                                  const Sha256Digest& target_digest) {
  PlanBuilder b(store);
  b.Header({StreamKind::kFull, target_digest, {}});
  for (const auto& e : target.entries) KILN_RETURN_IF_ERROR(b.Entry(FullEntry(e)));
  return b.Finish();
}

Result<StreamPlan> PlanDeltaStream(const ObjectStore& store, const Manifest& base,
                                   const Sha256Digest& base_digest, const Manifest& target,
                                   const Sha256Digest& target_digest) {
  PlanBuilder b(store);
  b.Header({StreamKind::kDelta, target_digest, base_digest});
  // Paths that get a new inode: hard links to them must be made again even
  // when their own entry did not change.
  std::unordered_set<std::string_view> new_inode;
  auto replaces = [&](const Entry& e, const Entry* old) {
    return !old || old->type != e.type || !old->SameContent(e);
  };
  for (const auto& e : target.entries)
    if (e.type != EntryType::kDir && replaces(e, base.Find(e.path))) new_inode.insert(e.path);

  for (const auto& e : target.entries) {
    const Entry* old = base.Find(e.path);
    if (old && *old == e) {
      if (e.type == EntryType::kHardlink && new_inode.count(e.target))
        KILN_RETURN_IF_ERROR(b.Entry(FullEntry(e)));
      continue;
    }
    if (old && old->type == e.type && (e.type == EntryType::kDir || old->SameContent(e))) {
      StreamEntry s;
      s.entry = e;
      s.entry.chunks.clear();
      s.meta_only = true;
      KILN_RETURN_IF_ERROR(b.Entry(s));
      continue;
    }
    StreamEntry s = FullEntry(e);
    if (old && old->type == EntryType::kFile && e.type == EntryType::kFile &&
        !old->chunks.empty()) {
      // Reuse ranges of the old file for chunks it already has.
      std::unordered_map<Sha256Digest, uint64_t, DigestHash> old_at;
      uint64_t off = 0;
      for (const auto& c : old->chunks) {
        old_at.try_emplace(c.digest, off);
        off += c.size;
      }
      std::vector<Piece> pieces;
      for (const auto& c : e.chunks) {
        auto it = old_at.find(c.digest);
        if (it == old_at.end()) {
          pieces.push_back({Piece::Kind::kChunk, c.digest, 0, c.size});
        } else if (!pieces.empty() && pieces.back().kind == Piece::Kind::kCopy &&
                   pieces.back().offset + pieces.back().size == it->second) {
          pieces.back().size += c.size;
        } else {
          pieces.push_back({Piece::Kind::kCopy, {}, it->second, c.size});
        }
      }
      bool any_copy = std::any_of(pieces.begin(), pieces.end(),
                                  [](const Piece& p) { return p.kind == Piece::Kind::kCopy; });
      if (any_copy) {
        s.pieces = std::move(pieces);
        s.has_base = true;
        s.base_size = old->size;
        s.base_mtime_sec = old->mtime_sec;
        s.base_mtime_nsec = old->mtime_nsec;
      }
    }
    KILN_RETURN_IF_ERROR(b.Entry(s));
  }
  for (auto it = base.entries.rbegin(); it != base.entries.rend(); ++it)
    if (!target.Find(it->path)) b.Delete(it->path);
  return b.Finish();
}

// ---- reader ----

Status StreamReader::Feed(std::string_view data) {
  if (!error_.ok()) return error_;
  if (done_ && !data.empty()) return Fail(Corruption("stream: bytes after the end record"));
  while (!data.empty()) {
    if (!buf_.empty()) {
      // Complete the buffered record first, taking only what it needs.
      size_t before = buf_.size();
      buf_.append(data);
      std::string_view view(buf_);
      Status s = Consume(&view);
      if (!s.ok()) return Fail(s);
      size_t used = buf_.size() - view.size();
      if (used == 0) {  // still incomplete: everything is buffered
        offset_ += data.size();
        return Status::Ok();
      }
      size_t from_data = used - before;
      offset_ += from_data;
      data.remove_prefix(from_data);
      buf_.clear();
      continue;
    }
    std::string_view view = data;
    Status s = Consume(&view);
    if (!s.ok()) return Fail(s);
    size_t used = data.size() - view.size();
    if (used == 0) {
      buf_.assign(data);
      offset_ += data.size();
      return Status::Ok();
    }
    offset_ += used;
    data.remove_prefix(used);
    if (done_ && !data.empty()) return Fail(Corruption("stream: bytes after the end record"));
  }
  return Status::Ok();
}

// Parses as many whole records from the front of *data as there are; leaves
// *data at the first incomplete one.
Status StreamReader::Consume(std::string_view* data) {
  while (!data->empty() && !done_) {
    if (!header_done_) {
      size_t need = kStreamHeaderSize;
      if (data->size() < need) return Status::Ok();
      if (data->substr(0, kStreamMagic.size()) != kStreamMagic)
        return Corruption("stream: bad magic (not a kiln image stream)");
      ByteReader r(data->substr(kStreamMagic.size(), 2 + 64));
      uint8_t format, kind;
      r.U8(&format);
      r.U8(&kind);
      if (format != kStreamFormat)
        return Corruption(fmt::format("stream: format {} is not supported", format));
      if (kind != 1 && kind != 2) return Corruption(fmt::format("stream: unknown kind {}", kind));
      header_.kind = static_cast<StreamKind>(kind);
      r.Digest(&header_.target);
      r.Digest(&header_.base);
      header_done_ = true;
      data->remove_prefix(need);
      KILN_RETURN_IF_ERROR(sink_->OnHeader(header_));
      continue;
    }
    ByteReader r(*data);
    uint8_t tag;
    uint64_t len;
    if (!r.U8(&tag)) return Status::Ok();
    if (!r.Varint(&len)) {
      if (data->size() >= 11)
        return Corruption(fmt::format("stream: bad record length at byte {}", offset_));
      return Status::Ok();
    }
    uint64_t max = tag == 'O' ? kMaxObjectRecord : kMaxEntryRecord;
    if (len > max)
      return Corruption(fmt::format("stream: record '{}' of {} bytes at byte {} is too large",
                                    static_cast<char>(tag), len, offset_));
    std::string_view payload;
    if (!r.Raw(len, &payload)) return Status::Ok();
    // The next object of the same file, when it is here whole, is checked
    // with this one where the CPU hashes two at once (sha256_two.h).
    if (tag == 'O' && want_pos_ + 1 < want_.size() && Sha256TwoInterleaved()) {
      ByteReader next(data->substr(r.pos()));
      uint8_t tag2;
      uint64_t len2;
      std::string_view payload2;
      if (next.U8(&tag2) && tag2 == 'O' && next.Varint(&len2) && len2 <= kMaxObjectRecord &&
          next.Raw(len2, &payload2)) {
        KILN_RETURN_IF_ERROR(ParseObjects(payload, payload2));
        data->remove_prefix(r.pos() + next.pos());
        continue;
      }
    }
    KILN_RETURN_IF_ERROR(Record(tag, payload));
    data->remove_prefix(r.pos());
  }
  return Status::Ok();
}

Status StreamReader::Record(uint8_t tag, std::string_view payload) {
  if (want_pos_ < want_.size() && tag != 'O')
    return Corruption(fmt::format("stream: {} is missing object {}", DisplayPath(last_path_),
                                  ToHex(want_[want_pos_].digest)));
  switch (tag) {
    case 'E': return ParseEntry(payload);
    case 'O': return ParseObject(payload);
    case 'D': {
      if (header_.kind != StreamKind::kDelta)
        return Corruption("stream: a delete in a full stream");
      std::string path(payload);
      if (Status s = ValidateEntryPath(path); !s.ok() || path.empty())
        return Corruption("stream: bad delete path: " +
                          (s.ok() ? std::string("the root") : s.message()));
      if (deleting_ && path >= last_delete_)
        return Corruption("stream: deletes out of order at " + DisplayPath(path));
      deleting_ = true;
      last_delete_ = path;
      ++counts_.deletes;
      return sink_->OnDelete(path);
    }
    case 'Z': {
      ByteReader r(payload);
      StreamCounts c;
      if (!r.Varint(&c.entries) || !r.Varint(&c.objects) || !r.Varint(&c.deletes) || !r.done())
        return Corruption("stream: bad end record");
      if (c.entries != counts_.entries || c.objects != counts_.objects ||
          c.deletes != counts_.deletes)
        return Corruption(fmt::format(
            "stream: end record counts {} entries, {} objects, {} deletes; received {}, {}, {}",
            c.entries, c.objects, c.deletes, counts_.entries, counts_.objects, counts_.deletes));
      done_ = true;
      return sink_->OnEnd(counts_);
    }
    default:
      return Corruption(
          fmt::format("stream: unknown record tag 0x{:02x} at byte {}", tag, offset_));
  }
}

Status StreamReader::ParseEntry(std::string_view payload) {
  if (deleting_) return Corruption("stream: an entry after the deletes");
  ByteReader r(payload);
  StreamEntry se;
  uint8_t flags, type;
  uint64_t mode, uid, gid, nsec;
  imager::Entry& e = se.entry;
  auto bad = [&](std::string_view what) {
    return Corruption(fmt::format("stream entry {} ({}): {}", counts_.entries,
                                  e.path.empty() && !any_entry_ ? "?" : DisplayPath(e.path), what));
  };
  if (!r.U8(&flags) || flags > 3 || !r.Bytes(kMaxPathLen, &e.path) || !r.U8(&type) || type < 1 ||
      type > 8 || !r.Bounded(07777, &mode) || !r.Bounded(UINT32_MAX, &uid) ||
      !r.Bounded(UINT32_MAX, &gid) || !r.Svarint(&e.mtime_sec) || !r.Bounded(999'999'999, &nsec))
    return bad("malformed entry header");
  e.type = static_cast<EntryType>(type);
  e.mode = static_cast<uint32_t>(mode);
  e.uid = static_cast<uint32_t>(uid);
  e.gid = static_cast<uint32_t>(gid);
  e.mtime_nsec = static_cast<uint32_t>(nsec);
  se.meta_only = flags & kFlagMetaOnly;
  se.has_base = flags & kFlagBase;
  if (se.meta_only && header_.kind != StreamKind::kDelta)
    return bad("attribute-only entry in a full stream");
  if (se.has_base && (e.type != EntryType::kFile || se.meta_only)) return bad("bad flags");
  if (e.type == EntryType::kFile && !se.meta_only) {
    uint64_t n, sum = 0;
    if (!r.Varint(&e.size)) return bad("malformed size");
    if (se.has_base) {
      uint64_t bn;
      if (!r.Varint(&se.base_size) || !r.Svarint(&se.base_mtime_sec) ||
          !r.Bounded(999'999'999, &bn))
        return bad("malformed base");
      se.base_mtime_nsec = static_cast<uint32_t>(bn);
    }
    if (!r.Bounded(r.remaining() / 3, &n)) return bad("malformed piece count");
    se.pieces.resize(n);
    for (auto& p : se.pieces) {
      uint8_t kind;
      if (!r.U8(&kind) || kind > 1) return bad("malformed piece");
      p.kind = static_cast<Piece::Kind>(kind);
      if (p.kind == Piece::Kind::kChunk) {
        if (!r.Digest(&p.digest) || !r.Bounded(kMaxObjectSize, &p.size) || p.size == 0)
          return bad("malformed chunk");
      } else {
        if (!se.has_base) return bad("a copied range without a base file");
        if (!r.Varint(&p.offset) || !r.Varint(&p.size) || p.size == 0 || p.offset > se.base_size ||
            p.size > se.base_size - p.offset)
          return bad("copied range outside the base file");
      }
      if (p.size > UINT64_MAX - sum) return bad("sizes overflow");
      sum += p.size;
    }
    if (sum != e.size)
      return bad(fmt::format("pieces add up to {} bytes, the size is {}", sum, e.size));
  }
  switch (e.type) {
    case EntryType::kSymlink:
    case EntryType::kHardlink:
      if (!r.Bytes(kMaxPathLen, &e.target)) return bad("malformed target");
      break;
    case EntryType::kCharDev:
    case EntryType::kBlockDev: {
      uint64_t ma, mi;
      if (!r.Bounded(UINT32_MAX, &ma) || !r.Bounded(UINT32_MAX, &mi))
        return bad("malformed device");
      e.dev_major = static_cast<uint32_t>(ma);
      e.dev_minor = static_cast<uint32_t>(mi);
      break;
    }
    default: break;
  }
  uint64_t nx;
  if (!r.Bounded(1024, &nx)) return bad("malformed xattrs");
  e.xattrs.resize(nx);
  for (auto& x : e.xattrs)
    if (!r.Bytes(kMaxNameLen, &x.name) || !r.Bytes(64 * 1024, &x.value))
      return bad("malformed xattr");
  if (!r.done()) return bad("trailing bytes");

  // The entry must be valid on its own; content goes through pieces.
  imager::Entry check = e;
  check.size = 0;
  if (e.type == EntryType::kFile) check.type = EntryType::kFifo;  // skip the chunk-sum rule
  if (Status s = ValidateEntry(check); !s.ok()) return bad(s.message());
  if (any_entry_ && e.path <= last_path_)
    return bad(e.path == last_path_ ? "duplicate path" : "entries out of order");
  if (!any_entry_ && header_.kind == StreamKind::kFull && !e.path.empty())
    return bad("a full stream must start with the root");
  if (e.type == EntryType::kHardlink && e.target >= e.path && header_.kind == StreamKind::kFull)
    return bad("hard link to a later path");
  any_entry_ = true;
  last_path_ = e.path;
  ++counts_.entries;
  want_.clear();
  want_pos_ = 0;
  for (const auto& p : se.pieces)
    if (p.kind == Piece::Kind::kChunk) want_.push_back(p);
  return sink_->OnEntry(se);
}

// An object record for piece p: the object it should be, decompressed
// into *out to the size it should have. `what` names it in errors.
Status StreamReader::Unpack(std::string_view payload, const Piece& p, std::string_view what,
                            std::string* out) {
  if (payload.size() < 32) return Corruption("stream: short object record");
  Sha256Digest d;
  std::copy(payload.begin(), payload.begin() + 32, d.begin());
  if (d != p.digest)
    return Corruption(fmt::format("{}: the stream sent object {} instead", what, ToHex(d)));
  KILN_RETURN_IF_ERROR(dec_.Decompress(payload.substr(32), p.size, out, what));
  if (out->size() != p.size)
    return Corruption(fmt::format("{}: {} bytes, expected {}", what, out->size(), p.size));
  return Status::Ok();
}

// Counts the next wanted object, whose record was payload and whose
// verified bytes are *bytes, and hands them on.
Status StreamReader::Accept(std::string_view payload, std::string* bytes) {
  const Piece& p = want_[want_pos_++];
  ++counts_.objects;
  counts_.object_bytes += payload.size() - 32;
  counts_.content_bytes += p.size;
  return sink_->OnChunkData(p.digest, std::move(*bytes));
}

Status StreamReader::ParseObject(std::string_view payload) {
  if (want_pos_ >= want_.size())
    return Corruption(fmt::format("stream: an object nobody asked for at byte {}", offset_));
  const Piece& p = want_[want_pos_];
  std::string what = fmt::format("{}: object {}", DisplayPath(last_path_), ToHex(p.digest));
  KILN_RETURN_IF_ERROR(Unpack(payload, p, what, &scratch_));
  if (Sha256Of(scratch_) != p.digest)
    return Corruption(fmt::format("{}: its bytes do not match its digest", what));
  return Accept(payload, &scratch_);
}

// Two objects in a row, for the current file's next two chunks: checked
// as ParseObject checks one, hashed together. Anything amiss, and they are
// checked one at a time, so that the error is ParseObject's and the first
// is handed on before the second is refused.
Status StreamReader::ParseObjects(std::string_view first, std::string_view second) {
  const Piece& p1 = want_[want_pos_];
  const Piece& p2 = want_[want_pos_ + 1];
  Sha256Digest d1, d2;
  if (Unpack(first, p1, "", &scratch_).ok() && Unpack(second, p2, "", &scratch2_).ok()) {
    Sha256Two(scratch_, scratch2_, &d1, &d2);
    if (d1 == p1.digest && d2 == p2.digest) {
      counts_.objects_paired += 2;
      KILN_RETURN_IF_ERROR(Accept(first, &scratch_));
      return Accept(second, &scratch2_);
    }
  }
  KILN_RETURN_IF_ERROR(ParseObject(first));
  return ParseObject(second);
}

Status StreamReader::Finish() {
  if (!error_.ok()) return error_;
  if (!done_)
    return Fail(Corruption(fmt::format("stream ended early at byte {} (no end record)", offset_)));
  return Status::Ok();
}

}  // namespace kiln::imager
