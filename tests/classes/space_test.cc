// Loading config spaces: the example space, and every kind of bad file,
// each reported with its file (and line) - all at once.

#include "classes/space.h"

#include <catch2/catch.hpp>

#include "classes/config_check.h"
#include "tests/classes/space_builder.h"

using namespace kiln;
using namespace kiln::classes;
using namespace kiln::test;

TEST_CASE("the example space loads") {
  Diagnostics d;
  auto s = LoadSpace(std::string(KILN_SOURCE_DIR) + "/examples/space", &d);
  INFO(d.Render());
  REQUIRE(s);
  CHECK(s->rules.size() == 4);
  CHECK(s->rules[0].file == "class/10-tier.lua");
  CHECK(s->declared.count("WEB"));
  CHECK(s->declared.at("DB").description ==
        "database tier: PostgreSQL with its data on its own disk");
  CHECK(s->hosts.at("web01").front().cls == "DEBUG");
  CHECK(s->disks.count("DB"));
  CHECK(s->files.at("/etc/motd").by_class.size() == 3);
  CHECK(s->files.at("/etc/sudoers.d/ops").by_class.at("DEFAULT").mode == 0440);
  CHECK(s->files.at("/etc/postgresql/15/main/conf.d/kiln.conf").by_class.at("DB").owner ==
        "postgres");
  CHECK(s->scripts.at("DEFAULT").size() == 2);
  CHECK(s->hooks.at("DB").front().phase == "partition");
  CHECK(s->digest.size() == 64);
}

TEST_CASE("class names that are not identifiers, and files for classes that do not exist") {
  SpaceBuilder b({{"classes.list", "WEB web tier\nweb-tier nope\n2FAST nope\nWEB again\n"},
                  {"vars/WEBB.lua", "X = 1\n"},
                  {"disk/GPU", "disk os\n part r size=rest fs=ext4 mount=/\n"},
                  {"files/etc/motd/WEBB", "hi\n"},
                  {"files/etc/motd/web-tier", "hi\n"},
                  {"scripts/NOPE/10-x", "true\n"},
                  {"hooks/partiton.WEB", "true\n"},
                  {"hooks/partition.ZZZ", "true\n"},
                  {"hosts/web01", "WEB\nMISSING  lower web-x\n"},
                  {"hosts/Web_01", "WEB\n"}});
  CHECK(b.OneLines() ==
        "classes.list:2: \"web-tier\" is not a class name (letters, digits and _, not starting "
        "with a digit, at most 40)\n"
        "classes.list:3: \"2FAST\" is not a class name (letters, digits and _, not starting with a "
        "digit, at most 40)\n"
        "classes.list:4: class WEB is already declared at line 1\n"
        "hosts/Web_01: \"Web_01\" is not a short lower-case hostname ([a-z0-9-], at most 63)\n"
        "hosts/web01:2: class MISSING does not exist (declare it in classes.list)\n"
        "hosts/web01:2: class lower does not exist (declare it in classes.list)\n"
        "hosts/web01:2: \"web-x\" is not a class name\n"
        "vars/WEBB.lua: class WEBB does not exist (declare it in classes.list)\n"
        "disk/GPU: class GPU does not exist (declare it in classes.list)\n"
        "files/etc/motd/WEBB: class WEBB does not exist (declare it in classes.list)\n"
        "files/etc/motd/web-tier: class web-tier does not exist (declare it in classes.list, or "
        "add hosts/web-tier)\n"
        "scripts/NOPE: class NOPE does not exist (declare it in classes.list)\n"
        "hooks/partition.ZZZ: class ZZZ does not exist (declare it in classes.list)\n"
        "hooks/partiton.WEB: unknown phase \"partiton\" (phases: partition, format, mount, image, "
        "files, scripts, bootloader, finish)\n");
}

