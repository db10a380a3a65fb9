#pragma once
// ImageStore: the server's image store. Objects (object_store.h), manifests
// (stored as objects: a version's manifest digest is its object's name) and
// image records (catalog.h) behind one interface for the HTTP handlers.
//
// Captures arrive in three steps (the upload protocol, docs/API.md):
// BeginCapture takes the manifest (and may take objects and commit at once,
// see below) and answers which objects are missing;
// AddObjects receives batches of them, verifying each against its digest
// (a client's claim is never trusted) and writing it to a temporary file;
// CommitCapture makes all of the capture's objects durable with one flush
// and publishes them (ObjectBatch::Commit), checks that every object is
// present, stores the manifest and adds the version. Until the commit a
// capture's objects are invisible temporaries: a crash or an abandoned
// capture leaves nothing under objects/. Objects a pending capture needs
// are safe from gc.
//
// Thread safety: all methods may be called from any thread. Version commits,
// rollbacks, tags and gc are serialised by one mutex.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "imager/capture.h"
#include "imager/catalog.h"
#include "imager/manifest.h"
#include "imager/object_store.h"
#include "imager/stream.h"
#include "imager/stream_plan_cache.h"

namespace kiln::imager {

struct ResolvedVersion {
  ImageRecord image;
  VersionRecord version;
  Sha256Digest digest{};
};

// "web" -> ("web", ""), "web@3" -> ("web", "3").
std::pair<std::string, std::string> SplitImageRef(std::string_view ref);

// The body of an object upload: per object its digest (32 bytes), the
// frame's length (varint) and the zstd frame.
std::string EncodeObjectBatch(const std::vector<std::pair<Sha256Digest, std::string>>& frames);
// What goes before one object's frame in that body (digest, length): for a
// sender that sends the frames in place instead of joining them.
std::string EncodeObjectHead(const Sha256Digest& digest, uint64_t frame_size);

class ImageStore {
 public:
  // dir is DATA/images. Without a catalog, a FileCatalog in dir/catalog.
  static Result<std::unique_ptr<ImageStore>> Open(const std::string& dir,
                                                  std::unique_ptr<ImageCatalog> catalog = nullptr);

  ObjectStore& objects() { return *objects_; }
  ImageCatalog& catalog() { return *catalog_; }

  // version: "" or "current" (the current pointer), "latest", a number, or a tag.
  Result<ResolvedVersion> Resolve(const std::string& name, std::string_view version);
  Result<std::shared_ptr<const Manifest>> LoadManifest(const Sha256Digest& digest);
  // The plan of target's stream, a delta from base when base is given,
  // shared with every other deploy of the same stream (stream_plan_cache.h);
  // a gc makes the plans made before it be made again.
  Result<std::shared_ptr<const StreamPlan>> PlanStream(const ResolvedVersion* base,
                                                       const ResolvedVersion& target);
  size_t plans_made() const { return plans_.made(); }
  // Makes every stream plan be made again: a stream found an object that
  // is gone or not the size its plan says (damage, or a gc racing it).
  void ForgetStreamPlans() { ++plan_generation_; }

  // The upload protocol.
  struct Begun {
    std::string id;
    Sha256Digest manifest{};
    std::vector<Sha256Digest> missing;
    std::optional<VersionRecord> version;  // committed at once
  };
  // objects: records as AddObjects takes them, sent with the manifest (a
  // re-capture's changed files); verified and staged the same way, and not
  // asked for. With commit, a capture that then lacks nothing is committed
  // at once (Begun::version). On any error nothing of it stays.
  Result<Begun> BeginCapture(const std::string& name, std::string manifest_bytes, std::string note,
                             std::string source, std::string_view objects = {},
                             bool commit = false);
  // A capture whose objects come before its manifest: a first capture
  // sends them while its tree is still being read. OfferObjects answers
  // which of the offered objects the store lacks (AddObjects then takes
  // them; all offered ones are kept from gc until the capture ends), and
  // the manifest comes last with AddCaptureManifest, which answers as
  // BeginCapture does.
  Result<std::string> OpenCapture(const std::string& name, std::string note, std::string source);
  Result<std::vector<Sha256Digest>> OfferObjects(const std::string& id,
                                                 const std::vector<Sha256Digest>& digests);
  Result<Begun> AddCaptureManifest(const std::string& id, std::string manifest_bytes,
                                   bool commit = false);
  // Returns the number of objects stored.
  Result<size_t> AddObjects(const std::string& id, std::string_view body);
  Result<VersionRecord> CommitCapture(const std::string& id);
  // Ends a capture without a version: its staged objects are removed and
  // what it held from gc is free again (a client that failed says so
  // instead of leaving it to expire).
  Status AbortCapture(const std::string& id);

  // Adds a version whose objects are all stored already.
  Result<VersionRecord> AddVersion(const std::string& name, const std::string& manifest_bytes,
                                   const std::string& note, const std::string& source);

  // Moves the current pointer to `to`, or to the version before the current
  // one. Nothing else changes.
  Result<ImageRecord> Rollback(const std::string& name, std::optional<std::string> to);
  Result<ImageRecord> Tag(const std::string& name, const std::string& tag,
                          std::string_view version);
  Result<ImageRecord> Untag(const std::string& name, const std::string& tag);

