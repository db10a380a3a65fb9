// The Lua sandbox under attack: loops, allocation, forbidden functions,
// errors and wrong types. Every error names file and line; none hangs.

#include "classes/lua_sandbox.h"

#include <catch2/catch.hpp>

#include "classes/resolver.h"
#include "tests/classes/space_builder.h"

using namespace kiln;
using namespace kiln::classes;
using namespace kiln::test;

namespace {

// Resolves web01 against a space whose only rule is `rule`.
std::string RuleError(const std::string& rule, SandboxLimits limits = {}) {
  SpaceBuilder b({{"class/50-test.lua", rule}});
  Resolver r(b.Load(), limits);
  return ResolveError(r, TestNode());
}

std::string VarError(const std::string& vars) {
  SpaceBuilder b({{"vars/DEFAULT.lua", vars}});
  Resolver r(b.Load());
  return ResolveError(r, TestNode());
}

}  // namespace

TEST_CASE("a rule that loops forever runs out of its instruction budget, at its line") {
  CHECK(RuleError("local n = 0\nwhile true do\n  n = n + 1\nend\n") ==
        "class/50-test.lua:3: instruction budget of 10000000 instructions exceeded (a loop that "
        "never ends?)\n"
        "  n = n + 1");
}

TEST_CASE("pcall cannot swallow a budget or memory abort") {
  std::string loop = "while true do\n  pcall(function() while true do end end)\nend\n";
  CHECK(RuleError(loop).find(
            "class/50-test.lua:2: instruction budget of 10000000 instructions exceeded") == 0);
  std::string xloop =
      "while true do\n  xpcall(function() while true do end end, function(e) return e end)\nend\n";
  CHECK(RuleError(xloop).find("class/50-test.lua:2: instruction budget") == 0);
  std::string mem =
      "local t = {}\nwhile true do\n  pcall(function() t[#t + 1] = string.rep('x', 1000) .. #t "
      "end)\nend\n";
  CHECK(RuleError(mem).find("class/50-test.lua:3: memory cap of 16777216 bytes exceeded") == 0);
}

TEST_CASE("unbounded allocation hits the memory cap, at the line that allocates") {
  CHECK(RuleError("local t = {}\nfor i = 1, 1e9 do\n  t[i] = i .. 'padding padding'\nend\n") ==
        "class/50-test.lua:3: memory cap of 16777216 bytes exceeded\n  t[i] = i .. 'padding "
        "padding'");
  CHECK(
      RuleError("local s = 'x'\nlocal big = s:rep(1 << 30)\n") ==
      "class/50-test.lua:2: string.rep would make a string of 1073741824 bytes; the memory cap is "
      "16777216 bytes\nlocal big = s:rep(1 << 30)");
  CHECK(RuleError("local s = 'ab'\nwhile true do s = s .. s end\n")
            .find("class/50-test.lua:2: memory cap of 16777216 bytes exceeded") == 0);
}

TEST_CASE("C functions that could spin forever are bounded") {
  // string.rep of an empty string a huge number of times loops in C in stock Lua.
  SpaceBuilder b(
      {{"class/50-test.lua", "local e = ('') :rep(1 << 62)\nif #e == 0 then add('WEB') end\n"}});
  Resolver r(b.Load());
  Plan p;
  CHECK(ResolveError(r, TestNode(), &p) == "");
  CHECK(p.classes == std::vector<std::string>{"DEFAULT", "WEB", "web01", "LAST"});
  CHECK(RuleError("table.move({}, 1, math.maxinteger, 2)\n") ==
        "class/50-test.lua:1: table.move of more than 10000000 elements\ntable.move({}, 1, "
        "math.maxinteger, 2)");
  // A backtracking pattern on a long subject is refused before it runs.
  std::string bomb = "local s = string.rep('a', 5000)\nlocal m = s:match('.-.-.-.-.-.-.-b')\n";
  CHECK(RuleError(bomb).find(
            "class/50-test.lua:2: string.match: pattern \".-.-.-.-.-.-.-b\" may take up to") == 0);
}

TEST_CASE("forbidden functions are errors that name them") {
  CHECK(RuleError("os.execute('reboot')\n") ==
        "class/50-test.lua:1: 'os' is not available in the kiln sandbox\nos.execute('reboot')\n^ "
        "near here");
  CHECK(RuleError("local f = io.open('/etc/passwd')\n") ==
        "class/50-test.lua:1: 'io' is not available in the kiln sandbox\nlocal f = "
        "io.open('/etc/passwd')\n"
        "          ^ near here");
  for (const char* name : {"require", "load", "loadfile", "dofile", "debug", "package",
                           "collectgarbage", "coroutine", "rawset", "_G"}) {
    INFO(name);
    CHECK(RuleError(std::string("local x = ") + name + "\n")
              .find(std::string("class/50-test.lua:1: '") + name +
                    "' is not available in the kiln sandbox") == 0);
  }
  CHECK(RuleError("local d = string.dump\nd(function() end)\n")
            .find("class/50-test.lua:2: attempt to call a nil value (local 'd')") == 0);
  CHECK(RuleError("local r = math.random()\n")
            .find("class/50-test.lua:1: attempt to call a nil value (field 'random')") == 0);
  CHECK(RuleError("setmetatable({}, {__gc = function() end})\n") ==
        "class/50-test.lua:1: __gc metamethods are not allowed in the kiln sandbox\n"
        "setmetatable({}, {__gc = function() end})");
  CHECK(RuleError("string.upper = nil\n") ==
        "class/50-test.lua:1: the standard libraries are read-only in the kiln "
        "sandbox\nstring.upper = nil");
  CHECK(RuleError("getmetatable('').__index = {}\n")
            .find("class/50-test.lua:1: attempt to index a string value") == 0);
}

