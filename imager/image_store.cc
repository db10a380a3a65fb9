#include "imager/image_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <set>
#include <system_error>
#include <thread>
#include <tuple>

#include "common/log.h"
#include "common/sha256_two.h"
#include "common/strings.h"
#include "imager/codec.h"
#include "imager/path_util.h"
#include "imager/zstd_util.h"

namespace kiln::imager {
namespace {

constexpr size_t kManifestCacheSize = 8;
constexpr auto kSessionLifetime = std::chrono::hours(24);

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

// Uploads smaller than this are written by one thread (see StageRecords).
constexpr size_t kOneWriterMaxBytes = 2 << 20;

// Threads that verify one object upload: the cores, up to four.
size_t VerifyThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return std::clamp<size_t>(n == 0 ? 1 : n, 1, 4);
}

}  // namespace

std::pair<std::string, std::string> SplitImageRef(std::string_view ref) {
  size_t at = ref.find('@');
  if (at == std::string_view::npos) return {std::string(ref), ""};
  return {std::string(ref.substr(0, at)), std::string(ref.substr(at + 1))};
}

std::string EncodeObjectHead(const Sha256Digest& digest, uint64_t frame_size) {
  ByteWriter w;
  w.Digest(digest);
  w.Varint(frame_size);
  return w.Take();
}

std::string EncodeObjectBatch(const std::vector<std::pair<Sha256Digest, std::string>>& frames) {
  std::string body;
  for (const auto& [d, f] : frames) {
    body += EncodeObjectHead(d, f.size());
    body += f;
  }
  return body;
}

Result<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& dir,
                                                     std::unique_ptr<ImageCatalog> catalog) {
  std::unique_ptr<ImageStore> s(new ImageStore());
  KILN_ASSIGN_OR_RETURN(s->objects_, ObjectStore::Open(dir));
  if (!catalog) {
    KILN_ASSIGN_OR_RETURN(auto fc, FileCatalog::Open(dir + "/catalog"));
    catalog = std::move(fc);
  }
  s->catalog_ = std::move(catalog);
  return s;
}

Result<ResolvedVersion> ImageStore::Resolve(const std::string& name, std::string_view version) {
  KILN_RETURN_IF_ERROR(ValidateImageName(name));
  KILN_ASSIGN_OR_RETURN(ImageRecord rec, catalog_->Get(name));
  int v = 0;
  if (version.empty() || version == "current") {
    v = rec.current;
    if (v == 0) return NotFound(fmt::format("image \"{}\" has no current version", name));
  } else if (version == "latest") {
    if (rec.versions.empty()) return NotFound(fmt::format("image \"{}\" has no versions", name));
    v = rec.versions.back().version;
  } else if (auto n = ParseUint(version)) {
    v = static_cast<int>(*n);
  } else {
    auto t = rec.tags.find(std::string(version));
    if (t == rec.tags.end())
      return NotFound(fmt::format("image \"{}\" has no version or tag \"{}\"", name, version));
    v = t->second;
  }
  const VersionRecord* vr = rec.Find(v);
  if (!vr) return NotFound(fmt::format("image \"{}\" has no version {}", name, v));
  KILN_ASSIGN_OR_RETURN(Sha256Digest d, ParseDigest(vr->manifest));
  ResolvedVersion out{rec, *vr, d};
  return out;
}

Result<std::shared_ptr<const Manifest>> ImageStore::LoadManifest(const Sha256Digest& digest) {
  {
    std::lock_guard lock(cache_mu_);
    for (auto it = manifest_cache_.begin(); it != manifest_cache_.end(); ++it) {
      if (it->first == digest) {
        manifest_cache_.splice(manifest_cache_.begin(), manifest_cache_, it);
        return it->second;
      }
    }
  }
  KILN_ASSIGN_OR_RETURN(std::string bytes, objects_->Read(digest));
  auto m = DecodeManifest(bytes);
  if (!m.ok()) return m.status().WithContext("manifest " + ToHex(digest));
  auto shared = std::make_shared<const Manifest>(std::move(*m));
  CacheManifest(digest, shared);
  return shared;
}

