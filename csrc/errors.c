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

#define E(name) {#name, name}
static const struct { const char *name; int value; } errno_names[] = {
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

void csock_open_errors(lua_State *L) {
  int n = (int)(sizeof errno_names / sizeof errno_names[0]);
  lua_createtable(L, n, n);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, errno_names[i].value);
    lua_setfield(L, -2, errno_names[i].name);
    /* Numbers to names; where two names share a number the first wins. */
    if (lua_rawgeti(L, -1, errno_names[i].value) == LUA_TNIL) {
      lua_pushstring(L, errno_names[i].name);
      lua_rawseti(L, -3, errno_names[i].value);
    }
    lua_pop(L, 1);
  }
  lua_setfield(L, -3, "errno");
}
