/*
 * The socket object: the socket layer's per-state data (csock_Net),
 * creating sockets, getting them off the stack, close/__gc/__close,
 * tostring, and the methods that neither transfer data nor wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "core.h"

/* The names of csock_addr_familyname, in luaL_checkoption's shape. */
static const char *const family_names[] = {"inet", "inet6", "unix", NULL};
static const int family_values[] = {AF_INET, AF_INET6, AF_UNIX};
static const char *const type_names[] = {"stream", "dgram", NULL};
static const int type_values[] = {SOCK_STREAM, SOCK_DGRAM};

int csock_checkfamily(lua_State *L, int idx) {
  return family_values[luaL_checkoption(L, idx, "inet", family_names)];
}


/* csock_Net ------------------------------------------------------------------ */

static const char net_key = 'N'; /* registry key: its address */

csock_Net *csock_getnet(lua_State *L) {
  return (csock_Net *)csock_statedata(L, &net_key);
}

char *csock_net_scratch(csock_Net *net) {
  if (net->scratch == NULL) net->scratch = (char *)malloc(CSOCK_SCRATCH);
  return net->scratch;
}

char *csock_recvspace(csock_Socket *s, size_t want, char **owned) {
  *owned = NULL;
  if (!s->net->scratch_busy && want <= CSOCK_SCRATCH) {
    char *space = csock_net_scratch(s->net);
    if (space) return space;
  }
  return *owned = malloc(want ? want : 1);
}

static void net_close(csock_Hook *h, int phase) {
  (void)phase;
  csock_Net *net = (csock_Net *)((char *)h - offsetof(csock_Net, hook));
  csock_pool_free(&net->pool);
  free(net->scratch);
  net->scratch = NULL;
}

/* Registered before the queue and the orphans, so torn down after them. */
static csock_Net *newnet(lua_State *L) {
  csock_Net *net = (csock_Net *)lua_newuserdatauv(L, sizeof *net, 0);
  memset(net, 0, sizeof *net);
  net->engine = csock_getengine(L);
  net->sched = csock_getsched(L);
  net->socket_mt = net->conn_mt = LUA_NOREF;
  csock_engine_hook(net->engine, &net->hook, CSOCK_HOOK_CLOSE, net_close);
  csock_output_init(&net->output, net->engine);
  csock_orphans_init(&net->orphans, net->engine);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &net_key);
  return net;
}

/* Getting a socket off the stack -------------------------------------------------
 * The metatable holds this address at [1]: checking a socket (on every
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

csock_Socket *csock_checkanysocket(lua_State *L, int idx) {
  csock_Socket *s = csock_testsocket(L, idx);
  if (s == NULL) luaL_typeerror(L, idx, CSOCK_SOCKET_MT);
  return s;
}

csock_Socket *csock_checksocket(lua_State *L, int idx) {
  csock_Socket *s = csock_checkanysocket(L, idx);
  if (!csock_isopen(s)) luaL_error(L, "attempt to use a closed socket");
  return s;
}

/* Pushes a socket that is closed until fd is stored in it, so that an error
 * between here and there never leaves a half-made object holding an fd. */
csock_Socket *csock_newsocket(lua_State *L, csock_Net *net, int family, int type, size_t extra) {
  csock_Socket *s = (csock_Socket *)lua_newuserdatauv(L, sizeof *s + extra, 0);
  memset(s, 0, sizeof *s + extra);
  s->io.fd = -1;
  s->io.ready = csock_socket_ready;
  s->tp = &csock_plain;
  s->net = net;
  s->family = (uint8_t)family;
  s->type = (uint8_t)type;
  s->timeout = CSOCK_FOREVER;
  s->readlimit = CSOCK_DEFAULT_READLIMIT;
  /* Only a connection carries extra bytes (its task). */
  lua_rawgeti(L, LUA_REGISTRYINDEX, extra ? net->conn_mt : net->socket_mt);
  lua_setmetatable(L, -2);
  return s;
}

static int l_socket(lua_State *L) {
  int family = csock_checkfamily(L, 1);
  int type = type_values[luaL_checkoption(L, 2, "stream", type_names)];
  csock_Socket *s = csock_newsocket(L, csock_getnet(L), family, type, 0);
  int fd = csock_sys_socket(family, type);
  if (fd < 0) return csock_oserror(L, fd);
  s->io.fd = fd;
  return 1;
}

/* close, __close and __gc: idempotent, never blocks. Waiters are woken
 * with "closed"; output the kernel cannot take yet goes to the orphans,
 * which close the fd once it is sent. */
void csock_close(csock_Socket *s) {
  if (!csock_isopen(s)) return;
  csock_Net *net = s->net;
  csock_output_unmark(s);
  int adopted = 0;
  if (csock_buf_len(&s->out) > 0) { /* as far as it goes, never waiting */
    int r = csock_output_flushnow(s);
    if (r < 0 && csock_sys_again(r)) adopted = csock_orphans_adopt(&net->orphans, s);
  }
  csock_buf_release(&s->out, csock_pool(s));
  if (s->borrowed) { /* a read that raised (out of memory) left the scratch lent */
    memset(&s->in, 0, sizeof s->in);
    s->borrowed = 0;
    net->scratch_busy = 0;
  }
  csock_buf_release(&s->in, csock_pool(s));
  if (s->flushing) csock_engine_ref(net->engine, -1);
  s->flushing = 0;
  csock_task_wakeall(&s->waiters[CSOCK_DIR_READ], CSOCK_WOKE_CLOSED);
  csock_task_wakeall(&s->waiters[CSOCK_DIR_WRITE], CSOCK_WOKE_CLOSED);
  if (adopted) return; /* the orphan has the fd and the transport now */
  csock_engine_forget(net->engine, &s->io);
  s->tp->close(s);
  csock_closefd(s->io.fd, s->lingers);
  s->io.fd = -1;
}

