/*
 * csock.listen's engine: the accept loop, in C, and the task of each
 * connection. A connection's socket and its task are one userdata (the
 * connection's record right after the socket; its own coroutine's stack
 * keeps it while the task runs), so a parked connection costs one object
 * besides its coroutine, and an accept that finds nothing allocates
 * nothing. The connections whose tasks still run are listed per state,
 * so that a closing Lua state closes them (their sockets have no __gc).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define SERVER_MT "csock.server"
#define PAUSE_NS 50000000 /* after an accept failure (EMFILE...): let connections end */

/* Shared by the Lua handle and each connection task, so it outlives
 * whichever of them ends last. */
typedef struct csock_Server {
  int refs;
  int connections;   /* tasks running now */
  int max;           /* at most this many at once; 0 for no limit */
  int closed;
  int want_addr;     /* the handler takes (conn, host, port), not just conn */
  int pending_fd;    /* accepted, its connection not made yet; else -1 */
  int64_t timeout;   /* each connection's, as settimeout; CSOCK_FOREVER for none */
  csock_Task *slot_waiters; /* the accept task, while the server is full */
} csock_Server;

/* What follows a connection's socket in its userdata. */
typedef struct Conn {
  csock_Task task;
  csock_Server *server;       /* NULL once the connection has ended */
  struct Conn *next, **prev;  /* in Serving's list while its task runs */
} Conn;

/* Per state: the connections whose tasks run. */
typedef struct Serving {
  csock_Hook hook;            /* teardown: close them */
  Conn *conns;
} Serving;

static const char serving_key = 'C'; /* registry key: its address */

static Conn *connof(csock_Socket *s) { return (Conn *)(s + 1); }
static csock_Socket *socketof(Conn *c) { return (csock_Socket *)c - 1; }

static void release(csock_Server *srv) {
  if (--srv->refs > 0) return;
  if (srv->pending_fd >= 0) csock_sys_close(srv->pending_fd);
  free(srv);
}

static csock_Server *checkserver(lua_State *L, int idx) {
  csock_Server **h = (csock_Server **)luaL_checkudata(L, idx, SERVER_MT);
  return *h;
}

/* A connection ended (its task, or the Lua state): its socket closes, its
 * server has a free slot. */
static void conn_close(Conn *c) {
  csock_Server *srv = c->server;
  csock_close(socketof(c));
  if (srv == NULL) return;
  c->server = NULL;
  if (c->next) c->next->prev = c->prev;
  *c->prev = c->next;
  srv->connections--;
  csock_task_wakeone(&srv->slot_waiters, CSOCK_WOKE_READY);
  release(srv);
}

static void conn_ended(lua_State *L, csock_Task *t, int ok) {
  (void)L;
  (void)ok; /* an error is reported by the scheduler */
  conn_close((Conn *)t); /* the task is the record's first member */
}

static void close_all(csock_Hook *h, int phase) {
  (void)phase;
  Serving *sv = (Serving *)h; /* the hook is first */
  while (sv->conns) conn_close(sv->conns);
}

static Serving *getserving(lua_State *L) {
  Serving *sv = (Serving *)csock_statedata(L, &serving_key);
  if (sv != NULL) return sv;
  sv = (Serving *)lua_newuserdatauv(L, sizeof *sv, 0);
  memset(sv, 0, sizeof *sv);
  csock_engine_hook(csock_getengine(L), &sv->hook, CSOCK_HOOK_CLOSE, close_all);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &serving_key);
  return sv;
}

/* Pushes an accepted connection's socket (holding its task, not started
 * yet), closed: the caller stores the fd once nothing can fail. */
static csock_Socket *newconn(lua_State *L, csock_Socket *listener, csock_Server *srv) {
  csock_Socket *s = csock_newsocket(L, listener->net, listener->family, listener->type, sizeof(Conn));
  s->lingers = listener->lingers; /* SO_LINGER is inherited */
  s->timeout = srv->timeout;
  /* A request is rarely there the instant its connection is accepted:
   * the first read waits for readiness instead of paying for a recv that
   * says EAGAIN (as nginx does without deferred accept). */
  s->drained = 1;
  csock_task_init(&connof(s)->task, listener->net->sched, conn_ended);
  return s;
}

/* Stack: 1 server handle, 2 listener, 3 handler. ctx says what the task
 * waited for: the listener (1), or a free slot or the pause (2). */