  struct GcReport {
    uint64_t versions_dropped = 0, objects_removed = 0, bytes_freed = 0, objects_kept = 0;
  };
  // With keep: each image keeps its newest `keep` versions, its current and
  // tagged ones; the others are dropped from its record. Then every object
  // that no kept version (and no pending capture) references is removed.
  Result<GcReport> Gc(std::optional<int> keep);

  // The objects a version needs (manifest included), with stored sizes.
  Result<std::vector<std::pair<Sha256Digest, uint64_t>>> ObjectsOf(const std::string& name,
                                                                   std::string_view version);

 private:
  ImageStore() = default;
  void ExpireSessions();
  void CacheManifest(const Sha256Digest& digest, std::shared_ptr<const Manifest> m);
  // The objects of image name's newest version (empty when it has none).
  // REQUIRES: mu_ held, so that gc cannot drop them meanwhile.
  std::shared_ptr<const DigestSet> ObjectsOfNewest(const std::string& name);
  // AddVersion's work on a decoded manifest; objects in present are known
  // to be stored and not looked up.
  Result<VersionRecord> AddManifest(const std::string& name, const std::string& manifest_bytes,
                                    std::shared_ptr<const Manifest> m, const DigestSet& present,
                                    const std::string& note, const std::string& source);
  std::unique_ptr<ObjectStore> objects_;
  std::unique_ptr<ImageCatalog> catalog_;
  std::mutex mu_;  // commits, rollbacks, tags, gc, sessions

  // A capture's verified objects, written but not yet published. Its mutex
  // serialises the uploads and the commit of one capture.
  struct Upload {
    explicit Upload(ObjectStore* store) : batch(store) {}
    // Uploads share it (a batch takes adds from many threads); the
    // commit and a discarded start take it alone.
    std::shared_mutex mu;
    ObjectBatch batch;
  };
  struct Session {
    std::string image, note, source;
    bool open = false;  // opened by OpenCapture, its manifest not yet given
    std::shared_ptr<const std::string> manifest_bytes;
    std::shared_ptr<const Manifest> manifest;  // decoded once, at the start
    Sha256Digest digest{};
    DigestSet needed;
    // Needed objects of the image's newest version when the capture began:
    // known to be stored, so neither the start nor the commit looks them up.
    std::shared_ptr<const DigestSet> present = std::make_shared<DigestSet>();
    // The manifest's compressed frame, made on a thread of its own while the
    // objects are uploaded (the commit stages it with them).
    std::shared_future<std::string> manifest_frame;
    std::chrono::steady_clock::time_point created;
    std::shared_ptr<Upload> upload;
  };
  std::map<std::string, Session> sessions_;
  // Gives s its manifest: digest, bytes, the decoded form and the frame
  // (compressed on a thread of its own while objects are uploaded).
  static void SetManifest(Session* s, std::string manifest_bytes, Manifest m);
  // The manifest's objects that s does not know are stored (not in the
  // image's newest version), each once, in the manifest's order; records
  // them as needed. REQUIRES: mu_ held.
  std::vector<Sha256Digest> UnknownObjects(Session* s);
  // Of digests, those neither staged in upload nor stored.
  std::vector<Sha256Digest> Lacking(const std::vector<Sha256Digest>& digests,
                                    const Upload& upload) const;
  // ObjectsOfNewest's last answers: image -> (manifest digest, its objects).
  static constexpr size_t kNewestObjectsCached = 16;
  std::map<std::string, std::pair<Sha256Digest, std::shared_ptr<const DigestSet>>> newest_objects_;

  std::mutex cache_mu_;
  std::list<std::pair<Sha256Digest, std::shared_ptr<const Manifest>>> manifest_cache_;

  StreamPlanCache plans_;
  // Plans made under an older generation are made again: advanced after
  // each gc's removals and by ForgetStreamPlans.
  std::atomic<uint64_t> plan_generation_{0};
};

// Captures straight into a local store (tests, tools): objects are trusted
// because this process hashed them.
class LocalCaptureTarget : public CaptureTarget {
 public:
  LocalCaptureTarget(ImageStore* store, std::string image, std::string note, std::string source)
      : store_(store),
        image_(std::move(image)),
        note_(std::move(note)),
        source_(std::move(source)) {}
  Result<CaptureOffer> Begin(const std::string& manifest, const ObjectFrames& eager,
                             bool commit_if_complete) override;
  Status PutObjects(const ObjectFrames& frames) override;
  // Objects may come before the manifest (the batch holds them).
  Result<bool> Open() override { return true; }
  Result<std::vector<Sha256Digest>> Offer(const std::vector<Sha256Digest>& digests) override;
  Result<VersionRecord> Commit() override;

 private:
  bool Holds(const Sha256Digest& d) const;  // in the batch or stored
  ImageStore* store_;
  std::string image_, note_, source_, manifest_;
  std::unique_ptr<ObjectBatch> batch_;  // published by Commit
};

}  // namespace kiln::imager