Result<std::shared_ptr<const StreamPlan>> ImageStore::PlanStream(const ResolvedVersion* base,
                                                                 const ResolvedVersion& target) {
  Sha256Digest from{};
  if (base) from = base->digest;
  return plans_.Get(from, target.digest, plan_generation_.load(), [&]() -> Result<StreamPlan> {
    KILN_ASSIGN_OR_RETURN(auto tm, LoadManifest(target.digest));
    if (!base) return PlanFullStream(*objects_, *tm, target.digest);
    KILN_ASSIGN_OR_RETURN(auto bm, LoadManifest(base->digest));
    return PlanDeltaStream(*objects_, *bm, base->digest, *tm, target.digest);
  });
}

void ImageStore::CacheManifest(const Sha256Digest& digest, std::shared_ptr<const Manifest> m) {
  std::lock_guard lock(cache_mu_);
  for (const auto& [d, cached] : manifest_cache_)
    if (d == digest) return;
  manifest_cache_.emplace_front(digest, std::move(m));
  if (manifest_cache_.size() > kManifestCacheSize) manifest_cache_.pop_back();
}

std::shared_ptr<const DigestSet> ImageStore::ObjectsOfNewest(const std::string& name) {
  static const auto kNone = std::make_shared<const DigestSet>();
  auto rec = catalog_->Get(name);
  if (!rec.ok() || rec->versions.empty()) return kNone;
  auto d = ParseDigest(rec->versions.back().manifest);
  if (!d.ok()) return kNone;
  // Successive captures of one image ask for the same version's set.
  auto cached = newest_objects_.find(name);
  if (cached != newest_objects_.end() && cached->second.first == *d) return cached->second.second;
  auto m = LoadManifest(*d);
  if (!m.ok()) return kNone;  // then every object is looked up
  auto out = std::make_shared<DigestSet>();
  out->reserve((*m)->entries.size());
  for (const auto& e : (*m)->entries)
    for (const auto& c : e.chunks) out->insert(c.digest);
  if (newest_objects_.size() >= kNewestObjectsCached) newest_objects_.clear();
  newest_objects_[name] = {*d, out};
  return out;
}

void ImageStore::ExpireSessions() {
  auto now = std::chrono::steady_clock::now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second.created > kSessionLifetime)
      it = sessions_.erase(it);
    else
      ++it;
  }
}

