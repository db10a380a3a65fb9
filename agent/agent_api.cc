#include "agent/agent_api.h"

#include <fmt/format.h>

namespace kiln::agent {

AgentApi::AgentApi(std::string server, std::string token)
    : api_(ClientConfig{std::move(server), std::move(token)}) {}

Result<Enrolled> AgentApi::Enroll(const std::string& server, const std::string& enroll_token) {
  ApiClient anon(ClientConfig{server, ""});
  KILN_ASSIGN_OR_RETURN(Json r, anon.Post("/api/v1/enroll", Json{{"token", enroll_token}}));
  Enrolled e;
  auto id = JsonField<std::string>(r["node"], "id");
  auto token = JsonField<std::string>(r, "token");
  if (!id.ok() || !token.ok())
    return Internal("the server's enrollment answer has no node id or token");
  e.node = *id;
  e.token = *token;
  e.record = r["node"];
  return e;
}

Status AgentApi::PutFacts(const std::string& node, const Json& facts) {
  return api_.Put(fmt::format("/api/v1/nodes/{}/facts", node), facts).status();
}

Result<Json> AgentApi::Plan(const std::string& node) {
  return api_.Get(fmt::format("/api/v1/nodes/{}/plan", node));
}

Result<uint64_t> AgentApi::SendEvents(const std::string& node, const std::string& run,
                                      const Json& events) {
  KILN_ASSIGN_OR_RETURN(Json r, api_.Post(fmt::format("/api/v1/nodes/{}/events", node),
                                          Json{{"run", run}, {"events", events}}));
  auto acked = JsonField<uint64_t>(r, "acked");
  if (!acked.ok()) return acked.status().WithContext("the server's answer to events");
  return *acked;
}

Result<int64_t> AgentApi::OpenSession(const std::string& node, std::chrono::milliseconds timeout,
                                      const Json& info) {
  KILN_ASSIGN_OR_RETURN(Json r, api_.Post(fmt::format("/api/v1/nodes/{}/session", node),
                                          Json{{"timeout_ms", timeout.count()}, {"info", info}}));
  auto id = JsonField<int64_t>(r, "session");
  if (!id.ok()) return id.status().WithContext("the server's answer to a session");
  return *id;
}

Status AgentApi::Heartbeat(const std::string& node, int64_t session) {
  return api_
      .Post(fmt::format("/api/v1/nodes/{}/session/{}/heartbeat", node, session), Json::object())
      .status();
}

Status AgentApi::CloseSession(const std::string& node, int64_t session) {
  return api_.Delete(fmt::format("/api/v1/nodes/{}/session/{}", node, session)).status();
}

Status AgentApi::PutLog(const std::string& node, const std::string& run, const std::string& text) {
  KILN_ASSIGN_OR_RETURN(HttpReply r,
                        api_.http().Do("PUT", fmt::format("/api/v1/nodes/{}/log?run={}", node, run),
                                       text, {.content_type = "text/plain; charset=utf-8"}));
  if (r.status / 100 != 2)
    return StatusFromErrorJson(r.body, r.status).WithContext("saving the install log");
  return Status::Ok();
}

Status AgentApi::Installed(const std::string& node, const std::string& image) {
  return api_.Post(fmt::format("/api/v1/nodes/{}/installed", node), Json{{"image", image}})
      .status();
}

Status AgentApi::UpdateSession(const std::string& node, int64_t session, const Json& info) {
  return api_.Put(fmt::format("/api/v1/nodes/{}/session/{}", node, session), Json{{"info", info}})
      .status();
}

Result<Json> AgentApi::Jobs(const std::string& node, const std::string& state,
                            std::chrono::milliseconds wait, bool* waited) {
  std::string path = fmt::format("/api/v1/nodes/{}/jobs?state={}", node, state);
  if (wait.count() > 0) path += fmt::format("&wait={:.3f}", wait.count() / 1000.0);
  // The server holds a long poll for up to wait: the call may take that
  // long plus the usual margin.
  KILN_ASSIGN_OR_RETURN(Json r,
                        api_.Call("GET", path, std::nullopt, std::chrono::seconds(30) + wait));
  if (waited) *waited = wait.count() > 0 && r.contains("wait_s");
  return r.value("jobs", Json::array());
}

Result<Json> AgentApi::UpdateJob(const std::string& node, const std::string& job,
                                 const Json& body) {
  return api_.Put(fmt::format("/api/v1/nodes/{}/jobs/{}", node, job), body);
}

}  // namespace kiln::agent
