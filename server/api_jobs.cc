#include "server/api_jobs.h"

#include <fmt/format.h>

#include <chrono>
#include <optional>

#include "common/log.h"
#include "common/strings.h"
#include "server/http/router.h"
#include "server/inventory/inventory.h"
#include "server/server.h"
#include "server/store_waits.h"

namespace kiln {
namespace {

using http::Access;
using http::HttpRequest;
using http::HttpResponse;
using http::Responder;

constexpr size_t kMaxOutput = 1u << 20;
// A long poll holds a connection; a minute keeps it well inside proxies'
// and clients' idle timeouts.
constexpr double kMaxWaitS = 60;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string JobsPath(const std::string& node) {
  return std::string(inventory::kNodesPath) + "/" + node + "/jobs";
}

bool IsJobId(const std::string& id) {
  if (id.size() != 12 || id[0] != 'j' || id[1] != '-') return false;
  for (size_t i = 2; i < id.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(id[i]))) return false;
  return true;
}

Result<inventory::Node> JobNode(Server& server, const HttpRequest& req) {
  inventory::Inventory* inv = server.inventory();
  if (!inv) return Unavailable("the node inventory is not available");
  std::string id = req.Param("id");
  if (!req.principal.MayActAs(id))
    return PermissionDenied("a node token may only act for its own node, not " + id);
  return inv->Get(id);
}

// args[key], when present: a list of non-empty path globs.
Status CheckGlobs(const Json& args, const char* key) {
  if (!args.contains(key)) return Status::Ok();
  const Json& list = args[key];
  if (!list.is_array())
    return InvalidArgument(fmt::format("args.{}: expected a list of globs", key));
  for (size_t i = 0; i < list.size(); ++i)
    if (!list[i].is_string() || list[i].get<std::string>().empty() ||
        list[i].get<std::string>().size() > 4096)
      return InvalidArgument(fmt::format("args.{}[{}]: expected a path glob", key, i));
  return Status::Ok();
}

// Checks what a new job asks for; the error names the field.
Status CheckJob(const Json& body) {
  std::string kind = body.value("kind", "");
  const Json args = body.value("args", Json::object());
  if (!args.is_object()) return InvalidArgument("args: expected an object");
  if (kind == "run") {
    if (!args.contains("command") || !args["command"].is_string() ||
        args["command"].get<std::string>().empty())
      return InvalidArgument("args.command: the shell command to run");
    if (args.contains("timeout_s") &&
        (!args["timeout_s"].is_number_unsigned() || args["timeout_s"] == 0))
      return InvalidArgument("args.timeout_s: a number of seconds from 1");
    return Status::Ok();
  }
  if (kind == "update") {
    if (!args.contains("image") || !args["image"].is_string())
      return InvalidArgument("args.image: the image name");
    if (!args.contains("version")) return InvalidArgument("args.version: the version to update to");
    return CheckGlobs(args, "excludes");
  }
  if (kind == "rollback" || kind == "diff") return Status::Ok();
  if (kind == "capture") {
    if (!args.contains("image") || !args["image"].is_string())
      return InvalidArgument("args.image: the image to capture into");
    return CheckGlobs(args, "excludes");
  }
  return InvalidArgument(
      fmt::format("kind \"{}\" is not run, update, rollback, diff or capture", kind));
}

Result<Json> ReadJob(Server& server, const std::string& node, const std::string& id,
                     int32_t* version) {
  if (!IsJobId(id)) return InvalidArgument("bad job id \"" + id + "\"");
  auto got = server.coord().Get(JobsPath(node) + "/" + id);
  if (!got.ok()) {
    if (got.status().code() == Code::kNotFound)
      return NotFound(fmt::format("node {} has no job {}", node, id));
    return got.status();
  }
  if (version) *version = got->stat.version;
  return ParseJson(got->data, "job " + id);
}

// The node's jobs, oldest first; only those in state `want` unless empty.
Json ListJobs(Server& server, const std::string& node, const std::string& want) {
  Json out = Json::array();
  auto children = server.coord().Children(JobsPath(node));
  if (!children.ok()) return out;  // no job was ever queued
  for (const auto& c : children->children) {
    auto j = ReadJob(server, node, c, nullptr);
    if (!j.ok()) continue;  // removed meanwhile
    (*j)["id"] = c;
    if (want.empty() || j->value("state", "") == want) out.push_back(std::move(*j));
  }
  return out;
}

// ?wait=SECONDS, 0 when absent.
Result<std::chrono::milliseconds> WaitParam(const HttpRequest& req) {
  if (!req.HasQuery("wait")) return std::chrono::milliseconds(0);
  return ParseWaitSeconds(req.Query("wait"), kMaxWaitS);
}

}  // namespace