namespace {

// One object upload's records: (digest, compressed frame) pairs.
using Records = std::vector<std::pair<Sha256Digest, std::string_view>>;

Result<Records> ParseRecords(std::string_view body) {
  Records records;
  ByteReader r(body);
  while (!r.done()) {
    Sha256Digest d;
    uint64_t len;
    std::string_view frame;
    if (!r.Digest(&d) || !r.Bounded(body.size(), &len) || !r.Raw(len, &frame))
      return InvalidArgument(
          fmt::format("object upload: malformed record {} at byte {}", records.size(), r.pos()));
    records.emplace_back(d, frame);
  }
  return records;
}

Status CheckNeeded(const Records& records, const DigestSet& needed, const std::string& id) {
  for (const auto& [d, frame] : records)
    if (!needed.count(d))
      return InvalidArgument(fmt::format(
          "object {} is not used by the manifest of capture {} (nor offered to it)", ToHex(d), id));
  return Status::Ok();
}

// Verifies and stages the records into batch, stopping at the first that
// fails to verify. What was staged before it stays: every staged object
// was verified, and uploads of one capture run at once (a client sends
// the next batch while the server checks this one), so there is no
// "before this request" to go back to.
Status StageRecords(const Records& records, ObjectBatch* batch) {
  uint64_t bytes = 0;
  for (const auto& rec : records) bytes += rec.second.size();
  // Decompressing and hashing is most of an upload's cost, so every core
  // takes a share of the records. A small upload (a re-capture's changed
  // files) is written by this thread alone, in order, while helpers check
  // ahead, and without starting each file's writeback: creating the files
  // is then most of its time (measured when all temporaries shared one
  // directory, whose lock the creating threads mostly waited for; they are
  // sharded now), and a writeback started per file
  // cost 0.3 ms each (53 objects: 6-8 ms of files instead of 11-13, and
  // 15 ms less of writeback). A large one is written by whichever thread
  // checked each record, each file's writeback started at once, so that a
  // write waiting for the disk's queue holds up no other and the commit's
  // flush finds most of it written (one writer made a 1.2 GB capture
  // slower on disk, though not on tmpfs).
  const size_t n = records.size();
  const bool one_writer = bytes < kOneWriterMaxBytes;
  const bool early_writeback = !one_writer;
  // Where the CPU hashes two at once, records are taken in pairs (unit u
  // is records 2u and 2u+1) and checked together (ObjectBatch::VerifyTwo);
  // elsewhere one at a time.
  const size_t per = Sha256TwoInterleaved() ? 2 : 1;
  const size_t units = (n + per - 1) / per;
  std::vector<std::atomic<bool>> taken(units);
  std::vector<Status> checked(n);
  std::vector<char> done(n, 0), written(n, 0);
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::atomic<bool> stop{false};
  auto check = [&](size_t u, bool write) {
    const size_t i = u * per, count = std::min(per, n - i);
    Status s[2];
    if (count == 2)
      std::tie(s[0], s[1]) = batch->VerifyTwo(records[i].first, records[i].second,
                                              records[i + 1].first, records[i + 1].second);
    else
      s[0] = batch->Verify(records[i].first, records[i].second);
    bool wrote[2] = {false, false};
    // In order, and nothing staged after a record that failed (the caller
    // stops at it).
    for (size_t k = 0; k < count; ++k) {
      if (s[k].ok() && write) {
        s[k] = batch->AddTrusted(records[i + k].first, records[i + k].second, early_writeback);
        wrote[k] = true;
      }
      if (!s[k].ok()) {
        stop = true;
        break;
      }
    }
    std::lock_guard lock(done_mu);
    for (size_t k = 0; k < count; ++k) {
      checked[i + k] = std::move(s[k]);
      written[i + k] = wrote[k];
      done[i + k] = 1;
    }
    done_cv.notify_all();
  };
  std::atomic<size_t> next{0};
  auto help = [&] {
    for (size_t u = next++; u < units && !stop; u = next++)
      if (!taken[u].exchange(true)) check(u, !one_writer);
  };
  size_t helpers = std::min<size_t>(units, VerifyThreads() - 1);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < helpers; ++t) threads.emplace_back(help);
  if (!one_writer) help();
  Status first_error;
  for (size_t i = 0; i < n && first_error.ok(); ++i) {
    if (!taken[i / per].exchange(true)) check(i / per, true);
    bool was_written;
    {
      std::unique_lock lock(done_mu);
      done_cv.wait(lock, [&] { return done[i] != 0; });
      first_error = checked[i];
      was_written = written[i];
    }
    if (first_error.ok() && !was_written)
      first_error = batch->AddTrusted(records[i].first, records[i].second, early_writeback);
  }
  stop = true;
  for (auto& t : threads) t.join();
  return first_error;
}

}  // namespace

Result<ImageStore::Begun> ImageStore::BeginCapture(const std::string& name,
                                                   std::string manifest_bytes, std::string note,
                                                   std::string source, std::string_view objects,
                                                   bool commit) {
  KILN_RETURN_IF_ERROR(ValidateImageName(name));
  KILN_ASSIGN_OR_RETURN(Records records, ParseRecords(objects));
  auto upload = std::make_shared<Upload>(objects_.get());
  // The objects sent with the manifest (a re-capture's changed files) are
  // checked and written while this thread decodes the manifest: the two
  // took about as long as each other. Whether the manifest uses them is
  // known only after, so an upload with one it does not use is written and
  // then taken back.
  auto stage = [&] {
    std::lock_guard lock(upload->mu);
    return StageRecords(records, &upload->batch);
  };
  std::future<Status> staged;
  if (!records.empty()) {
    try {
      staged = std::async(std::launch::async, stage);
    } catch (const std::system_error&) {  // no thread to be had: after the decode
      staged = std::async(std::launch::deferred, stage);
    }
  }
  auto discard = [&](Status why) {
    if (staged.valid()) (void)staged.get();
    std::lock_guard lock(upload->mu);
    upload->batch.Truncate(0);
    return why;
  };
  auto m = DecodeManifest(manifest_bytes);
  if (!m.ok()) return discard(InvalidArgument("uploaded " + m.status().message()));
  Session s;
  s.image = name;
  s.note = std::move(note);
  s.source = std::move(source);
  s.created = std::chrono::steady_clock::now();
  s.upload = upload;
  SetManifest(&s, std::move(manifest_bytes), std::move(*m));
  Begun b;
  b.manifest = s.digest;
  b.id = RandomHex(12);
  std::vector<Sha256Digest> unknown;  // in the manifest's order
  {
    // Registered under mu_ with the objects it found present, so gc cannot
    // remove them in between (see UnknownObjects).
    std::lock_guard lock(mu_);
    unknown = UnknownObjects(&s);
    if (Status used = CheckNeeded(records, s.needed, b.id); !used.ok()) return discard(used);
    ExpireSessions();
    sessions_.emplace(b.id, std::move(s));
  }
  auto drop = [&](Status why) {
    std::lock_guard lock(mu_);
    sessions_.erase(b.id);  // its staged objects go with its last reference
    return why;
  };
  if (staged.valid())
    if (Status st = staged.get(); !st.ok()) return drop(st);
  b.missing = Lacking(unknown, *upload);
  if (commit && b.missing.empty()) {
    auto v = CommitCapture(b.id);
    if (!v.ok()) return drop(v.status());
    b.version = std::move(*v);
  }
  return b;
}

