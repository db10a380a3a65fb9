// The coordination store over HTTP: /api/v1/coord/... (docs/API.md).
//
// Every write handler hands its request to the store asynchronously and
// answers from the store's completion, after the update's fsync: the HTTP
// event loop never waits for the disk, and thousands of requests can wait
// for the same group commit at once.

#include "server/api_coord.h"

#include <fmt/format.h>

#include <atomic>

#include "common/json_writer.h"
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

// The answer of a create or set, written without a nlohmann tree.
HttpResponse UpdateResponse(std::string_view path, const coord::Stat& stat, coord::Zxid zxid,
                            int status) {
  HttpResponse r;
  r.status = status;
  r.body = coordjson::UpdateAnswer(path, stat, zxid);
  return r;
}

// The request body as an operation of kind `kind` on the URL's path. The
// body's own "op" and "path", if any, are overridden.
Result<coord::Op> BodyOp(HttpRequest& req, const char* kind, bool empty_is_object) {
  Json body = Json::object();
  if (!empty_is_object || !req.body.empty()) {
    auto parsed = req.JsonBody();
    if (!parsed.ok()) return parsed.status();
    body = std::move(*parsed);
    if (!body.is_object()) return InvalidArgument("request body: expected a JSON object");
  }
  body["op"] = kind;
  body["path"] = ZnodePath(req);
  auto op = coordjson::ParseOp(body);
  if (!op.ok()) return op.status().WithContext("request body");
  return op;
}

void CreateNode(CoordStore& store, HttpRequest& req, Responder res) {
  if (Status s = OnlyQuery(req, {}); !s.ok()) return res.SendError(s);
  coord::CreateOp op;
  if (req.body.empty()) {
    op.path = ZnodePath(req);
  } else if (auto fast = coordjson::ScanCreateBody(req.body)) {
    op = std::move(*fast);
    op.path = ZnodePath(req);
  } else {
    auto parsed = BodyOp(req, "create", true);
    if (!parsed.ok()) return res.SendError(parsed.status());
    op = std::get<coord::CreateOp>(std::move(*parsed));
  }
  store.CreateAsync(std::move(op), [res](Result<coord::CreateResult> r) {
    if (!r.ok()) return res.SendError(r.status());
    res.Send(UpdateResponse(r->path, r->stat, r->zxid, 201));
  });
}

void SetNode(CoordStore& store, HttpRequest& req, Responder res) {
  if (Status s = OnlyQuery(req, {}); !s.ok()) return res.SendError(s);
  std::string path = ZnodePath(req);
  coord::SetOp op;
  if (auto fast = coordjson::ScanSetBody(req.body)) {
    op = std::move(*fast);
    op.path = path;
  } else {
    auto parsed = BodyOp(req, "set", false);
    if (!parsed.ok()) return res.SendError(parsed.status());
    op = std::get<coord::SetOp>(std::move(*parsed));
  }
  store.SetAsync(std::move(op), [res, path = std::move(path)](Result<coord::SetResult> r) {
    if (!r.ok()) return res.SendError(r.status());
    res.Send(UpdateResponse(path, r->stat, r->zxid, 200));
  });
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

// The body's operations: the common shapes through the fast scanner, the
// rest (and every error) through nlohmann.
Result<std::vector<coord::Op>> BodyOps(const HttpRequest& req) {
  if (auto fast = coordjson::ScanOps(req.body, kMaxOps)) return std::move(*fast);
  auto body = req.JsonBody();
  if (!body.ok()) return body.status();
  return coordjson::ParseOps(*body, kMaxOps);
}

void Multi(CoordStore& store, HttpRequest& req, Responder res) {
  auto ops = BodyOps(req);
  if (!ops.ok()) return res.SendError(ops.status());
  store.MultiAsync(std::move(*ops), [res](Result<coord::MultiResult> m) {
    if (!m.ok()) return res.SendError(m.status());
    HttpResponse r;
    r.body.reserve(m->results.size() * 260 + 64);
    JsonWriter w(&r.body);
    w.BeginObject().Key("results").BeginArray();
    for (const auto& op : m->results) {
      w.BeginObject().Key("path").String(op.path).Key("stat");
      coordjson::WriteStat(w, op.stat);
      w.EndObject();
    }
    w.EndArray().Key("zxid").Int(m->zxid).EndObject();
    r.body.push_back('\n');
    res.Send(std::move(r));
  });
}

// One operation's outcome in a batch answer.
struct BatchItem {
  enum class Kind { kUpdate, kDeleted, kChecked, kError } kind = Kind::kError;
  std::string path;
  coord::Stat stat;
  coord::Zxid zxid = 0;
  Status error;
};

// A batch in flight: each operation's completion fills its own item; the
// last one to finish writes the answer.
struct BatchState {
  std::vector<BatchItem> items;
  std::atomic<size_t> left{0};
  Responder res;

  void Fail(size_t i, const Status& s) {
    items[i].kind = BatchItem::Kind::kError;
    items[i].error = s;
    Done();
  }
  void Done() {
    // acq_rel: the last one sees every other completion's item.
    if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) res.Send(Render(items));
  }
  static HttpResponse Render(const std::vector<BatchItem>& items) {
    HttpResponse r;
    r.body.reserve(items.size() * 270 + 16);
    JsonWriter w(&r.body);
    w.BeginObject().Key("results").BeginArray();
    for (const BatchItem& it : items) {
      w.BeginObject();
      switch (it.kind) {
        case BatchItem::Kind::kUpdate:
          w.Key("path").String(it.path).Key("stat");
          coordjson::WriteStat(w, it.stat);
          if (it.zxid != 0) w.Key("zxid").Int(it.zxid);
          break;
        case BatchItem::Kind::kDeleted:
          w.Key("deleted").Bool(true).Key("path").String(it.path);
          break;
        case BatchItem::Kind::kChecked: w.Key("ok").Bool(true).Key("path").String(it.path); break;
        case BatchItem::Kind::kError:
          // ErrorJson's shape.
          w.Key("error")
              .BeginObject()
              .Key("code")
              .String(CodeName(it.error.code()))
              .Key("message")
              .String(it.error.message())
              .EndObject();
          break;
      }
      w.EndObject();
    }
    w.EndArray().EndObject();
    r.body.push_back('\n');
    return r;
  }
};

