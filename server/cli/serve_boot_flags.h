#pragma once
// `kiln serve` flags for network boot: the boot network, TFTP, DHCP
// through dnsmasq, and what machines boot.

#include <CLI/CLI.hpp>

#include "server/boot_service.h"

namespace kiln::cli {

void AddBootFlags(CLI::App* cmd, BootOptions* boot);

}  // namespace kiln::cli
