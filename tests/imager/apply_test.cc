// Capture into a local store, stream, apply: exactness, deltas, undo,
// the stat cache, and confinement of the applier.

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/file_util.h"
#include "imager/codec.h"
#include "imager/scan.h"
#include "imager/stat_cache.h"
#include "tests/imager/local_store.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;
using namespace kiln::imager::test;
using kiln::test::TempDir;
using kiln::test::WriteTestFile;

namespace {
bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}
}  // namespace

TEST_CASE(
    "a captured tree deploys exactly: every type, owner, mode, xattr, ACL, capability, time") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  LocalStore ls;
  auto rep = ls.Capture("rich", t.Sub("src"));
  CHECK(rep.version.version == 1);
  CHECK(rep.objects_sent == rep.objects);
  auto st = ls.Deploy("rich", "", t.Sub("dst"));
  INFO(st.status().ToString());
  REQUIRE(st.ok());
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
  CHECK(ScanDiff(t.Sub("src"), t.Sub("dst")) == "");
  // Hard links really are one inode.
  struct stat a {
  }, b{};
  REQUIRE(::stat(t.Sub("dst/usr/bin/ash").c_str(), &a) == 0);
  REQUIRE(::stat(t.Sub("dst/etc/busy-link").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
  CHECK(a.st_nlink == 3);

  // Re-capturing the same content gives the same manifest and sends nothing.
  auto again = ls.Capture("rich", t.Sub("src"));
  CHECK(again.manifest == rep.manifest);
  CHECK(again.objects_sent == 0);
  CHECK(again.version.version == 2);
  // A copy elsewhere captures to the same digest too.
  auto copy = ls.Capture("copy", t.Sub("dst"));
  CHECK(copy.manifest == rep.manifest);
}

TEST_CASE("a full deploy over an existing tree replaces and prunes until it is exact") {
  TempDir t;
  MakeRichTree(t.Sub("src"), 1);
  MakeRichTree(t.Sub("dst"), 2);  // different content, same shape
  WriteTestFile(t.Sub("dst/extra/file"), "not in the image");
  REQUIRE(::symlink("/", t.Sub("dst/var/escape").c_str()) == 0);
  // Where the image has a file, the target has a directory, and vice versa.
  REQUIRE(::unlink(t.Sub("dst/etc/hostname").c_str()) == 0);
  WriteTestFile(t.Sub("dst/etc/hostname/inner"), "x");
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  auto st = ls.Deploy("img", "", t.Sub("dst"));
  INFO(st.status().ToString());
  REQUIRE(st.ok());
  CHECK(st->pruned >= 2);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
}

TEST_CASE("a delta turns version 1 into version 2 exactly, reusing unchanged ranges") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  REQUIRE(ls.Deploy("img", "1", t.Sub("dst")).ok());
  // Version 2: edit inside the big file, change a mode, an owner, an xattr,
  // a symlink target, remove a file and a directory tree, add new ones,
  // turn a file into a directory.
  {
    std::string big = *ReadFile(t.Sub("src/var/big.img"));
    big.replace(1500000, 4096, RandomBytes(4096, 99));
    WriteTestFile(t.Sub("src/var/big.img"), big);
  }
  REQUIRE(::chmod(t.Sub("src/usr/bin/tool").c_str(), 0700) == 0);
  REQUIRE(::chown(t.Sub("src/etc/empty").c_str(), 42, 42) == 0);
  kiln::test::Run({"setfattr", "-n", "user.origin", "-v", "changed", t.Sub("src/etc/hostname")});
  REQUIRE(::unlink(t.Sub("src/etc/config-link").c_str()) == 0);
  REQUIRE(::symlink("elsewhere", t.Sub("src/etc/config-link").c_str()) == 0);
  REQUIRE(::unlink(t.Sub("src/tmp/fifo").c_str()) == 0);
  REQUIRE(RemoveAll(t.Sub("src/var/private")).ok());
  WriteTestFile(t.Sub("src/new/dir/file"), "new");
  REQUIRE(::unlink(t.Sub("src/etc/sub/config").c_str()) == 0);
  WriteTestFile(t.Sub("src/etc/sub/config/now-a-dir"), "inside");
  // The busybox group gets new content: every link must follow.
  WriteTestFile(t.Sub("src/usr/bin/busy.new"), "new busybox");
  REQUIRE(::rename(t.Sub("src/usr/bin/busy.new").c_str(), t.Sub("src/usr/bin/busy").c_str()) == 0);
  REQUIRE(::unlink(t.Sub("src/usr/bin/ash").c_str()) == 0);
  REQUIRE(::link(t.Sub("src/usr/bin/busy").c_str(), t.Sub("src/usr/bin/ash").c_str()) == 0);
  REQUIRE(::unlink(t.Sub("src/etc/busy-link").c_str()) == 0);
  REQUIRE(::link(t.Sub("src/usr/bin/busy").c_str(), t.Sub("src/etc/busy-link").c_str()) == 0);
  ls.Capture("img", t.Sub("src"));

  std::string delta = ls.Stream("img", "2", "1");
  std::string full = ls.Stream("img", "2");
  CHECK(delta.size() < full.size() / 10);
  auto st = ls.Apply(delta, t.Sub("dst"));
  INFO(st.status().ToString());
  REQUIRE(st.ok());
  CHECK(st->bytes_copied > 3000000);  // the big file's unchanged chunks
  CHECK(st->bytes_written < 400000);
  CHECK(st->meta_only >= 2);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
  CHECK(ScanDiff(t.Sub("src"), t.Sub("dst")) == "");
}

