/*
 * Addresses as Lua sees them: host, port (or a unix path) arguments in,
 * host, port (or path) results out, and csock.getaddrinfo.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "core.h"

#define MAX_ADDRS 64

int csock_checkport(lua_State *L, int idx) {
  lua_Integer port = luaL_checkinteger(L, idx);
  luaL_argcheck(L, port >= 0 && port <= 65535, idx, "port out of range");
  return (int)port;
}

/* A string argument that C may treat as zero-terminated. */
static const char *checkname(lua_State *L, int idx, size_t *len, const char *what) {
  const char *s = luaL_checklstring(L, idx, len);
  if (strlen(s) != *len) luaL_argerror(L, idx, lua_pushfstring(L, "%s contains a zero byte", what));
  return s;
}

static int resolve_error(lua_State *L, int rc) {
  if (rc == EAI_SYSTEM) return csock_oserror(L, errno);
  const char *msg = gai_strerror(rc);
  luaL_pushfail(L);
  lua_pushfstring(L, "%c%s", tolower((unsigned char)msg[0]), msg[0] ? msg + 1 : "");
  return 2;
}

int csock_getaddr(lua_State *L, csock_Socket *s, int idx, csock_Addr *a) {
  size_t len;
  if (s->family == AF_UNIX) {
    const char *path = checkname(L, idx, &len, "path");
    if (csock_addr_unix(a, path, len) < 0) luaL_argerror(L, idx, "path too long");
    return 0;
  }
  const char *host = checkname(L, idx, &len, "host");
  int port = csock_checkport(L, idx + 1);
  if (strcmp(host, "*") == 0) {
    csock_addr_any(a, s->family, port);
    return 0;
  }
  int count;
  int rc = csock_addr_resolve(host, port, s->family, s->type, a, 1, &count);
  return rc ? resolve_error(L, rc) : 0;
}

int csock_pushaddr(lua_State *L, const struct sockaddr *sa, socklen_t len) {
  char host[CSOCK_ADDRSTRLEN];
  int port = csock_addr_format(sa, len, host, sizeof host);
  lua_pushstring(L, host);
  if (sa->sa_family == AF_UNIX) return 1;
  lua_pushinteger(L, port < 0 ? 0 : port);
  return 2;
}

static int l_getaddrinfo(lua_State *L) {
  static const char *const families[] = {"any", "inet", "inet6", NULL};
  static const int family_values[] = {AF_UNSPEC, AF_INET, AF_INET6};
  static const char *const types[] = {"stream", "dgram", NULL};
  static const int type_values[] = {SOCK_STREAM, SOCK_DGRAM};
  size_t len;
  const char *host = checkname(L, 1, &len, "host");
  int port = lua_isnoneornil(L, 2) ? 0 : csock_checkport(L, 2);
  int family = lua_isnoneornil(L, 3) ? AF_UNSPEC : family_values[luaL_checkoption(L, 3, NULL, families)];
  int type = type_values[luaL_checkoption(L, 4, "stream", types)];
  csock_Addr *addrs = (csock_Addr *)lua_newuserdatauv(L, sizeof(csock_Addr) * MAX_ADDRS, 0);
  int count;
  int rc = csock_addr_resolve(host, port, family, type, addrs, MAX_ADDRS, &count);
  if (rc) return resolve_error(L, rc);
  lua_createtable(L, count, 0);
  for (int i = 0; i < count; i++) {
    const struct sockaddr *sa = (const struct sockaddr *)&addrs[i].ss;
    char text[CSOCK_ADDRSTRLEN];
    int p = csock_addr_format(sa, addrs[i].len, text, sizeof text);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, csock_familyname(sa->sa_family));
    lua_setfield(L, -2, "family");
    lua_pushstring(L, text);
    lua_setfield(L, -2, "host");
    lua_pushinteger(L, p);
    lua_setfield(L, -2, "port");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Expects the module table at -2 and the methods table at -1. */
void csock_open_address(lua_State *L) {
  lua_pushcfunction(L, l_getaddrinfo);
  lua_setfield(L, -3, "getaddrinfo");
}
