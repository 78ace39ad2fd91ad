/*
 * The embedding API (csock.h): opening csock into a host's lua_State,
 * running scripts, and driving the loop from a host's own event loop.
 */
#include <errno.h>
#include <string.h>

#include "core.h"
#include "csock.h"
#include "embedded.h"

/* package.preload loader for a built-in module: upvalue = its index. */
static int load_embedded(lua_State *L) {
  const csock_Embedded *m = &csock_embedded[lua_tointeger(L, lua_upvalueindex(1))];
  lua_pushfstring(L, "=%s", m->path);
  if (luaL_loadbufferx(L, m->source, m->size, lua_tostring(L, -1), "t") != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  return 1;
}

static int open_all(lua_State *L) {
  luaL_requiref(L, "csock.core", luaopen_csock_core, 0);
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (int i = 0; csock_embedded[i].name != NULL; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, csock_embedded[i].name);
  }
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "csock");
  lua_call(L, 1, 1);
  lua_setglobal(L, "csock");
  return 0;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below nargs arguments with a traceback handler. */
static int protected(lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, 0, base);
  lua_remove(L, base);
  return status;
}

CSOCK_API int csock_open(lua_State *L) {
  lua_pushcfunction(L, open_all);
  return protected(L, 0);
}

CSOCK_API int csock_dofile(lua_State *L, const char *path) {
  int status = luaL_loadfile(L, path);
  return status != LUA_OK ? status : protected(L, 0);
}

CSOCK_API int csock_dostring(lua_State *L, const char *chunk, const char *name) {
  int status = luaL_loadbuffer(L, chunk, strlen(chunk), name ? name : chunk);
  return status != LUA_OK ? status : protected(L, 0);
}

CSOCK_API int csock_run(lua_State *L) {
  lua_getglobal(L, "csock");
  lua_getfield(L, -1, "run");
  lua_remove(L, -2);
  return protected(L, 0);
}

static int step(lua_State *L) {
  csock_Sched *sched = (csock_Sched *)lua_touserdata(L, 1);
  lua_pushinteger(L, csock_run_step(L, sched, (int64_t)lua_tointeger(L, 2)));
  return 1;
}

CSOCK_API int csock_step(lua_State *L, int timeout_ms) {
  csock_Sched *sched = csock_getsched(L);
  if (sched == NULL || csock_sched_engine(sched)->running) return 0;
  lua_pushcfunction(L, step); /* a host calls this unprotected: nothing may escape */
  lua_pushlightuserdata(L, sched);
  lua_pushinteger(L, timeout_ms < 0 ? CSOCK_FOREVER : (lua_Integer)timeout_ms * 1000000);
  int status = lua_pcall(L, 2, 1, 0);
  int r = status == LUA_OK ? (int)lua_tointeger(L, -1) : status == LUA_ERRMEM ? -ENOMEM : -EIO;
  lua_pop(L, 1);
  return r < 0 ? r : csock_sched_engine(sched)->alive > 0;
}

CSOCK_API int csock_pollfd(lua_State *L) {
  csock_Engine *e = csock_getengine(L);
  return e ? csock_engine_pollfd(e) : -1;
}

CSOCK_API int csock_nexttimeout(lua_State *L) {
  csock_Engine *e = csock_getengine(L);
  return csock_sys_ms(e ? csock_engine_timeout(e) : CSOCK_FOREVER); /* rounded up: never too early */
}

CSOCK_API void csock_onerror(lua_State *L, csock_ErrorHook hook, void *ud) {
  csock_Sched *sched = csock_getsched(L);
  if (sched != NULL) csock_sched_seterrhook(sched, hook, ud);
}