void ImageStore::SetManifest(Session* s, std::string manifest_bytes, Manifest m) {
  s->digest = Sha256Of(manifest_bytes);
  s->manifest_bytes = std::make_shared<const std::string>(std::move(manifest_bytes));
  s->manifest = std::make_shared<const Manifest>(std::move(m));
  auto compress = [bytes = s->manifest_bytes] {
    std::string frame;
    Compressor().Compress(*bytes, &frame);
    return frame;
  };
  try {
    s->manifest_frame = std::async(std::launch::async, compress).share();
  } catch (const std::system_error&) {  // no thread to be had: at the commit, then
    s->manifest_frame = std::async(std::launch::deferred, compress).share();
  }
}

std::vector<Sha256Digest> ImageStore::UnknownObjects(Session* s) {
  // The objects of the image's newest version are there (a version is
  // committed only with all of its objects, and gc removes none that a
  // version or a pending capture needs): a re-capture, which shares most
  // of them, need not look each one up.
  s->present = ObjectsOfNewest(s->image);
  s->needed.reserve(s->needed.size() + s->manifest->entries.size());
  std::vector<Sha256Digest> unknown;
  DigestSet seen;
  for (const auto& e : s->manifest->entries)
    for (const auto& c : e.chunks) {
      s->needed.insert(c.digest);
      if (!s->present->count(c.digest) && seen.insert(c.digest).second) unknown.push_back(c.digest);
    }
  return unknown;
}

std::vector<Sha256Digest> ImageStore::Lacking(const std::vector<Sha256Digest>& digests,
                                              const Upload& upload) const {
  std::vector<Sha256Digest> out;
  for (const auto& d : digests)
    if (!upload.batch.Contains(d) && !objects_->Has(d)) out.push_back(d);
  return out;
}

Result<std::string> ImageStore::OpenCapture(const std::string& name, std::string note,
                                            std::string source) {
  KILN_RETURN_IF_ERROR(ValidateImageName(name));
  Session s;
  s.image = name;
  s.open = true;
  s.note = std::move(note);
  s.source = std::move(source);
  s.created = std::chrono::steady_clock::now();
  s.upload = std::make_shared<Upload>(objects_.get());
  std::string id = RandomHex(12);
  std::lock_guard lock(mu_);
  ExpireSessions();
  sessions_.emplace(id, std::move(s));
  return id;
}

Result<std::vector<Sha256Digest>> ImageStore::OfferObjects(
    const std::string& id, const std::vector<Sha256Digest>& digests) {
  std::shared_ptr<Upload> upload;
  std::vector<Sha256Digest> unique;  // each once
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end())
      return NotFound(fmt::format("no capture \"{}\" in progress (expired?)", id));
    Session& s = it->second;
    if (!s.open)
      return FailedPrecondition(
          fmt::format("capture {} has its manifest: it asks for what it lacks", id));
    // Needed from now on: what is stored stays until the capture ends.
    DigestSet seen;
    for (const auto& d : digests) {
      s.needed.insert(d);
      if (seen.insert(d).second) unique.push_back(d);
    }
    upload = s.upload;
  }
  return Lacking(unique, *upload);
}

