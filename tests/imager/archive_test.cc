// Capturing tar and cpio archives, and refusing hostile ones with an error
// that names the member.

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/file_util.h"
#include "imager/archive_scan.h"
#include "imager/capture.h"
#include "imager/image_store.h"
#include "tests/imager/local_store.h"
#include "tests/imager/tree_fixture.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::imager;
using namespace kiln::imager::test;
using kiln::test::Run;
using kiln::test::TempDir;

namespace {

struct Member {
  std::string name;
  mode_t type = AE_IFREG;
  std::string data;
  std::string link;      // symlink target
  std::string hardlink;  // hard link target
};

// Writes members as a pax tar (optionally gzip) exactly as given: libarchive
// lets a test write names no honest tar tool would.
void WriteTar(const std::string& path, const std::vector<Member>& members, bool gzip = false) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_filetype(e, m.type);
    archive_entry_set_perm(e, m.type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(e, 1700000000, 5);
    if (!m.link.empty()) archive_entry_set_symlink(e, m.link.c_str());
    if (!m.hardlink.empty()) archive_entry_set_hardlink(e, m.hardlink.c_str());
    if (m.type == AE_IFCHR) {
      archive_entry_set_rdevmajor(e, 1);
      archive_entry_set_rdevminor(e, 3);
    }
    if (m.type == AE_IFREG && m.hardlink.empty())
      archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (!m.data.empty() && m.hardlink.empty()) archive_write_data(a, m.data.data(), m.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

Status ScanStatus(const std::string& path, bool allow_devices = true) {
  ArchiveScanOptions o;
  o.allow_devices = allow_devices;
  return ScanArchive(path, o, [](const Sha256Digest&, std::string_view) { return Status::Ok(); })
      .status();
}

}  // namespace

TEST_CASE("a tar of a tree captures to the same manifest as the tree itself") {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  REQUIRE(::unlink(t.Sub("src/tmp/sock").c_str()) == 0);  // tar skips sockets
  REQUIRE(::chmod(t.Sub("src/tmp").c_str(), 01777) == 0);
  SetMtime(t.Sub("src/tmp"), 1700000500, 0);
  for (const char* ext : {"tar", "tar.zst", "tar.xz", "tar.gz"}) {
    std::string tar = t.Sub(std::string("img.") + ext);
    auto r = Run({"tar", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-a", "-cf",
                  tar, "-C", t.Sub("src"), "."});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    LocalStore ls;
    LocalCaptureTarget from_dir(&ls.store(), "d", "", "");
    auto a = CaptureDirectory(t.Sub("src"), {}, &from_dir);
    REQUIRE(a.ok());
    LocalCaptureTarget from_tar(&ls.store(), "t", "", "");
    auto b = CaptureArchive(tar, {}, &from_tar);
    INFO(ext << ": " << b.status().ToString());
    REQUIRE(b.ok());
    auto ma = ls.store().LoadManifest(*ParseDigest(a->manifest));
    auto mb = ls.store().LoadManifest(*ParseDigest(b->manifest));
    REQUIRE(ma.ok());
    REQUIRE(mb.ok());
    for (size_t i = 0; i < std::min((*ma)->entries.size(), (*mb)->entries.size()); ++i) {
      INFO((*ma)->entries[i].path);
      CHECK(EntryToJson((*ma)->entries[i]) == EntryToJson((*mb)->entries[i]));
    }
    CHECK(b->manifest == a->manifest);
    // And it deploys exactly.
    auto st = ls.Deploy("t", "", t.Sub(std::string("dst-") + ext));
    REQUIRE(st.ok());
    CHECK(RsyncDiff(t.Sub("src"), t.Sub(std::string("dst-") + ext)) == "");
  }
}

TEST_CASE("cpio archives capture too") {
  TempDir t;
  kiln::test::WriteTestFile(t.Sub("src/a/b"), "cpio content");
  auto r = Run({"/bin/sh", "-c",
                "cd " + t.Sub("src") + " && find . | cpio -o -H newc > " + t.Sub("x.cpio")});
  REQUIRE(r.exit_code == 0);
  LocalStore ls;
  LocalCaptureTarget target(&ls.store(), "c", "", "");
  auto c = CaptureArchive(t.Sub("x.cpio"), {}, &target);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  REQUIRE(ls.Deploy("c", "", t.Sub("dst")).ok());
  CHECK(*ReadFile(t.Sub("dst/a/b")) == "cpio content");
}

TEST_CASE("hostile archives are refused with an error naming the member") {
  TempDir t;
  auto expect = [&](const std::vector<Member>& ms, const std::string& needle,
                    bool allow_devices = true) {
    std::string path = t.Sub("bad.tar");
    WriteTar(path, ms);
    Status s = ScanStatus(path, allow_devices);
    INFO(s.ToString());
    CHECK(!s.ok());
    CHECK(s.message().find(needle) != std::string::npos);
  };
  expect({{"../etc/passwd", AE_IFREG, "x"}}, "archive member \"../etc/passwd\"");
  expect({{"a/../../etc/passwd", AE_IFREG, "x"}}, "\"..\" component");
  expect({{"/etc/passwd", AE_IFREG, "x"}}, "archive member \"/etc/passwd\" has an absolute path");
  expect({{"etc/passwd", AE_IFREG, "one"}, {"./etc/passwd", AE_IFREG, "two"}},
         "member \"./etc/passwd\": duplicate entry for /etc/passwd");
  // A symlink pointing outside, then a member through it.
  expect({{"evil", AE_IFLNK, "", "/etc"}, {"evil/passwd", AE_IFREG, "x"}},
         "(/evil/passwd): parent /evil is a symlink");
  expect({{"x", AE_IFREG, "data"}, {"y", AE_IFREG, "", "", "../outside"}}, "hard link target");
  expect({{"y", AE_IFREG, "", "", "not-there"}}, "hard link to /not-there, which is not earlier");
  expect({{"dev/null", AE_IFCHR}}, "member \"dev/null\": device nodes are not allowed", false);
  // A symlink that points outside is fine by itself: it is data, never followed.
  WriteTar(t.Sub("ok.tar"), {{"link", AE_IFLNK, "", "../../../../etc/shadow"}});
  CHECK(ScanStatus(t.Sub("ok.tar")).ok());
}

TEST_CASE("truncated and corrupted archives are errors, and capture stores no version") {
  TempDir t;
  std::string big = RandomBytes(600000, 3);
  WriteTar(t.Sub("good.tar.gz"), {{"dir", AE_IFDIR}, {"dir/file", AE_IFREG, big}}, true);
  std::string bytes = *ReadFile(t.Sub("good.tar.gz"));
  REQUIRE(WriteFileAtomic(t.Sub("trunc.tar.gz"), bytes.substr(0, bytes.size() / 2)).ok());
  // A deflate block of the reserved type 3 right after the gzip header.
  std::string corrupt = bytes;
  corrupt[10] = static_cast<char>(0xff);
  REQUIRE(WriteFileAtomic(t.Sub("corrupt.tar.gz"), corrupt).ok());
  // A plain tar whose second header fails its checksum.
  WriteTar(t.Sub("plain.tar"), {{"dir", AE_IFDIR}, {"dir/file", AE_IFREG, "content"}});
  std::string plain = *ReadFile(t.Sub("plain.tar"));
  REQUIRE(plain.size() > 1200);
  size_t second = plain.find("dir/file");
  REQUIRE(second != std::string::npos);
  plain[second + 108] ^= 0x11;  // inside the uid field
  REQUIRE(WriteFileAtomic(t.Sub("badsum.tar"), plain).ok());
  LocalStore ls;
  for (const char* name : {"trunc.tar.gz", "corrupt.tar.gz", "badsum.tar"}) {
    LocalCaptureTarget target(&ls.store(), "img", "", "");
    auto r = CaptureArchive(t.Sub(name), {}, &target);
    INFO(name << ": " << r.status().ToString());
    CHECK(!r.ok());
    CHECK(r.status().message().find(t.Sub(name)) != std::string::npos);
  }
  CHECK(ls.store().catalog().Get("img").status().code() == Code::kNotFound);
  LocalCaptureTarget target(&ls.store(), "img", "", "");
  CHECK(CaptureArchive(t.Sub("good.tar.gz"), {}, &target).ok());
}
