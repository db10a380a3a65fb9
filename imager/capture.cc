#include "imager/capture.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/file_util.h"
#include "imager/capture_flow.h"
#include "imager/capture_stream.h"
#include "imager/chunker.h"
#include "imager/zstd_util.h"

namespace kiln::imager {
namespace {

constexpr uint64_t kBatchBytes = 8 * 1024 * 1024;
// At most this many bytes of objects go with a capture's offer.
constexpr uint64_t kEagerBytes = 8 * 1024 * 1024;

// Makes frames on `threads` workers (reading and compressing is the costly
// part) while target->concurrent_puts() senders send the batches in order
// of completion: with two, the target receives one batch while it checks
// the one before.
Status SendMissing(const std::vector<Sha256Digest>& missing, const std::vector<uint64_t>& sizes,
                   const FrameFn& make_frame, const CaptureOptions& opts, CaptureTarget* target,
                   CaptureReport* report) {
  if (missing.empty()) return Status::Ok();
  uint64_t total = 0;
  for (uint64_t s : sizes) total += s;

  // Batches of consecutive objects, made whole by one worker each.
  struct Batch {
    size_t begin, end;
    std::vector<std::pair<Sha256Digest, std::string>> frames;
    Status status;
    bool done = false;
  };
  // A small upload is still cut into a few batches, so that every worker
  // compresses (a re-capture sends a few hundred KiB: one batch would
  // leave one worker idle) and the server checks one while the next is made.
  int nthreads = std::max(1, opts.threads);
  const uint64_t batch_bytes =
      std::clamp<uint64_t>(total / (2 * static_cast<uint64_t>(nthreads)), 64 << 10, kBatchBytes);
  std::vector<Batch> batches;
  for (size_t i = 0; i < missing.size();) {
    size_t j = i;
    uint64_t b = 0;
    while (j < missing.size() && (j == i || b + sizes[j] <= batch_bytes)) b += sizes[j++];
    batches.push_back({i, j, {}, Status::Ok(), false});
    i = j;
  }
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0, next_send = 0, sent = 0;
  uint64_t done_bytes = 0;
  Status result;
  const size_t max_ahead = 4;  // bounds memory to a few batches
  auto worker = [&] {
    Compressor comp(opts.zstd_level);
    std::string scratch;
    for (;;) {
      size_t mine;
      {
        std::unique_lock lock(mu);
        cv.wait(lock,
                [&] { return !result.ok() || next >= batches.size() || next < sent + max_ahead; });
        if (!result.ok() || next >= batches.size()) return;
        mine = next++;
      }
      Batch& b = batches[mine];
      Status s;
      std::vector<std::pair<Sha256Digest, std::string>> frames;
      for (size_t k = b.begin; k < b.end && s.ok(); ++k) {
        std::string frame;
        s = make_frame(missing[k], comp, &scratch, &frame);
        frames.emplace_back(missing[k], std::move(frame));
      }
      std::lock_guard lock(mu);
      b.frames = std::move(frames);
      b.status = s;
      b.done = true;
      cv.notify_all();
    }
  };
  auto sender = [&] {
    for (;;) {
      size_t i;
      std::vector<std::pair<Sha256Digest, std::string>> frames;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] {
          return !result.ok() || next_send >= batches.size() || batches[next_send].done;
        });
        if (!result.ok() || next_send >= batches.size()) return;
        i = next_send++;
        if (!batches[i].status.ok()) {
          result = batches[i].status;
          cv.notify_all();
          return;
        }
        frames = std::move(batches[i].frames);
      }
      Status s = target->PutObjects(frames);
      if (s.code() == Code::kCorruption)
        s = s.WithContext("a file changed during the capture? capture again");
      std::lock_guard lock(mu);
      ++sent;
      cv.notify_all();
      if (!s.ok()) {
        if (result.ok()) result = s;
        return;
      }
      if (!result.ok()) return;
      for (size_t k = batches[i].begin; k < batches[i].end; ++k) done_bytes += sizes[k];
      for (const auto& f : frames) report->bytes_sent += f.second.size();
      report->objects_sent += frames.size();
      if (opts.progress)
        opts.progress({"upload", done_bytes, total, report->objects_sent, missing.size()});
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < nthreads; ++t) threads.emplace_back(worker);
  int senders = std::max(1, target->concurrent_puts());
  for (int t = 1; t < senders; ++t) threads.emplace_back(sender);
  sender();
  for (auto& t : threads) t.join();
  return result;
}

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

