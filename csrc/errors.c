/*
 * Failure results, in the io library's shape: nil, message, errno.
 * Also csock.errno, which maps errno names to numbers and back.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "core.h"

int csock_fail(lua_State *L, const char *msg) {
  luaL_pushfail(L);
  lua_pushstring(L, msg);
  return 2;
}

int csock_oserror(lua_State *L, int err) {
  if (err < 0) err = -err;
  if (err == EPIPE) { /* the peer is gone: say so the way EOF does */
    luaL_pushfail(L);
    lua_pushliteral(L, "closed");
  } else {
    char buf[128];
    const char *msg = strerror_r(err, buf, sizeof buf);
    luaL_pushfail(L);
    /* Lowercase the first letter, as LuaSocket's messages read. */
    lua_pushfstring(L, "%c%s", tolower((unsigned char)msg[0]), msg[0] ? msg + 1 : "");
  }
  lua_pushinteger(L, err);
  return 3;
}

int csock_timeout(lua_State *L) {
  luaL_pushfail(L);
  lua_pushliteral(L, "timeout");
  lua_pushinteger(L, ETIMEDOUT);
  return 3;
}

int csock_closed(lua_State *L) {
  return csock_fail(L, "closed");
}

int csock_result(lua_State *L, int r) {
  if (r < 0) return csock_oserror(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* Names in place, not pointers (see options.c's constants). */
#define E(name) {#name, name}
static const struct { char name[20]; int value; } errno_names[] = {
  E(EPERM), E(ENOENT), E(EINTR), E(EIO), E(EBADF), E(EAGAIN), E(ENOMEM),
  E(EACCES), E(EFAULT), E(EBUSY), E(EEXIST), E(ENOTDIR), E(EISDIR),
  E(EINVAL), E(ENFILE), E(EMFILE), E(ENOSPC), E(EPIPE), E(ERANGE),
  E(ENAMETOOLONG), E(ENOSYS), E(ENOTEMPTY), E(ELOOP), E(ENOTSOCK),
  E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE), E(ENOPROTOOPT),
  E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT), E(EOPNOTSUPP), E(EPFNOSUPPORT),
  E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN),
  E(ENETUNREACH), E(ENETRESET), E(ECONNABORTED), E(ECONNRESET),
  E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ESHUTDOWN), E(ETIMEDOUT),
  E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY),
  E(EINPROGRESS), E(EPROTO), E(ECANCELED),
};
#undef E

static int errno_count(void) {
  return (int)(sizeof errno_names / sizeof errno_names[0]);
}

/* The first entry with number v, or -1. */
static int errno_first(lua_Integer v) {
  for (int i = 0; i < errno_count(); i++)
    if (errno_names[i].value == v) return i;
  return -1;
}

/* The entry for key (a name, or a number: the first name with it), or -1. */
static int errno_find(lua_State *L, int key) {
  int n = errno_count();
  if (lua_type(L, key) == LUA_TSTRING) {
    const char *name = lua_tostring(L, key);
    for (int i = 0; i < n; i++)
      if (strcmp(errno_names[i].name, name) == 0) return i;
  } else if (lua_type(L, key) == LUA_TNUMBER) { /* 111.0 as well, as a table would */
    int isint;
    lua_Integer v = lua_tointegerx(L, key, &isint);
    if (isint) return errno_first(v);
  }
  return -1;
}

/* Pushes entry i's number, or its name. */
static void errno_push(lua_State *L, int i, int number) {
  if (number) lua_pushinteger(L, errno_names[i].value);
  else lua_pushstring(L, errno_names[i].name);
}

/* __index: looks the key up in errno_names and keeps the answer in the
 * table, so each name or number costs a search once. */
static int errno_index(lua_State *L) {
  int i = errno_find(L, 2);
  if (i < 0) return 0;
  errno_push(L, i, lua_type(L, 2) == LUA_TSTRING); /* a name's number, a number's name */
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

/* __pairs' iterator: state i (upvalue) runs over the names, then over the
 * numbers (each number once, with its first name). */
static int errno_next(lua_State *L) {
  int n = errno_count();
  int i = (int)lua_tointeger(L, lua_upvalueindex(1));
  for (; i < 2 * n; i++) {
    int e = i % n;
    if (i >= n && errno_first(errno_names[e].value) != e) continue; /* a number an earlier name had */
    lua_pushinteger(L, i + 1);
    lua_replace(L, lua_upvalueindex(1));
    errno_push(L, e, i >= n); /* the key */
    errno_push(L, e, i < n);  /* its value */
    return 2;
  }
  return 0;
}

static int errno_pairs(lua_State *L) {
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, errno_next, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* csock.errno starts empty and answers from errno_names on first use: most
 * scripts never look at it, and require "csock" should not pay for
 * building it (bench/RESULTS.md, start-up). */
void csock_open_errors(lua_State *L) {
  static const luaL_Reg meta[] = {{"__index", errno_index}, {"__pairs", errno_pairs}, {NULL, NULL}};
  lua_newtable(L);
  luaL_newlibtable(L, meta);
  luaL_setfuncs(L, meta, 0);
  lua_setmetatable(L, -2);
  lua_setfield(L, -3, "errno");
}
