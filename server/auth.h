#pragma once
// Token authentication. The admin token comes from the data directory; node
// tokens are issued at enrollment and registered here by the node inventory.
// Tokens are compared in constant time.

#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "server/http/router.h"

namespace kiln {

class TokenAuthenticator : public http::Authenticator {
 public:
  explicit TokenAuthenticator(std::string admin_token) : admin_(std::move(admin_token)) {}

  http::Principal Authenticate(std::string_view token) const override;

  // A token that acts as node_id only. Replaces the node's earlier token.
  void SetNodeToken(const std::string& node_id, const std::string& token);
  void RemoveNode(const std::string& node_id);

 private:
  std::string admin_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> node_by_token_;
  std::map<std::string, std::string> token_by_node_;
};

// Constant-time equality for secrets.
bool SecretEquals(std::string_view a, std::string_view b);

}  // namespace kiln
