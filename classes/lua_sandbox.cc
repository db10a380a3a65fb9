#include "classes/lua_sandbox.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <lua.hpp>

#include "classes/names.h"

// Conventions in this file (see the header): a lua_CFunction never holds a
// C++ object with a destructor across a Lua call that can raise; C++ work
// that can throw runs in its own scope, inside try/catch, before the Lua
// call that reports its result. Scratch strings live in the sandbox, not on
// the stack.

namespace kiln::classes {
namespace {

constexpr int kHookEvery = 1000;  // count hook period, in VM instructions
constexpr int kMaxDepth = 64;     // table nesting converted to/from JSON

// Registry keys: their addresses are unique.
char kSafeKey, kRuleMtKey, kVarMtKey, kFactsMtKey, kChunksKey;
char kValsKey, kLinesKey, kOrderKey, kReadsKey, kFactsUdKey, kNodeUdKey;

LuaSandbox* Self(lua_State* L) {
  return *static_cast<LuaSandbox**>(lua_getextraspace(L));
}

const char* const kForbidden[] = {
    "io",     "os",         "require",        "package",   "debug",  "load",    "loadfile",
    "dofile", "loadstring", "collectgarbage", "coroutine", "rawset", "setfenv", "getfenv",
    "module", "_G"};

bool IsForbidden(const char* name) {
  for (const char* f : kForbidden)
    if (std::strcmp(f, name) == 0) return true;
  return false;
}

// Raises the budget abort at the current Lua line. Never returns.
int RaiseAbort(lua_State* L, LuaSandbox* s, LuaSandbox::Abort kind, const char* what) {
  luaL_where(L, 1);
  lua_pushstring(L, what);
  lua_concat(L, 2);
  s->abort_ = kind;
  try {
    s->abort_message_ = lua_tostring(L, -1);
  } catch (...) {
  }
  return lua_error(L);
}

void Hook(lua_State* L, lua_Debug* ar) {
  LuaSandbox* s = Self(L);
  if (ar->event == LUA_HOOKCOUNT) {
    s->steps_ += kHookEvery;
    if (s->abort_ == LuaSandbox::Abort::kNone && s->steps_ <= s->budget_) return;
    lua_getinfo(L, "Sl", ar);
    if (s->abort_ == LuaSandbox::Abort::kNone) {
      s->abort_ = LuaSandbox::Abort::kBudget;
      lua_pushfstring(
          L, "%s:%d: instruction budget of %I instructions exceeded (a loop that never ends?)",
          ar->short_src, ar->currentline, static_cast<lua_Integer>(s->budget_));
      try {
        s->abort_message_ = lua_tostring(L, -1);
      } catch (...) {
      }
    } else {
      lua_pushstring(L, s->abort_message_.c_str());
    }
    lua_error(L);
  } else if (ar->event == LUA_HOOKLINE) {
    s->last_line_ = ar->currentline;
  } else if (ar->event == LUA_HOOKRET) {
    lua_getinfo(L, "Sl", ar);
    if (ar->what[0] == 'm' && s->out_) s->out_->return_line = ar->currentline;
  }
}

int CurrentLine(lua_State* L) {
  lua_Debug ar;
  if (!lua_getstack(L, 1, &ar)) return 0;
  lua_getinfo(L, "l", &ar);
  return ar.currentline;
}

// ---- facts proxies ----------------------------------------------------

struct FactsRef {
  const Json* j;
  uint32_t generation;
};

void PushFacts(lua_State* L, const Json* j);

const Json* CheckFacts(lua_State* L, int idx) {
  auto* ref = static_cast<FactsRef*>(luaL_checkudata(L, idx, "kiln.facts"));
  if (ref->generation != Self(L)->generation_)
    luaL_error(L, "facts used after their evaluation ended");
  return ref->j;
}

// Pushes a JSON value: scalars as Lua values, objects and arrays as proxies.
void PushJsonValue(lua_State* L, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: lua_pushnil(L); break;
    case Json::value_t::boolean: lua_pushboolean(L, v.get<bool>()); break;
    case Json::value_t::number_integer: lua_pushinteger(L, v.get<int64_t>()); break;
    case Json::value_t::number_unsigned: {
      auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX))
        lua_pushnumber(L, static_cast<lua_Number>(u));
      else
        lua_pushinteger(L, static_cast<lua_Integer>(u));
      break;
    }
    case Json::value_t::number_float: lua_pushnumber(L, v.get<double>()); break;
    case Json::value_t::string: {
      const auto& str = v.get_ref<const std::string&>();
      lua_pushlstring(L, str.data(), str.size());
      break;
    }
    case Json::value_t::object:
    case Json::value_t::array: PushFacts(L, &v); break;
    default: lua_pushnil(L); break;
  }
}

void PushFacts(lua_State* L, const Json* j) {
  auto* ref = static_cast<FactsRef*>(lua_newuserdatauv(L, sizeof(FactsRef), 0));
  ref->j = j;
  ref->generation = Self(L)->generation_;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kFactsMtKey);
  lua_setmetatable(L, -2);
}

int FactsIndex(lua_State* L) {
  const Json* j = CheckFacts(L, 1);
  if (j->is_object()) {
    if (lua_type(L, 2) != LUA_TSTRING) return lua_pushnil(L), 1;
    size_t len;
    const char* k = lua_tolstring(L, 2, &len);
    auto it = j->find(std::string_view(k, len));
    if (it == j->end()) return lua_pushnil(L), 1;
    PushJsonValue(L, *it);
    return 1;
  }
  if (j->is_array()) {
    int isnum = 0;
    lua_Integer i = lua_tointegerx(L, 2, &isnum);
    if (!isnum || i < 1 || static_cast<size_t>(i) > j->size()) return lua_pushnil(L), 1;
    PushJsonValue(L, (*j)[static_cast<size_t>(i - 1)]);
    return 1;
  }
  return lua_pushnil(L), 1;
}

