#include "server/api_agent.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <functional>

#include "common/file_util.h"
#include "common/strings.h"
#include "server/agent_sessions.h"
#include "server/http/router.h"
#include "server/inventory/inventory.h"
#include "server/node_events.h"
#include "server/server.h"

namespace kiln {
namespace {

using http::Access;
using http::HttpRequest;
using http::HttpResponse;
using http::Responder;

constexpr size_t kMaxBatch = 1000;
constexpr size_t kMaxLog = 16u << 20;

// The node named in the path, when the caller may act for it.
Result<inventory::Node> OwnNode(Server& server, const HttpRequest& req) {
  inventory::Inventory* inv = server.inventory();
  if (!inv) return Unavailable("the node inventory is not available");
  std::string id = req.Param("id");
  if (!req.principal.MayActAs(id))
    return PermissionDenied("a node token may only act for its own node, not " + id);
  return inv->Get(id);
}

bool IsRunId(const std::string& run) {
  if (run.empty() || run.size() > 64) return false;
  for (char c : run)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  return true;
}

// Checks a batch: objects with ascending seq >= 1, a known kind and level.
Status CheckEvents(const Json& events) {
  if (!events.is_array()) return InvalidArgument("\"events\" must be an array");
  if (events.size() > kMaxBatch)
    return TooLarge(fmt::format("{} events in one batch; at most {}", events.size(), kMaxBatch));
  uint64_t prev = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const Json& e = events[i];
    std::string at = fmt::format("events[{}]", i);
    if (!e.is_object()) return InvalidArgument(at + ": expected an object");
    if (!e.contains("seq") || !e["seq"].is_number_unsigned() || e["seq"].get<uint64_t>() == 0)
      return InvalidArgument(at + ".seq: expected a number from 1");
    uint64_t seq = e["seq"];
    if (seq <= prev)
      return InvalidArgument(fmt::format("{}.seq: {} does not follow {}", at, seq, prev));
    prev = seq;
    std::string kind = e.value("kind", "");
    if (kind != "phase" && kind != "progress" && kind != "log" && kind != "result")
      return InvalidArgument(
          fmt::format("{}.kind: \"{}\" is not phase, progress, log or result", at, kind));
    std::string level = e.value("level", "info");
    if (level != "info" && level != "warn" && level != "error")
      return InvalidArgument(fmt::format("{}.level: \"{}\" is not info, warn or error", at, level));
  }
  return Status::Ok();
}

std::string LogDir(Server& server, const std::string& node) {
  return server.data_dir().Sub("logs/" + node);
}

}  // namespace

