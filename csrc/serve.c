/*
 * csock.listen's engine: the accept loop, in C, and the task of each
 * connection. A connection's socket and its task are one userdata (the
 * task right after the socket, the coroutine in its user value), so a
 * parked connection costs one object besides its coroutine, and an accept
 * that finds nothing allocates nothing.
 */
#include <errno.h>
#include <stdlib.h>

#include "loop.h"

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
  int64_t timeout;   /* each connection's, as settimeout; CSOCK_NO_DEADLINE for none */
  csock_Task *slot_waiters; /* the accept task, while the server is full */
} csock_Server;

/* A connection's task follows its socket in the same userdata. */
static csock_Task *conntask(csock_Socket *conn) {
  return (csock_Task *)(conn + 1);
}

static void release(csock_Server *srv) {
  if (--srv->refs > 0) return;
  if (srv->pending_fd >= 0) csock_sys_close(srv->pending_fd);
  free(srv);
}

static csock_Server *checkserver(lua_State *L, int idx) {
  csock_Server **h = (csock_Server **)luaL_checkudata(L, idx, SERVER_MT);
  return *h;
}

/* And the socket a connection's task follows. */
static csock_Socket *taskconn(csock_Task *t) {
  return (csock_Socket *)t - 1;
}

void csock_conn_ended(csock_Task *t) {
  csock_Server *srv = t->u.conn.server;
  csock_close(taskconn(t));
  if (srv == NULL) return;
  t->u.conn.server = NULL;
  if (t->u.conn.next) t->u.conn.next->u.conn.prev = t->u.conn.prev;
  *t->u.conn.prev = t->u.conn.next;
  srv->connections--;
  csock_wakeone(&srv->slot_waiters, CSOCK_WOKE_READY);
  release(srv);
}

void csock_conns_close(csock_Loop *loop) {
  while (loop->conns) csock_conn_ended(loop->conns);
}

/* Pushes an accepted connection's socket (holding its task, not started
 * yet), closed: the caller stores the fd once nothing can fail. */
static csock_Socket *newconn(lua_State *L, csock_Socket *listener, csock_Server *srv) {
  csock_Socket *c = csock_newconnsocket(L, listener->loop, listener->family, listener->type,
                                        sizeof(csock_Task));
  c->lingers = listener->lingers; /* SO_LINGER is inherited */
  c->timeout = srv->timeout;
  /* A request is rarely there the instant its connection is accepted:
   * the first read waits for readiness instead of paying for a recv that
   * says EAGAIN (as nginx does without deferred accept). */
  c->drained = 1;
  csock_Task *t = conntask(c);
  csock_inittask(t, c->loop);
  t->is_conn = 1;
  return c;
}

/* Stack: 1 server handle, 2 listener, 3 handler. ctx says what the task
 * waited for: the listener (1) or a free slot or the pause (2). */
static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  if (status == LUA_YIELD && ctx == 1) csock_resumed(L, NULL); /* closed, or a timeout: see below */
  lua_settop(L, 3);
  csock_Server *srv = checkserver(L, 1);
  csock_Socket *s = (csock_Socket *)lua_touserdata(L, 2);
  csock_Task *me = csock_current(s->loop, L);
  if (me == NULL) return luaL_error(L, "the accept loop runs only as a task");
  for (;;) {
    if (srv->closed || s->fd < 0) return 0;
    if (srv->max > 0 && srv->connections >= srv->max) {
      csock_waitin(me, &srv->slot_waiters);
      return csock_suspend(L, me, -1, 2, accept_k);
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = csock_sys_accept(s->fd, (struct sockaddr *)&ss, &len);
    if (fd >= 0) {
      /* The socket has no __gc: until the running task owns it, an error
       * (out of memory) leaves the fd to the server (see release). */
      srv->pending_fd = fd;
      csock_Socket *c = newconn(L, s, srv); /* 4 */
      csock_Task *t = conntask(c);
      lua_pushvalue(L, 3);
      lua_pushvalue(L, 4);
      int nargs = 1 + (srv->want_addr ? csock_pushaddr(L, (struct sockaddr *)&ss, len) : 0);
      csock_starttask(L, t, nargs);
      c->fd = fd;
      srv->pending_fd = -1;
      t->u.conn.server = srv;
      t->u.conn.next = s->loop->conns;
      if (t->u.conn.next) t->u.conn.next->u.conn.prev = &t->u.conn.next;
      t->u.conn.prev = &s->loop->conns;
      s->loop->conns = t;
      srv->refs++;
      srv->connections++;
      lua_settop(L, 3);
      continue;
    }
    if (fd == -ECONNABORTED || fd == -EINTR) continue; /* died in the backlog: not ours */
    if (csock_sys_again(fd)) {
      csock_begin(s, CSOCK_DIR_READ);
      if (csock_wait(L, s, CSOCK_DIR_READ, 1, accept_k) == 0) continue;
      lua_settop(L, 3); /* closed (ends above) or a timeout set on the listener */
      if (s->fd < 0) continue;
    }
    /* Out of descriptors or memory (or the listener's own timeout): keep
     * the listener, let some connections end, and try again without
     * spinning. */
    csock_waitin(me, NULL);
    return csock_suspend(L, me, csock_sys_now() + PAUSE_NS, 2, accept_k);
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
  lua_Number timeout = luaL_optnumber(L, 4, -1);
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
  srv->timeout = timeout < 0 ? CSOCK_NO_DEADLINE : (int64_t)((timeout > 1e9 ? 1e9 : timeout) * 1e9);
  lua_pushcfunction(L, accept_task);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  csock_newtask(L, csock_getloop(L), 3);
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
  csock_wakeall(&srv->slot_waiters, CSOCK_WOKE_READY);
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

/* Expects the module table at -2 and the methods table at -1. */
void csock_open_serve(lua_State *L) {
  static const luaL_Reg methods[] = {{"connections", srv_connections}, {"close", srv_close}, {NULL, NULL}};
  luaL_newmetatable(L, SERVER_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, srv_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_serve);
  lua_setfield(L, -3, "_serve");
}
