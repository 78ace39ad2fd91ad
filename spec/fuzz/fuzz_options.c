/*
 * libFuzzer harness for socket options through the Lua API (options.c):
 * fuzzer-chosen option names, value types and numbers for setoption,
 * getoption, setsockopt and getsockopt on real sockets of every family
 * and type. Each call must return (a result or nil, message, errno) or
 * raise a Lua error, never crash; a flag that was set reads back the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lualib.h"
#include "csock.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static const char *const names[] = {
  "reuseaddr", "reuseport", "keepalive", "keepidle", "keepintvl", "keepcnt", "nodelay",
  "linger", "rcvbuf", "sndbuf", "broadcast", "ipv6only", "bogus", "", "REUSEADDR",
};
static const char *const kinds[][2] = {
  {"inet", "stream"}, {"inet", "dgram"}, {"inet6", "stream"}, {"inet6", "dgram"}, {"unix", "stream"},
};

static lua_State *state;

static int64_t next_int(const uint8_t **p, size_t *n) {
  uint64_t v = 0;
  for (int i = 0; i < 8 && *n > 0; i++, (*p)++, (*n)--) v = (v << 8) | **p;
  return (int64_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (state == NULL) {
    state = luaL_newstate();
    luaL_openlibs(state);
    luaL_requiref(state, "csock.core", luaopen_csock_core, 0);
    lua_setglobal(state, "core");
    CHECK(luaL_dostring(state,
      "function try(kind, typ, op, name, v, level, opt)\n"
      "  local s = assert(core.socket(kind, typ))\n"
      "  local ok, a, b, c\n"
      "  if op == 0 then ok, a, b, c = pcall(s.setoption, s, name, v)\n"
      "    if ok and a == true and type(v) == 'boolean' then\n"
      "      local got = s:getoption(name)\n"
      "      assert(got == v or name == 'linger', 'flag did not read back')\n"
      "    end\n"
      "  elseif op == 1 then ok, a, b, c = pcall(s.getoption, s, name)\n"
      "  elseif op == 2 then ok, a, b, c = pcall(s.setsockopt, s, level, opt, v)\n"
      "  else ok, a, b, c = pcall(s.getsockopt, s, level, opt) end\n"
      "  assert(ok or type(a) == 'string', 'an error that is not a message')\n"
      "  if ok and a == nil then assert(type(b) == 'string' and math.type(c) == 'integer') end\n"
      "  s:close()\n"
      "end") == LUA_OK);
  }
  if (size < 4) return 0;
  const uint8_t *p = data + 4;
  size_t n = size - 4;
  lua_State *L = state;
  lua_getglobal(L, "try");
  const char *const *k = kinds[data[0] % 5];
  lua_pushstring(L, k[0]);
  lua_pushstring(L, k[1]);
  lua_pushinteger(L, data[1] % 4);
  lua_pushstring(L, names[data[2] % (sizeof names / sizeof names[0])]);
  switch (data[3] % 5) { /* the value, of some type */
    case 0: lua_pushboolean(L, data[3] & 8); break;
    case 1: lua_pushinteger(L, next_int(&p, &n)); break;
    case 2: lua_pushnumber(L, (double)next_int(&p, &n) / 7.0); break;
    case 3: lua_pushlstring(L, (const char *)p, n); break;
    default: lua_pushnil(L); break;
  }
  lua_pushinteger(L, next_int(&p, &n) % 300);  /* level */
  lua_pushinteger(L, next_int(&p, &n) % 100);  /* option */
  CHECK(lua_pcall(L, 7, 0, 0) == LUA_OK);
  lua_settop(L, 0);
  return 0;
}
