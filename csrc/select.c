/*
 * csock.select(readers, writers [, timeout]): readiness of many sockets at
 * once, on poll(2), so any descriptor number works (no FD_SETSIZE limit).
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "core.h"

/* The fd of a set member: a csock socket (open) or an integer fd. */
static int memberfd(lua_State *L, int set, lua_Integer i, int *buffered) {
  int fd;
  *buffered = 0;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    lua_Integer v = luaL_checkinteger(L, -1);
    if (v < 0 || v > 0x7fffffff) luaL_error(L, "bad fd %d in argument #%d", (int)i, set);
    return (int)v;
  }
  csock_Socket *s = (csock_Socket *)luaL_testudata(L, -1, CSOCK_SOCKET_MT);
  if (s == NULL) luaL_error(L, "bad entry #%d in argument #%d (csock.socket or fd expected)", (int)i, set);
  if (s->fd < 0) luaL_error(L, "attempt to use a closed socket");
  fd = s->fd;
  *buffered = csock_buf_len(&s->in) > 0;
  return fd;
}

static lua_Integer setlen(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  return luaL_len(L, idx);
}

static int l_select(lua_State *L) {
  lua_Integer nr = setlen(L, 1), nw = setlen(L, 2);
  int64_t deadline = CSOCK_NO_DEADLINE;
  if (!lua_isnoneornil(L, 3)) {
    lua_Number t = luaL_checknumber(L, 3);
    luaL_argcheck(L, t >= 0, 3, "timeout must be a non-negative number or nil");
    if (t < 1e9) deadline = csock_sys_now() + (int64_t)(t * 1e9);
  }
  luaL_argcheck(L, nr + nw < 0x7fffffff, 1, "too many sockets");
  lua_settop(L, 2);
  size_t total = (size_t)(nr + nw);
  /* pollfds, then one flag per member: "read() left bytes buffered" */
  struct pollfd *fds = (struct pollfd *)lua_newuserdatauv(L, (sizeof *fds + 1) * total + 1, 0);
  char *buffered_at = (char *)(fds + total);
  int ready_now = 0;
  for (lua_Integer i = 0; i < (lua_Integer)total; i++) {
    int set = i < nr ? 1 : 2, buffered;
    lua_Integer pos = i < nr ? i + 1 : i - nr + 1;
    lua_geti(L, set, pos);
    fds[i].fd = memberfd(L, set, pos, &buffered);
    fds[i].events = set == 1 ? POLLIN : POLLOUT;
    fds[i].revents = 0;
    lua_pop(L, 1);
    buffered_at[i] = (char)(set == 1 && buffered);
    ready_now |= buffered_at[i]; /* no need to wait */
  }
  int n;
  for (;;) {
    int ms = -1;
    if (ready_now) ms = 0;
    else if (deadline >= 0) {
      int64_t left = deadline - csock_sys_now();
      ms = left <= 0 ? 0 : left / 1000000 + 1 > 0x7fffffff ? 0x7fffffff : (int)(left / 1000000 + 1);
    }
    n = poll(fds, (nfds_t)total, ms);
    if (n >= 0) break;
    if (errno != EINTR) return csock_oserror(L, errno);
  }
  lua_newtable(L); /* readable: 4 */
  lua_newtable(L); /* writable: 5 */
  lua_Integer got[2] = {0, 0};
  for (lua_Integer i = 0; i < nr + nw; i++) {
    int set = i < nr ? 1 : 2;
    lua_Integer pos = i < nr ? i + 1 : i - nr + 1;
    short mask = (short)((set == 1 ? POLLIN : POLLOUT) | POLLERR | POLLHUP);
    if ((fds[i].revents & mask) || buffered_at[i]) {
      lua_geti(L, set, pos);
      lua_rawseti(L, 3 + set, ++got[set - 1]);
    }
  }
  if (got[0] + got[1] == 0) {
    lua_pushliteral(L, "timeout");
    return 3;
  }
  return 2;
}

/* Expects the module table at -2 and the methods table at -1. */
void csock_open_select(lua_State *L) {
  lua_pushcfunction(L, l_select);
  lua_setfield(L, -3, "select");
}