int FactsNewIndex(lua_State* L) {
  return luaL_error(L, "facts are read-only");
}

int FactsLen(lua_State* L) {
  const Json* j = CheckFacts(L, 1);
  lua_pushinteger(L, j->is_array() ? static_cast<lua_Integer>(j->size()) : 0);
  return 1;
}

// pairs() iterator over a proxy: keys in order (objects are sorted maps).
int FactsNext(lua_State* L) {
  const Json* j = CheckFacts(L, 1);
  if (j->is_array()) {
    lua_Integer i = lua_isnil(L, 2) ? 0 : lua_tointeger(L, 2);
    if (i < 0 || static_cast<size_t>(i) >= j->size()) return lua_pushnil(L), 1;
    lua_pushinteger(L, i + 1);
    PushJsonValue(L, (*j)[static_cast<size_t>(i)]);
    return 2;
  }
  if (!j->is_object()) return lua_pushnil(L), 1;
  Json::const_iterator it = j->begin();
  if (!lua_isnil(L, 2)) {
    size_t len;
    const char* k = lua_tolstring(L, 2, &len);
    if (!k) return lua_pushnil(L), 1;
    it = j->find(std::string_view(k, len));
    if (it == j->end()) return lua_pushnil(L), 1;
    ++it;
  }
  if (it == j->end()) return lua_pushnil(L), 1;
  const std::string& key = it.key();
  lua_pushlstring(L, key.data(), key.size());
  PushJsonValue(L, it.value());
  return 2;
}

int FactsPairs(lua_State* L) {
  CheckFacts(L, 1);
  lua_pushcfunction(L, FactsNext);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int FactsToString(lua_State* L) {
  const Json* j = CheckFacts(L, 1);
  LuaSandbox* s = Self(L);
  bool ok = true;
  try {
    s->scratch_ = j->dump();
  } catch (...) {
    ok = false;
  }
  if (!ok) return luaL_error(L, "facts cannot be shown as text");
  lua_pushlstring(L, s->scratch_.data(), s->scratch_.size());
  return 1;
}

// ---- JSON <-> Lua for variables -------------------------------------

// Pushes a deep copy of a JSON value as plain Lua tables (variables of
// earlier classes, so that a later class can extend them).
void PushJsonCopy(lua_State* L, const Json& v, int depth) {
  if (depth > kMaxDepth) luaL_error(L, "variable nested more than %d levels", kMaxDepth);
  luaL_checkstack(L, 4, "variable too deeply nested");
  if (v.is_array()) {
    lua_createtable(L, static_cast<int>(std::min<size_t>(v.size(), 1 << 20)), 0);
    lua_Integer i = 1;
    for (Json::const_iterator it = v.begin(); it != v.end(); ++it) {
      PushJsonCopy(L, *it, depth + 1);
      lua_rawseti(L, -2, i++);
    }
  } else if (v.is_object()) {
    lua_createtable(L, 0, static_cast<int>(std::min<size_t>(v.size(), 1 << 20)));
    for (Json::const_iterator it = v.begin(); it != v.end(); ++it) {
      const std::string& k = it.key();
      lua_pushlstring(L, k.data(), k.size());
      PushJsonCopy(L, it.value(), depth + 1);
      lua_rawset(L, -3);
    }
  } else {
    PushJsonValue(L, v);
  }
}

// Converts the Lua value at idx to JSON. Runs outside any Lua call (after
// the evaluation), reading with raw accessors that never raise. Returns ""
// or an error text.
std::string ToJson(lua_State* L, int idx, int depth, Json* out, uint32_t generation) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL: *out = nullptr; return "";
    case LUA_TBOOLEAN: *out = static_cast<bool>(lua_toboolean(L, idx)); return "";
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        *out = static_cast<int64_t>(lua_tointeger(L, idx));
      } else {
        double d = lua_tonumber(L, idx);
        if (!std::isfinite(d)) return "is not a finite number";
        *out = d;
      }
      return "";
    case LUA_TSTRING: {
      size_t len;
      const char* s = lua_tolstring(L, idx, &len);
      if (!IsUtf8(std::string_view(s, len))) return "is not valid UTF-8 text";
      *out = std::string(s, len);
      return "";
    }
    case LUA_TUSERDATA: {
      auto* ref = static_cast<FactsRef*>(luaL_testudata(L, idx, "kiln.facts"));
      if (!ref || ref->generation != generation) return "is a userdata";
      *out = *ref->j;
      return "";
    }
    case LUA_TTABLE: {
      if (depth >= kMaxDepth)
        return fmt::format("is nested more than {} levels (a cycle?)", kMaxDepth);
      if (!lua_checkstack(L, 4)) return "is too deeply nested";
      lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, idx));
      size_t count = 0;
      bool string_keys = false;
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        ++count;
        if (lua_type(L, -2) == LUA_TSTRING)
          string_keys = true;
        else if (!lua_isinteger(L, -2)) {
          lua_pop(L, 2);
          return "has a key that is neither a string nor an integer";
        }
        lua_pop(L, 1);
      }
      if (count == 0) {
        *out = Json::array();
        return "";
      }
      if (!string_keys) {
        if (static_cast<size_t>(n) != count) return "is a list with holes (or mixes keys)";
        *out = Json::array();
        for (lua_Integer i = 1; i <= n; ++i) {
          lua_rawgeti(L, idx, i);
          Json e;
          std::string err = ToJson(L, -1, depth + 1, &e, generation);
          lua_pop(L, 1);
          if (!err.empty())
            return fmt::format("[{}]{}{}", i, err[0] == '.' || err[0] == '[' ? "" : " ", err);
          out->push_back(std::move(e));
        }
        return "";
      }
      *out = Json::object();
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
          lua_pop(L, 2);
          return "mixes list entries and named fields";
        }
        size_t kl;
        const char* k = lua_tolstring(L, -2, &kl);
        Json e;
        std::string err = ToJson(L, -1, depth + 1, &e, generation);
        lua_pop(L, 1);
        if (!err.empty()) {
          lua_pop(L, 1);
          return fmt::format(".{}{}{}", std::string(k, kl),
                             err[0] == '.' || err[0] == '[' ? "" : " ", err);
        }
        (*out)[std::string(k, kl)] = std::move(e);
      }
      return "";
    }
    default: return std::string("is a ") + lua_typename(L, lua_type(L, idx));
  }
}

