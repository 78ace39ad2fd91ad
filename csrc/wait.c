/*
 * Waiting for a socket: the single point every blocking operation passes
 * through when the kernel says "not yet". Inside a task it suspends the
 * task until the loop sees the socket ready (or the deadline passes, or
 * the socket is closed) and comes back through the operation's
 * continuation; anywhere else it blocks in poll(2).
 */
#include "loop.h"

int64_t csock_deadline(csock_Socket *s, int dir) {
  if (s->deadline[dir] == CSOCK_UNSET_DEADLINE) /* first wait of this operation */
    s->deadline[dir] = s->timeout < 0 ? CSOCK_NO_DEADLINE : csock_sys_now() + s->timeout;
  return s->deadline[dir];
}

int csock_wait(lua_State *L, csock_Socket *s, int dir, lua_KContext ctx, lua_KFunction k) {
  /* A deadline set just now from a positive timeout has not passed yet. */
  int fresh = s->deadline[dir] == CSOCK_UNSET_DEADLINE && s->timeout != 0;
  int64_t deadline = csock_deadline(s, dir);
  csock_Task *t = csock_current(s->loop, L);
  int want = dir == CSOCK_DIR_READ ? CSOCK_WANT_READ : CSOCK_WANT_WRITE;
  if (t != NULL) {
    if (deadline >= 0 && !fresh && deadline <= csock_sys_now()) { /* no time to wait: one look */
      if (csock_sys_wait(s->fd, want, deadline) <= 0) return csock_timeout(L);
      if (dir == CSOCK_DIR_READ) s->drained = 0;
      return 0;
    }
    csock_waitin(t, &s->waiters[dir]);
    t->waitsock = s;
    csock_rewatch(s);
    return csock_suspend(L, t, deadline, ctx, k);
  }
  /* Output a task coalesced must not sit unsent while we block here. */
  if (csock_buf_len(&s->out) > 0) csock_flushnow(s);
  int r = csock_sys_wait(s->fd, want, deadline);
  if (r > 0) {
    if (dir == CSOCK_DIR_READ) s->drained = 0;
    return 0;
  }
  if (r == 0) return csock_timeout(L);
  return csock_oserror(L, r);
}

int csock_resumed(lua_State *L, csock_Socket *s) {
  int how = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  switch (how) {
    case CSOCK_WOKE_READY: {
      /* Woken, then closed by a task that ran first in the same turn. */
      return s != NULL && s->fd < 0 ? csock_closed(L) : 0;
    }
    case CSOCK_WOKE_TIMEOUT: return csock_timeout(L);
    default: return csock_closed(L);
  }
}