Result<ImageStore::Begun> ImageStore::AddCaptureManifest(const std::string& id,
                                                         std::string manifest_bytes, bool commit) {
  auto m = DecodeManifest(manifest_bytes);
  if (!m.ok()) return InvalidArgument("uploaded " + m.status().message());
  Begun b;
  b.id = id;
  std::shared_ptr<Upload> upload;
  std::vector<Sha256Digest> unknown;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end())
      return NotFound(fmt::format("no capture \"{}\" in progress (expired?)", id));
    Session& s = it->second;
    if (!s.open) return FailedPrecondition(fmt::format("capture {} has its manifest already", id));
    SetManifest(&s, std::move(manifest_bytes), std::move(*m));
    s.open = false;
    unknown = UnknownObjects(&s);
    b.manifest = s.digest;
    upload = s.upload;
  }
  // Staged by this capture's uploads, or stored: offered objects were
  // kept from gc since their offer.
  b.missing = Lacking(unknown, *upload);
  if (commit && b.missing.empty()) {
    auto v = CommitCapture(id);
    if (!v.ok()) return v.status();
    b.version = std::move(*v);
  }
  return b;
}

Result<size_t> ImageStore::AddObjects(const std::string& id, std::string_view body) {
  KILN_ASSIGN_OR_RETURN(Records records, ParseRecords(body));
  std::shared_ptr<Upload> upload;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end())
      return NotFound(fmt::format("no capture \"{}\" in progress (expired?)", id));
    KILN_RETURN_IF_ERROR(CheckNeeded(records, it->second.needed, id));
    upload = it->second.upload;
  }
  std::shared_lock upload_lock(upload->mu);  // shared with this capture's other uploads
  KILN_RETURN_IF_ERROR(StageRecords(records, &upload->batch));
  return records.size();
}

Result<VersionRecord> ImageStore::CommitCapture(const std::string& id) {
  std::string image, note, source;
  Sha256Digest digest{};
  std::shared_ptr<const std::string> bytes;
  std::shared_ptr<const Manifest> manifest;
  std::shared_ptr<const DigestSet> present;
  std::shared_ptr<Upload> upload;
  std::shared_future<std::string> frame;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return NotFound(fmt::format("no capture \"{}\" in progress", id));
    const Session& s = it->second;
    if (s.open)
      return FailedPrecondition(fmt::format("capture {} has no manifest yet: send it first", id));
    std::tie(image, note, source) = std::tie(s.image, s.note, s.source);
    bytes = s.manifest_bytes;
    digest = s.digest;
    manifest = s.manifest;
    present = s.present;
    upload = s.upload;
    frame = s.manifest_frame;
  }
  {
    // One flush for every object of the capture, then they become visible.
    // The manifest is an object too: staged with them, it shares their
    // flush (AddManifest then finds it stored).
    std::lock_guard upload_lock(upload->mu);
    if (!objects_->Has(digest)) KILN_RETURN_IF_ERROR(upload->batch.AddTrusted(digest, frame.get()));
    KILN_RETURN_IF_ERROR(upload->batch.Commit());
  }
  // The session's needed objects stay safe from gc until it is erased, so
  // those of the newest version at its start are still there.
  auto v = AddManifest(image, *bytes, manifest, *present, note, source);
  if (v.ok()) {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
  }
  return v;
}

Status ImageStore::AbortCapture(const std::string& id) {
  std::lock_guard lock(mu_);
  // Its staged objects go with the batch's last reference: now, or when an
  // upload still running ends.
  if (sessions_.erase(id) == 0) return NotFound(fmt::format("no capture \"{}\" in progress", id));
  return Status::Ok();
}

Result<VersionRecord> ImageStore::AddVersion(const std::string& name,
                                             const std::string& manifest_bytes,
                                             const std::string& note, const std::string& source) {
  KILN_RETURN_IF_ERROR(ValidateImageName(name));
  auto m = DecodeManifest(manifest_bytes);
  if (!m.ok()) return InvalidArgument(m.status().message());
  return AddManifest(name, manifest_bytes, std::make_shared<const Manifest>(std::move(*m)), {},
                     note, source);
}