TEST_CASE("bytecode is refused") {
  std::string bytecode = std::string("\x1bLua\x54\x00", 6) + "junk";
  SpaceBuilder b({{"class/50-test.lua", bytecode}});
  CHECK(b.OneLines() == "class/50-test.lua: attempt to load a binary chunk (mode is 't')\n");
}

TEST_CASE("facts and node are read-only") {
  CHECK(RuleError("facts.memory = 1\n") ==
        "class/50-test.lua:1: facts are read-only\nfacts.memory = 1");
  CHECK(RuleError("facts.memory.total_bytes = 1\n")
            .find("class/50-test.lua:1: facts are read-only") == 0);
  CHECK(RuleError("node.hostname = 'x'\n").find("class/50-test.lua:1: facts are read-only") == 0);
  CHECK(RuleError("setmetatable(facts, {})\n") ==
        "class/50-test.lua:1: bad argument #1 to 'setmetatable' (table expected, got kiln.facts)\n"
        "setmetatable(facts, {})\n^ near here");
  CHECK(RuleError("local s = 'abc'\nlocal x = s:find('(')\n") ==
        "class/50-test.lua:2: unfinished capture\nlocal x = s:find('(')");
  CHECK(
      RuleError("rawget(facts, 'x')\n").find("class/50-test.lua:1: bad argument #1 to 'rawget'") ==
      0);
}

TEST_CASE("facts read like tables") {
  SpaceBuilder b(
      {{"class/50-test.lua",
        "assert(#facts.disks == 1)\n"
        "assert(facts.disks[1].name == 'sda')\n"
        "local n = 0\nfor k, v in pairs(facts) do n = n + 1 end\nassert(n == 5, n)\n"
        "for i, d in ipairs(facts.disks) do assert(i == 1 and d.size_bytes == 100 * 1024^3) end\n"
        "assert(facts.nope == nil and facts.disks[2] == nil)\n"
        "assert(node.hostname == 'web01' and node.macs[1] == '52:54:00:00:00:01')\n"
        "print(facts.firmware)\nadd('WEB')\n"}});
  Resolver r(b.Load());
  Plan p;
  REQUIRE(ResolveError(r, TestNode(), &p, true) == "");
  CHECK(p.classes[1] == "WEB");
  bool printed = false;
  for (const auto& d : p.explain)
    if (d.what == "output")
      printed = d.value == "{\"type\":\"uefi\"}" && d.loc.ToString() == "class/50-test.lua:9";
  CHECK(printed);
}

TEST_CASE("runtime errors name the file and line, with a caret under the name") {
  CHECK(
      RuleError("local x = facts.memory\nif x.size > 1 then add('WEB') end\n") ==
      "class/50-test.lua:2: attempt to compare number with nil\nif x.size > 1 then add('WEB') end");
  CHECK(RuleError("\nlocal v = facts.nothing.here\n") ==
        "class/50-test.lua:2: attempt to index a nil value (field 'nothing')\nlocal v = "
        "facts.nothing.here\n"
        "                ^ near here");
  CHECK(RuleError("error('no rack for this node')\n") ==
        "class/50-test.lua:1: no rack for this node\nerror('no rack for this node')");
  CHECK(RuleError("error({})\n") == "class/50-test.lua: error object is a table value");
  CHECK(RuleError("if hostname == 'x' then end\n") ==
        "class/50-test.lua:1: undefined global 'hostname'\nif hostname == 'x' then end\n   ^ near "
        "here");
}

TEST_CASE("syntax errors are found when the space loads") {
  SpaceBuilder b({{"class/50-test.lua", "if facts.memory then\n  add('WEB'\nend\n"}});
  CHECK(b.Problems() ==
        "class/50-test.lua:3: ')' expected (to close '(' at line 2) near 'end'\nend\n^ near here");
}

TEST_CASE("rules return a class name, a list of them, or nothing") {
  SpaceBuilder ok({{"class/10-a.lua", "return 'WEB'\n"},
                   {"class/20-b.lua", "if true then\n  return {'DB', 'GPU'}\nend\n"}});
  Resolver r(ok.Load());
  Plan p;
  REQUIRE(ResolveError(r, TestNode(), &p, true) == "");
  CHECK(p.classes == std::vector<std::string>{"DEFAULT", "WEB", "DB", "GPU", "web01", "LAST"});
  CHECK(p.explain[2].loc.ToString() == "class/20-b.lua:2");

  CHECK(RuleError("local x = 1\nreturn 42\n") ==
        "class/50-test.lua:2: a rule returns a class name or a list of class names, not a "
        "number\nreturn 42");
  CHECK(RuleError("return {'WEB', 7}\n") ==
        "class/50-test.lua:1: a rule returns class names (strings); item 2 is a number\nreturn "
        "{'WEB', 7}");
  CHECK(RuleError("return 'WEB', 'DB'\n") ==
        "class/50-test.lua:1: a rule returns one class name or one list of them, not 2 "
        "values\nreturn 'WEB', 'DB'");
  CHECK(RuleError("add(42)\n") ==
        "class/50-test.lua:1: add(): class names are strings, not number\nadd(42)");
}

