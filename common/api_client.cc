#include "common/api_client.h"

#include <cstdlib>

#include "common/file_util.h"
#include "common/strings.h"

namespace kiln {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

}  // namespace

ClientConfig ResolveClientConfig(const ClientFlags& flags) {
  ClientConfig c;
  std::string data = !flags.data_dir.empty() ? flags.data_dir : Env("KILN_DATA");
  bool data_given = !data.empty();
  if (data.empty()) data = kDefaultDataDir;

  c.server = !flags.server.empty() ? flags.server : Env("KILN_SERVER");
  if (c.server.empty() && data_given) {
    auto info = ReadFile(data + "/" + kServeInfoFile);
    if (info.ok()) {
      auto j = ParseJson(*info);
      if (j.ok() && j->contains("url") && (*j)["url"].is_string()) c.server = (*j)["url"];
    }
  }
  if (c.server.empty()) c.server = kDefaultServerUrl;

  c.token = !flags.token.empty() ? flags.token : Env("KILN_TOKEN");
  if (c.token.empty()) {
    auto t = ReadFile(data + "/" + kAdminTokenFile);
    if (t.ok()) c.token = std::string(Trim(*t));
  }
  return c;
}

ApiClient::ApiClient(ClientConfig config)
    : config_(std::move(config)), http_(config_.server, config_.token) {}

Result<Json> ApiClient::Get(std::string_view path) {
  return Call("GET", path, std::nullopt);
}
Result<Json> ApiClient::Post(std::string_view path, const Json& body) {
  return Call("POST", path, body);
}
Result<Json> ApiClient::Put(std::string_view path, const Json& body) {
  return Call("PUT", path, body);
}
Result<Json> ApiClient::Delete(std::string_view path) {
  return Call("DELETE", path, std::nullopt);
}

Result<Json> ApiClient::Call(std::string_view method, std::string_view path,
                             const std::optional<Json>& body, std::chrono::milliseconds timeout) {
  HttpRequestOptions opts;
  opts.timeout = timeout;
  std::string text;
  if (body) {
    text = body->dump();
    opts.content_type = "application/json";
  }
  KILN_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(method, path, text, opts));
  if (reply.status < 200 || reply.status >= 300)
    return StatusFromErrorJson(reply.body, reply.status);
  if (reply.body.empty()) return Json::object();
  return ParseJson(reply.body, "server reply");
}

}  // namespace kiln