void RegisterAgentRoutes(http::Router& router, Server& server) {
  const http::RouteOptions node_access{.access = Access::kAuthenticated};

  router.Add("POST", "/api/v1/nodes/{id}/events",
             [&server](HttpRequest& req, Responder res) {
               auto node = OwnNode(server, req);
               if (!node.ok()) return res.SendError(node.status());
               auto body = req.JsonBody();
               if (!body.ok()) return res.SendError(body.status());
               auto run = JsonField<std::string>(*body, "run");
               if (!run.ok()) return res.SendError(run.status().WithContext("request body"));
               if (!IsRunId(*run))
                 return res.SendError(InvalidArgument("run: 1-64 letters, digits, '-' or '_'"));
               Status s = CheckEvents(body->value("events", Json()));
               if (!s.ok()) return res.SendError(s.WithContext("request body"));
               std::vector<Json> events((*body)["events"].begin(), (*body)["events"].end());
               if (!server.node_events())
                 return res.SendError(Unavailable("events are not available"));

               // The node's state follows its story: a run that starts means
               // installing, and so does news from a node thought lost (its network
               // came back); a failed result means failed. Late events of a run
               // that already reported installed change nothing. These are rare
               // and synchronous; progress itself is not.
               inventory::Inventory* inv = server.inventory();
               for (const Json& e : events) {
                 std::string kind = e["kind"];
                 if (e["seq"] == 1 || node->state == "lost") {
                   std::string state = e.value("phase", "") == "update" ? "updating" : "installing";
                   if (node->state != state) {
                     auto n = inv->SetState(node->id, state, "");
                     if (n.ok()) *node = *n;
                   }
                 }
                 if (kind == "result" && !e.value("ok", true))
                   (void)inv->SetState(node->id, "failed", e.value("message", ""));
               }
               server.node_events()->Append(
                   node->id, *run, std::move(events), [res](Result<NodeEvents::Appended> r) {
                     if (!r.ok()) return res.SendError(r.status());
                     res.SendJson({{"acked", r->acked}, {"added", r->added}});
                   });
             },
             {.access = Access::kAuthenticated,
              .max_body = 4u << 20,
              .name = "/api/v1/nodes/{id}/events POST"});

  router.AddSync(
      "GET", "/api/v1/nodes/{id}/events",
      [&server](HttpRequest& req) {
        auto node = OwnNode(server, req);
        if (!node.ok()) return HttpResponse::Error(node.status());
        auto children = server.coord().Children(NodeEvents::EventsPath(node->id));
        Json out = Json::array();
        if (children.ok()) {
          size_t limit = ParseUint(req.Query("limit", "1000")).value_or(1000);
          size_t start = children->children.size() > limit ? children->children.size() - limit : 0;
          for (size_t i = start; i < children->children.size(); ++i) {
            auto got =
                server.coord().Get(NodeEvents::EventsPath(node->id) + "/" + children->children[i]);
            if (!got.ok()) continue;  // trimmed meanwhile
            auto j = ParseJson(got->data);
            if (j.ok()) out.push_back(*j);
          }
        } else if (children.status().code() != Code::kNotFound) {
          return HttpResponse::Error(children.status());
        }
        return HttpResponse::JsonBody({{"node", node->id}, {"events", out}});
      },
      node_access);

  router.AddSync(
      "GET", "/api/v1/nodes/{id}/progress",
      [&server](HttpRequest& req) {
        auto node = OwnNode(server, req);
        if (!node.ok()) return HttpResponse::Error(node.status());
        auto got = server.coord().Get(NodeEvents::ProgressPath(node->id));
        if (!got.ok()) {
          if (got.status().code() == Code::kNotFound)
            return HttpResponse::Error(NotFound("node " + node->id + " has reported no progress"));
          return HttpResponse::Error(got.status());
        }
        auto j = ParseJson(got->data);
        if (!j.ok()) return HttpResponse::Error(j.status());
        return HttpResponse::JsonBody(*j);
      },
      node_access);

  router.AddSync(
      "POST", "/api/v1/nodes/{id}/session",
      [&server](HttpRequest& req) {
        auto node = OwnNode(server, req);
        if (!node.ok()) return HttpResponse::Error(node.status());
        if (!server.agents())
          return HttpResponse::Error(Unavailable("agent sessions are not available"));
        Json body = Json::object();
        if (!req.body.empty()) {
          auto b = req.JsonBody();
          if (!b.ok()) return HttpResponse::Error(b.status());
          body = *b;
        }
        auto timeout = JsonFieldOr<int64_t>(body, "timeout_ms", 10000);
        if (!timeout.ok()) return HttpResponse::Error(timeout.status().WithContext("request body"));
        auto s = server.agents()->Open(node->id, std::chrono::milliseconds(*timeout),
                                       body.value("info", Json::object()));
        if (!s.ok()) return HttpResponse::Error(s.status());
        return HttpResponse::JsonBody({{"session", s->id}, {"timeout_ms", s->timeout.count()}},
                                      201);
      },
      node_access);

  // The three calls on an open session share their preamble: the node the
  // caller may act for, and the session id from the path.
  using SessionCall =
      std::function<Result<Json>(HttpRequest&, const std::string& node, coord::SessionId)>;
  auto on_session = [&server](SessionCall call) {
    return [&server, call](HttpRequest& req) {
      auto node = OwnNode(server, req);
      if (!node.ok()) return HttpResponse::Error(node.status());
      auto sid = ParseInt(req.Param("sid"));
      if (!sid || *sid <= 0)
        return HttpResponse::Error(InvalidArgument("bad session id \"" + req.Param("sid") + "\""));
      auto answer = call(req, node->id, *sid);
      if (!answer.ok()) return HttpResponse::Error(answer.status());
      return HttpResponse::JsonBody(*answer);
    };
  };

  router.AddSync("POST", "/api/v1/nodes/{id}/session/{sid}/heartbeat",
                 on_session([&server](HttpRequest&, const std::string& node,
                                      coord::SessionId sid) -> Result<Json> {
                   KILN_RETURN_IF_ERROR(server.agents()->Heartbeat(node, sid));
                   return Json{{"session", sid}};
                 }),
                 node_access);

  router.AddSync("PUT", "/api/v1/nodes/{id}/session/{sid}",
                 on_session([&server](HttpRequest& req, const std::string& node,
                                      coord::SessionId sid) -> Result<Json> {
                   KILN_ASSIGN_OR_RETURN(Json body, req.JsonBody());
                   KILN_RETURN_IF_ERROR(
                       server.agents()->Update(node, sid, body.value("info", Json::object())));
                   return Json{{"session", sid}};
                 }),
                 node_access);

  router.AddSync("DELETE", "/api/v1/nodes/{id}/session/{sid}",
                 on_session([&server](HttpRequest&, const std::string& node,
                                      coord::SessionId sid) -> Result<Json> {
                   KILN_RETURN_IF_ERROR(server.agents()->Close(node, sid));
                   return Json{{"closed", sid}};
                 }),
                 node_access);

  router.AddSync("PUT", "/api/v1/nodes/{id}/facts",
                 [&server](HttpRequest& req) {
                   auto node = OwnNode(server, req);
                   if (!node.ok()) return HttpResponse::Error(node.status());
                   auto body = req.JsonBody();
                   if (!body.ok()) return HttpResponse::Error(body.status());
                   if (!body->is_object() || body->value("schema", 0) != 1)
                     return HttpResponse::Error(InvalidArgument(
                         "request body: expected the agent's facts, an object with \"schema\": 1"));
                   auto n = server.inventory()->SetFacts(node->id, *body);
                   if (!n.ok()) return HttpResponse::Error(n.status());
                   return HttpResponse::JsonBody(n->ToJson(false));
                 },
                 {.access = Access::kAuthenticated, .max_body = 1u << 20});

  router.AddSync(
      "PUT", "/api/v1/nodes/{id}/log",
      [&server](HttpRequest& req) {
        auto node = OwnNode(server, req);
        if (!node.ok()) return HttpResponse::Error(node.status());
        std::string run = req.Query("run", "latest");
        if (!IsRunId(run))
          return HttpResponse::Error(InvalidArgument("run: 1-64 letters, digits, '-' or '_'"));
        std::string dir = LogDir(server, node->id);
        Status s = MakeDirs(dir, 0700);
        if (s.ok()) s = WriteFileAtomic(dir + "/" + run + ".log", req.body, 0600);
        if (s.ok()) s = WriteFileAtomic(dir + "/latest", run + "\n", 0600);
        if (!s.ok()) return HttpResponse::Error(s);
        (void)server.inventory()->SetExtra(node->id, "install_log",
                                           Json{{"run", run}, {"bytes", req.body.size()}});
        return HttpResponse::JsonBody(
            {{"node", node->id}, {"run", run}, {"bytes", req.body.size()}});
      },
      {.access = Access::kAuthenticated, .max_body = kMaxLog});

  router.AddSync(
      "GET", "/api/v1/nodes/{id}/log",
      [&server](HttpRequest& req) {
        auto node = OwnNode(server, req);
        if (!node.ok()) return HttpResponse::Error(node.status());
        std::string dir = LogDir(server, node->id);
        std::string run = req.Query("run");
        if (run.empty()) run = std::string(Trim(ReadFile(dir + "/latest").value_or("")));
        if (run.empty() || !IsRunId(run))
          return HttpResponse::Error(NotFound("node " + node->id + " has saved no install log"));
        std::string path = dir + "/" + run + ".log";
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return HttpResponse::Error(NotFound("no install log of run " + run));
        struct stat st {};
        ::fstat(fd, &st);
        HttpResponse r = HttpResponse::File(fd, 0, static_cast<uint64_t>(st.st_size),
                                            "text/plain; charset=utf-8");
        r.headers.emplace_back("X-Kiln-Run", run);
        return r;
      },
      node_access);
}

}  // namespace kiln
