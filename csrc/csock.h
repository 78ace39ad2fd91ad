/*
 * csock: BSD sockets, buffered io and a poll loop for Lua 5.4.
 * The public C interface, for programs that embed Lua and csock.
 * See docs/embedding.md; examples/embed/ is a complete host.
 *
 * Everything here works on one lua_State and keeps its data in that
 * state's registry: several states in one process are independent.
 */
#ifndef CSOCK_H
#define CSOCK_H

#include "lua.h"

#if defined(__GNUC__)
#define CSOCK_API __attribute__((visibility("default")))
#else
#define CSOCK_API
#endif

/* The C core as a Lua module (what require "csock.core" loads). */
CSOCK_API int luaopen_csock_core(lua_State *L);

/* Opens csock into L: the C core, the Lua modules built into the library
 * (require "csock", "csock.host" need no Lua path), and the global
 * `csock`. Returns LUA_OK, or an error status with the message on top. */
CSOCK_API int csock_open(lua_State *L);

/* Runs a script file (NULL: stdin) or a chunk of source, with a traceback
 * on error. Returns LUA_OK, or an error status with the message on top. */
CSOCK_API int csock_dofile(lua_State *L, const char *path);
CSOCK_API int csock_dostring(lua_State *L, const char *chunk, const char *name);

/* Runs the loop until no task or timer is left (or csock.stop()).
 * Returns LUA_OK, or an error status with the message on top. */
CSOCK_API int csock_run(lua_State *L);

/* One turn of the loop, waiting at most timeout_ms (0: not at all; -1:
 * as long as needed). Returns 1 if tasks or timers remain, 0 if none, or
 * -errno if polling failed (-ENOMEM if memory ran out). Call it when csock_pollfd is readable, or
 * when csock_timeout's time has come. */
CSOCK_API int csock_step(lua_State *L, int timeout_ms);

/* A descriptor that becomes readable when csock has events to handle
 * (the epoll fd), for a host's own select/poll/epoll/libuv loop; -1 on
 * the poll(2) backend. */
CSOCK_API int csock_pollfd(lua_State *L);

/* Milliseconds until csock needs a step even without fd activity (its
 * next timer, or 0 when tasks are ready to run); -1 when only fds can
 * wake it. */
CSOCK_API int csock_nexttimeout(lua_State *L);

/* Called with the message and traceback of an error in a task, instead
 * of printing it to stderr (a Lua csock.onerror handler still comes first).
 * NULL restores printing. */
typedef void (*csock_ErrorHook)(lua_State *L, const char *message, void *ud);
CSOCK_API void csock_onerror(lua_State *L, csock_ErrorHook hook, void *ud);

#endif
