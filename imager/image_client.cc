#include "imager/image_client.h"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "imager/async_sink.h"
#include "imager/image_store.h"
#include "imager/object_store.h"
#include "imager/stream_blocks.h"

namespace kiln::imager {
namespace {

Status ReplyStatus(const Result<HttpReply>& r) {
  if (!r.ok()) return r.status();
  if (r->status < 200 || r->status >= 300) return StatusFromErrorJson(r->body, r->status);
  return Status::Ok();
}

std::string ImagePath(const std::string& image) {
  return "/api/v1/images/" + UrlEncode(image);
}

// The version record in a commit's reply (and in an offer committed at once).
Result<VersionRecord> VersionFromReply(const Json& j) {
  if (!j.contains("version") || !j["version"].is_object())
    return Internal("the server's reply names no version");
  const Json& v = j["version"];
  VersionRecord vr;
  vr.version = v.value("version", 0);
  vr.manifest = v.value("manifest", "");
  vr.created = v.value("created", int64_t{0});
  vr.note = v.value("note", "");
  vr.source = v.value("source", "");
  vr.entries = v.value("entries", uint64_t{0});
  vr.bytes = v.value("bytes", uint64_t{0});
  return vr;
}

}  // namespace

Result<bool> HttpCaptureTarget::Open() {
  HttpRequestOptions o;
  auto r = http_->Do("POST",
                     fmt::format("{}/captures?open=1&note={}&source={}", ImagePath(image_),
                                 UrlEncode(note_), UrlEncode(source_)),
                     "", o);
  KILN_RETURN_IF_ERROR(ReplyStatus(r));
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(r->body, "capture reply"));
  KILN_ASSIGN_OR_RETURN(id_, JsonField<std::string>(j, "capture"));
  opened_ = true;
  return true;
}

Result<std::vector<Sha256Digest>> HttpCaptureTarget::Offer(
    const std::vector<Sha256Digest>& digests) {
  HttpRequestOptions o;
  o.content_type = "application/octet-stream";
  std::string_view body(reinterpret_cast<const char*>(digests.data()),
                        digests.size() * sizeof(Sha256Digest));
  auto r = Send("/api/v1/images/captures/" + id_ + "/offer", {&body, 1}, o);
  KILN_RETURN_IF_ERROR(ReplyStatus(r));
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(r->body, "offer reply"));
  std::vector<Sha256Digest> missing;
  for (const auto& h : j.value("missing", Json::array())) {
    KILN_ASSIGN_OR_RETURN(Sha256Digest d, ParseDigest(h.get<std::string>()));
    missing.push_back(d);
  }
  return missing;
}

Result<CaptureOffer> HttpCaptureTarget::Begin(const std::string& manifest,
                                              const ObjectFrames& eager, bool commit_if_complete) {
  // An opened capture takes its manifest on a route of its own.
  if (opened_ && !eager.empty()) return Internal("objects sent with an opened capture's manifest");
  std::string path = opened_ ? "/api/v1/images/captures/" + id_ + "/manifest"
                             : fmt::format("{}/captures?note={}&source={}", ImagePath(image_),
                                           UrlEncode(note_), UrlEncode(source_));
  auto query = [&](const std::string& param) {
    path += (path.find('?') == std::string::npos ? "?" : "&") + param;
  };
  std::string body;
  if (!eager.empty()) {
    // The body is the manifest, then the objects in an upload's encoding.
    query(fmt::format("manifest_size={}", manifest.size()));
    body = manifest + EncodeObjectBatch(eager);
  }
  if (commit_if_complete) query("commit=1");
  HttpRequestOptions o;
  o.content_type = "application/octet-stream";
  o.timeout = std::chrono::minutes(5);
  auto r = http_->Do("POST", path, eager.empty() ? manifest : body, o);
  KILN_RETURN_IF_ERROR(ReplyStatus(r));
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(r->body, "capture reply"));
  KILN_ASSIGN_OR_RETURN(id_, JsonField<std::string>(j, "capture"));
  CaptureOffer offer;
  for (const auto& h : j.value("missing", Json::array())) {
    KILN_ASSIGN_OR_RETURN(Sha256Digest d, ParseDigest(h.get<std::string>()));
    offer.missing.push_back(d);
  }
  if (j.contains("version")) {
    KILN_ASSIGN_OR_RETURN(offer.committed, VersionFromReply(j));
  }
  return offer;
}

Status HttpCaptureTarget::PutObjects(const ObjectFrames& frames) {
  std::vector<FramePieces> as_pieces;
  as_pieces.reserve(frames.size());
  for (const auto& [digest, frame] : frames) as_pieces.push_back({digest, {frame}});
  return PutPieces(as_pieces);
}

