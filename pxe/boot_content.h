#pragma once
// What kiln's TFTP server serves: the boot tree's files, with the
// per-machine configs rendered on request from the BootResolver:
//
//   pxelinux.cfg/01-<mac>                  PXELINUX config for that MAC
//   pxelinux.cfg/default                   boots the local disk (fallback)
//   pxelinux.cfg/<anything else>           not found (PXELINUX's UUID and
//                                          IP guesses end quickly)
//   grub/grub.cfg, grub/x86_64-efi/grub.cfg, grub.cfg
//                                          GRUB dispatcher to the per-MAC file
//   grub/kiln/<mac>.cfg, grub/grub.cfg-01-<mac>
//                                          GRUB config for that MAC
//
// Every other path is a file below the root (pxe/tftp_path.h rules).
//
// Thread safety: Open and Render may be called from any thread at once
// (the TFTP thread and HTTP threads); the resolver must allow that.

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "pxe/boot_config.h"
#include "pxe/boot_resolver.h"
#include "pxe/tftp_server.h"

namespace kiln::pxe {

struct DynamicFile {
  enum class Kind { kPxelinuxMac, kPxelinuxDefault, kPxelinuxOther, kGrubDispatcher, kGrubMac };
  Kind kind;
  std::optional<Mac> mac;
};

// Which dynamic file a normalised path names, if any.
std::optional<DynamicFile> MatchDynamic(const std::string& path);

class BootContent : public TftpContent {
 public:
  // root: the boot tree (must exist). resolver must outlive this.
  static Result<std::unique_ptr<BootContent>> Create(const std::string& root, BootSettings settings,
                                                     BootResolver* resolver);

  Result<TftpFile> Open(const TftpRequestInfo& request) override;

  // The rendered text of a dynamic file (nullopt when path is not one).
  Result<std::optional<std::string>> Render(const std::string& path, const std::string& local_ip,
                                            const std::string& client_ip);

  const BootSettings& settings() const { return settings_; }
  // The HTTP port rendered URLs point at (when settings carry no URL).
  // Any thread.
  void set_http_port(uint16_t port) { http_port_.store(port); }
  const std::string& root() const { return root_; }
  int root_fd() const { return files_->root_fd(); }

 private:
  BootContent(std::string root, BootSettings settings, BootResolver* resolver,
              std::unique_ptr<DirectoryContent> files)
      : root_(std::move(root)), settings_(std::move(settings)), resolver_(resolver),
        files_(std::move(files)), http_port_(settings_.http_port) {}

  std::string root_;
  BootSettings settings_;
  BootResolver* resolver_;
  std::unique_ptr<DirectoryContent> files_;
  std::atomic<uint16_t> http_port_;
};

}  // namespace kiln::pxe
