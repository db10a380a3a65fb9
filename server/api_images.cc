#include "server/api_images.h"

#include <fmt/format.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "imager/diff.h"
#include "imager/image_store.h"
#include "imager/path_util.h"
#include "imager/stream.h"
#include "server/http/router.h"
#include "server/image_stream_body.h"
#include "server/server.h"

namespace kiln {
namespace {

using http::Access;
using http::HttpRequest;
using http::HttpResponse;
using http::Responder;
using imager::ImageStore;

class Workers : public ImagesApi {
 public:
  explicit Workers(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~Workers() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;  // queued requests were answered 503 by the stopping server
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

// A committed capture's version, as the commit (or an offer committed at
// once) answers it.
Json CommitJson(const imager::VersionRecord& v) {
  return {{"version", v.version}, {"manifest", v.manifest}, {"created", v.created},
          {"note", v.note},       {"source", v.source},     {"entries", v.entries},
          {"bytes", v.bytes}};
}

// A capture's answer to its manifest: what it still lacks, and the version
// when it was committed at once.
Json BegunJson(const imager::ImageStore::Begun& b) {
  Json missing = Json::array();
  for (const auto& d : b.missing) missing.push_back(ToHex(d));
  Json reply = {{"capture", b.id}, {"manifest", ToHex(b.manifest)}, {"missing", missing}};
  if (b.version) reply["version"] = CommitJson(*b.version);
  return reply;
}

// The commit=0|1 query of a capture's start or manifest (absent: 0).
Result<bool> CommitQuery(const HttpRequest& req) {
  std::string commit = req.Query("commit");
  if (!commit.empty() && commit != "1" && commit != "0")
    return InvalidArgument(fmt::format("commit: \"{}\" is not 0 or 1", commit));
  return commit == "1";
}

// An offer's body: digests, 32 bytes each.
constexpr size_t kDigestSize = sizeof(Sha256Digest);

Json VersionJson(const imager::ImageRecord& rec, const imager::VersionRecord& v) {
  Json tags = Json::array();
  for (const auto& [t, n] : rec.tags)
    if (n == v.version) tags.push_back(t);
  Json vj = imager::ImageRecordToJson(rec)["versions"][0];
  vj = {{"version", v.version}, {"manifest", v.manifest},
        {"created", v.created}, {"note", v.note},
        {"source", v.source},   {"entries", v.entries},
        {"bytes", v.bytes},     {"current", v.version == rec.current},
        {"tags", tags}};
  return vj;
}

Json ImageSummary(const imager::ImageRecord& r) {
  Json j = imager::ImageRecordToJson(r);
  j.erase("next");
  Json versions = Json::array();
  for (const auto& v : r.versions) versions.push_back(VersionJson(r, v));
  j["versions"] = versions;
  return j;
}

HttpResponse Err(const Status& s) {
  return HttpResponse::Error(s);
}

}  // namespace

// Which node began which capture (captures begun by the admin are not
// listed: only the admin may continue those).
class CaptureOwners {
 public:
  void Set(const std::string& id, const std::string& node) {
    std::lock_guard lock(mu_);
    owner_[id] = node;
  }
  // Allows, as the error a refused request gets.
  Status Check(const http::Principal& p, const std::string& id) {
    if (Allows(p, id)) return Status::Ok();
    return PermissionDenied("capture " + id + " is not this node's");
  }
  bool Allows(const http::Principal& p, const std::string& id) {
    if (p.is_admin()) return true;
    std::lock_guard lock(mu_);
    auto it = owner_.find(id);
    return it != owner_.end() && p.kind == http::Principal::Kind::kNode && it->second == p.node;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> owner_;
};

// A node may upload a capture of `image` only while it runs a capture job
// for it (server/api_jobs.h).
Status HostMayCapture(Server& server, const std::string& node, const std::string& image) {
  const Status denied = PermissionDenied(
      "a node token may upload a capture only while the node runs a capture job for it "
      "(kiln image capture " +
      image + " --from-host " + node + ")");
  if (node.empty()) return denied;
  auto jobs = server.coord().Children(std::string("/kiln/nodes/") + node + "/jobs");
  if (!jobs.ok()) return denied;
  for (const auto& c : jobs->children) {
    auto got = server.coord().Get(std::string("/kiln/nodes/") + node + "/jobs/" + c);
    if (!got.ok()) continue;
    auto j = ParseJson(got->data);
    if (j.ok() && j->value("kind", "") == "capture" && j->value("state", "") == "running" &&
        (*j)["args"].value("image", "") == image)
      return Status::Ok();
  }
  return denied;
}

std::unique_ptr<ImagesApi> RegisterImageRoutes(http::Router& router, Server& server,
                                               ImageStore& store) {
  auto workers = std::make_unique<Workers>(2);
  Workers* pool = workers.get();
  ImageStore* st = &store;
  const Access kRead = Access::kAuthenticated;

  router.AddSync(
      "GET", "/api/v1/images",
      [st](HttpRequest&) {
        auto names = st->catalog().List();
        if (!names.ok()) return Err(names.status());
        Json out = Json::array();
        for (const auto& n : *names) {
          auto r = st->catalog().Get(n);
          if (!r.ok()) continue;
          Json j = {{"name", n}, {"current", r->current}, {"versions", r->versions.size()}};
          if (const auto* cur = r->Find(r->current)) {
            j["manifest"] = cur->manifest;
            j["created"] = cur->created;
            j["entries"] = cur->entries;
            j["bytes"] = cur->bytes;
          }
          j["latest"] = r->versions.empty() ? 0 : r->versions.back().version;
          out.push_back(j);
        }
        return HttpResponse::JsonBody({{"images", out}});
      },
      {.access = kRead});

  // Before /images/{name}, which would otherwise take "objects" for a name.
  router.AddSync("GET", "/api/v1/images/objects", [st](HttpRequest&) {
    Json list = Json::array();
    Status s = st->objects().ForEach([&](const Sha256Digest& d, uint64_t size) {
      list.push_back({{"digest", ToHex(d)}, {"size", size}});
    });
    if (!s.ok()) return Err(s);
    return HttpResponse::JsonBody({{"objects", list}});
  });

  router.AddSync("GET", "/api/v1/images/{name}",
                 [st](HttpRequest& req) {
                   auto r = st->catalog().Get(req.Param("name"));
                   if (!r.ok()) return Err(r.status());
                   return HttpResponse::JsonBody(ImageSummary(*r));
                 },
                 {.access = kRead});

  router.AddSync(
      "GET", "/api/v1/images/{name}/versions/{v}",
      [st](HttpRequest& req) {
        auto rv = st->Resolve(req.Param("name"), req.Param("v"));
        if (!rv.ok()) return Err(rv.status());
        Json j = {{"image", rv->image.name}, {"version", VersionJson(rv->image, rv->version)}};
        if (req.Query("entries") == "1" || req.Query("entries") == "true") {
          auto m = st->LoadManifest(rv->digest);
          if (!m.ok()) return Err(m.status());
          Json entries = Json::array();
          std::map<std::string, uint64_t> types;
          for (const auto& e : (*m)->entries) {
            entries.push_back(imager::EntryToJson(e));
            ++types[std::string(imager::EntryTypeName(e.type))];
          }
          j["entries"] = entries;
          j["types"] = types;
        }
        return HttpResponse::JsonBody(j);
      },
      {.access = kRead});

  router.AddSync("GET", "/api/v1/images/{name}/versions/{v}/manifest",
                 [st](HttpRequest& req) {
                   auto rv = st->Resolve(req.Param("name"), req.Param("v"));
                   if (!rv.ok()) return Err(rv.status());
                   auto bytes = st->objects().Read(rv->digest);
                   if (!bytes.ok()) return Err(bytes.status());
                   HttpResponse r =
                       HttpResponse::Text(std::move(*bytes), 200, "application/octet-stream");
                   r.headers.emplace_back("X-Kiln-Manifest", rv->version.manifest);
                   return r;
                 },
                 {.access = kRead});

  router.AddSync("GET", "/api/v1/images/{name}/versions/{v}/objects",
                 [st](HttpRequest& req) {
                   auto objs = st->ObjectsOf(req.Param("name"), req.Param("v"));
                   if (!objs.ok()) return Err(objs.status());
                   Json list = Json::array();
                   for (const auto& [d, size] : *objs)
                     list.push_back({{"digest", ToHex(d)}, {"size", size}});
                   return HttpResponse::JsonBody({{"objects", list}});
                 },
                 {.access = kRead});

  router.AddSync("GET", "/api/v1/images/{name}/diff",
                 [st](HttpRequest& req) {
                   std::string name = req.Param("name");
                   auto a = st->Resolve(name, req.Query("from"));
                   if (!a.ok()) return Err(a.status());
                   auto b = st->Resolve(name, req.Query("to"));
                   if (!b.ok()) return Err(b.status());
                   auto ma = st->LoadManifest(a->digest);
                   if (!ma.ok()) return Err(ma.status());
                   auto mb = st->LoadManifest(b->digest);
                   if (!mb.ok()) return Err(mb.status());
                   Json changes = Json::array();
                   uint64_t added = 0, removed = 0, changed = 0;
                   for (const auto& c : imager::DiffManifests(**ma, **mb)) {
                     changes.push_back(imager::ChangeToJson(c));
                     added += c.kind == imager::Change::Kind::kAdded;
                     removed += c.kind == imager::Change::Kind::kRemoved;
                     changed += c.kind == imager::Change::Kind::kChanged;
                   }
                   return HttpResponse::JsonBody(
                       {{"image", name},
                        {"from", a->version.version},
                        {"to", b->version.version},
                        {"summary", {{"added", added}, {"removed", removed}, {"changed", changed}}},
                        {"changes", changes}});
                 },
                 {.access = kRead});

  router.AddSync("POST", "/api/v1/images/{name}/rollback", [st](HttpRequest& req) {
    std::optional<std::string> to;
    if (!req.body.empty()) {
      auto body = req.JsonBody();
      if (!body.ok()) return Err(body.status());
      if (body->contains("to")) {
        const Json& t = (*body)["to"];
        to = t.is_number() ? std::to_string(t.get<int>()) : t.get<std::string>();
      }
    }
    auto r = st->Rollback(req.Param("name"), to);
    if (!r.ok()) return Err(r.status());
    return HttpResponse::JsonBody(ImageSummary(*r));
  });

  router.AddSync("PUT", "/api/v1/images/{name}/tags/{tag}", [st](HttpRequest& req) {
    std::string version;
    if (!req.body.empty()) {
      auto body = req.JsonBody();
      if (!body.ok()) return Err(body.status());
      if (body->contains("version")) {
        const Json& v = (*body)["version"];
        version = v.is_number() ? std::to_string(v.get<int>()) : v.get<std::string>();
      }
    }
    auto r = st->Tag(req.Param("name"), req.Param("tag"), version);
    if (!r.ok()) return Err(r.status());
    return HttpResponse::JsonBody(ImageSummary(*r));
  });

  router.AddSync("DELETE", "/api/v1/images/{name}/tags/{tag}", [st](HttpRequest& req) {
    auto r = st->Untag(req.Param("name"), req.Param("tag"));
    if (!r.ok()) return Err(r.status());
    return HttpResponse::JsonBody(ImageSummary(*r));
  });

  // The upload protocol: manifest, missing objects, commit. The admin may
  // capture anything; a node's agent may capture only while a capture job
  // for that image is running on it (`kiln image capture --from-host`), and
  // only finish its own captures.
  auto owners = std::make_shared<CaptureOwners>();
  router.Add(
      "POST", "/api/v1/images/{name}/captures",
      [st, pool, owners, &server](HttpRequest& req, Responder res) {
        if (!req.principal.is_admin()) {
          Status may = HostMayCapture(server, req.principal.node, req.Param("name"));
          if (!may.ok()) return res.SendError(may);
        }
        // With manifest_size the body is the manifest, then objects
        // as /objects takes them; with commit=1 a capture that then
        // lacks nothing is committed in this request.
        size_t manifest_size = req.body.size();
        if (std::string ms = req.Query("manifest_size"); !ms.empty()) {
          auto n = ParseUint(ms);
          if (!n || *n > req.body.size())
            return res.SendError(InvalidArgument(
                fmt::format("manifest_size: \"{}\" is not a size within the body's {} bytes", ms,
                            req.body.size())));
          manifest_size = static_cast<size_t>(*n);
        }
        auto commit_q = CommitQuery(req);
        if (!commit_q.ok()) return res.SendError(commit_q.status());
        bool commit = *commit_q;
        if (std::string open = req.Query("open"); !open.empty()) {
          // Objects first, the manifest last (see /offer and /manifest).
          if (open != "1")
            return res.SendError(InvalidArgument(fmt::format("open: \"{}\" is not 1", open)));
          if (!req.body.empty() || !req.Query("manifest_size").empty() ||
              !req.Query("commit").empty())
            return res.SendError(InvalidArgument(
                "open=1 starts a capture without its manifest: no body, manifest_size or commit"));
          // On the pool: the store's lock may be held by a gc for a while.
          pool->Post([st, name = req.Param("name"), note = req.Query("note"),
                      source = req.Query("source"), res, owners, who = req.principal] {
            auto id = st->OpenCapture(name, note, source);
            if (!id.ok()) return res.SendError(id.status());
            if (!who.is_admin()) owners->Set(*id, who.node);
            res.SendJson({{"capture", *id}});
          });
          return;
        }
        pool->Post([st, name = req.Param("name"), body = std::move(req.body), manifest_size, commit,
                    note = req.Query("note"), source = req.Query("source"), res, owners,
                    who = req.principal]() mutable {
          std::string objects = body.substr(manifest_size);
          body.resize(manifest_size);
          auto b = st->BeginCapture(name, std::move(body), note, source, objects, commit);
          if (!b.ok()) return res.SendError(b.status());
          if (!b->version && !who.is_admin()) owners->Set(b->id, who.node);
          res.SendJson(BegunJson(*b));
        });
      },
      {.access = Access::kAuthenticated, .max_body = 512u << 20});

  // A step of capture {id}: its owner's (or the admin's) only; the request
  // is read here, the store's work runs on the pool and answers JSON.
  using Job = std::function<Result<Json>()>;
  auto step = [&router, pool, owners](const char* method, const char* pattern, size_t max_body,
                                      std::function<Result<Job>(HttpRequest&)> read) {
    router.Add(method, pattern,
               [pool, owners, read](HttpRequest& req, Responder res) {
                 if (Status may = owners->Check(req.principal, req.Param("id")); !may.ok())
                   return res.SendError(may);
                 auto job = read(req);
                 if (!job.ok()) return res.SendError(job.status());
                 pool->Post([job = std::move(*job), res] {
                   auto answer = job();
                   if (!answer.ok()) return res.SendError(answer.status());
                   res.SendJson(*answer);
                 });
               },
               {.access = Access::kAuthenticated, .max_body = max_body});
  };
  step("POST", "/api/v1/images/captures/{id}/objects", 64u << 20,
       [st](HttpRequest& req) -> Result<Job> {
         return Job([st, id = req.Param("id"), body = std::move(req.body)]() -> Result<Json> {
           KILN_ASSIGN_OR_RETURN(size_t n, st->AddObjects(id, body));
           return Json{{"stored", n}};
         });
       });
  step("POST", "/api/v1/images/captures/{id}/offer", 1u << 20,
       [st](HttpRequest& req) -> Result<Job> {
         if (req.body.size() % kDigestSize != 0)
           return InvalidArgument(
               fmt::format("offer: a body of {} bytes is not a whole number of {}-byte digests",
                           req.body.size(), kDigestSize));
         std::vector<Sha256Digest> digests(req.body.size() / kDigestSize);
         for (size_t i = 0; i < digests.size(); ++i)
           std::memcpy(digests[i].data(), req.body.data() + i * kDigestSize, kDigestSize);
         return Job([st, id = req.Param("id"), digests = std::move(digests)]() -> Result<Json> {
           KILN_ASSIGN_OR_RETURN(auto missing, st->OfferObjects(id, digests));
           Json list = Json::array();
           for (const auto& d : missing) list.push_back(ToHex(d));
           return Json{{"missing", list}};
         });
       });
  step("POST", "/api/v1/images/captures/{id}/manifest", 512u << 20,
       [st](HttpRequest& req) -> Result<Job> {
         KILN_ASSIGN_OR_RETURN(bool commit, CommitQuery(req));
         // shared_ptr: a std::function must be copyable.
         auto body = std::make_shared<std::string>(std::move(req.body));
         return Job([st, id = req.Param("id"), body, commit]() -> Result<Json> {
           KILN_ASSIGN_OR_RETURN(auto b, st->AddCaptureManifest(id, std::move(*body), commit));
           return BegunJson(b);
         });
       });
  step("DELETE", "/api/v1/images/captures/{id}", 1u << 20, [st](HttpRequest& req) -> Result<Job> {
    return Job([st, id = req.Param("id")]() -> Result<Json> {
      KILN_RETURN_IF_ERROR(st->AbortCapture(id));
      return Json{{"aborted", id}};
    });
  });
  step("POST", "/api/v1/images/captures/{id}/commit", 1u << 20,
       [st](HttpRequest& req) -> Result<Job> {
         return Job([st, id = req.Param("id")]() -> Result<Json> {
           KILN_ASSIGN_OR_RETURN(auto v, st->CommitCapture(id));
           return Json{{"version", CommitJson(v)}};
         });
       });

  // Planning a stream not asked for lately reads its manifests and looks up
  // every object: on the pool, not on an event loop.
  router.Add("GET", "/api/v1/images/{name}/stream",
             [st, pool](HttpRequest& req, Responder res) {
               pool->Post([st, res, name = req.Param("name"), version = req.Query("version"),
                           from = req.Query("from"), offset_q = req.Query("offset")] {
                 auto target = st->Resolve(name, version);
                 if (!target.ok()) return res.SendError(target.status());
                 std::optional<imager::ResolvedVersion> base;
                 if (!from.empty()) {
                   auto b = st->Resolve(name, from);
                   if (!b.ok()) return res.SendError(b.status());
                   base = *b;
                 }
                 auto plan = st->PlanStream(base ? &*base : nullptr, *target);
                 if (!plan.ok()) return res.SendError(plan.status());
                 uint64_t offset = 0;
                 if (!offset_q.empty()) {
                   auto o = ParseUint(offset_q);
                   if (!o || *o > (*plan)->total)
                     return res.SendError(InvalidArgument(fmt::format(
                         "offset {} is beyond the stream's {} bytes", offset_q, (*plan)->total)));
                   offset = *o;
                 }
                 HttpResponse r;
                 r.content_type = "application/vnd.kiln.image-stream";
                 r.headers.emplace_back("X-Kiln-Stream-Size", std::to_string((*plan)->total));
                 r.headers.emplace_back("X-Kiln-Stream-Offset", std::to_string(offset));
                 r.headers.emplace_back("X-Kiln-Manifest", target->version.manifest);
                 r.stream = std::make_shared<ImageStreamBody>(&st->objects(), *plan, offset,
                                                              [st] { st->ForgetStreamPlans(); });
                 res.Send(std::move(r));
               });
             },
             {.access = kRead});

  router.AddSync("GET", "/api/v1/images/objects/{digest}",
                 [st](HttpRequest& req) {
                   auto d = imager::ParseDigest(req.Param("digest"));
                   if (!d.ok()) return Err(d.status());
                   auto f = st->objects().OpenFrame(*d);
                   if (!f.ok()) return Err(f.status());
                   uint64_t size = f->size;
                   HttpResponse r =
                       HttpResponse::File(f->fd.Release(), f->offset, size, "application/zstd");
                   r.headers.emplace_back("X-Kiln-Digest", req.Param("digest"));
                   return r;
                 },
                 {.access = kRead});

  router.Add("POST", "/api/v1/images/gc", [st, pool](HttpRequest& req, Responder res) {
    std::optional<int> keep;
    if (!req.body.empty()) {
      auto body = req.JsonBody();
      if (!body.ok()) return res.SendError(body.status());
      if (body->contains("keep")) {
        auto k = JsonField<int>(*body, "keep");
        if (!k.ok()) return res.SendError(k.status());
        if (*k < 1) return res.SendError(InvalidArgument("keep must be at least 1"));
        keep = *k;
      }
    }
    pool->Post([st, keep, res] {
      auto r = st->Gc(keep);
      if (!r.ok()) return res.SendError(r.status());
      res.SendJson({{"versions_dropped", r->versions_dropped},
                    {"objects_removed", r->objects_removed},
                    {"objects_kept", r->objects_kept},
                    {"bytes_freed", r->bytes_freed}});
    });
  });

  router.Add("POST", "/api/v1/images/verify",
             [st, pool](HttpRequest& req, Responder res) {
               auto body = req.JsonBody();
               if (!body.ok()) return res.SendError(body.status());
               auto list = JsonField<std::vector<std::string>>(*body, "digests");
               if (!list.ok()) return res.SendError(list.status());
               pool->Post([st, digests = std::move(*list), res] {
                 Json bad = Json::array();
                 uint64_t ok = 0;
                 for (const auto& h : digests) {
                   auto d = imager::ParseDigest(h);
                   Status s = d.ok() ? st->objects().Verify(*d) : d.status();
                   if (s.ok())
                     ++ok;
                   else
                     bad.push_back({{"digest", h}, {"error", s.message()}});
                 }
                 res.SendJson({{"verified", ok}, {"bad", bad}});
               });
             },
             {.access = Access::kAdmin, .max_body = 16u << 20});

  return workers;
}

}  // namespace kiln
