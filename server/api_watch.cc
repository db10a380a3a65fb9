// GET /api/v1/watch?path=P&recursive=1&since=ZXID: a coordination watch
// stream as Server-Sent Events (docs/API.md, "Watch streams").
//
// Each change is one event:
//
//   id: 42                      (the zxid; only on the last change of a zxid)
//   event: changed              (created, changed, deleted)
//   data: {"zxid":42,"type":"changed","path":"/kiln/nodes/web01","data":"...","version":3}
//
// A stream that ends (the server stops, or the client fell too far behind)
// sends a final "event: end" whose data is the error body; the client
// resumes with since= the last id it saw (or the Last-Event-ID header).
//
// The store hands changes to the stream on its commit thread, before the
// update is visible to reads; they wait here in a queue, and the HTTP event
// loop formats and sends them as the socket takes them. A parked connection
// costs nothing until the next change arrives.

#include <fmt/format.h>

#include <cstring>
#include <deque>
#include <mutex>

#include "common/log.h"
#include "common/strings.h"
#include "server/api_coord.h"
#include "server/coord_json.h"
#include "server/http/router.h"
#include "server/server.h"

namespace kiln {
namespace {

using http::BodyStream;

// Changes a slow client may have queued before its stream is cut off (it
// can resume from the retained log).
constexpr size_t kMaxQueued = 1000000;

// A change's "event: ...\ndata: {...}\n\n", the same on every stream that
// carries it: made once and shared, rather than once per watcher (a write
// to a znode with 1,000 watchers was 1,000 JSON renderings of one change).
// The last few changes are kept, by identity; a change that has gone is
// never matched (the weak pointer has expired).
std::shared_ptr<const std::string> RenderedEvent(const coord::ChangePtr& c) {
  struct Entry {
    std::weak_ptr<const coord::Change> change;
    std::shared_ptr<const std::string> text;
  };
  static std::mutex mu;
  static Entry recent[8];
  static size_t next = 0;
  auto same = [&](const Entry& e) {
    return !e.change.expired() && !e.change.owner_before(c) && !c.owner_before(e.change);
  };
  {
    std::lock_guard lock(mu);
    for (const Entry& e : recent)
      if (same(e)) return e.text;
  }
  std::string text = "event: ";
  text += coord::EventTypeName(c->type);
  text += "\ndata: ";
  text += coordjson::ChangeJson(*c).dump();
  text += "\n\n";
  auto shared = std::make_shared<const std::string>(std::move(text));
  std::lock_guard lock(mu);
  recent[next++ % std::size(recent)] = {c, shared};
  return shared;
}

class SseStream : public BodyStream {
 public:
  // Called with the store's stream registered; on_change may already run.
  void Attach(std::unique_ptr<coord::WatchStream> watch) {
    std::lock_guard lock(mu_);
    watch_ = std::move(watch);
  }

  void Push(const coord::ChangePtr& c) {
    std::lock_guard lock(mu_);
    if (closed_ || ended_) return;
    if (queue_.size() >= kMaxQueued) {
      EndLocked(Status(Code::kCompacted,
                       fmt::format("the client fell more than {} changes behind; resume with "
                                   "since={}",
                                   kMaxQueued, last_id_)));
      return;
    }
    queue_.push_back(c);
    WakeLocked();
  }

  void End(const Status& s) {
    std::lock_guard lock(mu_);
    EndLocked(s);
  }

  // A greeting so clients know the stream is live (an SSE comment).
  void Greet(coord::Zxid since, coord::Zxid now) {
    std::lock_guard lock(mu_);
    out_ = fmt::format(": kiln watch stream since={} zxid={}\n\n", since, now);
    last_id_ = since;
  }

  ssize_t Read(char* buf, size_t max, Parking& parking) override {
    std::lock_guard lock(mu_);
    if (out_.empty()) Format();
    if (out_.empty()) {
      if (ended_ && end_sent_) return kEnd;
      if (ended_) {
        out_ = "event: end\ndata: " + ErrorJson(end_status_).dump() + "\n\n";
        end_sent_ = true;
      } else {
        parking_ = &parking;
        parked_ = true;
        parking.Park();
        return kWouldBlock;
      }
    }
    size_t n = std::min(max, out_.size() - sent_);
    std::memcpy(buf, out_.data() + sent_, n);
    sent_ += n;
    if (sent_ == out_.size()) {
      out_.clear();
      sent_ = 0;
    }
    return static_cast<ssize_t>(n);
  }

