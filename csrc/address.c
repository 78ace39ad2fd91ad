/*
 * Addresses as Lua sees them: host, port (or a unix path) arguments in,
 * host, port (or path) results out, and csock.getaddrinfo.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "resolve.h"

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

/* Inside a task a name is looked up on a helper thread: suspend until it
 * is done (or the deadline passes), then continue through k. */
static int lookup_async(lua_State *L, csock_Loop *loop, const char *host, int port, int family,
                        int socktype, int64_t deadline, lua_KFunction k) {
  csock_Task *t = csock_current(loop, L);
  if (t == NULL || k == NULL) return 0;
  csock_Resolve *r = csock_resolve_start(loop, host, port, family, socktype);
  if (r == NULL) return 0;
  csock_waitin(t, &r->waiter);
  return csock_suspend(L, t, deadline, (lua_KContext)r, k);
}

/* In k: the lookup's outcome. 0 with r's addresses usable (release r
 * after), or the number of failure results pushed (r already released). */
static int lookup_resumed(lua_State *L, csock_Resolve *r) {
  int how = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (how != CSOCK_WOKE_READY) {
    csock_resolve_release(r, 1);
    return how == CSOCK_WOKE_TIMEOUT ? csock_timeout(L) : csock_closed(L);
  }
  if (r->rc != 0) {
    errno = r->err;
    int n = resolve_error(L, r->rc);
    csock_resolve_release(r, 0);
    return n;
  }
  return 0;
}

/* Outside a task a lookup with a deadline still runs on a helper thread, so
 * the deadline holds: this thread waits for it on the loop's eventfd.
 * Returns the finished lookup (release it after use), or NULL: timed out
 * (*timedout set) or no thread to be had (resolve in place). */
static csock_Resolve *lookup_blocking(csock_Loop *loop, const char *host, int port, int family,
                                      int socktype, int64_t deadline, int *timedout) {
  *timedout = 0;
  csock_Resolve *r = csock_resolve_start(loop, host, port, family, socktype);
  while (r != NULL && !r->finished) {
    int w = csock_sys_wait(loop->wakeup.fd, CSOCK_WANT_READ, deadline);
    if (w > 0) {
      csock_resolve_done(loop); /* marks ours finished, wakes tasks waiting for others */
    } else if (w == 0) {
      csock_resolve_release(r, 1);
      *timedout = 1;
      return NULL;
    }
  }
  return r;
}

int csock_getaddr_resumed(lua_State *L, lua_KContext ctx, csock_Addr *a) {
  csock_Resolve *r = (csock_Resolve *)ctx;
  int n = lookup_resumed(L, r);
  if (n) return n;
  *a = r->addrs[0];
  csock_resolve_release(r, 0);
  return 0;
}

int csock_getaddr(lua_State *L, csock_Socket *s, int idx, csock_Addr *a, lua_KFunction k) {
  size_t len;
  if (s->family == AF_UNIX) {
    const char *path = checkname(L, idx, &len, "path");
    /* "" would be Linux's abstract namespace, which csock does not offer */
    luaL_argcheck(L, len > 0, idx, "empty path");
    if (csock_addr_unix(a, path, len) < 0) luaL_argerror(L, idx, "path too long");
    return 0;
  }
  const char *host = checkname(L, idx, &len, "host");
  int port = csock_checkport(L, idx + 1);
  if (strcmp(host, "*") == 0) {
    csock_addr_any(a, s->family, port);
    return 0;
  }
  if (csock_addr_numeric(host, port, s->family, a)) return 0;
  /* the operation's deadline (callers csock_begin first): it covers the lookup too */
  int64_t deadline = csock_deadline(s, CSOCK_DIR_WRITE);
  lookup_async(L, s->loop, host, port, s->family, s->type, deadline, k); /* returns if it can't */
  if (deadline >= 0) {
    int timedout;
    csock_Resolve *r = lookup_blocking(s->loop, host, port, s->family, s->type, deadline, &timedout);
    if (timedout) return csock_timeout(L);
    if (r != NULL) {
      lua_pushinteger(L, CSOCK_WOKE_READY); /* as a task would be resumed */
      return csock_getaddr_resumed(L, (lua_KContext)r, a);
    }
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

static int push_addrinfo(lua_State *L, const csock_Addr *addrs, int count) {
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

static int getaddrinfo_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  csock_Resolve *r = (csock_Resolve *)ctx;
  int n = lookup_resumed(L, r);
  if (n) return n;
  push_addrinfo(L, r->addrs, r->count);
  csock_resolve_release(r, 0);
  return 1;
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
  int64_t deadline = -1;
  if (!lua_isnoneornil(L, 5)) {
    lua_Number t = luaL_checknumber(L, 5);
    luaL_argcheck(L, t >= 0, 5, "timeout must be a non-negative number or nil");
    deadline = csock_sys_now() + (int64_t)((t > 1e9 ? 1e9 : t) * 1e9);
  }
  csock_Addr one;
  if (csock_addr_numeric(host, port, family, &one)) return push_addrinfo(L, &one, 1);
  csock_Loop *loop = csock_getloop(L);
  lookup_async(L, loop, host, port, family, type, deadline, getaddrinfo_k);
  if (deadline >= 0) {
    int timedout;
    csock_Resolve *r = lookup_blocking(loop, host, port, family, type, deadline, &timedout);
    if (timedout) return csock_timeout(L);
    if (r != NULL) {
      lua_pushinteger(L, CSOCK_WOKE_READY); /* as a task would be resumed */
      return getaddrinfo_k(L, LUA_YIELD, (lua_KContext)r);
    }
  }
  csock_Addr *addrs = (csock_Addr *)lua_newuserdatauv(L, sizeof(csock_Addr) * MAX_ADDRS, 0);
  int count;
  int rc = csock_addr_resolve(host, port, family, type, addrs, MAX_ADDRS, &count);
  if (rc) return resolve_error(L, rc);
  return push_addrinfo(L, addrs, count);
}

/* Expects the module table at -2 and the methods table at -1. */
void csock_open_address(lua_State *L) {
  lua_pushcfunction(L, l_getaddrinfo);
  lua_setfield(L, -3, "getaddrinfo");
}