TEST_CASE("a delta refuses a target that is not the base version, before changing the file") {
  TempDir t;
  WriteTestFile(t.Sub("src/big"), RandomBytes(3 << 20, 1));
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  REQUIRE(ls.Deploy("img", "1", t.Sub("dst")).ok());
  std::string big = *ReadFile(t.Sub("src/big"));
  big[2000000] ^= 1;
  WriteTestFile(t.Sub("src/big"), big);
  ls.Capture("img", t.Sub("src"));
  WriteTestFile(t.Sub("dst/big"), "someone changed this file");
  auto st = ls.Deploy("img", "2", t.Sub("dst"), "1");
  REQUIRE(!st.ok());
  CHECK(st.status().message().find("entry /big: the file in the target is not the base version") !=
        std::string::npos);
  CHECK(*ReadFile(t.Sub("dst/big")) == "someone changed this file");
}

TEST_CASE("undo restores the tree exactly as it was before a delta") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  REQUIRE(ls.Deploy("img", "1", t.Sub("dst")).ok());
  REQUIRE(ls.Deploy("img", "1", t.Sub("before")).ok());
  WriteTestFile(t.Sub("src/etc/hostname"), "changed\n");
  REQUIRE(RemoveAll(t.Sub("src/var")).ok());
  WriteTestFile(t.Sub("src/opt/new"), "new");
  REQUIRE(::chmod(t.Sub("src/etc").c_str(), 0700) == 0);
  ls.Capture("img", t.Sub("src"));
  ApplyOptions opts;
  opts.undo_dir = t.Sub("dst/.kiln-undo");
  auto st = ls.Deploy("img", "2", t.Sub("dst"), "1", opts);
  INFO(st.status().ToString());
  REQUIRE(st.ok());
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst"), ".kiln-undo") == "");
  Status u = RestoreUndo(t.Sub("dst"), t.Sub("dst/.kiln-undo"), true);
  INFO(u.ToString());
  REQUIRE(u.ok());
  CHECK(!Exists(t.Sub("dst/.kiln-undo")));
  CHECK(RsyncDiff(t.Sub("before"), t.Sub("dst")) == "");
}