// ---- environments -------------------------------------------------------

// Rule environment: globals the file sets live in it; reads fall back to
// the safe globals, then fail.
int RuleIndex(lua_State* L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kSafeKey);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TNIL) return 1;
  const char* name = lua_tostring(L, 2);
  if (!name) return lua_pushnil(L), 1;
  if (IsForbidden(name)) return luaL_error(L, "'%s' is not available in the kiln sandbox", name);
  return luaL_error(L, "undefined global '%s'", name);
}

void PushPrevVar(lua_State* L, LuaSandbox* s, const char* name, size_t len, bool* found) {
  *found = false;
  if (!s->in_ || !s->in_->vars) return;
  const Json* v = nullptr;
  try {
    auto it = s->in_->vars->find(std::string(name, len));
    if (it != s->in_->vars->end()) v = &it->second;
  } catch (...) {
  }
  if (!v) return;
  *found = true;
  PushJsonCopy(L, *v, 0);
}

// Looks a variable up for var files: this file's assignments, then earlier
// classes (a copy, remembered so that in-place changes count), then the
// safe globals. Leaves the value (or nil) on the stack; returns whether
// the name is known at all.
bool LookupVar(lua_State* L, int key) {
  LuaSandbox* s = Self(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kLinesKey);
  lua_pushvalue(L, key);
  bool assigned = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  if (assigned) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kValsKey);
    lua_pushvalue(L, key);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    return true;
  }
  size_t len;
  const char* name = lua_tolstring(L, key, &len);
  if (std::strcmp(name, "facts") == 0) return lua_rawgetp(L, LUA_REGISTRYINDEX, &kFactsUdKey), true;
  if (std::strcmp(name, "node") == 0) return lua_rawgetp(L, LUA_REGISTRYINDEX, &kNodeUdKey), true;
  // An earlier class's value: copy once, keep the copy as this file's
  // value so `table.insert(PACKAGES, "x")` works; the read line is
  // remembered in case the copy changes.
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kReadsKey);
  lua_pushvalue(L, key);
  if (lua_rawget(L, -2) != LUA_TNIL) {
    lua_pop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kValsKey);
    lua_pushvalue(L, key);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    return true;
  }
  lua_pop(L, 2);
  bool found;
  PushPrevVar(L, s, name, len, &found);
  if (found) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_rawgetp(L, LUA_REGISTRYINDEX, &kValsKey);
      lua_pushvalue(L, key);
      lua_pushvalue(L, -3);
      lua_rawset(L, -3);
      lua_pop(L, 1);
      lua_rawgetp(L, LUA_REGISTRYINDEX, &kReadsKey);
      lua_pushvalue(L, key);
      lua_pushinteger(L, CurrentLine(L));
      lua_rawset(L, -3);
      lua_pop(L, 1);
    }
    return true;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kSafeKey);
  lua_pushvalue(L, key);
  bool safe = lua_rawget(L, -2) != LUA_TNIL;
  lua_remove(L, -2);
  return safe;
}

int VarIndex(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) return lua_pushnil(L), 1;
  if (LookupVar(L, 2)) return 1;
  const char* name = lua_tostring(L, 2);
  if (IsForbidden(name)) return luaL_error(L, "'%s' is not available in the kiln sandbox", name);
  return luaL_error(
      L, "undefined variable '%s' (no earlier class sets it; var(\"%s\") reads it as nil)", name,
      name);
}

int VarNewIndex(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) return luaL_error(L, "variable names are identifiers");
  const char* name = lua_tostring(L, 2);
  if (!IsVarName(name))
    return luaL_error(L, "'%s' is not a variable name (identifiers of at most %d characters)", name,
                      static_cast<int>(kMaxNameLength));
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kSafeKey);
  lua_pushvalue(L, 2);
  bool builtin = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  if (builtin || std::strcmp(name, "facts") == 0 || std::strcmp(name, "node") == 0 ||
      IsForbidden(name))
    return luaL_error(L, "'%s' is a built-in name, not a variable", name);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kLinesKey);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) == LUA_TNIL) {  // first assignment: remember the order
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kOrderKey);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, static_cast<lua_Integer>(lua_rawlen(L, -2)) + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_pushinteger(L, CurrentLine(L));
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kValsKey);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

// ---- class functions ---------------------------------------------------

