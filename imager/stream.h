#pragma once
// Image streams: how a version travels to a deploying client (the CLI, the
// agent). Byte layout in docs/IMAGE_FORMAT.md; in short:
//
//   header  "KILNSTR\n", format, kind (full | delta), target digest, base digest
//   records tag, length, payload:
//     'E' entry   an entry to create or change, with how to build a file's
//                 content: chunks (each followed by its object) and, in a
//                 delta, ranges copied from the file the target already has
//     'O' object  digest, zstd frame
//     'D' delete  a path to remove (delta only; after every entry, deepest first)
//     'Z' end     counts of the records above
//
// A full stream has every entry of the version, in path order, each file
// followed by its objects. A delta A->B has only the entries of B that differ
// from A (attribute-only changes are marked so and applied in place), the
// objects they need that A lacks, then A's paths that B removes.
//
// Streams are deterministic for a (kind, base, target), so a client resumes
// a broken transfer by asking for the same stream from the byte offset it
// reached: the server skips to it without reading what it skips, and the
// client's reader carries on from its own state.
//
// StreamReader checks everything it is given before the sink sees it:
// paths, order, sizes, and that each object is the next one the current
// file needs and hashes to its digest. A sink therefore only ever receives
// verified data.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash.h"
#include "common/status.h"
#include "imager/chunker.h"
#include "imager/manifest.h"
#include "imager/object_store.h"
#include "imager/zstd_util.h"

namespace kiln::imager {

inline constexpr std::string_view kStreamMagic = "KILNSTR\n";
inline constexpr uint8_t kStreamFormat = 1;
// The header: magic, format, kind, target and base digests.
inline constexpr size_t kStreamHeaderSize = kStreamMagic.size() + 2 + 64;
// The largest records a reader accepts: an object (digest and a frame of at
// most kMaxObjectSize bytes, zstd's worst case) and any other record.
inline constexpr uint64_t kMaxObjectRecord = 32 + kMaxObjectSize + kMaxObjectSize / 128 + 1024;
inline constexpr uint64_t kMaxEntryRecord = 64ULL << 20;
enum class StreamKind : uint8_t { kFull = 1, kDelta = 2 };

struct StreamHeader {
  StreamKind kind = StreamKind::kFull;
  Sha256Digest target{};
  Sha256Digest base{};  // zero for a full stream
};

struct Piece {
  enum class Kind : uint8_t { kChunk = 0, kCopy = 1 };
  Kind kind = Kind::kChunk;
  Sha256Digest digest{};  // kChunk
  uint64_t offset = 0;    // kCopy: offset in the base file
  uint64_t size = 0;
};

struct StreamEntry {
  Entry entry;             // for files, entry.chunks is empty: see pieces
  bool meta_only = false;  // delta: same content, apply attributes in place
  bool has_base = false;   // file content copies ranges of the existing file
  uint64_t base_size = 0;  // what that file must look like (size, mtime)
  int64_t base_mtime_sec = 0;
  uint32_t base_mtime_nsec = 0;
  std::vector<Piece> pieces;  // file content, in order
};

struct StreamCounts {
  uint64_t entries = 0, objects = 0, deletes = 0;
  uint64_t object_bytes = 0;    // compressed
  uint64_t content_bytes = 0;   // uncompressed bytes the objects carry
  uint64_t objects_paired = 0;  // of the objects, those checked with the next one
};

// The server side: what a stream consists of, computed up front so any byte
// offset can be served without reading what comes before it.
struct StreamSegment {
  std::string bytes;        // record bytes, sent first
  bool has_object = false;  // then the stored frame of this object
  Sha256Digest object{};
  uint64_t object_size = 0;  // frame bytes
};

struct StreamPlan {
  std::vector<StreamSegment> segments;
  std::vector<uint64_t> starts;  // byte offset of each segment
  uint64_t total = 0;
  StreamCounts counts;
};

// Frame sizes are read from the store; a missing object is kNotFound.
Result<StreamPlan> PlanFullStream(const ObjectStore& store, const Manifest& target,
                                  const Sha256Digest& target_digest);
Result<StreamPlan> PlanDeltaStream(const ObjectStore& store, const Manifest& base,
                                   const Sha256Digest& base_digest, const Manifest& target,
                                   const Sha256Digest& target_digest);

// The client side.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual Status OnHeader(const StreamHeader& h) = 0;
  virtual Status OnEntry(const StreamEntry& e) = 0;
  // The bytes of the next kChunk piece of the last file entry, verified.
  virtual Status OnChunk(const Sha256Digest& digest, std::string_view data) = 0;
  // The same, with the reader's buffer: a sink may take it (leaving any
  // buffer in its place) instead of copying. The reader calls this one.
  virtual Status OnChunkData(const Sha256Digest& digest, std::string&& data) {
    return OnChunk(digest, data);
  }
  virtual Status OnDelete(const std::string& path) = 0;
  virtual Status OnEnd(const StreamCounts& counts) = 0;
};

class StreamReader {
 public:
  explicit StreamReader(StreamSink* sink) : sink_(sink) {}

  // Consumes bytes. Errors are sticky: after one, Feed returns it again.
  Status Feed(std::string_view data);
  // Call at the end of the input: kCorruption if the stream stopped early.
  Status Finish();

  uint64_t offset() const { return offset_; }  // bytes accepted: where to resume
  bool done() const { return done_; }
  const StreamCounts& counts() const { return counts_; }

 private:
  Status Consume(std::string_view* data);
  Status Record(uint8_t tag, std::string_view payload);
  Status ParseEntry(std::string_view payload);
  Status ParseObject(std::string_view payload);
  Status ParseObjects(std::string_view first, std::string_view second);
  Status Unpack(std::string_view payload, const Piece& p, std::string_view what, std::string* out);
  Status Accept(std::string_view payload, std::string* bytes);
  Status Fail(Status s) {
    error_ = s;
    return s;
  }

  StreamSink* sink_;
  Status error_;
  bool header_done_ = false;
  bool done_ = false;
  StreamHeader header_;
  std::string buf_;  // an incomplete record
  uint64_t offset_ = 0;
  StreamCounts counts_;
  std::string last_path_;
  bool any_entry_ = false;
  bool deleting_ = false;
  std::string last_delete_;
  std::vector<Piece> want_;  // kChunk pieces of the current file not yet received
  size_t want_pos_ = 0;
  std::string scratch_, scratch2_;  // decompressed objects (handed to the sink)
  Decompressor dec_;
};

// Encodes one stream entry record's payload (exposed for tests and fuzzing).
std::string EncodeStreamEntry(const StreamEntry& e);

}  // namespace kiln::imager
