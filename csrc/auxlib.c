/*
 * What every binding shares, as lauxlib does for Lua's own libraries:
 * argument checks for times (seconds in, the engine's nanoseconds out),
 * ports and counts, and making a class. A time that is negative, NaN or
 * not a number raises "time must be a non-negative number"; from
 * CSOCK_SECONDS_MAX seconds up (about 31.7 years; infinity too) it means
 * no limit.
 */
#include "core.h"

void csock_newclass(lua_State *L, const char *name, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
}

int64_t csock_checktime(lua_State *L, int idx) {
  lua_Number s = luaL_checknumber(L, idx);
  luaL_argcheck(L, s >= 0, idx, "time must be a non-negative number"); /* NaN fails too */
  return csock_sys_duration(s);
}

int64_t csock_opttimeout(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? CSOCK_FOREVER : csock_checktime(L, idx);
}

int64_t csock_optdeadline(lua_State *L, int idx) {
  return csock_sys_deadline(csock_opttimeout(L, idx));
}

int csock_checkport(lua_State *L, int idx) {
  lua_Integer port = luaL_checkinteger(L, idx);
  luaL_argcheck(L, port >= 0 && port <= 65535, idx, "port out of range");
  return (int)port;
}

size_t csock_optcount(lua_State *L, int idx, lua_Integer def) {
  lua_Integer n = luaL_optinteger(L, idx, def);
  luaL_argcheck(L, n >= 0, idx, "count must not be negative");
  return (size_t)n;
}