TEST_CASE("the stat cache skips unchanged files and notices changed ones") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  // Files changed within kRacyWindowNs of a scan are not cached (racy).
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kRacyWindowNs / 1'000'000));
  LocalStore ls;
  CaptureOptions opts;
  opts.stat_cache = t.Sub("cache/sc");
  auto first = ls.Capture("img", t.Sub("src"), opts);
  CHECK(first.files_hashed == first.files);
  CHECK(!first.one_exchange);  // the store lacked everything
  auto second = ls.Capture("img", t.Sub("src"), opts);
  CHECK(second.files_hashed == 0);
  CHECK(second.manifest == first.manifest);
  CHECK(second.one_exchange);
  CHECK(second.objects_sent == 0);
  WriteTestFile(t.Sub("src/etc/hostname"), "changed, same tick or not\n");
  auto third = ls.Capture("img", t.Sub("src"), opts);
  CHECK(third.files_hashed == 1);
  CHECK(third.manifest != first.manifest);
  // The changed file's object went with the manifest: one exchange.
  CHECK(third.one_exchange);
  CHECK(third.objects_sent == 1);
  CHECK(ls.store().objects().Has(Sha256Of("changed, same tick or not\n")));
  // A damaged cache is ignored, never trusted.
  WriteTestFile(t.Sub("cache/sc"), "KILNSC1\ngarbage");
  auto fourth = ls.Capture("img", t.Sub("src"), opts);
  CHECK(fourth.manifest == third.manifest);
  CHECK(fourth.files_hashed == fourth.files);
}

TEST_CASE("excludes skip matching paths and whole directories") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  ScanOptions so;
  so.excludes = {"var/*", "*.img", "/etc/sub"};
  auto r = ScanDirectory(t.Sub("src"), so);
  REQUIRE(r.ok());
  CHECK(r->manifest.Find("var") != nullptr);
  CHECK(r->manifest.Find("var/private") == nullptr);
  CHECK(r->manifest.Find("etc/sub") == nullptr);
  CHECK(r->manifest.Find("etc/sub/config") == nullptr);
  CHECK(r->manifest.Find("etc/hostname") != nullptr);
}

TEST_CASE("device nodes are refused where they are not allowed, naming the entry") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  ApplyOptions opts;
  opts.allow_devices = false;
  auto st = ls.Deploy("img", "", t.Sub("dst"), "", opts);
  REQUIRE(!st.ok());
  CHECK(st.status().message() == "entry /dev/loop9: device nodes are not allowed here");
  CaptureOptions co;
  co.allow_devices = false;
  auto cap = ls.TryCapture("img", t.Sub("src"), co);
  REQUIRE(!cap.ok());
  CHECK(cap.status().message().find("/dev/loop9: device nodes are not allowed") !=
        std::string::npos);
}

TEST_CASE("the applier never writes outside its root, whatever symlinks the target holds") {
  TempDir t;
  // The image has a directory "etc" with a file in it.
  WriteTestFile(t.Sub("src/etc/passwd"), "image passwd\n");
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  // The target already has "etc" as a symlink to a directory outside.
  REQUIRE(MakeDirs(t.Sub("outside")).ok());
  WriteTestFile(t.Sub("outside/passwd"), "outside passwd\n");
  REQUIRE(MakeDirs(t.Sub("dst")).ok());
  REQUIRE(::symlink(t.Sub("outside").c_str(), t.Sub("dst/etc").c_str()) == 0);
  auto st = ls.Deploy("img", "", t.Sub("dst"));
  INFO(st.status().ToString());
  REQUIRE(st.ok());
  // The symlink was replaced by a directory; outside is untouched.
  CHECK(*ReadFile(t.Sub("outside/passwd")) == "outside passwd\n");
  struct stat s {};
  REQUIRE(::lstat(t.Sub("dst/etc").c_str(), &s) == 0);
  CHECK(S_ISDIR(s.st_mode));
  CHECK(*ReadFile(t.Sub("dst/etc/passwd")) == "image passwd\n");

  // A delta whose base says "etc" is a directory, applied to a target where
  // it is a symlink: refused, nothing outside changes. (etc keeps its mtime,
  // so the delta has no entry that would replace the symlink first.)
  struct stat etc {};
  REQUIRE(::lstat(t.Sub("src/etc").c_str(), &etc) == 0);
  WriteTestFile(t.Sub("src/etc/passwd"), "image passwd v2\n");
  SetMtime(t.Sub("src/etc"), etc.st_mtim.tv_sec, etc.st_mtim.tv_nsec);
  ls.Capture("img", t.Sub("src"));
  REQUIRE(RemoveAll(t.Sub("dst/etc")).ok());
  REQUIRE(::symlink(t.Sub("outside").c_str(), t.Sub("dst/etc").c_str()) == 0);
  auto d = ls.Deploy("img", "2", t.Sub("dst"), "1");
  REQUIRE(!d.ok());
  CHECK(d.status().message().find("/etc in " + t.Sub("dst") + " is not a directory") !=
        std::string::npos);
  CHECK(*ReadFile(t.Sub("outside/passwd")) == "outside passwd\n");
}