TEST_CASE("class names from rules must be declared identifiers") {
  CHECK(RuleError("add('web-tier')\n") ==
        "class/50-test.lua:1: \"web-tier\" is not a class name (an identifier)\nadd('web-tier')");
  CHECK(RuleError("\n\nreturn 'WEBB'\n") ==
        "class/50-test.lua:3: class WEBB is not declared in classes.list\nreturn 'WEBB'");
  CHECK(RuleError("add('LAST')\n") ==
        "class/50-test.lua:1: LAST is always there; rules cannot add it\nadd('LAST')");
  CHECK(RuleError("remove('DEFAULT')\n") ==
        "class/50-test.lua:1: DEFAULT cannot be removed\nremove('DEFAULT')");
}

TEST_CASE("variable files: values, types and names") {
  CHECK(VarError("F = function() end\n") ==
        "vars/DEFAULT.lua:1: variable F is a function; variables hold strings, numbers, booleans "
        "and lists "
        "or maps of them\nF = function() end\n^ near here");
  CHECK(VarError("A = 1\nT = {1, 2, x = 3}\n") ==
        "vars/DEFAULT.lua:2: variable T mixes list entries and named fields; variables hold "
        "strings, numbers, "
        "booleans and lists or maps of them\nT = {1, 2, x = 3}\n^ near here");
  CHECK(VarError("N = 0/0\n").find("vars/DEFAULT.lua:1: variable N is not a finite number") == 0);
  CHECK(VarError("X = NOT_SET .. 'x'\n") ==
        "vars/DEFAULT.lua:1: undefined variable 'NOT_SET' (no earlier class sets it; "
        "var(\"NOT_SET\") reads "
        "it as nil)\nX = NOT_SET .. 'x'\n    ^ near here");
  CHECK(
      VarError("string = 'x'\n") ==
      "vars/DEFAULT.lua:1: 'string' is a built-in name, not a variable\nstring = 'x'\n^ near here");
  CHECK(VarError("return {A = 1}\n") ==
        "vars/DEFAULT.lua:1: a variable file sets variables; it must not return a value (it "
        "returned a "
        "table)\nreturn {A = 1}");
  CHECK(VarError("add('WEB')\n") ==
        "vars/DEFAULT.lua:1: add() works in rule files (class/*.lua), not in variable "
        "files\nadd('WEB')");
  std::string cycle = VarError("T = {}\nT.self = T\n");
  CHECK(cycle.find("vars/DEFAULT.lua:1: variable T.self.self.self") == 0);
  CHECK(cycle.find(".self is nested more than 64 levels (a cycle?)") != std::string::npos);
  CHECK(VarError("T = {a = {1, 2, print}}\n")
            .find("vars/DEFAULT.lua:1: variable T.a[3] is a function;") == 0);
}

TEST_CASE("a sandbox stays usable after every kind of failure") {
  LuaSandbox lua({.instructions = 2000000, .memory_bytes = 1 << 20, .output_bytes = 16});
  Diagnostic err;
  int loop = lua.Compile("class/loop.lua", "while true do end", &err);
  int hog = lua.Compile("class/hog.lua", "local t = {} for i = 1, 1e9 do t[i] = {} end", &err);
  int talk = lua.Compile("class/talk.lua", "print(string.rep('x', 100)) print('more')", &err);
  REQUIRE((loop > 0 && hog > 0 && talk > 0));
  Json facts = Json::object(), node = Json::object();
  EvalInput in;
  in.facts = &facts;
  in.node = &node;
  size_t baseline = lua.memory_in_use();
  for (int round = 0; round < 3; ++round) {
    EvalOutput out;
    CHECK_FALSE(lua.Run(loop, LuaSandbox::Kind::kRule, in, &out, &err));
    CHECK(err.OneLine() ==
          "class/loop.lua:1: instruction budget of 2000000 instructions exceeded (a loop that "
          "never ends?)");
    CHECK_FALSE(lua.Run(hog, LuaSandbox::Kind::kRule, in, &out, &err));
    CHECK(err.OneLine() == "class/hog.lua:1: memory cap of 1048576 bytes exceeded");
    EvalOutput said;
    REQUIRE(lua.Run(talk, LuaSandbox::Kind::kRule, in, &said, &err));
    REQUIRE(said.prints.size() == 1);
    CHECK(said.prints[0].text == "xxxxxxxxxxxxxxxx [print output limit reached]");
  }
  CHECK(lua.memory_in_use() < baseline + (256 << 10));
}
