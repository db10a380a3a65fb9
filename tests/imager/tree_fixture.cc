#include "tests/imager/tree_fixture.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <random>

#include "common/file_util.h"
#include "imager/diff.h"
#include "imager/direct_writer.h"
#include "imager/path_util.h"
#include "imager/scan.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace kiln::imager::test {
namespace {

void Sh(const std::string& cmd) {
  auto r = kiln::test::Run({"/bin/sh", "-c", cmd});
  INFO(cmd << "\n" << r.err);
  REQUIRE(r.exit_code == 0);
}

void Write(const std::string& path, const std::string& data, mode_t mode) {
  kiln::test::WriteTestFile(path, data);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

}  // namespace

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t k = 0; k < 8 && i + k < n; ++k) s[i + k] = static_cast<char>(v >> (8 * k));
  }
  return s;
}

void SetMtime(const std::string& path, int64_t sec, long nsec) {
  timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

void MakeRichTree(const std::string& d, unsigned seed) {
  REQUIRE(MakeDirs(d + "/etc/sub", 0755).ok());
  REQUIRE(MakeDirs(d + "/usr/bin", 0755).ok());
  REQUIRE(MakeDirs(d + "/var/private", 0700).ok());
  REQUIRE(MakeDirs(d + "/tmp", 0755).ok());
  REQUIRE(MakeDirs(d + "/srv/shared", 0755).ok());
  REQUIRE(MakeDirs(d + "/dev", 0755).ok());
  REQUIRE(::chmod((d + "/tmp").c_str(), 01777) == 0);
  REQUIRE(::chmod((d + "/srv/shared").c_str(), 02775) == 0);
  REQUIRE(::chmod((d + "/var/private").c_str(), 0700) == 0);
  Write(d + "/etc/hostname", "golden-" + std::to_string(seed) + "\n", 0644);
  Write(d + "/etc/empty", "", 0600);
  Write(d + "/etc/sub/config", RandomBytes(5000, seed), 0640);
  Write(d + "/usr/bin/tool", RandomBytes(200000, seed + 1), 04755);  // setuid
  Write(d + "/usr/bin/ping", RandomBytes(30000, seed + 2), 0755);
  Write(d + "/var/big.img", RandomBytes(3 * 1024 * 1024 + 12345, seed + 3), 0644);  // chunked
  Write(d + "/var/private/secret", "s3cret\n", 0600);
  REQUIRE(::chown((d + "/var/private/secret").c_str(), 1234, 5678) == 0);
  REQUIRE(::chown((d + "/srv/shared").c_str(), 0, 4321) == 0);
  // Hard links: three names for one inode.
  Write(d + "/usr/bin/busy", RandomBytes(7000, seed + 4), 0755);
  REQUIRE(::link((d + "/usr/bin/busy").c_str(), (d + "/usr/bin/ash").c_str()) == 0);
  REQUIRE(::link((d + "/usr/bin/busy").c_str(), (d + "/etc/busy-link").c_str()) == 0);
  // Symlinks: relative, absolute (points outside when followed from the
  // host: must be kept as is, never followed), dangling.
  REQUIRE(::symlink("sub/config", (d + "/etc/config-link").c_str()) == 0);
  REQUIRE(::symlink("/etc/passwd", (d + "/etc/abs-link").c_str()) == 0);
  REQUIRE(::symlink("../nowhere/at/all", (d + "/etc/dangling").c_str()) == 0);
  REQUIRE(::lchown((d + "/etc/abs-link").c_str(), 1234, 1234) == 0);
  // Special files.
  REQUIRE(::mkfifo((d + "/tmp/fifo").c_str(), 0620) == 0);
  REQUIRE(::mknod((d + "/dev/null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)) == 0);
  REQUIRE(::mknod((d + "/dev/loop9").c_str(), S_IFBLK | 0660, ::makedev(7, 9)) == 0);
  {
    int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(s >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string sp = d + "/tmp/sock";
    REQUIRE(sp.size() < sizeof addr.sun_path);
    std::copy(sp.begin(), sp.end(), addr.sun_path);
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(s);
  }
  // xattrs: user, a file capability (cap_net_raw, raw v2 form), ACLs.
  Sh("setfattr -n user.origin -v golden '" + d + "/etc/hostname'");
  Sh("setfattr -n user.bin -v 0x00ff00 '" + d + "/var/big.img'");
  Sh("setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 '" + d +
     "/usr/bin/ping'");
  Sh("setfacl -m u:1234:rw,g:4321:r '" + d + "/etc/sub/config'");
  Sh("setfacl -d -m u:1234:rwx '" + d + "/srv/shared'");
  // Nanosecond mtimes, children before parents (touching a child's name
  // changes its directory's mtime).
  const char* leaves[] = {"/etc/hostname",       "/etc/empty",    "/etc/sub/config",
                          "/usr/bin/tool",       "/usr/bin/ping", "/var/big.img",
                          "/var/private/secret", "/usr/bin/busy", "/etc/config-link",
                          "/etc/abs-link",       "/etc/dangling", "/tmp/fifo",
                          "/dev/null",           "/dev/loop9",    "/tmp/sock"};
  int64_t t = 1700000000 + seed * 1000;
  for (const char* l : leaves) SetMtime(d + l, t++, 123456789);
  const char* dirs[] = {"/etc/sub",    "/etc", "/usr/bin", "/usr", "/var/private", "/var", "/tmp",
                        "/srv/shared", "/srv", "/dev",     ""};
  for (const char* x : dirs) SetMtime(d + x, t++, 987654321);
}

std::string RsyncDiff(const std::string& a, const std::string& b, const std::string& exclude) {
  std::vector<std::string> argv = {"rsync", "-aHAXn", "--itemize-changes", "--delete"};
  if (!exclude.empty()) argv.push_back("--exclude=/" + exclude);
  argv.push_back(a + "/");
  argv.push_back(b + "/");
  auto r = kiln::test::Run(argv);
  if (r.exit_code != 0) return "rsync failed: " + r.err;
  return r.out;
}

std::string ScanDiff(const std::string& a, const std::string& b) {
  auto ma = ScanDirectory(a, {});
  auto mb = ScanDirectory(b, {});
  if (!ma.ok()) return ma.status().ToString();
  if (!mb.ok()) return mb.status().ToString();
  for (const auto& c : DiffManifests(ma->manifest, mb->manifest)) return ChangeToJson(c).dump();
  return "";
}

bool DirectIoWorks(const std::string& dir) {
  std::string path = dir + "/probe";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600));
  if (!fd.valid()) return false;
  void* p = nullptr;
  if (::posix_memalign(&p, DirectWriter::kAlign, DirectWriter::kAlign) != 0) return false;
  std::memset(p, 'x', DirectWriter::kAlign);
  bool ok =
      ::pwrite(fd.get(), p, DirectWriter::kAlign, 0) == static_cast<ssize_t>(DirectWriter::kAlign);
  std::free(p);
  ::unlink(path.c_str());
  return ok;
}

}  // namespace kiln::imager::test