void RegisterJobRoutes(http::Router& router, Server& server) {
  router.AddSync("POST", "/api/v1/nodes/{id}/jobs",
                 [&server](HttpRequest& req) {
                   auto node = JobNode(server, req);
                   if (!node.ok()) return HttpResponse::Error(node.status());
                   auto body = req.JsonBody();
                   if (!body.ok()) return HttpResponse::Error(body.status());
                   if (Status s = CheckJob(*body); !s.ok())
                     return HttpResponse::Error(s.WithContext("request body"));
                   Json job = {{"node", node->id},
                               {"kind", (*body)["kind"]},
                               {"args", body->value("args", Json::object())},
                               {"state", "queued"},
                               {"created_ms", NowMs()},
                               {"updated_ms", NowMs()}};
                   (void)server.coord().Create(JobsPath(node->id), "");  // first job of the node
                   auto made = server.coord().Create(
                       coord::CreateOp{JobsPath(node->id) + "/j-", job.dump(), false, true, 0});
                   if (!made.ok()) return HttpResponse::Error(made.status());
                   job["id"] = made->path.substr(made->path.rfind('/') + 1);
                   return HttpResponse::JsonBody(job, 201);
                 },
                 {.access = Access::kAdmin, .max_body = 64 << 10});

  // ?wait=S: a long poll. The answer comes as soon as the list is not
  // empty (a job was queued, say), or after S seconds with an empty list.
  router.Add("GET", "/api/v1/nodes/{id}/jobs",
             [&server](HttpRequest& req, Responder res) {
               auto node = JobNode(server, req);
               if (!node.ok()) return res.SendError(node.status());
               std::string want = req.Query("state");
               if (!want.empty() && want != "queued" && want != "running" && want != "done" &&
                   want != "failed")
                 return res.SendError(InvalidArgument(fmt::format(
                     "state: expected queued, running, done or failed, got \"{}\"", want)));
               auto wait = WaitParam(req);
               if (!wait.ok()) return res.SendError(wait.status());
               std::string id = node->id;
               auto answer = [&server, id, want, wait = *wait](bool final) {
                 Json list = ListJobs(server, id, want);
                 if (list.empty() && !final) return std::optional<HttpResponse>();
                 Json j = {{"node", id}, {"jobs", std::move(list)}};
                 if (wait.count() > 0) j["wait_s"] = wait.count() / 1000.0;
                 return std::optional<HttpResponse>(HttpResponse::JsonBody(j));
               };
               if (wait->count() == 0) return res.Send(*answer(true));
               server.waits().Wait(JobsPath(id), true, *wait, answer, res);
             },
             {.access = Access::kAuthenticated});

  // ?wait=S: answers as soon as the job is done or failed, or after S
  // seconds with the job as it is then.
  router.Add("GET", "/api/v1/nodes/{id}/jobs/{job}",
             [&server](HttpRequest& req, Responder res) {
               auto node = JobNode(server, req);
               if (!node.ok()) return res.SendError(node.status());
               auto wait = WaitParam(req);
               if (!wait.ok()) return res.SendError(wait.status());
               std::string id = node->id, job = req.Param("job");
               auto answer = [&server, id, job](bool final) {
                 auto j = ReadJob(server, id, job, nullptr);
                 if (!j.ok()) return std::optional<HttpResponse>(HttpResponse::Error(j.status()));
                 std::string state = j->value("state", "");
                 if (!final && state != "done" && state != "failed")
                   return std::optional<HttpResponse>();
                 (*j)["id"] = job;
                 return std::optional<HttpResponse>(HttpResponse::JsonBody(*j));
               };
               if (wait->count() == 0) return res.Send(*answer(true));
               server.waits().Wait(JobsPath(id) + "/" + job, false, *wait, answer, res);
             },
             {.access = Access::kAuthenticated});

  router.AddSync(
      "PUT", "/api/v1/nodes/{id}/jobs/{job}",
      [&server](HttpRequest& req) {
        auto node = JobNode(server, req);
        if (!node.ok()) return HttpResponse::Error(node.status());
        auto body = req.JsonBody();
        if (!body.ok()) return HttpResponse::Error(body.status());
        int32_t version = 0;
        std::string id = req.Param("job");
        auto j = ReadJob(server, node->id, id, &version);
        if (!j.ok()) return HttpResponse::Error(j.status());
        std::string from = j->value("state", ""), to = body->value("state", "");
        bool ok = (from == "queued" && (to == "running" || to == "failed")) ||
                  (from == "running" && (to == "done" || to == "failed"));
        if (!ok)
          return HttpResponse::Error(FailedPrecondition(
              fmt::format("job {} is {}; it cannot become \"{}\"", id, from, to)));
        (*j)["state"] = to;
        (*j)["updated_ms"] = NowMs();
        for (const char* k : {"exit_code", "message", "output", "result", "image", "run"})
          if (body->contains(k)) (*j)[k] = (*body)[k];
        if (j->contains("output") && (*j)["output"].is_string() &&
            (*j)["output"].get<std::string>().size() > kMaxOutput)
          (*j)["output"] = (*j)["output"].get<std::string>().substr(0, kMaxOutput) +
                           "\n[kiln: output cut at 1 MiB]\n";
        auto set = server.coord().Set(JobsPath(node->id) + "/" + id, j->dump(), version);
        if (!set.ok()) {
          if (set.status().code() == Code::kBadVersion)
            return HttpResponse::Error(
                FailedPrecondition("job " + id + " changed meanwhile; read it again"));
          return HttpResponse::Error(set.status());
        }
        // The inventory follows what an update or rollback left the
        // host running (a failed one was undone: it runs what it ran).
        std::string kind = j->value("kind", "");
        if ((kind == "update" || kind == "rollback") && (to == "done" || to == "failed")) {
          std::string image = body->value("image", "");
          std::string why = to == "failed" ? kind + " failed: " + body->value("message", "") : "";
          auto n = server.inventory()->MarkRunning(node->id, image, why);
          if (!n.ok())
            log::Warn("jobs", "node record not updated",
                      {{"node", node->id}, {"error", n.status().message()}});
        }
        (*j)["id"] = id;
        return HttpResponse::JsonBody(*j);
      },
      {.access = Access::kAuthenticated, .max_body = 2u << 20});
}

}  // namespace kiln
