// Server's network-boot wiring: the boot service, the inventory as its
// BootResolver, node tokens for the authenticator, status and metrics.

#include "common/log.h"
#include "server/inventory/inventory.h"
#include "server/server.h"

namespace kiln {
namespace {

// Asks whatever inventory the server has now; the TFTP and HTTP boot paths
// keep working (every MAC falls back to pxelinux.cfg/default: boot the
// local disk) while it is not running.
class ServerBootResolver : public pxe::BootResolver {
 public:
  explicit ServerBootResolver(Server* server) : server_(server) {}
  Result<pxe::BootDecision> Resolve(const pxe::BootQuery& q) override {
    inventory::Inventory* inv = server_->inventory();
    if (!inv) return Unavailable("the node inventory is not available");
    return inv->Resolve(q);
  }

 private:
  Server* server_;
};

}  // namespace

Status Server::PrepareBoot() {
  // The inventory lives in the coordination store; node tokens it hands
  // out (and reloads after a restart) are registered for authentication.
  inventory::TokenHooks hooks;
  hooks.set = [this](const std::string& node, const std::string& token) {
    auth_->SetNodeToken(node, token);
  };
  hooks.remove = [this](const std::string& node) { auth_->RemoveNode(node); };
  auto inv = inventory::Inventory::Open(coord(), std::move(hooks));
  if (!inv.ok()) return inv.status().WithContext("node inventory");
  inventory_ = std::move(*inv);
  boot_resolver_ = std::make_unique<ServerBootResolver>(this);
  auto boot = BootService::Create(options_.boot, data_dir_->path(), boot_resolver_.get());
  if (!boot.ok()) return boot.status();
  boot_ = std::move(*boot);
  return Status::Ok();
}

Status Server::StartBootNetwork() {
  KILN_RETURN_IF_ERROR(boot_->Start(http_->address().port));
  AddStatusSection("tftp", [this] { return boot_->TftpStatus(); });
  AddStatusSection("dhcp", [this] { return boot_->DhcpStatus(); });
  AddStatusSection("boot", [this] { return boot_->TreeStatus(); });
  AddStatusSection("inventory", [this] {
    if (!inventory_) return Json{{"state", "off"}};
    return Json{{"state", "running"}, {"nodes", inventory_->size()}};
  });
  boot_->RegisterMetrics(metrics_);
  return Status::Ok();
}

}  // namespace kiln