// Independent operations in one request, each its own update (pipelining,
// as a ZooKeeper client keeps many requests in flight). The answer lists
// each operation's result or error, in order.
void Batch(CoordStore& store, HttpRequest& req, Responder res) {
  auto ops = BodyOps(req);
  if (!ops.ok()) return res.SendError(ops.status());
  if (ops->empty()) return res.Send(BatchState::Render({}));
  auto st = std::make_shared<BatchState>();
  st->items.resize(ops->size());
  st->left = ops->size();
  st->res = res;
  for (size_t i = 0; i < ops->size(); ++i) {
    coord::Op& op = (*ops)[i];
    BatchItem& item = st->items[i];
    if (auto* c = std::get_if<coord::CreateOp>(&op)) {
      store.CreateAsync(std::move(*c), [st, i](Result<coord::CreateResult> r) {
        if (!r.ok()) return st->Fail(i, r.status());
        BatchItem& it = st->items[i];
        it.kind = BatchItem::Kind::kUpdate;
        it.path = std::move(r->path);
        it.stat = r->stat;
        it.zxid = r->zxid;
        st->Done();
      });
    } else if (auto* set = std::get_if<coord::SetOp>(&op)) {
      item.path = set->path;
      store.SetAsync(std::move(*set), [st, i](Result<coord::SetResult> r) {
        if (!r.ok()) return st->Fail(i, r.status());
        BatchItem& it = st->items[i];
        it.kind = BatchItem::Kind::kUpdate;
        it.stat = r->stat;
        it.zxid = r->zxid;
        st->Done();
      });
    } else if (auto* d = std::get_if<coord::DeleteOp>(&op)) {
      item.path = d->path;
      store.DeleteAsync(std::move(*d), [st, i](Status s) {
        if (!s.ok()) return st->Fail(i, s);
        st->items[i].kind = BatchItem::Kind::kDeleted;
        st->Done();
      });
    } else {
      item.path = std::get<coord::CheckOp>(op).path;
      std::vector<coord::Op> one{std::move(op)};
      store.MultiAsync(std::move(one), [st, i](Result<coord::MultiResult> r) {
        if (!r.ok()) {
          // A one-op multi names its op; a batch entry already is one.
          std::string m = r.status().message();
          if (size_t colon = m.find("): "); StartsWith(m, "op 0 (") && colon != std::string::npos)
            m = m.substr(colon + 3);
          return st->Fail(i, Status(r.status().code(), m));
        }
        st->items[i].kind = BatchItem::Kind::kChecked;
        st->Done();
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
  if (!body.is_object())
    return res.SendError(InvalidArgument("request body: expected a JSON object"));
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
  router.Add(
      "POST", "/api/v1/coord/sessions/{id}/heartbeat",
      [store](HttpRequest& req, Responder res) {
        auto id = SessionParam(req);
        if (!id.ok()) return res.SendError(id.status());
        store->HeartbeatAsync(*id, [res, sid = *id](Status s) {
          if (!s.ok()) return res.SendError(s);
          res.SendJson({{"session", sid}});
        });
      },
      admin);
  router.Add(
      "DELETE", "/api/v1/coord/sessions/{id}",
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