Status HttpCaptureTarget::PutPieces(const std::vector<FramePieces>& frames) {
  HttpRequestOptions o;
  o.content_type = "application/octet-stream";
  o.timeout = std::chrono::minutes(5);
  // EncodeObjectBatch's body, with each frame sent from where it is: a
  // capture's bytes are not copied once more into one buffer.
  std::vector<std::string> heads;
  std::vector<std::string_view> pieces;
  heads.reserve(frames.size());
  pieces.reserve(3 * frames.size());
  for (const auto& f : frames) {
    uint64_t size = 0;
    for (auto p : f.pieces) size += p.size();
    pieces.push_back(heads.emplace_back(EncodeObjectHead(f.digest, size)));
    pieces.insert(pieces.end(), f.pieces.begin(), f.pieces.end());
  }
  auto r = Send("/api/v1/images/captures/" + id_ + "/objects", pieces, o);
  return ReplyStatus(r);
}

Result<HttpReply> HttpCaptureTarget::Send(std::string_view path,
                                          std::span<const std::string_view> body,
                                          const HttpRequestOptions& opts) {
  // The first request in flight uses the capture's own connection, another
  // one a spare (made on first need, with the same server and token).
  HttpClient* http = nullptr;
  std::unique_ptr<HttpClient> spare;
  {
    std::lock_guard lock(spare_mu_);
    if (!http_busy_) {
      http_busy_ = true;
      http = http_;
    } else if (!spare_.empty()) {
      spare = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  if (!http) {
    if (!spare) spare = std::make_unique<HttpClient>(http_->base_url(), http_->token());
    http = spare.get();
  }
  auto r = http->DoPieces("POST", path, body, opts);
  std::lock_guard lock(spare_mu_);
  if (spare)
    spare_.push_back(std::move(spare));
  else
    http_busy_ = false;
  return r;
}

void HttpCaptureTarget::Abort() {
  if (id_.empty()) return;
  HttpRequestOptions o;
  o.timeout = std::chrono::seconds(10);
  (void)http_->Do("DELETE", "/api/v1/images/captures/" + id_, "", o);
  id_.clear();
}

Result<VersionRecord> HttpCaptureTarget::Commit() {
  HttpRequestOptions o;
  o.timeout = std::chrono::minutes(5);
  auto r = http_->Do("POST", "/api/v1/images/captures/" + id_ + "/commit", "", o);
  KILN_RETURN_IF_ERROR(ReplyStatus(r));
  KILN_ASSIGN_OR_RETURN(Json j, ParseJson(r->body, "commit reply"));
  return VersionFromReply(j);
}

Result<Json> GetVersion(HttpClient* http, const std::string& image, const std::string& version) {
  auto r = http->Do("GET", fmt::format("{}/versions/{}", ImagePath(image),
                                       UrlEncode(version.empty() ? "current" : version)));
  KILN_RETURN_IF_ERROR(ReplyStatus(r));
  return ParseJson(r->body, "version reply");
}

namespace {

// Hands received bytes from the transfer thread to a worker that parses,
// verifies and applies them, so receiving overlaps hashing and writing.
// The bytes go over in blocks of whole records (stream_blocks.h), and each
// side wakes the other only when it waits: a handover per received piece
// cost more in wake-ups than the work it handed over. Bounded: the transfer
// waits when the worker is kMaxQueued bytes behind.
class FeedPipe {
 public:
  // after_block runs on the worker after each block (the sink's wake-up).
  FeedPipe(StreamReader* reader, std::function<void()> after_block)
      : reader_(reader),
        after_block_(std::move(after_block)),
        blocks_([this](std::string&& b) { Hand(std::move(b)); }),
        worker_([this] { Loop(); }) {}
  ~FeedPipe() { Close(); }

  // False when the worker failed (its status is in Drain()).
  bool Push(std::string_view data) {
    blocks_.Add(data);
    return !failed_;
  }
  // Hands over what is held and waits until all of it is consumed; returns
  // the worker's status.
  Status Drain() {
    blocks_.Flush();
    std::unique_lock lock(mu_);
    WaitForRoom(lock, [&] { return (queue_.empty() && !busy_) || !error_.ok(); });
    return error_;
  }
  void Close() {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
    }
    work_.notify_one();
    worker_.join();
  }

 private:
  static constexpr size_t kMaxQueued = 32 << 20;

  // On the transfer thread, from blocks_.
  void Hand(std::string&& block) {
    std::unique_lock lock(mu_);
    WaitForRoom(lock, [&] { return queued_ < kMaxQueued || !error_.ok(); });
    for (auto& b : used_) blocks_.Recycle(std::move(b));
    used_.clear();
    if (!error_.ok()) {
      failed_ = true;
      return;
    }
    queued_ += block.size();
    queue_.push_back(std::move(block));
    if (worker_waiting_) work_.notify_one();
  }
  template <typename Pred>
  void WaitForRoom(std::unique_lock<std::mutex>& lock, Pred ready) {
    while (!ready()) {
      sender_waiting_ = true;
      room_.wait(lock);
      sender_waiting_ = false;
    }
  }
  void Loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      while (queue_.empty() && !closed_) {
        worker_waiting_ = true;
        work_.wait(lock);
        worker_waiting_ = false;
      }
      if (queue_.empty()) return;
      std::string block = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      bool skip = !error_.ok();
      lock.unlock();
      Status s = skip ? Status::Ok() : reader_->Feed(block);
      if (after_block_) after_block_();
      lock.lock();
      busy_ = false;
      queued_ -= block.size();
      if (!s.ok() && error_.ok()) error_ = s;
      used_.push_back(std::move(block));
      // The sender waits for room (then half the queue is enough, so that
      // it is not woken for every block) or for the queue to empty.
      if (sender_waiting_ && (queued_ < kMaxQueued / 2 || queue_.empty() || !error_.ok()))
        room_.notify_one();
    }
  }

  StreamReader* reader_;
  std::function<void()> after_block_;
  StreamBlocks blocks_;  // the transfer thread's
  bool failed_ = false;  // the transfer thread's copy of "the worker failed"
  std::mutex mu_;
  std::condition_variable work_, room_;
  std::deque<std::string> queue_;
  std::vector<std::string> used_;  // consumed blocks, back to blocks_
  size_t queued_ = 0;
  bool busy_ = false, closed_ = false;
  bool worker_waiting_ = false, sender_waiting_ = false;
  Status error_;
  std::thread worker_;
};

}  // namespace

