/*
 * Waiting for a socket: the single point every blocking operation passes
 * through when the transport says "not yet", and the engine's report that
 * ends such a wait. Inside a task the task is suspended until the engine
 * reports the socket ready (or the deadline passes, or the socket is
 * closed) and comes back through the operation's continuation; anywhere
 * else the call blocks in poll(2).
 *
 * Every wait is bounded by its operation's deadline, set at the first
 * wait and never moved by readiness: once it has passed, the operation
 * gets one look at the socket (so a zero timeout still completes what is
 * possible now) and then times out. Readiness that does not turn into
 * progress (a level-triggered report for a socket whose reads keep saying
 * EAGAIN, such as a datagram socket after shutdown) must not become a busy
 * loop: from the third wait in a row without progress, the operation
 * pauses instead of polling, 1 ms doubling up to 16 ms.
 */
#include "core.h"

#define STALL_PAUSE_FROM 2 /* waits without progress before pausing */

int64_t csock_deadline(csock_Socket *s, int dir) {
  if (s->deadline[dir] == CSOCK_DEADLINE_UNSET) /* the operation's first wait */
    s->deadline[dir] = s->timeout < 0 ? CSOCK_FOREVER : csock_sys_now() + s->timeout;
  return s->deadline[dir];
}

/* The pause before the operation's next try, in nanoseconds (0: none);
 * counts this wait. */
static int64_t stall(csock_Socket *s, int dir) {
  unsigned shift = 3u * (unsigned)dir, n = (s->stalls >> shift) & 7u;
  if (n < 6) s->stalls = (s->stalls & ~(7u << shift)) | ((n + 1) << shift);
  return n < STALL_PAUSE_FROM ? 0 : (int64_t)1000000 << (n - STALL_PAUSE_FROM);
}

static int64_t pause_until(int64_t pause, int64_t deadline) {
  int64_t wake = csock_sys_now() + pause;
  return deadline >= 0 && deadline < wake ? deadline : wake;
}

int csock_wait(lua_State *L, csock_Socket *s, int dir, lua_KContext ctx, lua_KFunction k) {
  /* A deadline set just now from a positive timeout has not passed yet. */
  int fresh = s->deadline[dir] == CSOCK_DEADLINE_UNSET && s->timeout > 0;
  int64_t deadline = csock_deadline(s, dir);
  unsigned bit = 1u << dir;
  /* The readiness to wait for: the operation's own, unless the transport
   * needs the other one to go on. */
  int ready_dir = (s->cross & bit) ? !dir : dir;
  int want = ready_dir == CSOCK_DIR_READ ? CSOCK_WANT_READ : CSOCK_WANT_WRITE;
  if (deadline >= 0 && !fresh && csock_sys_now() >= deadline) {
    if (s->looked & bit) return csock_timeout(L);
    s->looked |= bit;
    if (csock_sys_wait(s->io.fd, want, deadline) <= 0) return csock_timeout(L);
    s->drained = 0;
    return 0;
  }
  int64_t pause = stall(s, dir);
  csock_Task *t = csock_task_current(s->net->sched, L);
  if (t != NULL) {
    if (pause > 0) {
      csock_task_waitin(t, NULL);
      return csock_task_suspend(L, t, pause_until(pause, deadline), ctx, k);
    }
    csock_task_waitin(t, &s->waiters[ready_dir]);
    int r = csock_socket_rewatch(s);
    if (r < 0) { /* the engine cannot watch it: fail now rather than wait for nothing */
      csock_task_cancelwait(t);
      return csock_oserror(L, r);
    }
    return csock_task_suspend(L, t, deadline, ctx, k);
  }
  /* Output a task coalesced must not sit unsent while this thread blocks. */
  if (csock_buf_len(&s->out) > 0) csock_output_flushnow(s);
  if (pause > 0) {
    csock_sys_sleep_until(pause_until(pause, deadline));
    s->drained = 0;
    return 0;
  }
  int r = csock_sys_wait(s->io.fd, want, deadline);
  if (r > 0) {
    s->drained = 0;
    return 0;
  }
  return r == 0 ? csock_timeout(L) : csock_oserror(L, r);
}

int csock_resumed(lua_State *L, csock_Socket *s) {
  switch (csock_task_woke(L)) {
    case CSOCK_WOKE_READY:
      /* Woken, then closed by a task that ran first in the same turn. */
      if (!csock_isopen(s)) return csock_closed(L);
      s->drained = 0; /* the kernel may have bytes again */
      return 0;
    case CSOCK_WOKE_TIMEOUT: return csock_timeout(L);
    default: return csock_closed(L);
  }
}

void csock_socket_ready(csock_Io *io, int events) {
  csock_Socket *s = (csock_Socket *)io; /* io is the socket's first member */
  if (events & CSOCK_EVENT_HUP) s->hup = 1; /* an EOF that came with the last bytes sends no new report */
  if (events & CSOCK_WANT_READ) {
    s->drained = 0; /* new bytes (or EOF, or an error) to read */
    csock_task_wakeall(&s->waiters[CSOCK_DIR_READ], CSOCK_WOKE_READY);
  }
  if (events & CSOCK_WANT_WRITE) {
    csock_task_wakeall(&s->waiters[CSOCK_DIR_WRITE], CSOCK_WOKE_READY);
    if (s->flushing) csock_output_markdirty(s); /* sent before the next poll */
  }
  csock_socket_rewatch(s); /* what nobody waits for any more is no longer watched */
}