static int l_close(lua_State *L) {
  csock_close(csock_checkanysocket(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_gc(lua_State *L) {
  csock_close(csock_checkanysocket(L, 1));
  return 0;
}

static int l_tostring(lua_State *L) {
  csock_Socket *s = csock_checkanysocket(L, 1);
  const char *kind = s->type == SOCK_DGRAM ? "dgram" : "stream";
  if (!csock_isopen(s)) {
    lua_pushfstring(L, "%s: %s %s (closed)", CSOCK_SOCKET_MT, csock_addr_familyname(s->family), kind);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "%s: %s %s fd=%d", CSOCK_SOCKET_MT, csock_addr_familyname(s->family), kind, s->io.fd);
  luaL_addvalue(&b);
  for (int peer = 0; peer < 2; peer++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = peer ? getpeername(s->io.fd, (struct sockaddr *)&ss, &len)
                 : getsockname(s->io.fd, (struct sockaddr *)&ss, &len);
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
  lua_pushinteger(L, csock_checksocket(L, 1)->io.fd);
  return 1;
}

static int l_settimeout(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  s->timeout = csock_opttimeout(L, 2);
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
  csock_Socket *s = csock_checkanysocket(L, 1);
  if (!csock_isopen(s)) {
    lua_pushliteral(L, "CLOSED");
    return 1;
  }
  struct tcp_info info;
  socklen_t len = sizeof info;
  if (s->family == AF_UNIX || s->type != SOCK_STREAM)
    return csock_oserror(L, EOPNOTSUPP); /* TCP states exist only for TCP */
  if (getsockopt(s->io.fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return csock_oserror(L, errno);
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
     * the output queue shuts down once it has sent the rest. */
    int r = csock_output_flushnow(s);
    if (r < 0 && csock_sys_again(r)) {
      s->shut_after_flush = how + 1;
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  return csock_result(L, s->tp->shutdown(s, how));
}

static int bind_resolved_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  csock_Addr a;
  int n = csock_getaddr_resumed(L, ctx, &a);
  if (n) return n;
  csock_Socket *s = csock_keptsocket(L, 1);
  if (!csock_isopen(s)) return csock_closed(L); /* by another task, during the lookup */
  return csock_result(L, csock_sys_bind(s->io.fd, (struct sockaddr *)&a.ss, a.len));
}

static int l_bind(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  csock_begin(L, s, CSOCK_DIR_WRITE); /* the deadline of a name lookup */
  csock_Addr a;
  int n = csock_getaddr(L, s, 2, &a, bind_resolved_k);
  if (n) return n;
  return csock_result(L, csock_sys_bind(s->io.fd, (struct sockaddr *)&a.ss, a.len));
}

static int l_listen(lua_State *L) {
  csock_Socket *s = csock_checksocket(L, 1);
  lua_Integer backlog = luaL_optinteger(L, 2, SOMAXCONN);
  luaL_argcheck(L, backlog >= 0 && backlog <= 65535, 2, "backlog out of range");
  return csock_result(L, csock_sys_listen(s->io.fd, (int)backlog));
}

static int pushname(lua_State *L, int peer) {
  csock_Socket *s = csock_checksocket(L, 1);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int r = peer ? getpeername(s->io.fd, (struct sockaddr *)&ss, &len)
               : getsockname(s->io.fd, (struct sockaddr *)&ss, &len);
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

/* core._sending(): how many closed sockets the loop is still sending
 * output for (the orphans). The host's graceful stop waits for them as it
 * waits for handlers: a handler's last reply may be among them. */
static int l_sending(lua_State *L) {
  lua_pushinteger(L, csock_getnet(L)->orphans.count);
  return 1;
}

/* Expects the module table at -2 and the methods table at -1. A second
 * load of the module points both metatables at its methods table. */
void csock_open_socket(lua_State *L) {
  csock_Net *net = csock_getnet(L);
  if (net == NULL) net = newnet(L);
  luaL_setfuncs(L, methods, 0);
  luaL_newmetatable(L, CSOCK_SOCKET_MT);
  lua_pushlightuserdata(L, (void *)&socket_mt_key);
  lua_rawseti(L, -2, 1);
  luaL_setfuncs(L, metamethods, 0);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "__index");
  if (net->socket_mt == LUA_NOREF) {
    lua_pushvalue(L, -1);
    net->socket_mt = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  /* A connection's: the same but for __gc (see csock_newsocket). */
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
  if (net->conn_mt == LUA_NOREF)
    net->conn_mt = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_rawseti(L, LUA_REGISTRYINDEX, net->conn_mt);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_socket);
  lua_setfield(L, -3, "socket");
  lua_pushcfunction(L, l_sending);
  lua_setfield(L, -3, "_sending");
}