  void Closed() override {
    std::unique_ptr<coord::WatchStream> watch;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      parked_ = false;
      parking_ = nullptr;
      watch = std::move(watch_);
    }
    // Unsubscribing takes the store's lock, which the store holds while it
    // calls Push: never do it under our own.
  }

 private:
  void WakeLocked() {
    if (parked_ && parking_) {
      parked_ = false;
      parking_->Unpark();
    }
  }
  void EndLocked(const Status& s) {
    if (ended_ || closed_) return;
    ended_ = true;
    end_status_ = s;
    WakeLocked();
  }

  // Formats queued changes into out_, up to about 64 KiB at a time.
  void Format() {
    while (!queue_.empty() && out_.size() < (64u << 10)) {
      coord::ChangePtr c = std::move(queue_.front());
      queue_.pop_front();
      bool last_of_zxid = c->txn_end || (!queue_.empty() && queue_.front()->zxid != c->zxid);
      if (last_of_zxid) {
        out_ += fmt::format("id: {}\n", c->zxid);
        last_id_ = c->zxid;
      }
      out_ += *RenderedEvent(c);
    }
  }

  std::mutex mu_;
  std::deque<coord::ChangePtr> queue_;
  std::string out_;
  size_t sent_ = 0;
  coord::Zxid last_id_ = 0;
  bool ended_ = false, end_sent_ = false, closed_ = false;
  Status end_status_;
  bool parked_ = false;
  Parking* parking_ = nullptr;
  std::unique_ptr<coord::WatchStream> watch_;
};

}  // namespace

void RegisterWatchRoute(http::Router& router, Server& server) {
  coord::CoordStore* store = &server.coord();
  router.AddSync("GET", "/api/v1/watch",
                 [store](http::HttpRequest& req) {
                   for (const auto& [k, v] : req.query)
                     if (k != "path" && k != "recursive" && k != "since")
                       return http::HttpResponse::Error(
                           InvalidArgument(fmt::format("unknown query parameter \"{}\"", k)));
                   coord::StreamOptions opts;
                   opts.path = req.Query("path", "/");
                   std::string rec = req.Query("recursive", "1");
                   if (rec != "1" && rec != "true" && rec != "0" && rec != "false")
                     return http::HttpResponse::Error(
                         InvalidArgument("recursive must be 1/true or 0/false, got " + rec));
                   opts.recursive = rec == "1" || rec == "true";
                   // Last-Event-ID (an EventSource reconnecting) wins over since=.
                   std::string since = req.Header("last-event-id");
                   if (since.empty()) since = req.Query("since");
                   if (!since.empty()) {
                     auto z = ParseInt(since);
                     if (!z || *z < 0)
                       return http::HttpResponse::Error(InvalidArgument(fmt::format(
                           "since must be a zxid (an integer >= 0), got \"{}\"", since)));
                     opts.since = *z;
                   }
                   auto sse = std::make_shared<SseStream>();
                   coord::StreamHandlers h;
                   std::weak_ptr<SseStream> weak = sse;
                   h.on_change = [weak](const coord::ChangePtr& c) {
                     if (auto s = weak.lock()) s->Push(c);
                   };
                   h.on_end = [weak](Status s) {
                     if (auto st = weak.lock()) st->End(s);
                   };
                   coord::Zxid now = store->LastZxid();
                   sse->Greet(opts.since < 0 ? now : opts.since, now);
                   auto watch = store->OpenStream(opts, std::move(h));
                   if (!watch.ok()) return http::HttpResponse::Error(watch.status());
                   sse->Attach(std::move(*watch));
                   http::HttpResponse r;
                   r.content_type = "text/event-stream";
                   r.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
                   r.stream = sse;
                   return r;
                 },
                 {.access = http::Access::kAdmin});
}

}  // namespace kiln
