// The pieces of an install that need no server: class files into a target
// (confined), script environments, the boot loader's choices, base64.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "agent/bootloader.h"
#include "agent/plan_scripts.h"
#include "agent/target_files.h"
#include "common/base64.h"
#include "common/file_util.h"
#include "tests/support/temp_dir.h"

using namespace kiln;
using namespace kiln::agent;
namespace fs = std::filesystem;

namespace {

Json File(const std::string& path, const std::string& content, const std::string& mode = "0644",
          const std::string& owner = "root", const std::string& group = "root") {
  return {{"path", path},       {"content", content}, {"mode", mode},
          {"owner", owner},     {"group", group},     {"source", "files" + path + "/TEST"},
          {"encoding", "utf-8"}};
}

}  // namespace

TEST_CASE("class files land under the root with the target's owners and their modes") {
  test::TempDir t;
  std::string root = t.Sub("root");
  fs::create_directories(root + "/etc");
  REQUIRE(WriteFileAtomic(root + "/etc/passwd",
                          "root:x:0:0::/root:/bin/sh\npg:x:1234:1235::/:/bin/false\n", 0644)
              .ok());
  REQUIRE(WriteFileAtomic(root + "/etc/group", "root:x:0:\npg:x:1235:\n", 0644).ok());
  Json binary = File("/usr/lib/blob", "");
  binary["encoding"] = "base64";
  binary["content"] = Base64Encode(std::string("\x00\xff\x10", 3));
  Json files = Json::array({File("/etc/motd", "hello\n"),
                            File("/etc/pg/pg.conf", "x=1\n", "0640", "pg", "pg"),
                            File("/etc/sudoers.d/ops", "ops ALL\n", "0440"), binary});
  auto r = InstallFiles(root, files);
  REQUIRE(r.ok());
  CHECK(r->files == 4);
  CHECK(ReadFile(root + "/etc/motd").value() == "hello\n");
  struct stat st {};
  REQUIRE(::stat((root + "/etc/pg/pg.conf").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  if (::geteuid() == 0) {
    CHECK(st.st_uid == 1234);
    CHECK(st.st_gid == 1235);
  }
  REQUIRE(::stat((root + "/etc/sudoers.d/ops").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0440);
  CHECK(ReadFile(root + "/usr/lib/blob").value() == std::string("\x00\xff\x10", 3));
  // Replacing a file leaves no temporary behind.
  REQUIRE(InstallFiles(root, Json::array({File("/etc/motd", "again\n")})).ok());
  CHECK(ReadFile(root + "/etc/motd").value() == "again\n");
  for (const auto& e : fs::directory_iterator(root + "/etc"))
    CHECK(e.path().filename().string().find("kiln-tmp") == std::string::npos);
}

TEST_CASE(
    "a class file never escapes the root: no symlink in the target is followed, no .. is taken") {
  test::TempDir t;
  std::string root = t.Sub("root"), outside = t.Sub("outside");
  fs::create_directories(root);
  fs::create_directories(outside);
  fs::create_directory_symlink(outside, root + "/etc");
  auto r = InstallFiles(root, Json::array({File("/etc/motd", "pwned\n")}));
  REQUIRE(!r.ok());
  CHECK(r.status().message().find("/etc/motd") != std::string::npos);
  CHECK(!fs::exists(outside + "/motd"));

  fs::remove(root + "/etc");
  fs::create_directories(root + "/etc");
  fs::create_symlink(outside + "/target-file", root + "/etc/motd");
  // A symlink at the final name is replaced, not written through.
  auto replaced = InstallFiles(root, Json::array({File("/etc/motd", "ok\n")}));
  INFO(replaced.status().ToString());
  REQUIRE(replaced.ok());
  CHECK(!fs::exists(outside + "/target-file"));
  CHECK(!fs::is_symlink(root + "/etc/motd"));

  for (const char* bad : {"/../outside/x", "/etc/../../x", "relative/path", "/etc//x", "/"}) {
    INFO(bad);
    auto b = InstallFiles(root, Json::array({File(bad, "x")}));
    CHECK(!b.ok());
  }
  CHECK(fs::is_empty(outside));
}

TEST_CASE("bad class file fields are named") {
  test::TempDir t;
  fs::create_directories(t.Sub("root"));
  struct Case {
    Json file;
    std::string want;
  } cases[] = {
      {File("/etc/a", "x", "0999"), "mode \"0999\": expected an octal number"},
      {File("/etc/a", "x", "rw-r--r--"), "mode \"rw-r--r--\""},
      {File("/etc/a", "x", "0644", "nobody-here"),
       "\"nobody-here\" is not in the target's /etc/passwd"},
      {File("/etc/a", "x", "0644", "root", "nogroup"),
       "\"nogroup\" is not in the target's /etc/group"},
      {Json{{"content", "x"}}, "path"},
  };
  for (const auto& c : cases) {
    auto r = InstallFiles(t.Sub("root"), Json::array({c.file}));
    INFO(c.file.dump());
    REQUIRE(!r.ok());
    CHECK(r.status().message().find(c.want) != std::string::npos);
  }
  Json b64 = File("/etc/a", "!!!");
  b64["encoding"] = "base64";
  CHECK(!InstallFiles(t.Sub("root"), Json::array({b64})).ok());
}

TEST_CASE("scripts get the plan's variables and kiln's own in their environment") {
  Json plan = {{"node", {{"id", "web01"}, {"hostname", "web01.example"}}},
               {"classes", {"DEFAULT", "WEB", "web01", "LAST"}},
               {"variables",
                {{"TIMEZONE", "UTC"},
                 {"WORKERS", 8},
                 {"DEBUG", true},
                 {"PACKAGES", {"nginx", "chrony"}},
                 {"bad-name", "x"},
                 {"KILN_NODE", "spoof"},
                 {"NESTED", {{"a", 1}}}}}};
  ScriptContext ctx;
  ctx.target = "/target";
  ctx.log_path = "/tmp/kiln-install.log";
  auto env = PlanEnvironment(plan, ctx, "scripts");
  auto has = [&](const std::string& kv) {
    return std::find(env.begin(), env.end(), kv) != env.end();
  };
  CHECK(has("TIMEZONE=UTC"));
  CHECK(has("WORKERS=8"));
  CHECK(has("DEBUG=true"));
  CHECK(has("PACKAGES=nginx chrony"));
  CHECK(has("NESTED={\"a\":1}"));
  CHECK(has("KILN_NODE=web01"));
  CHECK(!has("KILN_NODE=spoof"));
  CHECK(has("KILN_HOSTNAME=web01.example"));
  CHECK(has("KILN_CLASSES=DEFAULT WEB web01 LAST"));
  CHECK(has("KILN_PHASE=scripts"));
  CHECK(has("target=/target"));
  CHECK(has("KILN_LOG=/tmp/kiln-install.log"));
  for (const auto& e : env) CHECK(e.rfind("bad-name=", 0) != 0);
}

TEST_CASE("hooks run in order with their phase, and a failing one names itself and its last line") {
  test::TempDir t;
  RealCommandRunner runner;
  ScriptContext ctx;
  ctx.target = t.Sub("target");
  ctx.work_dir = t.path();
  std::string out;
  ctx.on_output = [&](std::string_view s) { out += s; };
  Json plan = {{"hooks",
                {{{"phase", "image"},
                  {"source", "hooks/image.DEFAULT"},
                  {"content", "echo one $KILN_PHASE"}},
                 {{"phase", "files"}, {"source", "hooks/files.DEFAULT"}, {"content", "echo never"}},
                 {{"phase", "image"},
                  {"source", "hooks/image.WEB"},
                  {"content", "#!/bin/sh\necho two $target"}}}}};
  PlanScripts s(&runner, ctx);
  REQUIRE(s.RunHooks(plan, "image").ok());
  CHECK(out == "one image\ntwo " + ctx.target + "\n");
  CHECK(s.ran() == 2);
  Json failing = {{"hooks",
                   {{{"phase", "finish"},
                     {"source", "hooks/finish.DB"},
                     {"content", "echo first\necho 'disk on fire' >&2\nexit 4"}}}}};
  Status st = s.RunHooks(failing, "finish");
  REQUIRE(!st.ok());
  CHECK(st.message() == "hook finish.DB (hooks/finish.DB) exited with 4: disk on fire");
}

TEST_CASE("scripts need a shell in the target") {
  test::TempDir t;
  fs::create_directories(t.Sub("target/etc"));
  RealCommandRunner runner;
  ScriptContext ctx;
  ctx.target = t.Sub("target");
  PlanScripts s(&runner, ctx);
  Json plan = {
      {"scripts", {{{"name", "10-x"}, {"source", "scripts/DEFAULT/10-x"}, {"content", "true"}}}}};
  Status st = s.RunScripts(plan);
  REQUIRE(!st.ok());
  CHECK(st.message().find("the target has no /bin/sh") != std::string::npos);
}

TEST_CASE("the boot loader boots the newest kernel of the image") {
  test::TempDir t;
  fs::create_directories(t.Sub("boot"));
  for (const char* f :
       {"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-13-amd64", "initrd.img-6.1.0-13-amd64",
        "initrd.img-6.1.0-9-amd64", "config-6.1.0-13-amd64"})
    REQUIRE(WriteFileAtomic(t.Sub(std::string("boot/") + f), "x", 0644).ok());
  auto k = FindKernel(t.Sub("boot"));
  REQUIRE(k.ok());
  CHECK(k->kernel == "vmlinuz-6.1.0-13-amd64");
  CHECK(k->initrd == "initrd.img-6.1.0-13-amd64");
  CHECK(ExtlinuxConfig(*k, "/boot/", "1234-abcd", "console=ttyS0") ==
        "# Written by kiln-agent at install time.\nDEFAULT linux\nTIMEOUT 0\nPROMPT 0\n\nLABEL "
        "linux\n"
        "  LINUX /boot/vmlinuz-6.1.0-13-amd64\n  INITRD /boot/initrd.img-6.1.0-13-amd64\n"
        "  APPEND root=UUID=1234-abcd ro console=ttyS0\n");
  fs::create_directories(t.Sub("empty"));
  CHECK(FindKernel(t.Sub("empty")).status().message().find("has no vmlinuz-*") !=
        std::string::npos);
}

TEST_CASE("base64 round-trips any bytes and names what is wrong") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n : {0, 1, 2, 3, 4, 255, 256}) {
    std::string in = all.substr(0, n);
    auto out = Base64Decode(Base64Encode(in));
    REQUIRE(out.ok());
    CHECK(*out == in);
  }
  CHECK(Base64Encode("foobar") == "Zm9vYmFy");
  CHECK(Base64Decode("Zm9v\nYmE=").value() == "fooba");
  CHECK(Base64Decode("Zm9*").status().message().find("offset 3") != std::string::npos);
  CHECK(!Base64Decode("Zm9").ok());
  CHECK(!Base64Decode("Zg==Zg==").ok());
}