TEST_CASE("kept paths survive a delta and a full deploy untouched, the rest becomes exact") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  WriteTestFile(t.Sub("src/etc/ssh/ssh_host_ed25519_key"), "image key");
  WriteTestFile(t.Sub("src/var/log/app/old.log"), "image log");
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  REQUIRE(ls.Deploy("img", "1", t.Sub("dst")).ok());
  // The host makes these its own.
  WriteTestFile(t.Sub("dst/etc/hostname"), "web07\n");
  WriteTestFile(t.Sub("dst/etc/ssh/ssh_host_ed25519_key"), "host key");
  WriteTestFile(t.Sub("dst/var/log/app/today.log"), "host log");
  // Version 2 changes, removes and adds under the same paths, and elsewhere.
  WriteTestFile(t.Sub("src/etc/hostname"), "from-the-image\n");
  WriteTestFile(t.Sub("src/etc/ssh/ssh_host_ed25519_key"), "new image key");
  REQUIRE(RemoveAll(t.Sub("src/var/log/app")).ok());
  WriteTestFile(t.Sub("src/etc/motd"), "version 2\n");
  ls.Capture("img", t.Sub("src"));

  ApplyOptions keep;
  keep.keep = {"/etc/hostname", "ssh_host_*", "/var/log"};
  auto delta = ls.Deploy("img", "2", t.Sub("dst"), "1", keep);
  INFO(delta.status().ToString());
  REQUIRE(delta.ok());
  CHECK(delta->kept >= 3);
  CHECK(*ReadFile(t.Sub("dst/etc/hostname")) == "web07\n");
  CHECK(*ReadFile(t.Sub("dst/etc/ssh/ssh_host_ed25519_key")) == "host key");
  CHECK(*ReadFile(t.Sub("dst/var/log/app/today.log")) == "host log");
  CHECK(*ReadFile(t.Sub("dst/var/log/app/old.log")) == "image log");  // its deletion was skipped
  CHECK(*ReadFile(t.Sub("dst/etc/motd")) == "version 2\n");

  // A full deploy prunes what the image lacks, except what is kept.
  WriteTestFile(t.Sub("dst/stray"), "not in the image");
  auto full = ls.Deploy("img", "2", t.Sub("dst"), "", keep);
  REQUIRE(full.ok());
  CHECK(!Exists(t.Sub("dst/stray")));
  CHECK(*ReadFile(t.Sub("dst/etc/hostname")) == "web07\n");
  CHECK(*ReadFile(t.Sub("dst/var/log/app/today.log")) == "host log");
  // Beside the kept paths, the tree is exactly version 2.
  CHECK(RsyncDiff(t.Sub("src/usr"), t.Sub("dst/usr")) == "");
  CHECK(*ReadFile(t.Sub("dst/etc/motd")) == "version 2\n");
}