Result<StreamRun> RunStream(HttpClient* http, const std::string& path, StreamSink* sink,
                            int max_resumes, uint64_t break_after,
                            const std::function<void(uint64_t, uint64_t)>& progress) {
  // Three threads: the transfer (this one), the reader that checks what
  // arrived (FeedPipe) and the sink that applies it (AsyncSink).
  AsyncSink async(sink);
  StreamReader reader(&async);
  StreamRun run;
  bool broke_once = false;
  FeedPipe pipe(&reader, [&] { async.Wake(); });
  for (;;) {
    uint64_t start = reader.offset();
    bool cut = false;
    HttpRequestOptions o;
    o.timeout = std::chrono::milliseconds(0);
    uint64_t got_this_time = 0;
    auto reply = http->Stream(
        fmt::format("{}&offset={}", path, start),
        [&](std::string_view data) {
          if (break_after && !broke_once && run.received + data.size() > break_after) {
            // Deliver part of this piece, then drop the connection.
            size_t part = static_cast<size_t>(break_after - run.received);
            broke_once = true;
            cut = true;
            if (part > 0 && pipe.Push(data.substr(0, part))) run.received += part;
            return false;
          }
          if (!pipe.Push(data)) return false;
          run.received += data.size();
          got_this_time += data.size();
          if (progress) progress(start + got_this_time, run.total);
          return true;
        },
        o);
    // Everything received so far is parsed before deciding what next.
    KILN_RETURN_IF_ERROR(pipe.Drain());
    if (reply.ok() && (reply->status < 200 || reply->status >= 300))
      return StatusFromErrorJson(reply->body, reply->status);
    if (reply.ok() && run.total == 0) {
      auto total = ParseUint(reply->Header("x-kiln-stream-size"));
      if (total) run.total = *total;
    }
    if (reply.ok() && !cut && reader.done()) break;
    // A transfer that ended without the end record, or broke: resume from
    // the last byte the reader accepted.
    if (run.resumes >= max_resumes) {
      if (!reply.ok()) return reply.status();
      return reader.Finish();
    }
    ++run.resumes;
    if (!cut) std::this_thread::sleep_for(std::chrono::milliseconds(200 * run.resumes));
  }
  pipe.Close();
  KILN_RETURN_IF_ERROR(reader.Finish());
  return run;
}

Result<DeployReport> DeployFromServer(HttpClient* http, const std::string& root,
                                      const DeployOptions& opts) {
  DeployReport rep;
  auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  };
  auto start = std::chrono::steady_clock::now();
  // Pin the versions by number first: a resumed stream must be the same one
  // even if the current pointer moves meanwhile.
  KILN_ASSIGN_OR_RETURN(Json target, GetVersion(http, opts.image, opts.version));
  int v = target["version"].value("version", 0);
  rep.version = target["version"];
  std::string path = fmt::format("{}/stream?version={}", ImagePath(opts.image), v);
  if (!opts.from.empty()) {
    KILN_ASSIGN_OR_RETURN(Json base, GetVersion(http, opts.image, opts.from));
    rep.from = base["version"].value("version", 0);
    path += fmt::format("&from={}", rep.from);
  }
  rep.resolve_ms = ms_since(start);
  start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(auto applier, Applier::Open(root, opts.apply));
  uint64_t entries_total = target["version"].value("entries", uint64_t{0});
  auto progress = [&](uint64_t received, uint64_t total) {
    if (opts.progress) opts.progress({received, total, applier->entries_done(), entries_total});
  };
  auto run = RunStream(http, path, applier.get(), opts.max_resumes, opts.break_after, progress);
  if (!run.ok()) {
    applier->Abort();
    return run.status();
  }
  rep.apply = applier->stats();
  rep.stream_ms = ms_since(start);
  rep.stream_bytes = run->total;
  rep.received_bytes = run->received;
  rep.resumes = run->resumes;
  return rep;
}

}  // namespace kiln::imager
