/*
 * csock: BSD sockets, buffered io and (soon) a poll loop for Lua 5.4.
 * The public C interface. A C program that embeds Lua opens csock with
 * luaL_requiref(L, "csock.core", luaopen_csock_core, 0).
 */
#ifndef CSOCK_H
#define CSOCK_H

#include "lua.h"

#if defined(__GNUC__)
#define CSOCK_API __attribute__((visibility("default")))
#else
#define CSOCK_API
#endif

/* Opens the C core and returns its module table. */
CSOCK_API int luaopen_csock_core(lua_State *L);

#endif