int ClassCall(lua_State* L, bool add) {
  LuaSandbox* s = Self(L);
  if (s->kind_ != LuaSandbox::Kind::kRule)
    return luaL_error(L, "%s() works in rule files (class/*.lua), not in variable files",
                      add ? "add" : "remove");
  int n = lua_gettop(L);
  if (n == 0) return luaL_error(L, "%s() needs a class name", add ? "add" : "remove");
  int line = CurrentLine(L);
  for (int i = 1; i <= n; ++i) {
    if (lua_type(L, i) != LUA_TSTRING)
      return luaL_error(L, "%s(): class names are strings, not %s", add ? "add" : "remove",
                        luaL_typename(L, i));
    if (s->replay_) continue;
    size_t len;
    const char* name = lua_tolstring(L, i, &len);
    bool failed = false;
    {
      try {
        std::string err = add ? s->in_->classes->Add(std::string(name, len), line)
                              : s->in_->classes->Remove(std::string(name, len), line);
        if (!err.empty()) {
          s->scratch_ = std::move(err);
          failed = true;
        }
      } catch (...) {
        s->scratch_ = "out of memory";
        failed = true;
      }
    }
    if (failed) return luaL_error(L, "%s", s->scratch_.c_str());
  }
  return 0;
}
int LuaAdd(lua_State* L) {
  return ClassCall(L, true);
}
int LuaRemove(lua_State* L) {
  return ClassCall(L, false);
}

int LuaHas(lua_State* L) {
  LuaSandbox* s = Self(L);
  size_t len;
  const char* name = luaL_checklstring(L, 1, &len);
  bool has = false;
  try {
    has = s->in_->classes && s->in_->classes->Has(std::string_view(name, len));
  } catch (...) {
  }
  lua_pushboolean(L, has);
  return 1;
}

int LuaClasses(lua_State* L) {
  LuaSandbox* s = Self(L);
  bool ok = true;
  try {
    s->scratch_.clear();
    if (s->in_->classes)
      for (const auto& c : s->in_->classes->Classes()) s->scratch_ += c + "\n";
  } catch (...) {
    ok = false;
  }
  if (!ok) return luaL_error(L, "out of memory");
  lua_newtable(L);
  lua_Integer i = 1;
  const char* p = s->scratch_.c_str();
  while (*p) {
    const char* nl = std::strchr(p, '\n');
    lua_pushlstring(L, p, static_cast<size_t>(nl - p));
    lua_rawseti(L, -2, i++);
    p = nl + 1;
  }
  return 1;
}

int LuaVar(lua_State* L) {
  LuaSandbox* s = Self(L);
  luaL_checkstring(L, 1);
  if (s->kind_ != LuaSandbox::Kind::kVars)
    return luaL_error(L, "var() works in variable files; rules run before variables are set");
  lua_settop(L, 1);
  if (!LookupVar(L, 1)) lua_pushnil(L);
  return 1;
}

int LuaPrint(lua_State* L) {
  LuaSandbox* s = Self(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; ++i) {
    if (i > 1) luaL_addchar(&b, '\t');
    switch (lua_type(L, i)) {
      case LUA_TSTRING:
      case LUA_TNUMBER:
        lua_pushvalue(L, i);
        lua_tolstring(L, -1, nullptr);
        luaL_addvalue(&b);
        break;
      case LUA_TBOOLEAN: luaL_addstring(&b, lua_toboolean(L, i) ? "true" : "false"); break;
      case LUA_TNIL: luaL_addstring(&b, "nil"); break;
      case LUA_TUSERDATA:
        if (luaL_testudata(L, i, "kiln.facts")) {
          lua_pushcfunction(L, FactsToString);
          lua_pushvalue(L, i);
          lua_call(L, 1, 1);
          luaL_addvalue(&b);
          break;
        }
        [[fallthrough]];
      default:
        lua_pushfstring(L, "<%s>", luaL_typename(L, i));
        luaL_addvalue(&b);
        break;
    }
  }
  luaL_pushresult(&b);
  if (s->replay_) return 0;
  size_t len;
  const char* text = lua_tolstring(L, -1, &len);
  int line = CurrentLine(L);
  size_t room = s->limits().output_bytes > s->printed_ ? s->limits().output_bytes - s->printed_ : 0;
  try {
    if (room == 0) return 0;
    s->out_->prints.push_back({line, std::string(text, std::min(len, room))});
    s->printed_ += std::min(len, room);
    if (len > room) s->out_->prints.back().text += " [print output limit reached]";
  } catch (...) {
  }
  return 0;
}

