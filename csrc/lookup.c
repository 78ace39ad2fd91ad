/*
 * Addresses as Lua sees them: host, port (or a unix path) arguments in,
 * host, port (or path) results out, csock.getaddrinfo, and the one path
 * by which a name becomes addresses (lookup below): a literal needs no
 * lookup; in a task the lookup runs on a helper thread while the task
 * waits; outside a task with a deadline it runs there too, waited for
 * here, so the deadline holds; with neither, getaddrinfo runs in place.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "core.h"
#include "resolver.h"

#define MAX_ADDRS 64 /* kept by a lookup in place (csock.getaddrinfo) */

static const char resolver_key = 'R'; /* registry key: its address */

/* This state's resolver, made at the first lookup. */
static csock_Resolver *getresolver(lua_State *L) {
  csock_Resolver *r = (csock_Resolver *)csock_statedata(L, &resolver_key);
  if (r != NULL) return r;
  r = (csock_Resolver *)lua_newuserdatauv(L, sizeof *r, 0);
  csock_resolver_init(r, csock_getengine(L));
  lua_rawsetp(L, LUA_REGISTRYINDEX, &resolver_key);
  return r;
}

/* A string argument that C may treat as zero-terminated. */
static const char *checkname(lua_State *L, int idx, size_t *len, const char *what) {
  const char *s = luaL_checklstring(L, idx, len);
  if (strlen(s) != *len) luaL_argerror(L, idx, lua_pushfstring(L, "%s contains a zero byte", what));
  return s;
}

static int resolve_error(lua_State *L, int rc, int err) {
  if (rc == EAI_SYSTEM) return csock_oserror(L, err);
  const char *msg = gai_strerror(rc);
  luaL_pushfail(L);
  lua_pushfstring(L, "%c%s", tolower((unsigned char)msg[0]), msg[0] ? msg + 1 : "");
  return 2;
}

/* A lookup's thread handed it back: wake the task waiting for it. (A task
 * that timed out is no longer there, and releases the lookup itself.) */
static void lookup_done(csock_Lookup *lk) {
  csock_task_wakeall(&lk->waiter, CSOCK_WOKE_READY);
}

/* A finished lookup's outcome: 0 (its addresses usable; release it after),
 * or the failure results pushed (released). */
static int outcome(lua_State *L, csock_Lookup *lk) {
  if (lk->rc == 0) return 0;
  int n = resolve_error(L, lk->rc, lk->err);
  csock_lookup_release(lk);
  return n;
}

/* In a continuation: the outcome of the lookup the task waited for. */
static int lookup_resumed(lua_State *L, csock_Lookup *lk) {
  int how = csock_task_woke(L);
  if (how == CSOCK_WOKE_READY) return outcome(L, lk);
  csock_lookup_release(lk);
  return how == CSOCK_WOKE_TIMEOUT ? csock_timeout(L) : csock_closed(L);
}

/* Looks host up (not a literal: the caller tried that). In a task that
 * can continue in k, suspends (k gets the lookup as its context). Else
 * returns 0 with *lkp the finished lookup (release it after use), or with
 * *lkp NULL and up to max addresses resolved in place into out (*count);
 * or the number of failure results pushed. */
static int lookup(lua_State *L, const char *host, int port, int family, int socktype,
                  int64_t deadline, lua_KFunction k, csock_Lookup **lkp, csock_Addr *out, int max,
                  int *count) {
  *lkp = NULL;
  csock_Task *t = k ? csock_task_current(csock_getsched(L), L) : NULL;
  if (t != NULL || deadline >= 0) {
    csock_Lookup *lk = csock_lookup_start(getresolver(L), host, port, family, socktype,
                                          t ? lookup_done : NULL);
    if (lk != NULL && t != NULL) {
      csock_task_waitin(t, &lk->waiter);
      return csock_task_suspend(L, t, deadline, (lua_KContext)lk, k);
    }
    if (lk != NULL) {
      int w = csock_lookup_wait(lk, deadline);
      if (w <= 0) return w == 0 ? csock_timeout(L) : csock_oserror(L, w);
      *lkp = lk;
      return outcome(L, lk);
    }
  }
  /* No helper thread to be had (or no deadline): in place, unbounded. */
  int rc = csock_addr_resolve(host, port, family, socktype, out, max, count);
  return rc ? resolve_error(L, rc, errno) : 0;
}

int csock_getaddr_resumed(lua_State *L, lua_KContext ctx, csock_Addr *a) {
  csock_Lookup *lk = (csock_Lookup *)ctx;
  int n = lookup_resumed(L, lk);
  if (n) return n;
  *a = lk->addrs[0];
  csock_lookup_release(lk);
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
  int64_t deadline = csock_deadline(L, s);
  csock_Lookup *lk;
  int count;
  int n = lookup(L, host, port, s->family, s->type, deadline, k, &lk, a, 1, &count);
  if (n == 0 && lk != NULL) {
    *a = lk->addrs[0];
    csock_lookup_release(lk);
  }
  return n;
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
    lua_pushstring(L, csock_addr_familyname(sa->sa_family));
    lua_setfield(L, -2, "family");
    lua_pushstring(L, text);
    lua_setfield(L, -2, "host");
    lua_pushinteger(L, p);
    lua_setfield(L, -2, "port");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* The finished lookup's addresses as getaddrinfo's result. */
static int push_lookup(lua_State *L, csock_Lookup *lk) {
  push_addrinfo(L, lk->addrs, lk->count);
  csock_lookup_release(lk);
  return 1;
}

static int getaddrinfo_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  csock_Lookup *lk = (csock_Lookup *)ctx;
  int n = lookup_resumed(L, lk);
  return n ? n : push_lookup(L, lk);
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
  int64_t deadline = csock_optdeadline(L, 5);
  csock_Addr one;
  if (csock_addr_numeric(host, port, family, &one)) return push_addrinfo(L, &one, 1);
  csock_Addr *addrs = (csock_Addr *)lua_newuserdatauv(L, sizeof(csock_Addr) * MAX_ADDRS, 0);
  csock_Lookup *lk;
  int count = 0;
  int n = lookup(L, host, port, family, type, deadline, getaddrinfo_k, &lk, addrs, MAX_ADDRS, &count);
  if (n) return n;
  return lk ? push_lookup(L, lk) : push_addrinfo(L, addrs, count);
}

void csock_open_lookup(lua_State *L) {
  lua_pushcfunction(L, l_getaddrinfo);
  lua_setfield(L, -3, "getaddrinfo");
}
