/*
 * Socket options as data: one row per named option, read by setoption and
 * getoption; raw setsockopt/getsockopt and the numeric constants for the
 * rest.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "core.h"

enum { OPT_BOOL, OPT_INT, OPT_LINGER };

typedef struct Option {
  const char *name;
  int level;
  int optname;
  int kind;
} Option;

static const Option options[] = {
  {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, OPT_BOOL},
#ifdef SO_REUSEPORT
  {"reuseport", SOL_SOCKET, SO_REUSEPORT, OPT_BOOL},
#endif
  {"keepalive", SOL_SOCKET, SO_KEEPALIVE, OPT_BOOL},
#ifdef TCP_KEEPIDLE
  {"keepidle", IPPROTO_TCP, TCP_KEEPIDLE, OPT_INT},
  {"keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, OPT_INT},
  {"keepcnt", IPPROTO_TCP, TCP_KEEPCNT, OPT_INT},
#endif
  {"nodelay", IPPROTO_TCP, TCP_NODELAY, OPT_BOOL},
  {"linger", SOL_SOCKET, SO_LINGER, OPT_LINGER},
  {"rcvbuf", SOL_SOCKET, SO_RCVBUF, OPT_INT},
  {"sndbuf", SOL_SOCKET, SO_SNDBUF, OPT_INT},
  {"broadcast", SOL_SOCKET, SO_BROADCAST, OPT_BOOL},
  {"ipv6only", IPPROTO_IPV6, IPV6_V6ONLY, OPT_BOOL},
};

static const Option *checkoption(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    if (strcmp(options[i].name, name) == 0) return &options[i];
  luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", name));
  return NULL;
}

/* An integer that fits a C int without wrapping, and is at least min. */
static int checkint(lua_State *L, int idx, lua_Integer min) {
  lua_Integer v = luaL_checkinteger(L, idx);
  luaL_argcheck(L, v >= min && v <= 0x7fffffff, idx, "value out of range");
  return (int)v;
}

static int setopt(lua_State *L, int fd, int level, int name, const void *v, socklen_t len) {
  return csock_result(L, setsockopt(fd, level, name, v, len) < 0 ? -errno : 0);
}

static int l_setoption(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  const Option *o = checkoption(L, 2);
  switch (o->kind) {
    case OPT_BOOL: {
      luaL_checktype(L, 3, LUA_TBOOLEAN);
      int v = lua_toboolean(L, 3);
      return setopt(L, s->io.fd, o->level, o->optname, &v, sizeof v);
    }
    case OPT_INT: {
      int v = checkint(L, 3, 0);
      return setopt(L, s->io.fd, o->level, o->optname, &v, sizeof v);
    }
    default: { /* OPT_LINGER: seconds, or false for off */
      struct linger l = {0, 0};
      if (lua_type(L, 3) == LUA_TBOOLEAN) {
        luaL_argcheck(L, !lua_toboolean(L, 3), 3, "linger takes seconds or false");
      } else {
        l.l_onoff = 1;
        l.l_linger = checkint(L, 3, 0);
      }
      int n = setopt(L, s->io.fd, o->level, o->optname, &l, sizeof l);
      if (lua_toboolean(L, -n)) s->lingers = l.l_onoff && l.l_linger > 0;
      return n;
    }
  }
}

static int l_getoption(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  const Option *o = checkoption(L, 2);
  if (o->kind == OPT_LINGER) {
    struct linger l;
    socklen_t len = sizeof l;
    if (getsockopt(s->io.fd, o->level, o->optname, &l, &len) < 0) return csock_oserror(L, errno);
    if (l.l_onoff) lua_pushinteger(L, l.l_linger);
    else lua_pushboolean(L, 0);
    return 1;
  }
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(s->io.fd, o->level, o->optname, &v, &len) < 0) return csock_oserror(L, errno);
  if (o->kind == OPT_BOOL) lua_pushboolean(L, v != 0);
  else lua_pushinteger(L, v);
  return 1;
}

static int l_setsockopt(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  int level = checkint(L, 2, INT_MIN), name = checkint(L, 3, INT_MIN);
  int v = lua_isboolean(L, 4) ? lua_toboolean(L, 4) : checkint(L, 4, INT_MIN);
  return setopt(L, s->io.fd, level, name, &v, sizeof v);
}

static int l_getsockopt(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  int level = checkint(L, 2, INT_MIN), name = checkint(L, 3, INT_MIN);
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(s->io.fd, level, name, &v, &len) < 0) return csock_oserror(L, errno);
  lua_pushinteger(L, v);
  return 1;
}

/* Names in place, not pointers: a table of pointers is relocated, and so
 * copied into memory of its own, by every process that loads csock. */
#define C(name) {#name, name}
static const struct { char name[24]; int value; } constants[] = {
  C(AF_INET), C(AF_INET6), C(AF_UNIX), C(SOCK_STREAM), C(SOCK_DGRAM),
  C(SOL_SOCKET), C(SO_REUSEADDR), C(SO_KEEPALIVE), C(SO_BROADCAST),
  C(SO_RCVBUF), C(SO_SNDBUF), C(SO_RCVLOWAT), C(SO_SNDLOWAT), C(SO_ERROR),
  C(SO_TYPE), C(SO_DONTROUTE), C(SO_OOBINLINE),
#ifdef SO_REUSEPORT
  C(SO_REUSEPORT),
#endif
#ifdef SO_PRIORITY
  C(SO_PRIORITY),
#endif
  C(IPPROTO_IP), C(IPPROTO_IPV6), C(IPPROTO_TCP), C(IPPROTO_UDP),
  C(IP_TTL), C(IP_TOS), C(IP_MULTICAST_TTL), C(IP_MULTICAST_LOOP),
  C(IPV6_V6ONLY), C(IPV6_UNICAST_HOPS), C(IPV6_MULTICAST_HOPS), C(IPV6_MULTICAST_LOOP),
  C(TCP_NODELAY), C(TCP_MAXSEG),
#ifdef TCP_KEEPIDLE
  C(TCP_KEEPIDLE), C(TCP_KEEPINTVL), C(TCP_KEEPCNT),
#endif
#ifdef TCP_CORK
  C(TCP_CORK),
#endif
#ifdef TCP_QUICKACK
  C(TCP_QUICKACK),
#endif
#ifdef TCP_USER_TIMEOUT
  C(TCP_USER_TIMEOUT),
#endif
#ifdef TCP_FASTOPEN
  C(TCP_FASTOPEN),
#endif
};
#undef C

static const luaL_Reg methods[] = {
  {"setoption", l_setoption},
  {"getoption", l_getoption},
  {"setsockopt", l_setsockopt},
  {"getsockopt", l_getsockopt},
  {NULL, NULL},
};

void csock_open_options(lua_State *L) {
  luaL_setfuncs(L, methods, 0);
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
    lua_pushinteger(L, constants[i].value);
    lua_setfield(L, -3, constants[i].name);
  }
}