// pcall and xpcall that cannot swallow an abort: after the call, a budget
// or memory abort is raised again.
int SafePcall(lua_State* L) {
  luaL_checkany(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  LuaSandbox* s = Self(L);
  if (status == LUA_ERRMEM) s->abort_ = LuaSandbox::Abort::kMemory;
  if (s->abort_ != LuaSandbox::Abort::kNone) return lua_error(L);
  if (status != LUA_OK) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  return lua_gettop(L);
}

int SafeXpcall(lua_State* L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  // [f, h, args...] -> [h, f, args...]
  lua_pushvalue(L, 1);
  lua_copy(L, 2, 1);
  lua_copy(L, -1, 2);
  lua_pop(L, 1);
  int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
  LuaSandbox* s = Self(L);
  if (status == LUA_ERRMEM) s->abort_ = LuaSandbox::Abort::kMemory;
  if (s->abort_ != LuaSandbox::Abort::kNone) {
    lua_pushstring(L, s->abort_message_.empty() ? "not enough memory" : s->abort_message_.c_str());
    return lua_error(L);
  }
  lua_pushboolean(L, status == LUA_OK);
  lua_replace(L, 1);
  return lua_gettop(L);
}

int SafeSetmetatable(lua_State* L) {
  lua_pushliteral(L, "__gc");
  if (lua_type(L, 2) == LUA_TTABLE && lua_rawget(L, 2) != LUA_TNIL)
    return luaL_error(L, "__gc metamethods are not allowed in the kiln sandbox");
  lua_settop(L, 2);
  // The original runs in this frame, so its errors name the caller's line.
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

// ---- string functions that charge their worst case ----------------------

// Worst-case steps of Lua's backtracking matcher for a pattern on a subject
// of n bytes: starts x C(n+k, k) x 2^q, where k counts the repetitions
// (*, +, -, %b) and q the optional items (?).
double PatternCost(const char* p, size_t plen, size_t n) {
  bool anchored = plen > 0 && p[0] == '^';
  int k = 0, q = 0;
  size_t i = anchored ? 1 : 0;
  while (i < plen) {
    char c = p[i];
    bool single = true;
    if (c == '%') {
      if (i + 1 < plen && p[i + 1] == 'b') {
        ++k;
        i += 4;
        continue;
      }
      if (i + 1 < plen && p[i + 1] == 'f') {
        i += 2;
        if (i < plen && p[i] == '[') {
          ++i;
          if (i < plen && p[i] == '^') ++i;
          if (i < plen && p[i] == ']') ++i;
          while (i < plen && p[i] != ']') i += (p[i] == '%') ? 2 : 1;
          ++i;
        }
        continue;
      }
      i += 2;
    } else if (c == '[') {
      ++i;
      if (i < plen && p[i] == '^') ++i;
      if (i < plen && p[i] == ']') ++i;
      while (i < plen && p[i] != ']') i += (p[i] == '%') ? 2 : 1;
      ++i;
    } else if (c == '(' || c == ')') {
      ++i;
      single = false;
    } else {
      ++i;
    }
    if (single && i < plen) {
      if (p[i] == '*' || p[i] == '+' || p[i] == '-') {
        ++k;
        ++i;
      } else if (p[i] == '?') {
        ++q;
        ++i;
      }
    }
  }
  double per_start = 1;
  for (int j = 1; j <= k; ++j) per_start = per_start * (static_cast<double>(n) + j) / j;
  per_start *= std::pow(2.0, q);
  double starts = anchored ? 1 : static_cast<double>(n) + 1;
  return std::min(starts * per_start + static_cast<double>(n), 1e30);
}

int Charge(lua_State* L, double cost, const char* fn, const char* pat) {
  LuaSandbox* s = Self(L);
  double left = s->budget_ > s->steps_ ? static_cast<double>(s->budget_ - s->steps_) : 0;
  if (cost > left) {
    lua_pushfstring(L,
                    "string.%s: pattern \"%s\" may take up to %f steps on this string, more than "
                    "the instruction budget left (%f)",
                    fn, pat, cost, left);
    return RaiseAbort(L, s, LuaSandbox::Abort::kBudget, lua_tostring(L, -1));
  }
  s->steps_ += static_cast<uint64_t>(cost);
  return 0;
}

// upvalue 1: the original function; upvalue 2: its name.
int ChargedPattern(lua_State* L) {
  size_t n, plen;
  luaL_checklstring(L, 1, &n);
  const char* p = luaL_checklstring(L, 2, &plen);
  const char* name = lua_tostring(L, lua_upvalueindex(2));
  bool plain = std::strcmp(name, "find") == 0 && lua_toboolean(L, 4);
  Charge(L, plain ? static_cast<double>(n) : PatternCost(p, plen, n), name, p);
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

int SafeRep(lua_State* L) {
  size_t l, lsep = 0;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || l + lsep == 0) return lua_pushliteral(L, ""), 1;
  LuaSandbox* s = Self(L);
  double total = static_cast<double>(n) * static_cast<double>(l + lsep);
  if (total > static_cast<double>(s->limits().memory_bytes)) {
    s->abort_ = LuaSandbox::Abort::kMemory;
    lua_pushfstring(L, "string.rep would make a string of %s bytes; the memory cap is %I bytes",
                    total < 9e18 ? "" : "more than 9e18",
                    static_cast<lua_Integer>(s->limits().memory_bytes));
    if (total < 9e18) {
      lua_pop(L, 1);
      lua_pushfstring(L, "string.rep would make a string of %I bytes; the memory cap is %I bytes",
                      static_cast<lua_Integer>(total),
                      static_cast<lua_Integer>(s->limits().memory_bytes));
    }
    return RaiseAbort(L, s, LuaSandbox::Abort::kMemory, lua_tostring(L, -1));
  }
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

int SafeMove(lua_State* L) {
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  if (e >= f && (e - f) > 10'000'000)
    return luaL_error(L, "table.move of more than 10000000 elements");
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

// Wraps table[name] (in the table at the top) with fn, the original as upvalue 1.
void Wrap(lua_State* L, const char* name, lua_CFunction fn, bool with_name) {
  lua_getfield(L, -1, name);
  if (with_name) lua_pushstring(L, name);
  lua_pushcclosure(L, fn, with_name ? 2 : 1);
  lua_setfield(L, -2, name);
}

// A read-only view of a library table.
int ReadOnly(lua_State* L) {
  return luaL_error(L, "the standard libraries are read-only in the kiln sandbox");
}

void PushReadOnlyProxy(lua_State* L, int lib) {
  lib = lua_absindex(L, lib);
  lua_newtable(L);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, lib);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ReadOnly);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

int SetupState(lua_State* L) {
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);
  int g = 1, str = 2, tab = 3, math = 4, utf8 = 5;

  // The real string table is what ("x"):method() reaches: fix it up there.
  lua_pushvalue(L, str);
  Wrap(L, "rep", SafeRep, false);
  Wrap(L, "find", ChargedPattern, true);
  Wrap(L, "match", ChargedPattern, true);
  Wrap(L, "gmatch", ChargedPattern, true);
  Wrap(L, "gsub", ChargedPattern, true);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_pushvalue(L, tab);
  Wrap(L, "move", SafeMove, false);
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setfield(L, math, "random");
  lua_pushnil(L);
  lua_setfield(L, math, "randomseed");
  // Protect the string metatable so getmetatable("") cannot reach it.
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  // The safe globals.
  lua_newtable(L);
  int safe = lua_gettop(L);
  for (const char* name :
       {"assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
        "rawequal", "rawlen", "rawget", "getmetatable", "_VERSION"}) {
    lua_getfield(L, g, name);
    lua_setfield(L, safe, name);
  }
  lua_getfield(L, g, "setmetatable");
  lua_pushcclosure(L, SafeSetmetatable, 1);
  lua_setfield(L, safe, "setmetatable");
  lua_pushcfunction(L, SafePcall);
  lua_setfield(L, safe, "pcall");
  lua_pushcfunction(L, SafeXpcall);
  lua_setfield(L, safe, "xpcall");
  PushReadOnlyProxy(L, str);
  lua_setfield(L, safe, "string");
  PushReadOnlyProxy(L, tab);
  lua_setfield(L, safe, "table");
  PushReadOnlyProxy(L, math);
  lua_setfield(L, safe, "math");
  PushReadOnlyProxy(L, utf8);
  lua_setfield(L, safe, "utf8");
  const luaL_Reg fns[] = {{"add", LuaAdd},         {"remove", LuaRemove}, {"has", LuaHas},
                          {"classes", LuaClasses}, {"var", LuaVar},       {"print", LuaPrint},
                          {nullptr, nullptr}};
  luaL_setfuncs(L, fns, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kSafeKey);

  // The base library's own global table is no longer needed by anyone:
  // chunks only ever see an environment built per evaluation.
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, RuleIndex);
  lua_setfield(L, -2, "__index");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kRuleMtKey);

  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, VarIndex);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, VarNewIndex);
  lua_setfield(L, -2, "__newindex");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kVarMtKey);

  luaL_newmetatable(L, "kiln.facts");
  const luaL_Reg facts_mt[] = {{"__index", FactsIndex},       {"__newindex", FactsNewIndex},
                               {"__len", FactsLen},           {"__pairs", FactsPairs},
                               {"__tostring", FactsToString}, {nullptr, nullptr}};
  luaL_setfuncs(L, facts_mt, 0);
  lua_pushliteral(L, "facts are read-only");
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kFactsMtKey);

  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kChunksKey);
  return 0;
}

