/*
 * csock.core: the module table, the socket methods table, and the pieces
 * each file contributes to them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "core.h"
#include "csock.h"

/* Keeps this library loaded for the life of the process: lua_close would
 * otherwise unmap it (a slow munmap at every script's exit), and a lookup
 * thread still finishing must never find its code gone. */
static void stay_loaded(void) {
  Dl_info info;
  if (dladdr((void *)luaopen_csock_core, &info) && info.dli_fname != NULL)
    (void)dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)csock_sys_now() / 1e9);
  return 1;
}

CSOCK_API int luaopen_csock_core(lua_State *L) {
  static void (*const parts[])(lua_State *) = {
    csock_open_run, csock_open_timers, csock_open_cond, csock_open_fdwait, csock_open_signals,
    csock_open_socket, csock_open_errors, csock_open_lookup, csock_open_options,
    csock_open_transfer, csock_open_bufio, csock_open_resp, csock_open_select,
    csock_open_serve, csock_open_relay,
  };
  stay_loaded();
  /* Sized for what goes in (and init.lua's few additions): tables grown
   * one field at a time rehash at every power of two. */
  lua_createtable(L, 0, 72); /* module */
  lua_createtable(L, 0, 32); /* socket methods */
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) parts[i](L);
  lua_setfield(L, -2, "methods"); /* so Lua code can add methods */
  lua_pushcfunction(L, l_now);
  lua_setfield(L, -2, "now");
  lua_pushliteral(L, CSOCK_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
