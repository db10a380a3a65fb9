#pragma once
// A capture: scan a directory or an archive into a manifest, offer the
// manifest to a CaptureTarget, send only the objects it lacks, commit.
//
// Manifest first: the target answers which objects it is missing, so a
// re-capture of a mostly unchanged tree sends almost nothing, and with the
// stat cache it does not even read the unchanged files. The same flow runs
// against a local ImageStore (LocalCaptureTarget) and against a kiln server
// over HTTP (HttpCaptureTarget, image_client.h), which verifies every object
// it receives.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "imager/catalog.h"
#include "imager/manifest.h"
#include "imager/scan.h"
#include "imager/stat_cache.h"

namespace kiln::imager {

// Compressed frames of objects, each under the digest of its uncompressed bytes.
using ObjectFrames = std::vector<std::pair<Sha256Digest, std::string>>;

// An object's compressed frame in pieces, sent without being joined: a
// stored frame's headers, then its bytes where the scan left them.
struct FramePieces {
  Sha256Digest digest{};
  std::vector<std::string_view> pieces;
};

// What the target answers to an offer.
struct CaptureOffer {
  std::vector<Sha256Digest> missing;  // objects it lacks
  // Set when the offer was committed at once (nothing was missing).
  std::optional<VersionRecord> committed;
};

class CaptureTarget {
 public:
  virtual ~CaptureTarget() = default;
  // Offers the encoded manifest, with the frames of objects the sender
  // expects the target to lack (a re-capture's changed files), so that they
  // need no exchange of their own. Returns the objects still lacking; with
  // commit_if_complete, a target that lacks nothing then commits in the
  // same exchange, and a barely changed tree is captured in one round trip.
  virtual Result<CaptureOffer> Begin(const std::string& manifest, const ObjectFrames& eager,
                                     bool commit_if_complete) = 0;
  // Sends compressed frames of missing objects, in batches of a few MiB.
  // Called from up to concurrent_puts() threads at once.
  virtual Status PutObjects(const ObjectFrames& frames) = 0;
  // PutObjects with frames in pieces. This one joins each frame first.
  virtual Status PutPieces(const std::vector<FramePieces>& frames);
  // How many PutObjects (and Offer) may be in flight together: a remote
  // target checks one batch while the next is on its way.
  virtual int concurrent_puts() const { return 1; }

  // Objects before the manifest, for a first capture, whose objects are
  // sent while its tree is still being read: Open starts the capture
  // (false: this target cannot, offer the manifest first), Offer answers
  // which of the objects it lacks (PutObjects takes those), and Begin then
  // gives the capture its manifest (eager must be empty).
  virtual Result<bool> Open() { return false; }
  virtual Result<std::vector<Sha256Digest>> Offer(const std::vector<Sha256Digest>& digests) {
    (void)digests;
    return Internal("this capture target takes no offers");
  }
  // Makes the version; fails if objects are still missing.
  virtual Result<VersionRecord> Commit() = 0;
  // After a failure: the capture begun or opened is given up, so that what
  // it staged goes now. Best effort.
  virtual void Abort() {}
};

struct CaptureProgress {
  std::string phase;  // "scan", "upload", "commit"
  uint64_t bytes = 0, bytes_total = 0;
  uint64_t files = 0, files_total = 0;
};

struct CaptureOptions {
  std::vector<std::string> excludes;
  bool one_file_system = true;
  bool allow_devices = true;
  std::string stat_cache;  // file path; empty: no stat cache
  // Instead of stat_cache: a cache the caller loaded and saves (kiln-agent
  // saves it after it has reported the capture, off the operator's wait).
  StatCache* cache = nullptr;
  int zstd_level = 3;
  int threads = 2;  // compression threads for the upload
  std::function<void(const CaptureProgress&)> progress;
};

struct CaptureReport {
  VersionRecord version;
  std::string manifest;  // hex digest
  uint64_t entries = 0;
  uint64_t files = 0;
  uint64_t files_hashed = 0;  // read and hashed (the rest came from the stat cache)
  uint64_t bytes = 0;         // file content in the tree
  uint64_t objects = 0;       // distinct objects referenced
  uint64_t objects_sent = 0;
  uint64_t bytes_sent = 0;  // compressed bytes sent
  // The objects went with the manifest and the target committed in that
  // same exchange (see CaptureTarget::Begin).
  bool one_exchange = false;
  // The objects were sent while the tree was read, the manifest last (a
  // first capture: capture_stream.h).
  bool streamed = false;
  // Wall-clock milliseconds per phase: the scan, the manifest's offer (the
  // target answers what it lacks), the upload, the commit. A streamed
  // capture uploads during its scan: its upload is what was left after.
  double scan_ms = 0, offer_ms = 0, upload_ms = 0, commit_ms = 0;
};

Result<CaptureReport> CaptureDirectory(const std::string& dir, const CaptureOptions& opts,
                                       CaptureTarget* target);
// path: a tar or cpio archive, compressed or not ("-": stdin).
Result<CaptureReport> CaptureArchive(const std::string& path, const CaptureOptions& opts,
                                     CaptureTarget* target);

}  // namespace kiln::imager