struct CompileArgs {
  const char* source;
  size_t len;
  const char* chunkname;
  int id;
};

int CompileChunk(lua_State* L) {
  auto* a = static_cast<CompileArgs*>(lua_touserdata(L, 1));
  if (luaL_loadbufferx(L, a->source, a->len, a->chunkname, "t") != LUA_OK) return lua_error(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kChunksKey);
  lua_insert(L, -2);
  lua_rawseti(L, -2, a->id);
  return 0;
}

// Builds the environment and runs one chunk (arg 1: chunk id). Rule
// results (a class name or a list of them) are added here.
int RunChunk(lua_State* L) {
  LuaSandbox* s = Self(L);
  auto id = static_cast<int>(lua_tointeger(L, 1));
  lua_settop(L, 0);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kChunksKey);
  lua_rawgeti(L, 1, id);
  lua_remove(L, 1);          // [fn]
  lua_createtable(L, 0, 2);  // env
  if (s->kind_ == LuaSandbox::Kind::kRule) {
    PushFacts(L, s->in_->facts);
    lua_setfield(L, -2, "facts");
    PushFacts(L, s->in_->node);
    lua_setfield(L, -2, "node");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kRuleMtKey);
  } else {
    for (const char* key : {&kValsKey, &kLinesKey, &kOrderKey, &kReadsKey}) {
      lua_newtable(L);
      lua_rawsetp(L, LUA_REGISTRYINDEX, key);
    }
    PushFacts(L, s->in_->facts);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kFactsUdKey);
    PushFacts(L, s->in_->node);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kNodeUdKey);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kVarMtKey);
  }
  lua_setmetatable(L, -2);
  lua_setupvalue(L, 1, 1);  // _ENV
  lua_call(L, 0, LUA_MULTRET);
  int nres = lua_gettop(L);
  if (nres == 0 || (nres == 1 && lua_isnil(L, 1))) return 0;
  const char* file = lua_tostring(L, lua_upvalueindex(1));
  int line = s->out_->return_line;
  if (s->kind_ == LuaSandbox::Kind::kVars)
    return luaL_error(
        L, "%s:%d: a variable file sets variables; it must not return a value (it returned a %s)",
        file, line, luaL_typename(L, 1));
  if (nres > 1)
    return luaL_error(L, "%s:%d: a rule returns one class name or one list of them, not %d values",
                      file, line, nres);
  if (lua_type(L, 1) == LUA_TSTRING) {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_replace(L, 1);
  } else if (lua_type(L, 1) != LUA_TTABLE) {
    return luaL_error(L, "%s:%d: a rule returns a class name or a list of class names, not a %s",
                      file, line, luaL_typename(L, 1));
  }
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, 1));
  for (lua_Integer i = 1; i <= n; ++i) {
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
      return luaL_error(L, "%s:%d: a rule returns class names (strings); item %d is a %s", file,
                        line, static_cast<int>(i), luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  if (s->replay_) return 0;
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, 1, i);
    size_t len;
    const char* name = lua_tolstring(L, -1, &len);
    bool failed = false;
    try {
      std::string err = s->in_->classes->Add(std::string(name, len), line);
      if (!err.empty()) {
        s->scratch_ = std::move(err);
        failed = true;
      }
    } catch (...) {
      s->scratch_ = "out of memory";
      failed = true;
    }
    if (failed) return luaL_error(L, "%s:%d: %s", file, line, s->scratch_.c_str());
    lua_pop(L, 1);
  }
  return 0;
}

