#pragma once
// The Lua 5.4 sandbox that runs rule files (class/*.lua) and variable files
// (vars/<CLASS>.lua).
//
// What a chunk can reach: the base functions that cannot escape (assert,
// error, ipairs, next, pairs, pcall, select, tonumber, tostring, type,
// xpcall, rawequal, rawlen, rawget, getmetatable, setmetatable), the string,
// table, math and utf8 libraries as read-only tables (without string.dump,
// math.random and math.randomseed: a plan must be a function of the node and
// the space), print (collected into the plan's explanation), the node's
// facts and record as read-only proxies, and the class functions (add,
// remove, has, classes, var). io, os, require, package, debug, load,
// loadfile, dofile, collectgarbage, coroutine and rawset do not exist;
// naming one is an error that says so. Reading an undefined global is an
// error too (it is almost always a typo). Only text chunks are loaded:
// bytecode is refused.
//
// Limits, per evaluation (one run of one file): an instruction budget
// (a count hook; pattern functions charge their worst case up front, since C
// code cannot be interrupted), a memory cap (a counting lua_Alloc), and a
// cap on print output. pcall and xpcall cannot swallow a budget or memory
// abort. Errors come back as Diagnostics naming the file and line.
//
// Lua errors are longjmps: every lua_CFunction here keeps no C++ object
// with a destructor alive across a call that can raise, and everything that
// can raise runs under lua_pcall. Nothing throws across Lua frames.
//
// Thread safety: one sandbox (one lua_State) is used by one thread at a
// time; the resolver keeps a pool of them.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "classes/diagnostic.h"
#include "common/json.h"

struct lua_State;

namespace kiln::classes {

struct SandboxLimits {
  uint64_t instructions = 10'000'000;  // VM instructions per evaluation
  size_t memory_bytes = 16u << 20;     // bytes allocated per evaluation
  size_t output_bytes = 64u << 10;     // print() output kept per evaluation
};

// What rules can ask of and do to the class list being built.
class ClassHost {
 public:
  virtual ~ClassHost() = default;
  virtual bool Has(std::string_view cls) const = 0;
  virtual std::vector<std::string> Classes() const = 0;
  // Return "" on success, else an error text that becomes a Lua error at
  // the caller's line. Only called for rule files.
  virtual std::string Add(const std::string& cls, int line) = 0;
  virtual std::string Remove(const std::string& cls, int line) = 0;
};

struct EvalInput {
  const Json* facts = nullptr;  // the node's facts (object)
  const Json* node = nullptr;   // {id, hostname, macs, classes}
  ClassHost* classes = nullptr;
  // For variable files: the variables of earlier classes.
  const std::map<std::string, Json>* vars = nullptr;
};

struct LuaPrint {
  int line = 0;
  std::string text;
};

// One variable a variable file set (or unset, with value null and unset).
struct VarSet {
  std::string name;
  Json value;
  int line = 0;
  bool unset = false;
};

struct EvalOutput {
  std::vector<LuaPrint> prints;
  std::vector<VarSet> vars;           // variable files, in first-assignment order
  std::vector<std::string> returned;  // rule files: classes returned
  int return_line = 0;
};

class LuaSandbox {
 public:
  enum class Kind { kRule, kVars };

  explicit LuaSandbox(SandboxLimits limits = {});
  ~LuaSandbox();
  LuaSandbox(const LuaSandbox&) = delete;
  LuaSandbox& operator=(const LuaSandbox&) = delete;

  // True when the state was created (false only if memory ran out).
  bool ok() const { return L_ != nullptr; }

  // Compiles a text chunk; file is its path in the space ("class/10-x.lua").
  // Returns a chunk id, or -1 with *err (a syntax error with line and caret).
  int Compile(const std::string& file, std::string_view source, Diagnostic* err);

  // Runs a compiled chunk in a fresh environment. False with *err on any
  // error (the message names file and line; the source line is attached).
  bool Run(int chunk, Kind kind, const EvalInput& in, EvalOutput* out, Diagnostic* err);

  // Bytes the state holds now.
  size_t memory_in_use() const { return used_; }

  // Internal: the hooks and library functions reach the sandbox through the
  // state's extra space. Public only so the C callbacks can see it.
  struct Impl;

 private:
  struct Chunk {
    std::string file;
    std::string source;
  };
  static void* Alloc(void* ud, void* ptr, size_t osize, size_t nsize);
  bool Setup();
  Diagnostic ErrorFrom(int chunk, std::string_view msg, bool at_line_known, int fallback_line);

  SandboxLimits limits_;
  lua_State* L_ = nullptr;
  size_t used_ = 0;
  size_t limit_ = SIZE_MAX;
  std::vector<Chunk> chunks_;

 public:
  // State of the running evaluation (used by the C callbacks).
  enum class Abort { kNone, kBudget, kMemory };
  uint64_t steps_ = 0;
  uint64_t budget_ = 0;
  Abort abort_ = Abort::kNone;
  std::string abort_message_;
  uint32_t generation_ = 0;
  const EvalInput* in_ = nullptr;
  EvalOutput* out_ = nullptr;
  Kind kind_ = Kind::kRule;
  size_t printed_ = 0;
  bool replay_ = false;  // re-running to find the line of a memory error
  int last_line_ = 0;    // replay: the last line that started
  std::string scratch_;  // C++ text handed to Lua (never on a C stack)
  const SandboxLimits& limits() const { return limits_; }
};

}  // namespace kiln::classes
