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
 * loop: the socket counts the reports that came while nothing on it moved
 * (`stalls`, cleared by progress and by a new operation), and from the
 * second one on, a wait pauses instead of polling, 1 ms doubling up to
 * 16 ms. Tasks that merely lose a race for the same readiness (several
 * accepting on one listener) see the winner's progress clear the count.
 */
#include "core.h"

#define STALLS_BEFORE_PAUSE 2
#define STALLS_MAX 6 /* the longest pause: 1 ms << (6 - 2) */

/* Where the operation's deadline is kept (see csock_begin). */
static int64_t *deadline_of(csock_Task *t, csock_Socket *s) {
  return t != NULL ? &t->deadline : &s->deadline;
}

static int64_t fix(int64_t *deadline, const csock_Socket *s) {
  if (*deadline == CSOCK_DEADLINE_UNSET) /* the operation's first wait */
    *deadline = s->timeout < 0 ? CSOCK_FOREVER : csock_sys_now() + s->timeout;
  return *deadline;
}

int64_t csock_deadline(lua_State *L, csock_Socket *s) {
  return fix(deadline_of(csock_task_current(s->net->sched, L), s), s);
}

/* The operation's one look past its deadline: 1 if already used. */
static int looked(csock_Task *t, csock_Socket *s) {
  int used = t != NULL ? t->looked : s->looked;
  if (t != NULL) t->looked = 1;
  else s->looked = 1;
  return used;
}

static unsigned stalls(const csock_Socket *s, int dir) {
  return (s->stalls >> (3u * (unsigned)dir)) & 7u;
}

/* A readiness report (or a pause) that progress has not followed yet. */
static void stalled(csock_Socket *s, int dir) {
  unsigned shift = 3u * (unsigned)dir, n = stalls(s, dir);
  if (n < STALLS_MAX) s->stalls = (s->stalls & ~(7u << shift)) | ((n + 1) << shift);
}

int csock_pause(lua_State *L, csock_Socket *s, int64_t until, lua_KContext ctx, lua_KFunction k) {
  csock_Task *t = csock_task_current(s->net->sched, L);
  if (t != NULL) {
    csock_task_waitin(t, NULL);
    return csock_task_suspend(L, t, until, ctx, k);
  }
  csock_sys_sleep_until(until);
  s->drained = 0;
  return 0;
}

int csock_wait(lua_State *L, csock_Socket *s, int dir, lua_KContext ctx, lua_KFunction k) {
  csock_Task *t = csock_task_current(s->net->sched, L);
  int64_t *slot = deadline_of(t, s);
  /* A deadline set just now from a positive timeout has not passed yet. */
  int fresh = *slot == CSOCK_DEADLINE_UNSET && s->timeout > 0;
  int64_t deadline = fix(slot, s);
  /* The readiness to wait for: the operation's own, unless the transport
   * needs the other one to go on. */
  int ready_dir = (s->cross & (1u << dir)) ? !dir : dir;
  int want = ready_dir == CSOCK_DIR_READ ? CSOCK_WANT_READ : CSOCK_WANT_WRITE;
  if (deadline >= 0 && !fresh && csock_sys_now() >= deadline) {
    if (looked(t, s)) return csock_timeout(L);
    if (csock_sys_wait(s->io.fd, want, deadline) <= 0) return csock_timeout(L);
    s->drained = 0;
    return 0;
  }
  if (dir == CSOCK_DIR_READ && s->tp->pending(s) > 0) { /* bytes below us: no readiness will come */
    s->drained = 0;
    return 0;
  }
  unsigned n = stalls(s, ready_dir);
  if (n >= STALLS_BEFORE_PAUSE) {
    int64_t wake = csock_sys_now() + ((int64_t)1000000 << (n - STALLS_BEFORE_PAUSE));
    stalled(s, ready_dir);
    return csock_pause(L, s, deadline >= 0 && deadline < wake ? deadline : wake, ctx, k);
  }
  if (t != NULL) {
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
  int r = csock_sys_wait(s->io.fd, want, deadline);
  if (r > 0) {
    stalled(s, ready_dir);
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
    if (s->waiters[CSOCK_DIR_READ]) {
      stalled(s, CSOCK_DIR_READ); /* until one of them moves something */
      csock_task_wakeall(&s->waiters[CSOCK_DIR_READ], CSOCK_WOKE_READY);
    }
  }
  if (events & CSOCK_WANT_WRITE) {
    if (s->waiters[CSOCK_DIR_WRITE]) {
      stalled(s, CSOCK_DIR_WRITE);
      csock_task_wakeall(&s->waiters[CSOCK_DIR_WRITE], CSOCK_WOKE_READY);
    }
    if (s->flushing) csock_output_markdirty(s); /* sent before the next poll */
  }
  csock_socket_rewatch(s); /* what nobody waits for any more is no longer watched */
}