TEST_CASE("a full deploy never prunes across a mount point under the target") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  WriteTestFile(t.Sub("src/boot/vmlinuz"), "kernel");
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  // The installer mounts an ESP at boot/efi before deploying; the image has
  // no boot/efi.
  REQUIRE(MakeDirs(t.Sub("dst/boot/efi")).ok());
  if (::mount("esp", t.Sub("dst/boot/efi").c_str(), "tmpfs", 0, "size=1m") != 0) {
    WARN("cannot mount a tmpfs here (not root?): " << strerror(errno) << "; not tested");
    return;
  }
  WriteTestFile(t.Sub("dst/boot/efi/EFI/BOOT/BOOTX64.EFI"), "grub");
  WriteTestFile(t.Sub("dst/stray"), "not in the image");
  auto full = ls.Deploy("img", "1", t.Sub("dst"));
  auto esp_file = ReadFile(t.Sub("dst/boot/efi/EFI/BOOT/BOOTX64.EFI"));
  std::string esp = esp_file.ok() ? *esp_file : "gone";
  ::umount2(t.Sub("dst/boot/efi").c_str(), MNT_DETACH);
  INFO(full.status().ToString());
  REQUIRE(full.ok());
  CHECK(esp == "grub");
  CHECK(!Exists(t.Sub("dst/stray")));  // the target's own filesystem is still pruned
  CHECK(RsyncDiff(t.Sub("src/usr"), t.Sub("dst/usr")) == "");
}

// A filesystem made by mkfs (its command without the image) in a sparse
// file under t, mounted at t/mnt through a loop device until the end of the
// scope. Needs root, the mkfs and loop devices: where they are missing,
// ok() is false and the test says it was not run.
class LoopMount {
 public:
  LoopMount(TempDir& t, std::vector<std::string> mkfs) : dir_(t.Sub("mnt")) {
    {
      UniqueFd img(::open(t.Sub("fs.img").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
      REQUIRE(img.valid());
      REQUIRE(::ftruncate(img.get(), off_t{512} << 20) == 0);
    }
    mkfs.push_back(t.Sub("fs.img"));
    auto made = kiln::test::Run(mkfs);
    REQUIRE(MakeDirs(dir_).ok());
    auto mount = kiln::test::Run({"mount", "-o", "loop", t.Sub("fs.img"), dir_});
    ok_ = made.exit_code == 0 && mount.exit_code == 0;
    if (!ok_)
      WARN("cannot make and mount " << mkfs[0] << ": " << made.err << mount.err << "; not tested");
  }
  ~LoopMount() {
    if (ok_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

TEST_CASE("a large file written whole bypasses the page cache, a delta's copy of it does not") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  const uint64_t size = DirectWriter::kMinFileSize + DirectWriter::kBufferSize + 777;
  std::string big = RandomBytes(size, 5);
  WriteTestFile(t.Sub("src/var/large.img"), big);
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));

  ApplyOptions no_direct;
  no_direct.direct_io = false;
  auto buffered = ls.Deploy("img", "1", t.Sub("buffered"), "", no_direct);
  REQUIRE(buffered.ok());
  CHECK(buffered->bytes_direct == 0);
  auto full = ls.Deploy("img", "1", t.Sub("dst"));
  INFO(full.status().ToString());
  REQUIRE(full.ok());
  // Where the filesystem takes O_DIRECT, all but the unaligned tail of the
  // large file went that way, and nothing else did (the rich tree's other
  // files are below the threshold).
  CHECK(full->bytes_direct ==
        (DirectIoWorks(t.path()) ? size / DirectWriter::kAlign * DirectWriter::kAlign : 0));
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("buffered")) == "");

  // 1 MiB changed in the middle, and 100 bytes inserted before it (the
  // ranges after that move by an unaligned amount): the delta copies the
  // rest from the old file through the page cache.
  big.replace(size / 2, 1 << 20, RandomBytes(1 << 20, 6));
  big.insert(size / 4, RandomBytes(100, 7));
  WriteTestFile(t.Sub("src/var/large.img"), big);
  ls.Capture("img", t.Sub("src"));
  auto delta = ls.Apply(ls.Stream("img", "2", "1"), t.Sub("dst"));
  INFO(delta.status().ToString());
  REQUIRE(delta.ok());
  CHECK(delta->bytes_copied > size / 2);
  CHECK(delta->bytes_direct == 0);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
  CHECK(ScanDiff(t.Sub("src"), t.Sub("dst")) == "");
}

