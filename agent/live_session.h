#pragma once
// The agent's live session with the server (POST /api/v1/nodes/<id>/session):
// opened when this object is made, kept alive by heartbeats from a thread
// of its own (every third of the timeout), opened again when the server has
// lost it (a restart), closed when this object goes. While it lives, the
// server holds the ephemeral /kiln/nodes/<id>/agent with `info`; when the
// machine dies the heartbeats stop and the server notices.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "agent/agent_api.h"
#include "common/json.h"

namespace kiln::agent {

class LiveSession {
 public:
  LiveSession(std::string server, std::string token, std::string node,
              std::chrono::milliseconds timeout, Json info);
  ~LiveSession();

  // True once a session is open (the server has the agent znode).
  bool open() const;
  // Replaces what the agent znode says (a new image after an update).
  void SetInfo(Json info);

 private:
  void Loop();

  AgentApi api_;
  std::string token_;
  std::string node_;
  std::chrono::milliseconds timeout_;
  Json info_;
  int64_t id_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::agent