Result<VersionRecord> ImageStore::AddManifest(const std::string& name,
                                              const std::string& manifest_bytes,
                                              std::shared_ptr<const Manifest> m,
                                              const DigestSet& present, const std::string& note,
                                              const std::string& source) {
  KILN_RETURN_IF_ERROR(ValidateImageName(name));
  std::lock_guard lock(mu_);
  std::vector<std::string> missing;
  size_t missing_count = 0;
  DigestSet checked;
  for (const auto& e : m->entries) {
    for (const auto& c : e.chunks) {
      if (present.count(c.digest) || !checked.insert(c.digest).second || objects_->Has(c.digest))
        continue;
      if (missing.size() < 3) missing.push_back(ToHex(c.digest) + " (" + DisplayPath(e.path) + ")");
      ++missing_count;
    }
  }
  if (missing_count)
    return FailedPrecondition(
        fmt::format("{} objects are missing, e.g. {}", missing_count, fmt::join(missing, ", ")));
  KILN_ASSIGN_OR_RETURN(Sha256Digest d, objects_->Put(manifest_bytes));
  // The next capture of this image starts from it.
  CacheManifest(d, m);
  VersionRecord vr;
  vr.manifest = ToHex(d);
  vr.created = Now();
  vr.note = note;
  vr.source = source;
  vr.entries = m->entries.size();
  vr.bytes = m->TotalFileBytes();
  KILN_ASSIGN_OR_RETURN(ImageRecord rec, catalog_->Update(name, [&](ImageRecord& r, bool) {
    vr.version = r.next++;
    r.versions.push_back(vr);
    r.current = vr.version;
    return Status::Ok();
  }));
  log::Info("imager", "version added",
            {{"image", name},
             {"version", vr.version},
             {"manifest", vr.manifest},
             {"entries", vr.entries}});
  return vr;
}

Result<ImageRecord> ImageStore::Rollback(const std::string& name, std::optional<std::string> to) {
  std::lock_guard lock(mu_);
  int target = 0;
  if (to) {
    KILN_ASSIGN_OR_RETURN(ResolvedVersion rv, Resolve(name, *to));
    target = rv.version.version;
  }
  return catalog_->Update(name, [&](ImageRecord& r, bool exists) -> Status {
    if (!exists) return NotFound(fmt::format("no image named \"{}\"", name));
    if (!to) {
      for (const auto& v : r.versions)
        if (v.version < r.current) target = v.version;
      if (target == 0)
        return FailedPrecondition(
            fmt::format("image \"{}\" has no version before {}", name, r.current));
    }
    r.current = target;
    return Status::Ok();
  });
}

Result<ImageRecord> ImageStore::Tag(const std::string& name, const std::string& tag,
                                    std::string_view version) {
  KILN_RETURN_IF_ERROR(ValidateTagName(tag));
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(ResolvedVersion rv, Resolve(name, version));
  return catalog_->Update(name, [&](ImageRecord& r, bool) {
    r.tags[tag] = rv.version.version;
    return Status::Ok();
  });
}

Result<ImageRecord> ImageStore::Untag(const std::string& name, const std::string& tag) {
  std::lock_guard lock(mu_);
  return catalog_->Update(name, [&](ImageRecord& r, bool exists) -> Status {
    if (!exists) return NotFound(fmt::format("no image named \"{}\"", name));
    if (!r.tags.erase(tag))
      return NotFound(fmt::format("image \"{}\" has no tag \"{}\"", name, tag));
    return Status::Ok();
  });
}