TEST_CASE("on a filesystem that shares blocks, a delta shares its file's unchanged ranges") {
  TempDir t;
  // XFS makes reflink on by default.
  LoopMount mnt(t, {"mkfs.xfs", "-q", "-f"});
  if (!mnt.ok()) return;

  const size_t size = 24 << 20;
  std::string data = RandomBytes(size, 11);
  WriteTestFile(t.Sub("src/disk.img"), data);
  WriteTestFile(t.Sub("src/small"), "small");
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  REQUIRE(ls.Deploy("img", "1", t.Sub("mnt/dst")).ok());
  // Overwritten in place at an offset no block boundary is near: the ranges
  // before and after it stay where they were.
  data.replace((9 << 20) + 1234, 300000, RandomBytes(300000, 12));
  WriteTestFile(t.Sub("src/disk.img"), data);
  ls.Capture("img", t.Sub("src"));

  // Keep the old version's blocks (a hard link), so that what the new
  // version adds is what the filesystem's usage grows by.
  REQUIRE(::link(t.Sub("mnt/dst/disk.img").c_str(), t.Sub("mnt/old.img").c_str()) == 0);
  ::sync();
  auto used = [&] {
    struct statvfs v {};
    REQUIRE(::statvfs(t.Sub("mnt").c_str(), &v) == 0);
    return static_cast<uint64_t>(v.f_blocks - v.f_bfree) * v.f_frsize;
  };
  uint64_t before = used();
  auto delta = ls.Apply(ls.Stream("img", "2", "1"), t.Sub("mnt/dst"));
  INFO(delta.status().ToString());
  REQUIRE(delta.ok());
  CHECK(delta->bytes_copied > size - (1 << 20));
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("mnt/dst")) == "");
  ::sync();
  uint64_t after = used();
  // The new version shares all but the chunks around the change with the
  // old one (a copy would add 24 MiB).
  INFO("used before " << before << ", after " << after);
  CHECK(after < before + (2 << 20));
}

TEST_CASE(
    "on ext4, which cannot share blocks, a delta copies a large file's unchanged ranges exactly") {
  TempDir t;
  LoopMount mnt(t, {"mkfs.ext4", "-q", "-F"});
  if (!mnt.ok()) return;
  const size_t size = 24 << 20;
  std::string data = RandomBytes(size, 21);
  WriteTestFile(t.Sub("src/disk.img"), data);
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  REQUIRE(ls.Deploy("img", "1", t.Sub("mnt/dst")).ok());
  // Overwritten in the middle, and grown by a few bytes near the start.
  data.replace(9 << 20, 300000, RandomBytes(300000, 22));
  data.insert(12345, "grown");
  WriteTestFile(t.Sub("src/disk.img"), data);
  ls.Capture("img", t.Sub("src"));
  auto delta = ls.Apply(ls.Stream("img", "2", "1"), t.Sub("mnt/dst"));
  INFO(delta.status().ToString());
  REQUIRE(delta.ok());
  CHECK(delta->bytes_copied > size - (1 << 20));
  CHECK(delta->bytes_direct == 0);
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("mnt/dst")) == "");
  CHECK(ScanDiff(t.Sub("src"), t.Sub("mnt/dst")) == "");
  auto back = ReadFile(t.Sub("mnt/dst/disk.img"));
  REQUIRE(back.ok());
  CHECK(*back == data);
}

TEST_CASE("a stream that breaks inside a large file leaves no temporary and no partial file") {
  TempDir t;
  const size_t size = DirectWriter::kMinFileSize + 3 * DirectWriter::kBufferSize + 17;
  WriteTestFile(t.Sub("src/large.img"), RandomBytes(size, 21));
  LocalStore ls;
  ls.Capture("img", t.Sub("src"));
  std::string s = ls.Stream("img", "");
  // Cut past the first direct block, before the file's end.
  auto st = ls.Apply(s.substr(0, s.size() / 2), t.Sub("dst"));
  CHECK(!st.ok());
  auto left = kiln::test::Run({"/bin/sh", "-c", "ls -A " + t.Sub("dst")});
  REQUIRE(left.exit_code == 0);  // the root exists, and holds nothing
  CHECK(left.out == "");
  // And the whole stream then deploys exactly.
  auto again = ls.Apply(s, t.Sub("dst"));
  INFO(again.status().ToString());
  REQUIRE(again.ok());
  CHECK(RsyncDiff(t.Sub("src"), t.Sub("dst")) == "");
}
