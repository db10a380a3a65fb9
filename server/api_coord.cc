// The coordination store over HTTP: /api/v1/coord/... (docs/API.md).
//
// Every write handler hands its request to the store asynchronously and
// answers from the store's completion, after the update's fsync: the HTTP
// event loop never waits for the disk, and thousands of requests can wait
// for the same group commit at once.

#include "server/api_coord.h"

#include <fmt/format.h>

#include "common/strings.h"
#include "server/coord_json.h"
#include "server/http/router.h"
#include "server/server.h"

namespace kiln {
namespace {

using coord::CoordStore;
using http::Access;
using http::HttpRequest;
using http::HttpResponse;
using http::Responder;

// Largest bodies: a znode's data is at most 1 MiB, which JSON escaping can
// grow up to six times; a multi or batch carries many operations.
constexpr size_t kDataBody = 8u << 20;
constexpr size_t kOpsBody = 32u << 20;
constexpr size_t kMaxOps = 10000;

// Rejects query parameters a route does not know, so typos do not pass.
Status OnlyQuery(const HttpRequest& req, std::initializer_list<const char*> allowed) {
  for (const auto& [k, v] : req.query) {
    bool ok = false;
    for (const char* a : allowed) ok |= k == a;
    if (!ok) return InvalidArgument(fmt::format("unknown query parameter \"{}\"", k));
  }
  return Status::Ok();
}

// The znode path from the URL; the route without one addresses the root.
std::string ZnodePath(const HttpRequest& req) {
  std::string p = req.Param("path");
  return p.empty() ? "/" : p;
}

Json OpResultJson(const coord::OpResult& r, bool with_stat) {
  Json j = {{"path", r.path}};
  if (with_stat) j["stat"] = coordjson::StatJson(r.stat);
  return j;
}

// Answers an asynchronous store call: its result as JSON, or its error.
template <typename T, typename F>
coord::Callback<T> Reply(Responder res, F to_json, int status = 200) {
  return [res, to_json, status](Result<T> r) {
    if (!r.ok()) return res.SendError(r.status());
    res.SendJson(to_json(*r), status);
  };
}

void GetData(CoordStore& store, HttpRequest& req, Responder res) {
  if (Status s = OnlyQuery(req, {"encoding"}); !s.ok()) return res.SendError(s);
  std::string enc = req.Query("encoding", "auto");
  if (enc != "auto" && enc != "base64")
    return res.SendError(InvalidArgument("encoding must be auto or base64, got " + enc));
  std::string path = ZnodePath(req);
  store.GetAsync(path, nullptr,
                 Reply<coord::GetResult>(res, [path, enc](const coord::GetResult& g) {
                   Json j = {{"path", path}};
                   coordjson::PutData(j, g.data, enc == "base64");
                   j["stat"] = coordjson::StatJson(g.stat);
                   j["zxid"] = g.zxid;
                   return j;
                 }));
}

void GetChildren(CoordStore& store, HttpRequest& req, Responder res) {
  if (Status s = OnlyQuery(req, {}); !s.ok()) return res.SendError(s);
  std::string path = ZnodePath(req);
  store.ChildrenAsync(path, nullptr,
                      Reply<coord::ChildrenResult>(res, [path](const coord::ChildrenResult& c) {
                        return Json{{"path", path},
                                    {"children", c.children},
                                    {"stat", coordjson::StatJson(c.stat)},
                                    {"zxid", c.zxid}};
                      }));
}

void CreateNode(CoordStore& store, HttpRequest& req, Responder res) {
  if (Status s = OnlyQuery(req, {}); !s.ok()) return res.SendError(s);
  Json body = Json::object();
  if (!req.body.empty()) {
    auto parsed = req.JsonBody();
    if (!parsed.ok()) return res.SendError(parsed.status());
    body = std::move(*parsed);
    if (!body.is_object()) return res.SendError(InvalidArgument("request body: expected a JSON object"));
  }
  body["op"] = "create";
  body["path"] = ZnodePath(req);
  auto op = coordjson::ParseOp(body);
  if (!op.ok()) return res.SendError(op.status().WithContext("request body"));
  store.CreateAsync(std::get<coord::CreateOp>(std::move(*op)),
                    Reply<coord::CreateResult>(
                        res,
                        [](const coord::CreateResult& c) {
                          return Json{{"path", c.path},
                                      {"stat", coordjson::StatJson(c.stat)},
                                      {"zxid", c.zxid}};
                        },
                        201));
}

void SetNode(CoordStore& store, HttpRequest& req, Responder res) {
  if (Status s = OnlyQuery(req, {}); !s.ok()) return res.SendError(s);
  auto body = req.JsonBody();
  if (!body.ok()) return res.SendError(body.status());
  if (!body->is_object()) return res.SendError(InvalidArgument("request body: expected a JSON object"));
  (*body)["op"] = "set";
  (*body)["path"] = ZnodePath(req);
  auto op = coordjson::ParseOp(*body);
  if (!op.ok()) return res.SendError(op.status().WithContext("request body"));
  std::string path = ZnodePath(req);
  store.SetAsync(std::get<coord::SetOp>(std::move(*op)),
                 Reply<coord::SetResult>(res, [path](const coord::SetResult& r) {
                   return Json{{"path", path}, {"stat", coordjson::StatJson(r.stat)}, {"zxid", r.zxid}};
                 }));
}

void DeleteNode(CoordStore& store, HttpRequest& req, Responder res) {
  if (Status s = OnlyQuery(req, {"version"}); !s.ok()) return res.SendError(s);
  int32_t version = coord::kAnyVersion;
  if (req.HasQuery("version")) {
    auto v = coordjson::ParseVersionText(req.Query("version"));
    if (!v.ok()) return res.SendError(v.status());
    version = *v;
  }
  std::string path = ZnodePath(req);
  store.DeleteAsync(coord::DeleteOp{path, version}, [res, path](Status s) {
    if (!s.ok()) return res.SendError(s);
    res.SendJson({{"path", path}, {"deleted", true}});
  });
}

void Multi(CoordStore& store, HttpRequest& req, Responder res) {
  auto body = req.JsonBody();
  if (!body.ok()) return res.SendError(body.status());
  auto ops = coordjson::ParseOps(*body, kMaxOps);
  if (!ops.ok()) return res.SendError(ops.status());
  store.MultiAsync(std::move(*ops), Reply<coord::MultiResult>(res, [](const coord::MultiResult& m) {
                     Json results = Json::array();
                     for (const auto& r : m.results) results.push_back(OpResultJson(r, true));
                     return Json{{"zxid", m.zxid}, {"results", std::move(results)}};
                   }));
}

// Independent operations in one request, each its own update (pipelining,
// as a ZooKeeper client keeps many requests in flight). The answer lists
// each operation's result or error, in order.
void Batch(CoordStore& store, HttpRequest& req, Responder res) {
  auto body = req.JsonBody();
  if (!body.ok()) return res.SendError(body.status());
  auto ops = coordjson::ParseOps(*body, kMaxOps);
  if (!ops.ok()) return res.SendError(ops.status());
  struct State {
    std::mutex mu;
    std::vector<Json> results;
    size_t left;
    Responder res;
  };
  auto st = std::make_shared<State>();
  st->results.resize(ops->size());
  st->left = ops->size();
  st->res = res;
  if (ops->empty()) return res.SendJson({{"results", Json::array()}});
  for (size_t i = 0; i < ops->size(); ++i) {
    auto finish = [st, i](Json j) {
      std::lock_guard lock(st->mu);
      st->results[i] = std::move(j);
      if (--st->left == 0) st->res.SendJson({{"results", std::move(st->results)}});
    };
    auto with_stat = [finish](Result<coord::OpResult> r, coord::Zxid zxid) {
      if (!r.ok()) return finish(ErrorJson(r.status()));
      Json j = OpResultJson(*r, true);
      if (zxid) j["zxid"] = zxid;
      finish(std::move(j));
    };
    coord::Op& op = (*ops)[i];
    if (auto* c = std::get_if<coord::CreateOp>(&op)) {
      store.CreateAsync(std::move(*c), [with_stat](Result<coord::CreateResult> r) {
        if (!r.ok()) return with_stat(r.status(), 0);
        with_stat(coord::OpResult{r->path, r->stat}, r->zxid);
      });
    } else if (auto* set = std::get_if<coord::SetOp>(&op)) {
      std::string path = set->path;
      store.SetAsync(std::move(*set), [with_stat, path](Result<coord::SetResult> r) {
        if (!r.ok()) return with_stat(r.status(), 0);
        with_stat(coord::OpResult{path, r->stat}, r->zxid);
      });
    } else if (auto* d = std::get_if<coord::DeleteOp>(&op)) {
      std::string path = d->path;
      store.DeleteAsync(std::move(*d), [finish, path](Status s) {
        finish(s.ok() ? Json{{"path", path}, {"deleted", true}} : ErrorJson(s));
      });
    } else {
      std::string path = std::get<coord::CheckOp>(op).path;
      std::vector<coord::Op> one{std::move(op)};
      store.MultiAsync(std::move(one), [finish, path](Result<coord::MultiResult> r) {
        if (!r.ok()) {
          // A one-op multi names its op; a batch entry already is one.
          std::string m = r.status().message();
          if (size_t colon = m.find("): "); StartsWith(m, "op 0 (") && colon != std::string::npos)
            m = m.substr(colon + 3);
          return finish(ErrorJson(Status(r.status().code(), m)));
        }
        finish(Json{{"path", path}, {"ok", true}});
      });
    }
  }
}

void CreateSession(CoordStore& store, HttpRequest& req, Responder res) {
  Json body = Json::object();
  if (!req.body.empty()) {
    auto parsed = req.JsonBody();
    if (!parsed.ok()) return res.SendError(parsed.status());
    body = std::move(*parsed);
  }
  if (!body.is_object()) return res.SendError(InvalidArgument("request body: expected a JSON object"));
  for (const auto& [k, v] : body.items())
    if (k != "timeout_ms")
      return res.SendError(InvalidArgument(fmt::format("request body: unknown field \"{}\"", k)));
  int64_t timeout_ms = 10000;
  if (body.contains("timeout_ms")) {
    if (!body["timeout_ms"].is_number_integer() || body["timeout_ms"].get<int64_t>() <= 0)
      return res.SendError(InvalidArgument("timeout_ms must be a positive integer"));
    timeout_ms = body["timeout_ms"].get<int64_t>();
  }
  store.CreateSessionAsync(std::chrono::milliseconds(timeout_ms),
                           Reply<coord::SessionInfo>(
                               res,
                               [](const coord::SessionInfo& s) {
                                 return Json{{"session", s.id}, {"timeout_ms", s.timeout.count()}};
                               },
                               201));
}

Result<coord::SessionId> SessionParam(const HttpRequest& req) {
  auto id = ParseInt(req.Param("id"));
  if (!id || *id <= 0)
    return InvalidArgument(fmt::format("\"{}\" is not a session id", req.Param("id")));
  return *id;
}

}  // namespace

void RegisterCoordRoutes(http::Router& router, Server& server) {
  CoordStore* store = &server.coord();
  auto bind = [store](void (*fn)(CoordStore&, HttpRequest&, Responder)) {
    return [store, fn](HttpRequest& req, Responder res) { fn(*store, req, res); };
  };
  const http::RouteOptions admin{.access = Access::kAdmin};
  const http::RouteOptions ops{.access = Access::kAdmin, .max_body = kOpsBody};
  const http::RouteOptions data{.access = Access::kAdmin, .name = "/api/v1/coord/data"};
  const http::RouteOptions data_body{
      .access = Access::kAdmin, .max_body = kDataBody, .name = "/api/v1/coord/data"};
  const http::RouteOptions children{.access = Access::kAdmin, .name = "/api/v1/coord/children"};

  // The znode path is the rest of the URL: /api/v1/coord/data/kiln/nodes/web01.
  for (const char* pattern : {"/api/v1/coord/data", "/api/v1/coord/data/{path...}"}) {
    router.Add("GET", pattern, bind(GetData), data);
    router.Add("POST", pattern, bind(CreateNode), data_body);
    router.Add("PUT", pattern, bind(SetNode), data_body);
    router.Add("DELETE", pattern, bind(DeleteNode), data);
  }
  for (const char* pattern : {"/api/v1/coord/children", "/api/v1/coord/children/{path...}"})
    router.Add("GET", pattern, bind(GetChildren), children);
  router.Add("POST", "/api/v1/coord/multi", bind(Multi), ops);
  router.Add("POST", "/api/v1/coord/batch", bind(Batch), ops);
  router.Add("POST", "/api/v1/coord/sessions", bind(CreateSession), admin);
  router.Add("POST", "/api/v1/coord/sessions/{id}/heartbeat",
             [store](HttpRequest& req, Responder res) {
               auto id = SessionParam(req);
               if (!id.ok()) return res.SendError(id.status());
               store->HeartbeatAsync(*id, [res, sid = *id](Status s) {
                 if (!s.ok()) return res.SendError(s);
                 res.SendJson({{"session", sid}});
               });
             },
             admin);
  router.Add("DELETE", "/api/v1/coord/sessions/{id}",
             [store](HttpRequest& req, Responder res) {
               auto id = SessionParam(req);
               if (!id.ok()) return res.SendError(id.status());
               store->CloseSessionAsync(*id, [res, sid = *id](Status s) {
                 if (!s.ok()) return res.SendError(s);
                 res.SendJson({{"session", sid}, {"closed", true}});
               });
             },
             admin);
  RegisterWatchRoute(router, server);
}

}  // namespace kiln