Result<ImageStore::GcReport> ImageStore::Gc(std::optional<int> keep) {
  std::lock_guard lock(mu_);
  GcReport rep;
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, catalog_->List());
  DigestSet live;
  for (const auto& name : names) {
    ImageRecord rec;
    if (keep) {
      KILN_ASSIGN_OR_RETURN(rec, catalog_->Update(name, [&](ImageRecord& r, bool) {
        std::set<int> kept;
        kept.insert(r.current);
        for (const auto& [t, v] : r.tags) kept.insert(v);
        int n = 0;
        for (auto it = r.versions.rbegin(); it != r.versions.rend() && n < *keep; ++it, ++n)
          kept.insert(it->version);
        size_t before = r.versions.size();
        r.versions.erase(
            std::remove_if(r.versions.begin(), r.versions.end(),
                           [&](const VersionRecord& v) { return !kept.count(v.version); }),
            r.versions.end());
        rep.versions_dropped += before - r.versions.size();
        return Status::Ok();
      }));
    } else {
      KILN_ASSIGN_OR_RETURN(rec, catalog_->Get(name));
    }
    for (const auto& v : rec.versions) {
      KILN_ASSIGN_OR_RETURN(Sha256Digest d, ParseDigest(v.manifest));
      live.insert(d);
      auto m = LoadManifest(d);
      // A damaged manifest must stop gc: deleting on partial knowledge
      // would remove objects a version still needs.
      if (!m.ok())
        return m.status().WithContext(fmt::format("gc: image {} version {}", name, v.version));
      for (const auto& e : (*m)->entries)
        for (const auto& c : e.chunks) live.insert(c.digest);
    }
  }
  ExpireSessions();
  for (const auto& [id, s] : sessions_) live.insert(s.needed.begin(), s.needed.end());
  std::vector<std::pair<Sha256Digest, uint64_t>> dead;
  KILN_RETURN_IF_ERROR(objects_->ForEach([&](const Sha256Digest& d, uint64_t size) {
    if (live.count(d))
      ++rep.objects_kept;
    else
      dead.emplace_back(d, size);
  }));
  // Stream plans made until now may name removed objects: once the
  // removals are over (or stopped half way), they are made again.
  struct Advance {
    std::atomic<uint64_t>* generation;
    ~Advance() { ++*generation; }
  } advance{&plan_generation_};
  for (const auto& [d, size] : dead) {
    KILN_RETURN_IF_ERROR(objects_->Remove(d));
    ++rep.objects_removed;
    rep.bytes_freed += size;
  }
  KILN_RETURN_IF_ERROR(objects_->CompactPacks());
  log::Info("imager", "gc",
            {{"versions_dropped", rep.versions_dropped},
             {"objects_removed", rep.objects_removed},
             {"bytes_freed", rep.bytes_freed}});
  return rep;
}

Result<std::vector<std::pair<Sha256Digest, uint64_t>>> ImageStore::ObjectsOf(
    const std::string& name, std::string_view version) {
  KILN_ASSIGN_OR_RETURN(ResolvedVersion rv, Resolve(name, version));
  KILN_ASSIGN_OR_RETURN(auto m, LoadManifest(rv.digest));
  std::vector<std::pair<Sha256Digest, uint64_t>> out;
  DigestSet seen;
  out.emplace_back(rv.digest, 0);
  seen.insert(rv.digest);
  for (const auto& e : m->entries)
    for (const auto& c : e.chunks)
      if (seen.insert(c.digest).second) out.emplace_back(c.digest, c.size);
  return out;
}

Result<CaptureOffer> LocalCaptureTarget::Begin(const std::string& manifest,
                                               const ObjectFrames& eager, bool commit_if_complete) {
  manifest_ = manifest;
  KILN_ASSIGN_OR_RETURN(Manifest m, DecodeManifest(manifest));
  KILN_RETURN_IF_ERROR(PutObjects(eager));
  DigestSet seen;
  for (const auto& f : eager) seen.insert(f.first);
  CaptureOffer offer;
  for (const auto& e : m.entries)
    for (const auto& c : e.chunks)
      if (seen.insert(c.digest).second && !Holds(c.digest)) offer.missing.push_back(c.digest);
  if (commit_if_complete && offer.missing.empty()) {
    KILN_ASSIGN_OR_RETURN(offer.committed, Commit());
  }
  return offer;
}

bool LocalCaptureTarget::Holds(const Sha256Digest& d) const {
  return (batch_ && batch_->Contains(d)) || store_->objects().Has(d);
}

Result<std::vector<Sha256Digest>> LocalCaptureTarget::Offer(
    const std::vector<Sha256Digest>& digests) {
  std::vector<Sha256Digest> missing;
  for (const auto& d : digests)
    if (!Holds(d)) missing.push_back(d);
  return missing;
}

Status LocalCaptureTarget::PutObjects(const ObjectFrames& frames) {
  if (frames.empty()) return Status::Ok();
  if (!batch_) batch_ = std::make_unique<ObjectBatch>(&store_->objects());
  for (const auto& [d, f] : frames) KILN_RETURN_IF_ERROR(batch_->AddTrusted(d, f));
  return Status::Ok();
}

Result<VersionRecord> LocalCaptureTarget::Commit() {
  if (batch_) KILN_RETURN_IF_ERROR(batch_->Commit());
  return store_->AddVersion(image_, manifest_, note_, source_);
}

}  // namespace kiln::imager
