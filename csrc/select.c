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
  csock_Socket *s = csock_testsocket(L, -1);
  if (s == NULL) luaL_error(L, "bad entry #%d in argument #%d (csock.socket or fd expected)", (int)i, set);
  if (!csock_isopen(s)) luaL_error(L, "attempt to use a closed socket");
  fd = s->io.fd;
  /* bytes read() left, or the transport holds: readable without the kernel */
  *buffered = csock_buf_len(&s->in) > 0 || s->tp->pending(s) > 0;
  return fd;
}

static lua_Integer setlen(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  return luaL_len(L, idx);
}

/* What select keeps across a wait: the sets' sizes, then the pollfds,
 * then one flag per member ("read() left bytes buffered"). */
typedef struct Query {
  lua_Integer nr, nw;
  int ready_now;
  struct pollfd fds[];
} Query;

static char *buffered_flags(Query *q) { return (char *)(q->fds + q->nr + q->nw); }

/* Polls once (ms as poll(2)); -errno on failure. */
static int poll_query(Query *q, int ms) {
  for (;;) {
    int n = poll(q->fds, (nfds_t)(q->nr + q->nw), q->ready_now ? 0 : ms);
    if (n >= 0) return n + q->ready_now;
    if (errno != EINTR) return -errno;
  }
}

/* Stack: 1 readers, 2 writers, 3 the query. */
static int push_ready(lua_State *L, Query *q) {
  char *buffered = buffered_flags(q);
  lua_newtable(L);
  int rtbl = lua_gettop(L);
  lua_newtable(L);
  lua_Integer got[2] = {0, 0};
  for (lua_Integer i = 0; i < q->nr + q->nw; i++) {
    int set = i < q->nr ? 1 : 2;
    lua_Integer pos = i < q->nr ? i + 1 : i - q->nr + 1;
    short mask = (short)((set == 1 ? POLLIN : POLLOUT) | POLLERR | POLLHUP);
    if ((q->fds[i].revents & mask) || buffered[i]) {
      lua_geti(L, set, pos);
      lua_rawseti(L, rtbl + set - 1, ++got[set - 1]);
    }
  }
  if (got[0] + got[1] == 0) {
    lua_pushliteral(L, "timeout");
    return 3;
  }
  return 2;
}

/* select({}, {}, t) in a task: a sleep that ends in "timeout". */
static int empty_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  csock_task_woke(L); /* a sleep: only ends */
  return push_ready(L, (Query *)lua_touserdata(L, 3));
}

#ifdef __linux__
#include <sys/epoll.h>
#include <unistd.h>

static int select_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  csock_waitfd_end(L, 4);
  Query *q = (Query *)lua_touserdata(L, 3);
  int n = poll_query(q, 0);
  if (n < 0) return csock_oserror(L, n);
  lua_settop(L, 3);
  return push_ready(L, q);
}

/* In a task: one epoll set holding every member, watched by the loop as a
 * single fd for the length of the wait. */
static int select_in_task(lua_State *L, csock_Task *t, Query *q, int64_t deadline) {
  void *watch = csock_fdwatch(L); /* 4 */
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return csock_oserror(L, errno);
  for (lua_Integer i = 0; i < q->nr + q->nw; i++) {
    struct epoll_event ev = {0};
    ev.events = i < q->nr ? EPOLLIN : EPOLLOUT;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, q->fds[i].fd, &ev) < 0) {
      /* the same fd in both sets: widen its entry */
      ev.events = EPOLLIN | EPOLLOUT;
      if (errno != EEXIST || epoll_ctl(ep, EPOLL_CTL_MOD, q->fds[i].fd, &ev) < 0) {
        int err = errno;
        close(ep);
        return csock_oserror(L, err);
      }
    }
  }
  return csock_waitfd(L, t, watch, ep, CSOCK_WANT_READ, 1, deadline, 0, select_k);
}
#endif

static int l_select(lua_State *L) {
  lua_Integer nr = setlen(L, 1), nw = setlen(L, 2);
  int64_t deadline = csock_optdeadline(L, 3);
  luaL_argcheck(L, nr + nw < 0x7fffffff, 1, "too many sockets");
  lua_settop(L, 2);
  size_t total = (size_t)(nr + nw);
  Query *q = (Query *)lua_newuserdatauv(L, sizeof *q + (sizeof q->fds[0] + 1) * total, 0);
  q->nr = nr;
  q->nw = nw;
  q->ready_now = 0;
  char *buffered = buffered_flags(q);
  for (lua_Integer i = 0; i < (lua_Integer)total; i++) {
    int set = i < nr ? 1 : 2, b;
    lua_Integer pos = i < nr ? i + 1 : i - nr + 1;
    lua_geti(L, set, pos);
    q->fds[i].fd = memberfd(L, set, pos, &b);
    q->fds[i].events = set == 1 ? POLLIN : POLLOUT;
    q->fds[i].revents = 0;
    lua_pop(L, 1);
    buffered[i] = (char)(set == 1 && b);
    q->ready_now |= buffered[i]; /* no need to wait */
  }
#ifdef __linux__
  csock_Task *t = csock_task_current(csock_getsched(L), L);
  if (t != NULL) {
    int n = poll_query(q, 0);
    if (n < 0) return csock_oserror(L, n);
    if (n == 0 && (deadline < 0 || deadline > csock_sys_now())) {
      if (total > 0) return select_in_task(L, t, q, deadline);
      csock_task_waitin(t, NULL);
      return csock_task_suspend(L, t, deadline, 0, empty_k);
    }
    return push_ready(L, q);
  }
#endif
  int n;
  do {
    n = poll_query(q, csock_sys_ms_until(deadline));
    if (n < 0) return csock_oserror(L, n);
  } while (n == 0 && deadline >= 0 && csock_sys_now() < deadline);
  return push_ready(L, q);
}

void csock_open_select(lua_State *L) {
  lua_pushcfunction(L, l_select);
  lua_setfield(L, -3, "select");
}
