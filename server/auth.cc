#include "server/auth.h"

namespace kiln {

bool SecretEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

http::Principal TokenAuthenticator::Authenticate(std::string_view token) const {
  http::Principal p;
  if (token.empty()) return p;
  if (SecretEquals(token, admin_)) {
    p.kind = http::Principal::Kind::kAdmin;
    return p;
  }
  std::lock_guard lock(mu_);
  // Node tokens are random 256-bit values: a map lookup leaks nothing useful.
  auto it = node_by_token_.find(std::string(token));
  if (it != node_by_token_.end()) {
    p.kind = http::Principal::Kind::kNode;
    p.node = it->second;
  }
  return p;
}

void TokenAuthenticator::SetNodeToken(const std::string& node_id, const std::string& token) {
  std::lock_guard lock(mu_);
  auto old = token_by_node_.find(node_id);
  if (old != token_by_node_.end()) node_by_token_.erase(old->second);
  token_by_node_[node_id] = token;
  node_by_token_[token] = node_id;
}

void TokenAuthenticator::RemoveNode(const std::string& node_id) {
  std::lock_guard lock(mu_);
  auto old = token_by_node_.find(node_id);
  if (old == token_by_node_.end()) return;
  node_by_token_.erase(old->second);
  token_by_node_.erase(old);
}

}  // namespace kiln
