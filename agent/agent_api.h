#pragma once
// The agent's side of the server API (docs/API.md "Agents"): enrollment,
// facts, the plan, progress events, the live session, the install log and
// the final report. One AgentApi holds one HTTP connection and is used by
// one thread at a time; the agent makes one per thread that talks.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/api_client.h"
#include "common/json.h"
#include "common/status.h"

namespace kiln::agent {

struct Enrolled {
  std::string node;   // the node's id
  std::string token;  // the node token: acts for this node only
  Json record;        // the node as the server has it
};

class AgentApi {
 public:
  AgentApi(std::string server, std::string token);

  // Trades a one-time enrollment token (kernel command line) for a node
  // token. kUnauthenticated when it was used or replaced.
  static Result<Enrolled> Enroll(const std::string& server, const std::string& enroll_token);

  Status PutFacts(const std::string& node, const Json& facts);
  Result<Json> Plan(const std::string& node);
  // Returns the highest seq the server holds for the run.
  Result<uint64_t> SendEvents(const std::string& node, const std::string& run, const Json& events);
  Result<int64_t> OpenSession(const std::string& node, std::chrono::milliseconds timeout,
                              const Json& info);
  Status Heartbeat(const std::string& node, int64_t session);
  Status CloseSession(const std::string& node, int64_t session);
  Status PutLog(const std::string& node, const std::string& run, const std::string& text);
  Status Installed(const std::string& node, const std::string& image);
  Status UpdateSession(const std::string& node, int64_t session, const Json& info);
  // The node's jobs in `state` (docs/API.md "Jobs"), oldest first. With
  // wait > 0 a long poll: the server answers as soon as there is one, or
  // after wait with none. *waited says whether the server held the answer
  // (an older one answers at once, and the caller should pause instead).
  Result<Json> Jobs(const std::string& node, const std::string& state,
                    std::chrono::milliseconds wait = {}, bool* waited = nullptr);
  Result<Json> UpdateJob(const std::string& node, const std::string& job, const Json& body);

  HttpClient& http() { return api_.http(); }
  const std::string& server() const { return api_.config().server; }

 private:
  ApiClient api_;
};

}  // namespace kiln::agent