// Column of the first (or last) whole-word occurrence of word in line
// (1-based), 0 if none.
int FindWord(std::string_view line, std::string_view word, bool last = false) {
  if (word.empty()) return 0;
  int found = 0;
  auto is_id = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  size_t pos = 0;
  while ((pos = line.find(word, pos)) != std::string_view::npos) {
    bool left = pos == 0 || !is_id(line[pos - 1]) || !is_id(word.front());
    size_t end = pos + word.size();
    bool right = end >= line.size() || !is_id(line[end]) || !is_id(word.back());
    if (left && right) {
      found = static_cast<int>(pos) + 1;
      if (!last) return found;
    }
    ++pos;
  }
  return found;
}

// The name a Lua message is about: "(global 'x')", "near 'x'", "'x' is ...".
std::string QuotedName(std::string_view msg) {
  size_t q = msg.find("near '");
  if (q != std::string_view::npos)
    q += 5;
  else
    q = msg.find('\'');
  if (q == std::string_view::npos) return {};
  size_t e = msg.find('\'', q + 1);
  if (e == std::string_view::npos) return {};
  return std::string(msg.substr(q + 1, e - q - 1));
}

}  // namespace

struct LuaSandbox::Impl {};

void* LuaSandbox::Alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* s = static_cast<LuaSandbox*>(ud);
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    s->used_ -= old;
    return nullptr;
  }
  // Growing past the cap fails (Lua then raises "not enough memory");
  // shrinking never fails, as Lua requires.
  if (nsize > old && s->used_ + (nsize - old) > s->limit_) return nullptr;
  void* p = std::realloc(ptr, nsize);
  if (!p) return nullptr;
  s->used_ = s->used_ - old + nsize;
  return p;
}

LuaSandbox::LuaSandbox(SandboxLimits limits) : limits_(limits) {
  L_ = lua_newstate(&LuaSandbox::Alloc, this);
  if (!L_) return;
  *static_cast<LuaSandbox**>(lua_getextraspace(L_)) = this;
  if (!Setup()) {
    lua_close(L_);
    L_ = nullptr;
  }
}

LuaSandbox::~LuaSandbox() {
  if (L_) {
    lua_sethook(L_, nullptr, 0, 0);
    lua_close(L_);
  }
}

bool LuaSandbox::Setup() {
  lua_pushcfunction(L_, SetupState);
  if (lua_pcall(L_, 0, 0, 0) != LUA_OK) return false;
  lua_gc(L_, LUA_GCGEN, 0, 0);
  return true;
}

int LuaSandbox::Compile(const std::string& file, std::string_view source, Diagnostic* err) {
  if (!L_) {
    *err = PlainDiagnostic(file, "the Lua sandbox could not be created");
    return -1;
  }
  int id = static_cast<int>(chunks_.size()) + 1;
  std::string chunkname = "=" + file;
  CompileArgs args{source.data(), source.size(), chunkname.c_str(), id};
  lua_settop(L_, 0);
  lua_pushcfunction(L_, CompileChunk);
  lua_pushlightuserdata(L_, &args);
  int status = lua_pcall(L_, 1, 0, 0);
  if (status != LUA_OK) {
    std::string msg = lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1) : "cannot compile";
    lua_settop(L_, 0);
    chunks_.push_back({file, std::string(source)});
    *err = ErrorFrom(static_cast<int>(chunks_.size()) - 1, msg, true, 0);
    chunks_.pop_back();
    return -1;
  }
  chunks_.push_back({file, std::string(source)});
  return id;
}

Diagnostic LuaSandbox::ErrorFrom(int chunk_index, std::string_view msg, bool, int fallback_line) {
  const Chunk& c = chunks_[static_cast<size_t>(chunk_index)];
  int line = 0;
  std::string rest(msg);
  std::string prefix = c.file + ":";
  if (msg.substr(0, prefix.size()) == prefix) {
    size_t i = prefix.size();
    int v = 0;
    bool digits = false;
    while (i < msg.size() && msg[i] >= '0' && msg[i] <= '9') {
      v = v * 10 + (msg[i] - '0');
      digits = true;
      ++i;
    }
    if (digits && i + 1 < msg.size() && msg[i] == ':' && msg[i + 1] == ' ') {
      line = v;
      rest = std::string(msg.substr(i + 2));
    } else if (!digits) {
      rest = std::string(msg.substr(prefix.size()));
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
    }
  }
  if (line == 0) line = fallback_line;
  int column = 0;
  std::string_view text = LineOf(c.source, line);
  if (line > 0) {
    std::string name = QuotedName(rest);
    if (name == "<eof>") column = static_cast<int>(text.size()) + 1;
    // A syntax error is "near" the token where parsing stopped: usually
    // the last of its kind on the line.
    else if (!name.empty())
      column = FindWord(text, name, rest.find("near '") != std::string::npos);
  }
  return MakeDiagnostic(c.file, c.source, line, column, rest);
}

