#pragma once
// The HTTP side of network boot. Public: machines that boot have no token.
//
// GET /boot/ipxe                  the iPXE entry script: chains to the
//                                 per-MAC script below
// GET /boot/ipxe?mac=M[&platform=P&arch=A]
//                                 the iPXE script rendered for MAC M from
//                                 its node's boot target (kernel and initrd
//                                 over HTTP, a one-time enrollment token on
//                                 the kernel command line)
// GET /boot/files/{path...}       a file of the boot tree (kernels,
//                                 initrds, loaders), sent with sendfile;
//                                 paths are confined to the tree as for TFTP

namespace kiln {
class BootService;
namespace http {
class Router;
}

void RegisterBootRoutes(http::Router& router, BootService& boot);

}  // namespace kiln
