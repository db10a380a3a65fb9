#pragma once
// The typed client of kiln's HTTP API (/api/v1), used by the `kiln` CLI and
// by kiln-agent. Non-2xx replies come back as the Status the server sent
// (its JSON error body), transport failures as kUnavailable naming the URL.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_client.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln {

inline constexpr const char* kDefaultServerUrl = "http://127.0.0.1:7070";
inline constexpr const char* kDefaultDataDir = "/var/lib/kiln";
inline constexpr const char* kAdminTokenFile = "admin.token";
inline constexpr const char* kServeInfoFile = "serve.json";

struct ClientConfig {
  std::string server;  // base URL
  std::string token;   // may be empty for unauthenticated calls
};

struct ClientFlags {
  std::string server;    // --server
  std::string token;     // --token
  std::string data_dir;  // --data
};

// Resolves where to talk and with which token:
//   server: --server, else $KILN_SERVER, else the URL that `kiln serve`
//           recorded in the data dir (--data, $KILN_DATA), else the default.
//   token:  --token, else $KILN_TOKEN, else the data dir's admin.token if
//           readable, else empty.
ClientConfig ResolveClientConfig(const ClientFlags& flags);

class ApiClient {
 public:
  explicit ApiClient(ClientConfig config);

  const ClientConfig& config() const { return config_; }
  HttpClient& http() { return http_; }

  // JSON calls: the body (if any) is sent as application/json; the reply
  // must be JSON on success.
  Result<Json> Get(std::string_view path);
  Result<Json> Post(std::string_view path, const Json& body);
  Result<Json> Put(std::string_view path, const Json& body);
  Result<Json> Delete(std::string_view path);
  // timeout: the whole call's limit (a long poll's wait plus a margin).
  Result<Json> Call(std::string_view method, std::string_view path, const std::optional<Json>& body,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  ClientConfig config_;
  HttpClient http_;
};

}  // namespace kiln