TEST_CASE("bad files in the space are reported with their place") {
  SpaceBuilder b({{"class/notes.txt", "x"},
                  {"class/10-ok.lua", "add('WEB')\n"},
                  {"vars/WEB.lua", "X = = 1\n"},
                  {"disk/DB", "disk os\n part r size=10GB fs=ext4 mount=/\n"},
                  {"files/etc/motd/WEB", "hi\n"},
                  {"files/etc/motd/WEB.attrs", "mode=0999 owner=root\nsubst=maybe\ncolor=red\n"},
                  {"files/etc/motd/DB.attrs", "mode=0600\n"},
                  {"files/etc/issue", "top-level file\n"},
                  {"scripts/WEB/setup", "true\n"},
                  {"hooks/finish", "true\n"}});
  CHECK(b.OneLines() ==
        "class/notes.txt: rules are Lua files: class/NN-name.lua\n"
        "vars/WEB.lua:1: unexpected symbol near '='\n"
        "disk/DB:2: unit \"GB\" in \"10GB\" is decimal; kiln sizes are binary: write G\n"
        "files/etc: holds both class files and subdirectories; /etc cannot be a file and a "
        "directory\n"
        "files/etc/motd/DB.attrs: attributes for files/etc/motd/DB, which does not exist\n"
        "files/etc/motd/WEB.attrs:1: mode \"0999\" is not an octal mode like 0644\n"
        "files/etc/motd/WEB.attrs:2: subst is yes or no\n"
        "files/etc/motd/WEB.attrs:3: unknown attribute \"color\" (owner, group, mode, subst)\n"
        "scripts/WEB/setup: script names are NN-name (two digits, a dash, then letters, digits, "
        "'-', '_', '.')\n"
        "hooks/finish: hook names are PHASE.CLASS, e.g. partition.DB\n");
  // The rendered form carries the line and a caret.
  CHECK(b.Problems().find("vars/WEB.lua:1: unexpected symbol near '='\nX = = 1\n    ^ near here") !=
        std::string::npos);
}

TEST_CASE("a space needs classes.list, and an existing directory") {
  SpaceBuilder b({{"classes.list", ""}});
  CHECK(b.OneLines() == "");
  TempDir t;
  WriteTestFile(t.Sub("vars/DEFAULT.lua"), "X = 1\n");
  Diagnostics d;
  CHECK_FALSE(LoadSpace(t.path(), &d));
  CHECK(
      d.items().front().OneLine() ==
      "classes.list: missing: every class must be declared here (NAME description, one per line)");
  Diagnostics none;
  CHECK_FALSE(LoadSpace(t.Sub("nope"), &none));
  CHECK(none.items().front().OneLine() ==
        t.Sub("nope") + ": config space not found (not a directory)");
}

TEST_CASE("editor leftovers are ignored, big files are refused") {
  SpaceBuilder b(
      {{"vars/.WEB.lua.swp", "junk"}, {"vars/WEB.lua~", "junk"}, {"class/.#10-x.lua", "junk"}});
  CHECK(b.OneLines() == "");
  SpaceBuilder big({{"files/etc/big/DEFAULT", std::string(kMaxSpaceFileBytes + 1, 'x')}});
  CHECK(big.OneLines() ==
        "files/etc/big/DEFAULT: is 1.0 MiB; files in a config space are at most 1.0 MiB\n");
}

TEST_CASE("the fingerprint changes when a file changes") {
  SpaceBuilder b({{"vars/WEB.lua", "X = 1\n"}});
  std::string before = SpaceFingerprint(b.dir());
  CHECK(SpaceFingerprint(b.dir()) == before);
  WriteTestFile(b.dir() + "/vars/WEB.lua", "X = 22\n");
  CHECK(SpaceFingerprint(b.dir()) != before);
}

TEST_CASE("config check runs every class and host and reports every problem") {
  auto good = CheckSpace(std::string(KILN_SOURCE_DIR) + "/examples/space",
                         {std::string(KILN_SOURCE_DIR) + "/examples/facts"});
  REQUIRE(good.ok());
  INFO(good->problems.Render());
  CHECK(good->problems.empty());
  CHECK(good->plans == 4 + 7 + 1);  // samples, declared classes, hosts

  SpaceBuilder b({{"class/10-tier.lua", "if node.hostname == 'db1' then add('DB') end\n"},
                  {"vars/DB.lua", "X = facts.memory.total_bytes // 0\n"},
                  {"vars/GPU.lua", "Y = nil .. 'x'\n"},
                  {"files/etc/motd/DEFAULT", "${MISSING}\n"},
                  {"files/etc/motd/DEFAULT.attrs", "subst=yes\n"}});
  auto bad = CheckSpace(b.dir(), {});
  REQUIRE(bad.ok());
  std::string all;
  for (const auto& d : bad->problems.items()) all += d.OneLine() + "\n";
  CHECK(all ==
        "files/etc/motd/DEFAULT:1: ${MISSING}: no class of this node sets variable MISSING\n"
        "vars/DB.lua:1: attempt to divide by zero\n"
        "vars/GPU.lua:1: attempt to concatenate a nil value\n");
  CHECK(bad->contexts[1] == "node sample with class DB forced on (the built-in sample node)");
  auto missing = CheckSpace(b.dir(), {b.dir() + "/nope.json"});
  CHECK(missing.status().message().find("nope.json") != std::string::npos);
}
