#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "pxe/tftp_path.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::pxe;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;

TEST_CASE("client file names are normalised inside the root") {
  CHECK(*NormalizeTftpPath("pxelinux.0") == "pxelinux.0");
  CHECK(*NormalizeTftpPath("/pxelinux.0") == "pxelinux.0");
  CHECK(*NormalizeTftpPath("//grub//./grub.cfg") == "grub/grub.cfg");
  CHECK(*NormalizeTftpPath("pxelinux.cfg\\default") == "pxelinux.cfg/default");
  CHECK(*NormalizeTftpPath("./a/b/") == "a/b");
  CHECK(*NormalizeTftpPath("a..b") == "a..b");
}

TEST_CASE("names that climb out, name nothing or hold control characters are refused") {
  for (const char* bad : {"..", "../etc/passwd", "a/../../b", "/..", "a\\..\\..\\x", "a/..",
                          "pxelinux.cfg/../../../etc/shadow"}) {
    auto r = NormalizeTftpPath(bad);
    INFO(bad);
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Code::kPermissionDenied);
    CHECK(r.status().message().find("leaves the TFTP root") != std::string::npos);
  }
  CHECK(NormalizeTftpPath("/").status().code() == Code::kInvalidArgument);
  CHECK(NormalizeTftpPath("./.").status().code() == Code::kInvalidArgument);
  CHECK(NormalizeTftpPath(std::string("a\x01" "b")).status().message() ==
        "file name contains control character 0x01");
}

TEST_CASE("OpenBeneath follows symlinks inside the root and refuses those that leave") {
  TempDir t;
  WriteTestFile(t.Sub("root/boot/vmlinuz"), "kernel");
  WriteTestFile(t.Sub("secret"), "outside");
  REQUIRE(::symlink("boot/vmlinuz", t.Sub("root/linux").c_str()) == 0);
  REQUIRE(::symlink("../secret", t.Sub("root/escape").c_str()) == 0);
  REQUIRE(::symlink(t.Sub("secret").c_str(), t.Sub("root/absolute").c_str()) == 0);
  REQUIRE(::symlink("/proc/self/root/etc/passwd", t.Sub("root/magic").c_str()) == 0);
  REQUIRE(::symlink("..", t.Sub("root/up").c_str()) == 0);
  REQUIRE(::mkfifo(t.Sub("root/fifo").c_str(), 0644) == 0);
  UniqueFd root(::open(t.Sub("root").c_str(), O_RDONLY | O_DIRECTORY));
  REQUIRE(root.valid());

  auto ok = OpenBeneath(root.get(), "linux");
  REQUIRE(ok.ok());
  CHECK(ok->size == 6);

  for (const char* bad : {"escape", "absolute", "magic", "up/secret"}) {
    INFO(bad);
    auto r = OpenBeneath(root.get(), bad);
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Code::kPermissionDenied);
  }
  CHECK(OpenBeneath(root.get(), "boot").status().message() == "boot: not a regular file");
  CHECK(OpenBeneath(root.get(), "fifo").status().code() == Code::kPermissionDenied);
  CHECK(OpenBeneath(root.get(), "nothing").status().code() == Code::kNotFound);
  CHECK(OpenBeneath(root.get(), "boot/vmlinuz/x").status().code() == Code::kNotFound);
}