bool LuaSandbox::Run(int chunk, Kind kind, const EvalInput& in, EvalOutput* out, Diagnostic* err) {
  if (!L_ || chunk < 1 || chunk > static_cast<int>(chunks_.size())) {
    *err = PlainDiagnostic("", "no such Lua chunk");
    return false;
  }
  const Chunk& c = chunks_[static_cast<size_t>(chunk - 1)];
  auto run_once = [&](int mask) {
    ++generation_;
    steps_ = 0;
    budget_ = limits_.instructions;
    abort_ = Abort::kNone;
    abort_message_.clear();
    in_ = &in;
    out_ = out;
    kind_ = kind;
    printed_ = 0;
    lua_settop(L_, 0);
    limit_ = used_ + limits_.memory_bytes;
    lua_sethook(L_, Hook, mask, kHookEvery);
    lua_pushstring(L_, c.file.c_str());
    lua_pushcclosure(L_, RunChunk, 1);
    lua_pushinteger(L_, chunk);
    int status = lua_pcall(L_, 1, 0, 0);
    lua_sethook(L_, nullptr, 0, 0);
    limit_ = SIZE_MAX;
    if (status == LUA_ERRMEM) abort_ = Abort::kMemory;
    return status;
  };

  out->return_line = 0;
  int status = run_once(LUA_MASKCOUNT | LUA_MASKRET);
  bool ok = status == LUA_OK;
  if (!ok) {
    std::string msg = lua_type(L_, -1) == LUA_TSTRING
                          ? lua_tostring(L_, -1)
                          : std::string("error object is a ") + luaL_typename(L_, -1) + " value";
    lua_settop(L_, 0);
    if (abort_ == Abort::kMemory && msg.find("string.rep would make") == std::string::npos) {
      // A failed allocation unwinds without a line. Rules are deterministic,
      // so run the file again with a line hook and no side effects: the last
      // line that started is where memory ran out.
      EvalOutput scratch;
      replay_ = true;
      last_line_ = 0;
      out_ = &scratch;
      run_once(LUA_MASKCOUNT | LUA_MASKLINE);
      replay_ = false;
      lua_settop(L_, 0);
      *err =
          ErrorFrom(chunk - 1, fmt::format("memory cap of {} bytes exceeded", limits_.memory_bytes),
                    false, last_line_);
    } else {
      *err = ErrorFrom(chunk - 1, msg, true, 0);
    }
  } else if (kind == Kind::kVars) {
    // Collect the assignments, in first-assignment order, then in-place
    // changes to earlier classes' tables.
    lua_rawgetp(L_, LUA_REGISTRYINDEX, &kValsKey);
    lua_rawgetp(L_, LUA_REGISTRYINDEX, &kLinesKey);
    lua_rawgetp(L_, LUA_REGISTRYINDEX, &kOrderKey);
    lua_rawgetp(L_, LUA_REGISTRYINDEX, &kReadsKey);
    const int vals = 1, lines = 2, order = 3, reads = 4;
    auto n = static_cast<lua_Integer>(lua_rawlen(L_, order));
    for (lua_Integer i = 1; i <= n && ok; ++i) {
      lua_rawgeti(L_, order, i);
      std::string name = lua_tostring(L_, -1);
      lua_pushvalue(L_, -1);
      lua_rawget(L_, lines);
      int line = static_cast<int>(lua_tointeger(L_, -1));
      lua_pop(L_, 1);
      lua_rawget(L_, vals);
      VarSet v;
      v.name = name;
      v.line = line;
      v.unset = lua_isnil(L_, -1);
      std::string e = ToJson(L_, -1, 0, &v.value, generation_);
      lua_pop(L_, 1);
      if (!e.empty()) {
        *err = MakeDiagnostic(
            c.file, c.source, line, FindWord(LineOf(c.source, line), name),
            "variable " + name + (e[0] == '.' || e[0] == '[' ? "" : " ") + e +
                "; variables hold strings, numbers, booleans and lists or maps of them");
        ok = false;
        break;
      }
      out->vars.push_back(std::move(v));
    }
    // Tables copied from earlier classes and changed in place.
    lua_pushnil(L_);
    while (ok && lua_next(L_, reads) != 0) {
      int line = static_cast<int>(lua_tointeger(L_, -1));
      lua_pop(L_, 1);
      lua_pushvalue(L_, -1);
      lua_rawget(L_, lines);
      bool assigned = !lua_isnil(L_, -1);
      lua_pop(L_, 1);
      if (assigned) continue;
      std::string name = lua_tostring(L_, -1);
      lua_pushvalue(L_, -1);
      lua_rawget(L_, vals);
      Json now;
      std::string e = ToJson(L_, -1, 0, &now, generation_);
      lua_pop(L_, 1);
      const Json* prev = nullptr;
      if (in.vars) {
        auto it = in.vars->find(name);
        if (it != in.vars->end()) prev = &it->second;
      }
      if (!e.empty()) {
        *err = MakeDiagnostic(c.file, c.source, line, 0,
                              "variable " + name + (e[0] == '.' || e[0] == '[' ? "" : " ") + e);
        ok = false;
      } else if (prev && *prev != now) {
        out->vars.push_back({name, std::move(now), line, false});
      }
    }
    lua_settop(L_, 0);
  }
  // A failed evaluation may leave up to the memory cap in garbage: take it
  // back now rather than let the next evaluations carry it.
  if (!ok) lua_gc(L_, LUA_GCCOLLECT);
  // Drop this evaluation's tables so the collector can take them.
  for (const char* key :
       {&kValsKey, &kLinesKey, &kOrderKey, &kReadsKey, &kFactsUdKey, &kNodeUdKey}) {
    lua_pushnil(L_);
    lua_rawsetp(L_, LUA_REGISTRYINDEX, key);
  }
  ++generation_;
  in_ = nullptr;
  out_ = nullptr;
  return ok;
}

}  // namespace kiln::classes
