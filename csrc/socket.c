/*
 * The socket object: creation, the closed-socket checker, close/__gc/__close,
 * tostring, and the methods that neither transfer data nor wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "loop.h"

static const char *const family_names[] = {"inet", "inet6", "unix", NULL};
static const int family_values[] = {AF_INET, AF_INET6, AF_UNIX};
static const char *const type_names[] = {"stream", "dgram", NULL};
static const int type_values[] = {SOCK_STREAM, SOCK_DGRAM};

int csock_checkfamily(lua_State *L, int idx) {
  return family_values[luaL_checkoption(L, idx, "inet", family_names)];
}

const char *csock_familyname(int family) {
  for (int i = 0; family_names[i]; i++)
    if (family_values[i] == family) return family_names[i];
  return "?";
}

/* The metatable holds this address at [1]: checking a socket (on every
 * method call) then costs two array reads instead of a registry lookup. A
 * script cannot make a light userdata of it, so it cannot forge the tag. */
static const char socket_mt_key = 'M';

csock_Socket *csock_testsocket(lua_State *L, int idx) {
  csock_Socket *s = (csock_Socket *)lua_touserdata(L, idx);
  if (s == NULL || !lua_getmetatable(L, idx)) return NULL;
  int same = lua_rawgeti(L, -1, 1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == &socket_mt_key;
  lua_pop(L, 2);
  return same ? s : NULL;
}

static csock_Socket *tosocket(lua_State *L, int idx) {
  csock_Socket *s = csock_testsocket(L, idx);
  if (s == NULL) luaL_typeerror(L, idx, CSOCK_SOCKET_MT);
  return s;
}

csock_Socket *csock_checksocket(lua_State *L, int idx) {
  csock_Socket *s = tosocket(L, idx);
  if (s->fd < 0) luaL_error(L, "attempt to use a closed socket");
  return s;
}

/* Pushes a socket that is closed until fd is stored in it, so that an error
 * between here and there never leaves a half-made object holding an fd. */
static csock_Socket *newclosed(lua_State *L, csock_Loop *loop, int family, int type, size_t extra) {
  csock_Socket *s = (csock_Socket *)lua_newuserdatauv(L, sizeof *s + extra, 0);
  memset(s, 0, sizeof *s + extra);
  s->fd = -1;
  s->family = family;
  s->type = type;
  s->timeout = CSOCK_NO_DEADLINE;
  s->readlimit = CSOCK_DEFAULT_READLIMIT;
  s->loop = loop ? loop : csock_getloop(L);
  s->watch.fd = -1;
  /* Only a connection carries extra bytes (its task). */
  lua_rawgeti(L, LUA_REGISTRYINDEX, extra ? s->loop->conn_mt : s->loop->socket_mt);
  lua_setmetatable(L, -2);
  return s;
}

csock_Socket *csock_newconnsocket(lua_State *L, csock_Loop *loop, int family, int type,
                                  size_t extra) {
  return newclosed(L, loop, family, type, extra);
}

csock_Socket *csock_newsocket(lua_State *L, int fd, int family, int type) {
  csock_Socket *s = newclosed(L, NULL, family, type, 0);
  s->fd = fd;
  return s;
}

static int l_socket(lua_State *L) {
  int family = csock_checkfamily(L, 1);
  int type = type_values[luaL_checkoption(L, 2, "stream", type_names)];
  csock_Socket *s = newclosed(L, NULL, family, type, 0);
  int fd = csock_sys_socket(family, type);
  if (fd < 0) return csock_oserror(L, fd);
  s->fd = fd;
  return 1;
}

/* close, __close and __gc: idempotent, never blocks. */
void csock_close(csock_Socket *s) {
  if (s->fd >= 0) {
    int fd = s->fd;
    /* wakes waiters with "closed"; output the kernel can't take yet stays
     * with the loop, which closes the fd once it is sent */
    int adopted = csock_detach(s);
    s->fd = -1;
    if (adopted) return;
    if (s->lingers) csock_sys_close_nolinger(fd); /* close() never blocks */
    else csock_sys_close(fd);
  }
}

static int l_close(lua_State *L) {
  csock_close(tosocket(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

/* A csock.listen connection collected with its task unfinished happens
 * only when the Lua state closes: its server's count is let go too. */
static int l_gc(lua_State *L) {
  csock_Socket *s = tosocket(L, 1);
  csock_close(s);
  return 0;
}

static int l_tostring(lua_State *L) {
  csock_Socket *s = tosocket(L, 1);
  const char *kind = s->type == SOCK_DGRAM ? "dgram" : "stream";
  if (s->fd < 0) {
    lua_pushfstring(L, "%s: %s %s (closed)", CSOCK_SOCKET_MT, csock_familyname(s->family), kind);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "%s: %s %s fd=%d", CSOCK_SOCKET_MT, csock_familyname(s->family), kind, s->fd);
  luaL_addvalue(&b);
  for (int peer = 0; peer < 2; peer++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &len)
                 : getsockname(s->fd, (struct sockaddr *)&ss, &len);
    char host[CSOCK_ADDRSTRLEN];
    int port;
    if (r < 0 || (port = csock_addr_format((struct sockaddr *)&ss, len, host, sizeof host)) < 0)
      continue;
    luaL_addstring(&b, peer ? " -> " : " ");
    if (s->family == AF_UNIX)
      luaL_addstring(&b, host[0] ? host : "(unnamed)");
    else if (s->family == AF_INET6)
      lua_pushfstring(L, "[%s]:%d", host, port), luaL_addvalue(&b);
    else
      lua_pushfstring(L, "%s:%d", host, port), luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_fileno(lua_State *L) {
  lua_pushinteger(L, csock_checksocket(L, 1)->fd);
  return 1;
}

static int l_settimeout(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  if (lua_isnoneornil(L, 2)) {
    s->timeout = CSOCK_NO_DEADLINE;
  } else {
    lua_Number t = luaL_checknumber(L, 2);
    luaL_argcheck(L, t >= 0, 2, "timeout must be a non-negative number or nil");
    /* Beyond 30 years is "forever", and keeps the nanoseconds in range. */
    s->timeout = t > 1e9 ? CSOCK_NO_DEADLINE : (int64_t)(t * 1e9);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_setreadlimit(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "read limit must not be negative");
  s->readlimit = n > (lua_Integer)CSOCK_BUF_MAX ? (uint32_t)CSOCK_BUF_MAX : (uint32_t)n; /* no buffer holds more */
  lua_pushboolean(L, 1);
  return 1;
}

static int l_state(lua_State *L) {
  static const char *const names[] = {
    "CLOSED", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
    "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "SYN_RECV",
  };
  csock_Socket *s = tosocket(L, 1);
  if (s->fd < 0) {
    lua_pushliteral(L, "CLOSED");
    return 1;
  }
  struct tcp_info info;
  socklen_t len = sizeof info;
  if (s->family == AF_UNIX || s->type != SOCK_STREAM)
    return csock_oserror(L, EOPNOTSUPP); /* TCP states exist only for TCP */
  if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return csock_oserror(L, errno);
  if (info.tcpi_state >= sizeof names / sizeof names[0]) return csock_oserror(L, EPROTO);
  lua_pushstring(L, names[info.tcpi_state]);
  return 1;
}

static int l_shutdown(lua_State *L) {
  static const char *const hows[] = {"r", "w", "rw", NULL};
  static const int values[] = {SHUT_RD, SHUT_WR, SHUT_RDWR};
  csock_Socket *s = csock_checksocket(L, 1);
  int how = values[luaL_checkoption(L, 2, "rw", hows)];
  if (how != SHUT_RD && csock_buf_len(&s->out) > 0) {
    /* Coalesced output goes first; if the kernel can't take it all now,
     * the loop shuts down once it has sent the rest. */
    int r = csock_flushnow(s);
    if (r < 0 && csock_sys_again(r)) {
      s->shut_after_flush = how + 1;
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  return csock_result(L, shutdown(s->fd, how) < 0 ? -errno : 0);
}

static int bind_resolved_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  csock_Addr a;
  int n = csock_getaddr_resumed(L, ctx, &a);
  if (n) return n;
  return csock_result(L, csock_sys_bind(csock_checksocket(L, 1)->fd, (struct sockaddr *)&a.ss, a.len));
}

static int l_bind(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  csock_begin(s, CSOCK_DIR_WRITE); /* the deadline of a name lookup */
  csock_Addr a;
  int n = csock_getaddr(L, s, 2, &a, bind_resolved_k);
  if (n) return n;
  return csock_result(L, csock_sys_bind(s->fd, (struct sockaddr *)&a.ss, a.len));
}

static int l_listen(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  lua_Integer backlog = luaL_optinteger(L, 2, SOMAXCONN);
  luaL_argcheck(L, backlog >= 0 && backlog <= 65535, 2, "backlog out of range");
  return csock_result(L, csock_sys_listen(s->fd, (int)backlog));
}

static int pushname(lua_State *L, int peer) {
  csock_Socket *s = csock_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int r = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &len)
               : getsockname(s->fd, (struct sockaddr *)&ss, &len);
  if (r < 0) return csock_oserror(L, errno);
  return csock_pushaddr(L, (struct sockaddr *)&ss, len);
}

static int l_getsockname(lua_State *L) { return pushname(L, 0); }
static int l_getpeername(lua_State *L) { return pushname(L, 1); }

static const luaL_Reg methods[] = {
  {"close", l_close},
  {"fileno", l_fileno},
  {"settimeout", l_settimeout},
  {"setreadlimit", l_setreadlimit},
  {"state", l_state},
  {"shutdown", l_shutdown},
  {"bind", l_bind},
  {"listen", l_listen},
  {"getsockname", l_getsockname},
  {"getpeername", l_getpeername},
  {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
  {"__gc", l_gc},
  {"__close", l_close},
  {"__tostring", l_tostring},
  {NULL, NULL},
};

/* Expects the module table at -2 and the methods table at -1. A second
 * load of the module points both metatables at its methods table. */
void csock_open_socket(lua_State *L) {
  csock_Loop *loop = csock_getloop(L);
  luaL_setfuncs(L, methods, 0);
  luaL_newmetatable(L, CSOCK_SOCKET_MT);
  lua_pushlightuserdata(L, (void *)&socket_mt_key);
  lua_rawseti(L, -2, 1);
  luaL_setfuncs(L, metamethods, 0);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "__index");
  if (loop->socket_mt == LUA_NOREF) {
    lua_pushvalue(L, -1);
    loop->socket_mt = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  /* A connection's: the same but for __gc (see csock_newconnsocket). */
  lua_createtable(L, 1, 4);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "__gc") == 0) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  if (loop->conn_mt == LUA_NOREF)
    loop->conn_mt = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_rawseti(L, LUA_REGISTRYINDEX, loop->conn_mt);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_socket);
  lua_setfield(L, -3, "socket");
}