static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  csock_Server *srv = checkserver(L, 1);
  csock_Socket *s = csock_keptsocket(L, 2);
  if (status == LUA_YIELD && ctx == 1) csock_resumed(L, s); /* closed, or a timeout: see below */
  else if (status == LUA_YIELD) csock_task_woke(L);
  lua_settop(L, 3);
  csock_Task *me = csock_task_current(s->net->sched, L);
  if (me == NULL) return luaL_error(L, "the accept loop runs only as a task");
  Serving *sv = getserving(L);
  for (;;) {
    if (srv->closed || !csock_isopen(s)) return 0;
    if (srv->max > 0 && srv->connections >= srv->max) {
      csock_task_waitin(me, &srv->slot_waiters);
      return csock_task_suspend(L, me, CSOCK_FOREVER, 2, accept_k);
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = csock_sys_accept(s->io.fd, (struct sockaddr *)&ss, &len);
    if (fd >= 0) {
      csock_progress(s);
      /* The socket has no __gc: until the running task owns it, an error
       * (out of memory) leaves the fd to the server (see release). */
      srv->pending_fd = fd;
      csock_Socket *cs = newconn(L, s, srv); /* 4 */
      Conn *c = connof(cs);
      lua_pushvalue(L, 3);
      lua_pushvalue(L, 4);
      int nargs = 1 + (srv->want_addr ? csock_pushaddr(L, (struct sockaddr *)&ss, len) : 0);
      csock_task_start(L, &c->task, nargs);
      cs->io.fd = fd;
      srv->pending_fd = -1;
      c->server = srv;
      c->next = sv->conns;
      if (c->next) c->next->prev = &c->next;
      c->prev = &sv->conns;
      sv->conns = c;
      srv->refs++;
      srv->connections++;
      lua_settop(L, 3);
      continue;
    }
    if (fd == -ECONNABORTED || fd == -EINTR) continue; /* died in the backlog: not ours */
    if (csock_sys_again(fd)) {
      csock_begin(L, s, CSOCK_DIR_READ);
      if (csock_wait(L, s, CSOCK_DIR_READ, 1, accept_k) == 0) continue;
      lua_settop(L, 3); /* closed (ends above) or a timeout set on the listener */
      if (!csock_isopen(s)) continue;
    }
    /* Out of descriptors or memory (or the listener's own timeout): keep
     * the listener, let some connections end, and try again without
     * spinning. */
    csock_task_waitin(me, NULL);
    return csock_task_suspend(L, me, csock_sys_now() + PAUSE_NS, 2, accept_k);
  }
}

static int accept_task(lua_State *L) {
  return accept_k(L, LUA_OK, 0);
}

/* core._serve(listener, handler, maxconnections, timeout [, owner]):
 * accepts on listener in a task, running handler(conn, host, port) in a
 * task per connection that closes conn however it ends. Returns the server
 * handle (connections(), close()) and the accept task. The handle keeps
 * owner (csock.listen's server object): the accept task holds the handle,
 * so a server that accepts is never collected, even with no reference of
 * its script's left (csock.servers, the host's list, is weak). */
static int l_serve(lua_State *L) {
  csock_checksocket(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_Integer max = luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, max >= 0, 3, "maxconnections must not be negative");
  if (max > INT32_MAX) max = 0; /* more than could ever be open: no limit */
  int64_t timeout = csock_opttimeout(L, 4);
  lua_settop(L, 5);
  csock_Server **h = (csock_Server **)lua_newuserdatauv(L, sizeof *h, 1);
  *h = NULL;
  luaL_setmetatable(L, SERVER_MT);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, -2, 1);
  csock_Server *srv = (csock_Server *)calloc(1, sizeof *srv);
  if (srv == NULL) return luaL_error(L, "not enough memory");
  *h = srv;
  srv->refs = 1;
  srv->pending_fd = -1;
  srv->max = (int)max;
  lua_Debug ar;
  lua_pushvalue(L, 2);
  lua_getinfo(L, ">u", &ar);
  srv->want_addr = ar.isvararg || ar.nparams > 1; /* else it could not see them */
  srv->timeout = timeout;
  lua_pushcfunction(L, accept_task);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  csock_task_spawn(L, csock_getsched(L), 3);
  return 2;
}

static int srv_connections(lua_State *L) {
  lua_pushinteger(L, checkserver(L, 1)->connections);
  return 1;
}

/* Stops accepting: an accept task waiting for a free slot ends (one
 * waiting on the listener ends when the listener is closed). */
static int srv_close(lua_State *L) {
  csock_Server *srv = checkserver(L, 1);
  srv->closed = 1;
  csock_task_wakeall(&srv->slot_waiters, CSOCK_WOKE_READY);
  return 0;
}

static int srv_gc(lua_State *L) {
  csock_Server **h = (csock_Server **)luaL_checkudata(L, 1, SERVER_MT);
  if (*h) {
    (*h)->closed = 1;
    release(*h);
    *h = NULL;
  }
  return 0;
}

void csock_open_serve(lua_State *L) {
  static const luaL_Reg methods[] = {{"connections", srv_connections}, {"close", srv_close}, {NULL, NULL}};
  csock_newclass(L, SERVER_MT, methods);
  lua_pushcfunction(L, srv_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_serve);
  lua_setfield(L, -3, "_serve");
}