Status ReadRange(const ChunkSource& src, std::string* out) {
  UniqueFd fd(::open(src.file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open " + src.file, errno);
  out->resize(src.size);
  size_t got = 0;
  while (got < src.size) {
    ssize_t n =
        ::pread(fd.get(), out->data() + got, src.size - got, static_cast<off_t>(src.offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read " + src.file, errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != src.size) return IoError(src.file + ": file shrank during the capture; capture again");
  return Status::Ok();
}

// The frames of the objects a re-capture read afresh (its changed files):
// the target most likely lacks them, and when they are few they go with
// the offer. Made on opts.threads threads. None when there are too many
// bytes for one request (the extra round trip is then small beside the
// upload) or when they are not the manifest's.
Result<ObjectFrames> EagerFrames(const std::vector<Sha256Digest>& eager, const DigestSet& objects,
                                 const CaptureOptions& opts,
                                 const std::function<void(const DigestSet&)>& prepare,
                                 const std::function<uint64_t(const Sha256Digest&)>& size_of,
                                 const FrameFn& make_frame) {
  ObjectFrames frames;
  if (eager.empty()) return frames;
  DigestSet want;
  std::vector<Sha256Digest> order;
  for (const auto& d : eager)
    if (objects.count(d) && want.insert(d).second) order.push_back(d);
  prepare(want);
  uint64_t total = 0;
  for (const auto& d : order) total += size_of(d);
  if (total > kEagerBytes) return frames;
  frames.resize(order.size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto work = [&] {
    Compressor comp(opts.zstd_level);
    std::string scratch;
    for (size_t i = next++; i < order.size(); i = next++) {
      frames[i].first = order[i];
      Status s = make_frame(order[i], comp, &scratch, &frames[i].second);
      if (!s.ok()) {
        std::lock_guard lock(mu);
        if (first_error.ok()) first_error = s;
        next = order.size();
      }
    }
  };
  size_t helpers =
      std::min<size_t>(order.size() / 2, static_cast<size_t>(std::max(1, opts.threads)) - 1);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < helpers; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  KILN_RETURN_IF_ERROR(first_error);
  return frames;
}

}  // namespace

Status CaptureTarget::PutPieces(const std::vector<FramePieces>& frames) {
  ObjectFrames joined;
  joined.reserve(frames.size());
  for (const auto& f : frames) {
    std::string frame;
    for (auto p : f.pieces) frame.append(p);
    joined.emplace_back(f.digest, std::move(frame));
  }
  return PutObjects(joined);
}

Result<CaptureReport> FinishCapture(const Manifest& m, const CaptureOptions& opts,
                                    CaptureTarget* target, CaptureReport report,
                                    const std::vector<Sha256Digest>& eager,
                                    const std::function<void(const DigestSet&)>& prepare,
                                    const std::function<uint64_t(const Sha256Digest&)>& size_of,
                                    const FrameFn& make_frame) {
  auto start = std::chrono::steady_clock::now();
  std::string encoded = EncodeManifest(m);
  report.manifest = Sha256Hex(encoded);
  report.entries = m.entries.size();
  DigestSet objects;
  for (const auto& e : m.entries) {
    if (e.type == EntryType::kFile) report.bytes += e.size;
    for (const auto& c : e.chunks) objects.insert(c.digest);
  }
  report.objects = objects.size();
  KILN_ASSIGN_OR_RETURN(ObjectFrames eager_frames,
                        EagerFrames(eager, objects, opts, prepare, size_of, make_frame));
  KILN_ASSIGN_OR_RETURN(CaptureOffer offer,
                        target->Begin(encoded, eager_frames, /*commit_if_complete=*/true));
  report.offer_ms = MsSince(start);
  for (const auto& f : eager_frames) report.bytes_sent += f.second.size();
  report.objects_sent += eager_frames.size();
  if (offer.committed) {
    report.version = *offer.committed;
    report.one_exchange = true;
    return report;
  }
  const std::vector<Sha256Digest>& missing = offer.missing;
  for (const auto& d : missing)
    if (!objects.count(d))
      return Internal(
          fmt::format("the target asked for object {}, which the manifest does not use", ToHex(d)));
  prepare(DigestSet(missing.begin(), missing.end()));
  std::vector<uint64_t> sizes;
  sizes.reserve(missing.size());
  for (const auto& d : missing) sizes.push_back(size_of(d));
  start = std::chrono::steady_clock::now();
  KILN_RETURN_IF_ERROR(SendMissing(missing, sizes, make_frame, opts, target, &report));
  report.upload_ms = MsSince(start);
  if (opts.progress)
    opts.progress({"commit", report.bytes, report.bytes, report.files, report.files});
  start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(report.version, target->Commit());
  report.commit_ms = MsSince(start);
  return report;
}

Result<CaptureReport> GiveUpOnFailure(Result<CaptureReport> r, CaptureTarget* target) {
  if (!r.ok()) target->Abort();
  return r;
}

namespace {

Result<CaptureReport> ScanAndSend(const std::string& dir, const CaptureOptions& opts,
                                  CaptureTarget* target) {
  ScanOptions so;
  so.excludes = opts.excludes;
  so.one_file_system = opts.one_file_system;
  so.threads = opts.threads;
  StatCache cache;
  if (opts.cache) {
    so.cache = opts.cache;
  } else if (!opts.stat_cache.empty()) {
    cache = StatCache::Load(opts.stat_cache);
    so.cache = &cache;
  }
  // A tree captured before (its stat cache has entries): the files read
  // afresh are the changed ones, whose objects the target most likely lacks.
  bool recapture = so.cache && so.cache->size() > 0;
  if (opts.progress)
    so.progress = [&](uint64_t bytes, uint64_t files) {
      opts.progress({"scan", bytes, 0, files, 0});
    };
  // A first capture sends its objects while the tree is read, when the
  // target can take them before the manifest (capture_stream.h). A target
  // that cannot (InvalidArgument: a server from before this) is offered
  // the manifest first.
  std::unique_ptr<CaptureStreamer> streamer;
  if (!recapture) {
    auto opened = target->Open();
    if (!opened.ok() && opened.status().code() != Code::kInvalidArgument) return opened.status();
    if (opened.ok() && *opened) {
      streamer = std::make_unique<CaptureStreamer>(target, opts);
      so.on_content = [s = streamer.get()](const Sha256Digest& d, std::string_view bytes,
                                           const std::shared_ptr<const std::string>& owner) {
        s->Add(d, bytes, owner);
      };
    }
  }
  auto scan_start = std::chrono::steady_clock::now();
  auto scanned = ScanDirectory(dir, so);
  CaptureReport report;
  if (!scanned.ok()) return scanned.status();  // the streamer, if any, stops unsent
  double scan_ms = MsSince(scan_start);
  if (streamer) {
    // What the scan left unsent: its last batches.
    auto tail_start = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(streamer->Finish(&report));
    report.upload_ms = MsSince(tail_start);
  }
  ScanResult scan = std::move(*scanned);
  if (!opts.allow_devices) {
    for (const auto& e : scan.manifest.entries)
      if (e.type == EntryType::kCharDev || e.type == EntryType::kBlockDev)
        return InvalidArgument(fmt::format("{}/{}: device nodes are not allowed", dir, e.path));
  }
  report.files = scan.files;
  report.files_hashed = scan.files_hashed;
  report.scan_ms = scan_ms;
  SourceMap sources;
  auto prepare = [&](const DigestSet& missing) {
    sources = FindSources(dir, scan.manifest, missing);
  };
  auto size_of = [&](const Sha256Digest& d) {
    auto it = sources.find(d);
    return it == sources.end() ? 0 : it->second.size;
  };
  FrameFn make = [&](const Sha256Digest& d, Compressor& comp, std::string* scratch,
                     std::string* frame) -> Status {
    auto it = sources.find(d);
    if (it == sources.end()) return Internal("no source for object " + ToHex(d));
    KILN_RETURN_IF_ERROR(ReadRange(it->second, scratch));
    // A file changed since the scan would send bytes under a digest they do
    // not have; the server re-hashes every object and refuses them (see
    // PutObjects' error below), so no second hash here.
    comp.Compress(*scratch, frame);
    return Status::Ok();
  };
  std::vector<Sha256Digest> eager;
  if (recapture) eager = std::move(scan.read_objects);
  auto r =
      FinishCapture(scan.manifest, opts, target, std::move(report), eager, prepare, size_of, make);
  if (r.ok() && streamer) {
    r->streamed = true;
    r->one_exchange = false;  // the manifest's exchange came after the objects'
  }
  // The cache is only worth keeping when the capture went through.
  if (r.ok() && so.cache == &cache) {
    Status s = cache.Save(opts.stat_cache);
    (void)s;  // a cache that cannot be written only costs time next run
  }
  return r;
}

}  // namespace

Result<CaptureReport> CaptureDirectory(const std::string& dir, const CaptureOptions& opts,
                                       CaptureTarget* target) {
  return GiveUpOnFailure(ScanAndSend(dir, opts, target), target);
}

}  // namespace kiln::imager
