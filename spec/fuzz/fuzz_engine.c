/*
 * libFuzzer harness for the engine (csrc/engine.c with heap.c and both
 * poll backends), and, built with -DENGINE_MAIN, a standalone random
 * tester that feeds it seeded random programs (build/spec/engine_test,
 * run by spec/engine_spec.lua).
 *
 * The input is a program: byte 0 picks the backend (epoll or poll) and
 * whether the heap's tie counter starts just short of wrapping, byte 1 the
 * number of fds and the starting reference count, then one byte per fd its
 * kind (a unix socketpair, or a pipe watched at its read or its write end),
 * one byte seeds the choices callbacks make, and the rest are operations
 * with their arguments: watch / forget an fd, make it readable, drain it,
 * fill it until it is unwritable, drain its peer; set, cancel and move
 * timers (deadlines either passed already or 1000 s away, never "soon", so
 * nothing depends on the clock); queue work; ref +1 / -1; steps (timeout 0,
 * or longer when a passed timer guarantees the poll does not wait); enter,
 * leave, stop; add hooks; reopen an fd; ask for the timeout and the poll
 * fd. The engine is closed at the end.
 *
 * Callbacks record what happened and act as the engine's rules allow: a
 * timer re-sets itself (to its passed deadline again, or away) and queues
 * work; an io forgets or re-watches itself and queues work; work does
 * anything (queues work, itself included, sets and cancels timers, watches
 * and forgets fds, refs, stops); hooks queue work, change the reference
 * count before a poll, and end their own fd and timer at teardown. A model
 * checks every step against what the engine documents; the poller is
 * wrapped (transparently) so the checks sit right at the poll. Any
 * violation aborts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "engine.h"

static void fail(int line, const char *what);
#define CHECK(c) do { if (!(c)) fail(__LINE__, #c); } while (0)

#define RD CSOCK_WANT_READ
#define WR CSOCK_WANT_WRITE
#define NIO 5
#define NTIMER 72 /* more than the heap's first 64 slots: bursts make it grow */
#define NWORK 6
#define NHOOK 5 /* the checker and up to 4 more */
#define BUDGET 200 /* self-renewing actions (requeue, refire, hook work) per run */
#define FAR ((int64_t)1000 * 1000000000) /* 1000 s: never reached within a run */
#define MAXOPS 4000

enum { SOCK, PIPE_READ, PIPE_WRITE, NKIND };

typedef struct Fd {
  csock_Io io;
  int kind, fd, peer;
  int want;       /* poll: what the backend watches */
  int registered; /* the backend has it (epoll: both directions) */
  int pending;    /* epoll: edges since the backend last reported */
  int expect;     /* set at a poll: what it must report */
  int got;        /* what the poll reported (0: nothing) */
  int calls;      /* ready calls after that poll */
  int action;
} Fd;

typedef struct Timer {
  csock_Timer t;
  int id, set, action;
  int64_t when;
  uint64_t seq;                 /* order of settings */
  unsigned gen, fired_gen;      /* settings so far; the one that fired last */
  unsigned must_gen;            /* the setting that must fire this step (0: none) */
} Timer;

typedef struct Work {
  csock_Work w;
  int id, queued, action, arg;
  int late_step, late_bp; /* queued by a before-poll hook: that step and that call */
} Work;

typedef struct Hook {
  csock_Hook h;
  int id, phases, action, ended;
  int calls[4], expect[4];
} Hook;

typedef struct Run {
  csock_Engine e;
  const csock_PollerOps *real;
  csock_PollerOps ops;
  int epoll, created, destroyed;
  csock_Poller *poller;
  Fd fds[NIO];
  int nfd;
  Timer timers[NTIMER];
  Work works[NWORK];
  int q[NWORK], qhead, qlen; /* the ready queue as it must be */
  Hook hooks[NHOOK];
  int nhook;
  int alive, stop, running, closed, budget;
  unsigned rng;
  int64_t now0;
  uint64_t setseq;
  /* the current step */
  int in_step, in_enter, in_leave, in_close, step, waits, bp_calls, expect_poll, fired;
  int64_t last_when;
  uint64_t last_seq;
  int close_order[NHOOK], nclosed;
  int op; /* for the failure message */
} Run;

/* What the runs exercised, for the standalone tester's summary. */
static struct {
  unsigned long polls, reports, fires, works, hooks, closes, ops, refires, grown;
} stats;

static Run run_state;
static Run *R = &run_state;

#ifdef ENGINE_MAIN
static const uint8_t *cur_prog;
static size_t cur_len;
static unsigned long long cur_seed;
static long cur_index = -1;
#endif

static void fail(int line, const char *what) {
  fprintf(stderr, "fuzz_engine: check failed at line %d: %s (backend %s, op %d, step %d)\n", line,
          what, R->epoll ? "epoll" : "poll", R->op, R->step);
#ifdef ENGINE_MAIN
  if (cur_index >= 0) fprintf(stderr, "program %ld of seed %llu, %zu bytes:\n", cur_index, cur_seed, cur_len);
  else fprintf(stderr, "program, %zu bytes:\n", cur_len);
  for (size_t i = 0; i < cur_len; i++) fprintf(stderr, "%02x%s", cur_prog[i], (i % 32 == 31) ? "\n" : "");
  fprintf(stderr, "\n(xxd -r -p to a file, then: engine_test -f FILE, or fuzz_engine FILE)\n");
#endif
  abort();
}

static unsigned rnd(void) {
  R->rng = R->rng * 1103515245u + 12345u;
  return R->rng >> 16;
}

static int spend(void) {
  if (R->budget <= 0) return 0;
  R->budget--;
  return 1;
}

/* What poll(2) says of fd now: RD / WR, level-triggered. Nothing here hangs up. */
static int level(int fd) {
  struct pollfd p = {fd, POLLIN | POLLOUT, 0};
  CHECK(poll(&p, 1, 0) >= 0);
  CHECK((p.revents & (POLLHUP | POLLERR | POLLNVAL)) == 0);
  return ((p.revents & POLLIN) ? RD : 0) | ((p.revents & POLLOUT) ? WR : 0);
}

static Fd *fd_of(csock_Io *io) {
  for (int i = 0; i < R->nfd; i++)
    if (&R->fds[i].io == io) return &R->fds[i];
  return NULL;
}

/* The wrapped poller ------------------------------------------------------- */

static csock_Poller *w_create(int *err) {
  CHECK(!R->closed && R->created == 0); /* made once, never after close */
  csock_Poller *p = R->real->create(err);
  CHECK(p != NULL);
  R->created++;
  R->poller = p;
  return p;
}

static void w_destroy(csock_Poller *p) {
  CHECK(p == R->poller && R->in_close && R->destroyed == 0);
  int closers = 0; /* after the teardown hooks, all of them */
  for (int i = 0; i < R->nhook; i++) closers += (R->hooks[i].phases & CSOCK_HOOK_CLOSE) != 0;
  CHECK(R->nclosed == closers);
  R->destroyed++;
  R->real->destroy(p);
}

static int w_watch(csock_Poller *p, csock_Io *io, int want) {
  CHECK(p == R->poller && fd_of(io) != NULL && !R->closed);
  return R->real->watch(p, io, want);
}

static void w_forget(csock_Poller *p, csock_Io *io) {
  CHECK(p == R->poller && fd_of(io) != NULL);
  R->real->forget(p, io);
}

static int w_fd(csock_Poller *p) {
  CHECK(p == R->poller);
  return R->real->fd(p);
}

/* The poll: what must be reported is fixed just before it, and what was
 * reported is checked right after. */
static int w_wait(csock_Poller *p, csock_Ready *out, int max, int timeout_ms) {
  CHECK(p == R->poller && R->in_step && R->waits == 0);
  CHECK(timeout_ms == 0); /* step(0), or a passed timer: a poll that cannot wait */
  CHECK(R->e.alive > 0 && !R->e.stop);
  CHECK(max == CSOCK_ENGINE_EVENTS);
  R->waits++;
  int64_t now = csock_sys_now();
  for (int i = 0; i < NTIMER; i++) {
    Timer *t = &R->timers[i];
    if (t->set && t->when <= now) t->must_gen = t->gen; /* expire looks at a later clock */
  }
  for (int i = 0; i < R->nfd; i++) {
    Fd *f = &R->fds[i];
    int lv = level(f->fd);
    if (!f->registered) f->expect = 0;
    else if (R->epoll) f->expect = f->pending & lv; /* an edge not reported yet, still true */
    else f->expect = f->want & lv;                 /* level-triggered: exactly that */
    f->pending = 0;                                /* this poll takes every edge so far */
  }
  int n = R->real->wait(p, out, max, timeout_ms);
  CHECK(n >= 0 && n <= max);
  stats.polls++;
  stats.reports += (unsigned long)n;
  for (int i = 0; i < n; i++) {
    Fd *f = fd_of(out[i].io);
    CHECK(f != NULL && f->registered && f->got == 0);
    CHECK(out[i].events != 0 && (out[i].events & ~(RD | WR)) == 0); /* no hangups here */
    f->got = out[i].events;
  }
  for (int i = 0; i < R->nfd; i++) {
    Fd *f = &R->fds[i];
    if (R->epoll) CHECK((f->expect & ~f->got) == 0); /* may report more: readiness is a hint */
    else CHECK(f->got == f->expect);
  }
  return n;
}

/* The model's operations -------------------------------------------------- */

static void do_watch(Fd *f, int want) {
  int was = f->registered;
  CHECK(csock_engine_watch(&R->e, &f->io, want) == 0);
  CHECK(R->created == 1);
  if (R->epoll) {
    if (want && !was) {
      f->registered = 1;
      f->pending = level(f->fd); /* registering reports what is true already */
    }
    CHECK(f->io.watched == (f->registered ? RD | WR : 0));
  } else {
    f->registered = want != 0;
    f->want = want;
    CHECK(f->io.watched == want);
  }
}

static void do_forget(Fd *f) {
  csock_engine_forget(&R->e, &f->io);
  f->registered = f->want = f->pending = 0;
  CHECK(f->io.watched == 0);
}

static void set_timer(Timer *t, int64_t when, int action) {
  CHECK(csock_engine_settimer(&R->e, &t->t, when) == 0);
  t->set = 1;
  t->when = when;
  t->seq = R->setseq++;
  t->gen++;
  t->action = action;
  CHECK(csock_timer_active(&t->t));
}

static void cancel_timer(Timer *t) {
  csock_engine_canceltimer(&R->e, &t->t);
  t->set = 0;
  CHECK(!csock_timer_active(&t->t));
}

static int64_t pick_when(int past, unsigned arg) {
  if (past) { /* few distinct values: ties are common */
    static const int64_t back[] = {-1, 0, 1, 1000};
    int64_t b = back[arg % 4];
    return b < 0 ? R->now0 : b;
  }
  switch (arg % 3) {
  case 0: return R->now0 + FAR;
  case 1: return R->now0 + FAR + 1;
  default: return INT64_MAX;
  }
}

static void queue_work(Work *w, int action, int arg, int late) {
  CHECK(!w->queued && R->qlen < NWORK);
  csock_engine_queue(&R->e, &w->w);
  w->queued = 1;
  w->action = action;
  w->arg = arg;
  w->late_step = late ? R->step : 0;
  w->late_bp = late ? R->waits + 1 : 0;
  R->q[(R->qhead + R->qlen++) % NWORK] = w->id;
}

/* Queues work number i, or the next one not queued; budgeted when asked. */
static void queue_some(int i, int budgeted, int late) {
  for (int k = 0; k < NWORK; k++) {
    Work *w = &R->works[(i + k) % NWORK];
    if (w->queued) continue;
    if (budgeted && !spend()) return;
    int action = (int)(rnd() % 11); /* in this order: the same program, the same run, whatever compiled it */
    queue_work(w, action, (int)rnd(), late);
    return;
  }
}

static void ref(int n) {
  if (n < 0 && R->alive == 0) return;
  csock_engine_ref(&R->e, n);
  R->alive += n;
}

/* Callbacks ----------------------------------------------------------------- */

static void io_ready(csock_Io *io, int events) {
  Fd *f = fd_of(io);
  CHECK(f != NULL && R->in_step && R->waits == 1 && !R->closed);
  CHECK(f->registered);                       /* never after forget */
  CHECK(events == f->got && f->calls++ == 0); /* what the poll said, once */
  switch (f->action % 4) {
  case 1: do_forget(f); break;
  case 2: do_watch(f, (int)(rnd() % 4)); break;
  case 3: queue_some((int)rnd(), 1, 0); break;
  default: break;
  }
}

static void timer_fire(csock_Timer *ct) {
  Timer *t = (Timer *)ct;
  CHECK(R->in_step && R->waits == 1 && !R->closed);
  CHECK(!csock_timer_active(ct));
  CHECK(t->set && t->fired_gen != t->gen); /* set, and at most once per setting */
  CHECK(t->when <= csock_sys_now());       /* never early */
  /* deadline order; ties in the order they were set */
  CHECK(R->fired == 0 || t->when > R->last_when || (t->when == R->last_when && t->seq > R->last_seq));
  R->fired++;
  stats.fires++;
  R->last_when = t->when;
  R->last_seq = t->seq;
  t->fired_gen = t->gen;
  t->set = 0;
  switch (t->action % 5) {
  case 1: /* again, at the same passed deadline: fires again in this expiry */
  case 4:
    if (spend()) {
      stats.refires++;
      set_timer(t, t->when, (int)(rnd() % 5));
      t->must_gen = t->gen;
    }
    if (t->action % 5 == 4) queue_some((int)rnd(), 1, 0);
    break;
  case 2: set_timer(t, pick_when(0, rnd()), 0); break;
  case 3: queue_some((int)rnd(), 1, 0); break;
  default: break;
  }
}

static void work_run(csock_Work *cw) {
  Work *w = (Work *)cw;
  CHECK(R->in_step && !R->closed && !R->stop);
  CHECK(R->qlen > 0 && R->q[R->qhead] == w->id); /* FIFO, once per queueing */
  R->qhead = (R->qhead + 1) % NWORK;
  R->qlen--;
  CHECK(w->queued && cw->next == NULL);
  w->queued = 0;
  stats.works++;
  unsigned arg = (unsigned)w->arg;
  switch (w->action) {
  case 1: /* more work, this one included */
    if (spend()) queue_some((int)(arg % NWORK), 0, 0);
    break;
  case 2: set_timer(&R->timers[arg % NTIMER], pick_when(1, arg >> 4), (int)(rnd() % 5)); break;
  case 3: set_timer(&R->timers[arg % NTIMER], pick_when(0, arg >> 4), (int)(rnd() % 5)); break;
  case 4: cancel_timer(&R->timers[arg % NTIMER]); break;
  case 5: R->fds[arg % R->nfd].action = (int)rnd(); do_watch(&R->fds[arg % R->nfd], (int)((arg >> 4) % 4)); break;
  case 6: do_forget(&R->fds[arg % R->nfd]); break;
  case 7: ref(1); break;
  case 8: ref(-1); break;
  case 9: /* stop: rare, it lasts until the next enter */
    if (arg % 8 == 0) {
      csock_engine_stop(&R->e);
      R->stop = 1;
    }
    break;
  case 10: {
    Timer *t = &R->timers[arg % NTIMER];
    if (t->set) set_timer(t, pick_when((arg >> 4) & 1, arg >> 5), t->action);
    break;
  }
  default: break;
  }
}

static int phase_index(int phase) {
  switch (phase) {
  case CSOCK_HOOK_ENTER: return 0;
  case CSOCK_HOOK_BEFOREPOLL: return 1;
  case CSOCK_HOOK_LEAVE: return 2;
  case CSOCK_HOOK_CLOSE: return 3;
  }
  CHECK(!"a phase");
  return 0;
}

static void hook_fn(csock_Hook *ch, int phase) {
  Hook *h = (Hook *)ch;
  CHECK(h->phases & phase);
  CHECK(!h->ended); /* teardown ends a hook */
  h->calls[phase_index(phase)]++;
  stats.hooks++;
  switch (phase) {
  case CSOCK_HOOK_ENTER:
    CHECK(R->in_enter && R->created == 1); /* the poller is made before the hooks */
    if (h->action % 4 == 1) queue_some((int)rnd(), 1, 0);
    break;
  case CSOCK_HOOK_LEAVE: CHECK(R->in_leave); break;
  case CSOCK_HOOK_CLOSE:
    CHECK(R->in_close && R->nclosed < NHOOK);
    h->ended = 1;
    R->close_order[R->nclosed++] = h->id;
    if (h->id > 0) { /* ends its own fd and timer; the poller and the heap are still there */
      Fd *f = &R->fds[h->action % R->nfd];
      if (f->registered) CHECK(R->e.poller != NULL);
      do_forget(f);
      Timer *t = &R->timers[(h->action >> 3) % NTIMER];
      cancel_timer(t);
      CHECK(csock_engine_settimer(&R->e, &t->t, 0) == -EBADF); /* closed already */
      CHECK(!csock_timer_active(&t->t));
    }
    break;
  case CSOCK_HOOK_BEFOREPOLL:
    CHECK(R->in_step);
    if (h->id == 0) { /* the checker: added first, so called last */
      R->bp_calls++;
      CHECK(R->bp_calls == R->waits + 1);
      if (R->bp_calls == 1) R->expect_poll = !R->e.stop && R->e.alive > 0;
      /* once the ready queue is empty: only what hooks queued just now is left */
      for (int i = 0; i < R->qlen; i++) {
        Work *w = &R->works[R->q[(R->qhead + i) % NWORK]];
        CHECK(R->stop || (w->late_step == R->step && w->late_bp == R->bp_calls));
      }
    } else if (h->action % 4 == 1) {
      queue_some((int)rnd(), 1, 1);
    } else if (h->action % 4 == 2 && R->waits == 0) { /* output's hook refs before the poll */
      if (spend()) ref((rnd() & 1) ? 1 : -1);
    }
    break;
  }
}

static void add_hook(int phases, int action) {
  CHECK(R->nhook < NHOOK);
  Hook *h = &R->hooks[R->nhook];
  h->id = R->nhook++;
  h->phases = phases;
  h->action = action;
  csock_engine_hook(&R->e, &h->h, phases, hook_fn);
}

/* Checks between operations ---------------------------------------------- */

static int node_before(const csock_HeapNode *a, const csock_HeapNode *b) {
  return a->when < b->when || (a->when == b->when && (int32_t)(a->seq - b->seq) < 0);
}

static void check_hooks(void) {
  for (int i = 0; i < R->nhook; i++)
    for (int p = 0; p < 4; p++) CHECK(R->hooks[i].calls[p] == R->hooks[i].expect[p]);
}

static void check_state(void) {
  CHECK(R->e.alive == R->alive && R->e.stop == R->stop && R->e.running == R->running);
  CHECK(csock_engine_closed(&R->e) == R->closed);
  int set = 0;
  for (int i = 0; i < NTIMER; i++) {
    Timer *t = &R->timers[i];
    CHECK(csock_timer_active(&t->t) == t->set);
    if (t->set) {
      set++;
      CHECK(t->t.node.when == t->when);
    }
  }
  const csock_Heap *h = &R->e.heap;
  CHECK(h->n == set && h->n <= h->cap);
  if (h->cap > 64) stats.grown++;
  for (int i = 0; i < h->n; i++) {
    CHECK(h->nodes[i]->index == i);
    CHECK(i == 0 || !node_before(h->nodes[i], h->nodes[(i - 1) / 2]));
  }
  /* the engine's queue is the model's, and its tail is right */
  csock_Work *w = R->e.ready, **tail = &R->e.ready;
  for (int i = 0; i < R->qlen; i++) {
    CHECK(w == &R->works[R->q[(R->qhead + i) % NWORK]].w);
    tail = &w->next;
    w = w->next;
  }
  CHECK(w == NULL && R->e.ready_tail == tail);
  for (int i = 0; i < NWORK; i++) {
    int queued = 0;
    for (int k = 0; k < R->qlen; k++) queued |= R->q[(R->qhead + k) % NWORK] == i;
    CHECK(R->works[i].queued == queued);
  }
  for (int i = 0; i < R->nfd; i++) {
    Fd *f = &R->fds[i];
    if (R->epoll) CHECK(f->io.watched == (f->registered ? RD | WR : 0));
    else CHECK(f->io.watched == f->want);
  }
  check_hooks();
}

static void do_step(int64_t timeout) {
  R->step++;
  R->waits = R->bp_calls = R->fired = 0;
  R->expect_poll = -1;
  for (int i = 0; i < R->nfd; i++) R->fds[i].got = R->fds[i].calls = R->fds[i].expect = 0;
  for (int i = 0; i < NTIMER; i++) R->timers[i].must_gen = 0;
  R->in_step = 1;
  int rc = csock_engine_step(&R->e, timeout);
  R->in_step = 0;
  CHECK(rc == 0);
  CHECK(R->bp_calls == 1 + R->waits); /* before-poll hooks: each turn, again after a poll */
  CHECK(R->waits == R->expect_poll);  /* a poll exactly when something is alive and no stop */
  for (int i = 0; i < R->nhook; i++)
    if (R->hooks[i].phases & CSOCK_HOOK_BEFOREPOLL) R->hooks[i].expect[1] += 1 + R->waits;
  if (R->waits == 0) CHECK(R->fired == 0);
  for (int i = 0; i < NTIMER; i++) { /* passed before the poll: fired by the step's end */
    Timer *t = &R->timers[i];
    if (t->must_gen) CHECK(t->fired_gen >= t->must_gen);
  }
  for (int i = 0; i < R->nfd; i++) CHECK(R->fds[i].calls == (R->fds[i].got != 0));
  for (int i = 0; i < R->qlen; i++) { /* all work ran, but what the last hooks queued */
    Work *w = &R->works[R->q[(R->qhead + i) % NWORK]];
    CHECK(R->stop || (w->late_step == R->step && w->late_bp == R->bp_calls));
  }
  check_state();
}

static void do_enter(void) {
  R->in_enter = 1;
  csock_engine_enter(&R->e);
  R->in_enter = 0;
  R->running = 1;
  R->stop = 0;
  CHECK(R->created == 1);
  for (int i = 0; i < R->nhook; i++)
    if (R->hooks[i].phases & CSOCK_HOOK_ENTER) R->hooks[i].expect[0]++;
}

static void do_leave(void) {
  R->in_leave = 1;
  csock_engine_leave(&R->e);
  R->in_leave = 0;
  R->running = 0;
  for (int i = 0; i < R->nhook; i++)
    if (R->hooks[i].phases & CSOCK_HOOK_LEAVE) R->hooks[i].expect[2]++;
}

/* fds ----------------------------------------------------------------------- */

static void open_fd(Fd *f, int kind) {
  int sv[2];
  f->kind = kind;
  if (kind == SOCK) {
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    int small = 1; /* the kernel's minimum: a few KiB fill it */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    f->fd = sv[0];
    f->peer = sv[1];
  } else {
    CHECK(pipe2(sv, O_NONBLOCK | O_CLOEXEC) == 0);
    fcntl(sv[1], F_SETPIPE_SZ, 4096);
    f->fd = kind == PIPE_READ ? sv[0] : sv[1];
    f->peer = kind == PIPE_READ ? sv[1] : sv[0];
  }
  f->io.fd = f->fd;
  f->io.watched = 0;
  f->io.slot = 0;
  f->io.ready = io_ready;
}

static int readable_end(Fd *f, int own) { /* the end this fd op reads, or -1 */
  if (f->kind == SOCK) return own ? f->fd : f->peer;
  if (f->kind == PIPE_READ) return own ? f->fd : -1;
  return own ? -1 : f->peer;
}

static void drain(int fd) {
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {}
  CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static void fill(int fd) {
  static const char buf[2048];
  ssize_t n;
  int rounds = 0;
  while ((n = write(fd, buf, sizeof buf)) > 0) CHECK(++rounds < 10000);
  CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* An fd operation; on epoll, a direction that became true is an edge. */
enum { MAKE_READABLE, DRAIN, FILL, DRAIN_PEER };
static void fd_op(Fd *f, int what) {
  int before = level(f->fd), edge = 0;
  switch (what) {
  case MAKE_READABLE:
    if (f->kind != PIPE_WRITE && write(f->peer, "x", 1) == 1) edge = RD; /* new data: an edge */
    break;
  case DRAIN: if (readable_end(f, 1) >= 0) drain(f->fd); break;
  case FILL: if (f->kind != PIPE_READ) fill(f->fd); break;
  case DRAIN_PEER: if (readable_end(f, 0) >= 0) drain(f->peer); break;
  }
  int after = level(f->fd);
  if (what == FILL && f->kind != PIPE_READ) CHECK(!(after & WR));
  if (what == DRAIN) CHECK(!(after & RD));
  if (R->epoll && f->registered) f->pending |= edge | (after & ~before);
}

/* The program ---------------------------------------------------------------- */

typedef struct Src {
  const uint8_t *p;
  size_t n;
} Src;

static unsigned take(Src *s) {
  if (s->n == 0) return 0;
  s->n--;
  return *s->p++;
}

static void check_timeout(void) {
  int64_t t0 = csock_sys_now();
  int64_t got = csock_engine_timeout(&R->e);
  int64_t t1 = csock_sys_now();
  int64_t first = 0;
  int any = 0;
  for (int i = 0; i < NTIMER; i++)
    if (R->timers[i].set && (!any || R->timers[i].when < first)) first = R->timers[i].when, any = 1;
  if (R->qlen > 0 || (any && first <= t0)) CHECK(got == 0);
  else if (!any) CHECK(got == CSOCK_FOREVER);
  else CHECK(got >= first - t1 && got <= first - t0);
}

static int passed_timer_set(void) {
  for (int i = 0; i < NTIMER; i++)
    if (R->timers[i].set && R->timers[i].when <= R->now0) return 1;
  return 0;
}

static void run_program(const uint8_t *data, size_t size) {
  Src s = {data, size};
  memset(R, 0, sizeof *R);
  unsigned b0 = take(&s), b1 = take(&s);
  R->epoll = !(b0 & 1);
  R->real = R->epoll ? &csock_epoll_ops : &csock_poll_ops;
  CHECK(csock_poller_find(R->epoll ? "epoll" : "poll") == R->real);
  R->ops = *R->real;
  R->ops.create = w_create;
  R->ops.destroy = w_destroy;
  R->ops.watch = w_watch;
  R->ops.forget = w_forget;
  R->ops.wait = w_wait;
  R->ops.fd = w_fd;
  csock_engine_init(&R->e, &R->ops);
  if (b0 & 2) R->e.heap.seq = 0xfffffff0u; /* ties across the counter's wrap */
  R->nfd = 2 + (int)(b1 % (NIO - 1));
  for (int i = 0; i < R->nfd; i++) open_fd(&R->fds[i], (int)(take(&s) % NKIND));
  R->rng = take(&s) * 2654435761u + 1;
  R->budget = BUDGET;
  R->now0 = csock_sys_now();
  for (int i = 0; i < NTIMER; i++) {
    R->timers[i].id = i;
    csock_timer_init(&R->timers[i].t, timer_fire);
    CHECK(!csock_timer_active(&R->timers[i].t));
  }
  for (int i = 0; i < NWORK; i++) {
    R->works[i].id = i;
    R->works[i].w.run = work_run;
  }
  add_hook(CSOCK_HOOK_ENTER | CSOCK_HOOK_BEFOREPOLL | CSOCK_HOOK_LEAVE | CSOCK_HOOK_CLOSE, 0);
  if (!(b1 & 0x80)) ref(1);
  CHECK(csock_engine_timeout(&R->e) == CSOCK_FOREVER);
  check_state();

  for (R->op = 0; s.n > 0 && R->op < MAXOPS; R->op++) {
    unsigned op = take(&s) % 32;
    switch (op) {
    case 0: case 1: case 2: case 26: case 27: case 28: case 29:
      do_step(0);
      break;
    case 30: case 31: { /* a burst: many timers set (mostly far away) or cancelled at once */
      unsigned i = take(&s), n = take(&s) % NTIMER + 1;
      for (unsigned k = 0; k < n; k++) {
        Timer *t = &R->timers[(i + k) % NTIMER];
        if (op == 30) {
          cancel_timer(t);
          continue;
        }
        unsigned a = rnd();
        int action = (int)(a % 5);
        set_timer(t, pick_when((a & 7) == 0, a >> 3), action);
      }
      break;
    }
    case 3: { /* a longer step, that must not wait: a passed timer is set and no work can cancel it */
      static const int64_t longer[] = {1, 1000000, 1000000000};
      unsigned a = take(&s);
      do_step(R->qlen == 0 && passed_timer_set() ? longer[a % 3] : 0);
      break;
    }
    case 4: case 5: {
      Fd *f = &R->fds[take(&s) % (unsigned)R->nfd];
      unsigned a = take(&s);
      f->action = (int)(a >> 2);
      do_watch(f, (int)(a % 4));
      break;
    }
    case 6: do_forget(&R->fds[take(&s) % (unsigned)R->nfd]); break;
    case 7: fd_op(&R->fds[take(&s) % (unsigned)R->nfd], MAKE_READABLE); break;
    case 8: fd_op(&R->fds[take(&s) % (unsigned)R->nfd], DRAIN); break;
    case 9: fd_op(&R->fds[take(&s) % (unsigned)R->nfd], FILL); break;
    case 10: fd_op(&R->fds[take(&s) % (unsigned)R->nfd], DRAIN_PEER); break;
    case 11: case 12: {
      Timer *t = &R->timers[take(&s) % NTIMER];
      unsigned a = take(&s);
      set_timer(t, pick_when(a & 1, a >> 1), (int)(take(&s) % 5));
      break;
    }
    case 13: cancel_timer(&R->timers[take(&s) % NTIMER]); break;
    case 14: { /* move a set timer */
      unsigned i = take(&s), a = take(&s);
      for (int k = 0; k < NTIMER; k++) {
        Timer *t = &R->timers[(i + (unsigned)k) % NTIMER];
        if (!t->set) continue;
        set_timer(t, pick_when(a & 1, a >> 1), t->action);
        break;
      }
      break;
    }
    case 15: case 16: {
      unsigned i = take(&s), a = take(&s), b = take(&s);
      for (int k = 0; k < NWORK; k++) {
        Work *w = &R->works[(i + (unsigned)k) % NWORK];
        if (w->queued) continue;
        queue_work(w, (int)(a % 11), (int)b, 0);
        break;
      }
      break;
    }
    case 17: ref(1); break;
    case 18: if (take(&s) & 1) ref(-1); break;
    case 19: if (!R->running) do_enter(); break;
    case 20: if (R->running) do_leave(); break;
    case 21: {
      unsigned phases = take(&s) % 16, a = take(&s);
      if (R->nhook < NHOOK) add_hook((int)phases, (int)a);
      break;
    }
    case 22: /* stop: it lasts until the next enter */
      if (take(&s) % 4 == 0) {
        csock_engine_stop(&R->e);
        R->stop = 1;
      }
      break;
    case 23: { /* a new fd: forgotten before its old one is closed */
      Fd *f = &R->fds[take(&s) % (unsigned)R->nfd];
      int kind = (int)(take(&s) % NKIND);
      do_forget(f);
      close(f->fd);
      close(f->peer);
      open_fd(f, kind);
      break;
    }
    case 24: check_timeout(); break;
    case 25: {
      int fd = csock_engine_pollfd(&R->e);
      CHECK(R->created == 1 && csock_engine_poller(&R->e) == R->poller);
      CHECK(R->epoll ? fd >= 0 : fd == -1);
      break;
    }
    }
    check_state();
  }
  stats.ops += (unsigned long)R->op;
  stats.closes++;

  /* Teardown: the hooks once, newest first, then the poller; every timer unset. */
  if (R->running && (take(&s) & 1)) do_leave();
  int expect_order[NHOOK], n = 0;
  for (int i = R->nhook - 1; i >= 0; i--)
    if (R->hooks[i].phases & CSOCK_HOOK_CLOSE) expect_order[n++] = i;
  R->closed = 1;
  R->in_close = 1;
  csock_engine_close(&R->e);
  R->in_close = 0;
  CHECK(csock_engine_closed(&R->e));
  CHECK(R->nclosed == n && memcmp(R->close_order, expect_order, sizeof(int) * (size_t)n) == 0);
  for (int i = 0; i < R->nhook; i++)
    if (R->hooks[i].phases & CSOCK_HOOK_CLOSE) R->hooks[i].expect[3] = 1;
  CHECK(R->destroyed == R->created && R->e.poller == NULL);
  R->qlen = 0; /* queued work is dropped */
  for (int i = 0; i < NWORK; i++) R->works[i].queued = 0;
  for (int i = 0; i < NTIMER; i++) {
    Timer *t = &R->timers[i];
    CHECK(!csock_timer_active(&t->t));
    csock_engine_canceltimer(&R->e, &t->t); /* harmless */
    t->set = 0;
    CHECK(csock_engine_settimer(&R->e, &t->t, 0) == -EBADF && !csock_timer_active(&t->t));
  }
  errno = 0;
  CHECK(csock_engine_poller(&R->e) == NULL && errno == EBADF);
  CHECK(csock_engine_pollfd(&R->e) == -1);
  CHECK(csock_engine_timeout(&R->e) == CSOCK_FOREVER);
  for (int i = 0; i < R->nfd; i++) {
    Fd *f = &R->fds[i];
    CHECK(csock_engine_watch(&R->e, &f->io, RD) == -EBADF);
    csock_engine_forget(&R->e, &f->io); /* a client torn down later */
    f->registered = f->want = 0;
  }
  check_state();
  csock_engine_close(&R->e); /* idempotent: no hook runs again */
  check_state();
  CHECK(R->created <= 1 && R->destroyed == R->created);
  for (int i = 0; i < R->nfd; i++) {
    close(R->fds[i].fd);
    close(R->fds[i].peer);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  run_program(data, size);
  return 0;
}

#ifdef ENGINE_MAIN
/* engine_test COUNT SEED: COUNT random programs, each on both backends.
 * engine_test -f FILE...: runs saved programs (a corpus, a reproducer). */
static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && strcmp(argv[1], "-f") == 0) {
    for (int i = 2; i < argc; i++) {
      static uint8_t buf[1 << 16];
      FILE *f = fopen(argv[i], "rb");
      if (f == NULL) {
        perror(argv[i]);
        return 2;
      }
      size_t n = fread(buf, 1, sizeof buf, f);
      fclose(f);
      cur_prog = buf;
      cur_len = n;
      LLVMFuzzerTestOneInput(buf, n);
    }
    printf("engine: %d files, ok\n", argc - 2);
    return 0;
  }
  if (argc != 3) {
    fprintf(stderr, "usage: %s COUNT SEED | -f FILE...\n", argv[0]);
    return 2;
  }
  long count = strtol(argv[1], NULL, 10);
  unsigned long long seed = strtoull(argv[2], NULL, 10);
  uint64_t x = seed;
  static uint8_t prog[1024];
  cur_prog = prog;
  cur_seed = seed;
  for (long i = 0; i < count; i++) {
    size_t len = 8 + splitmix(&x) % (sizeof prog - 8);
    for (size_t k = 0; k < len; k++) prog[k] = (uint8_t)splitmix(&x);
    cur_len = len;
    cur_index = i;
    for (int backend = 0; backend < 2; backend++) {
      prog[0] = (uint8_t)((prog[0] & ~1u) | (unsigned)backend);
      run_program(prog, len);
    }
  }
  printf("engine: %ld programs, both backends, ok\n", count);
  printf("engine: %lu runs, %lu ops, %lu polls, %lu io reports, %lu timer fires (%lu re-set inside), "
         "%lu work runs, %lu hook calls, %lu checks with the heap grown\n", stats.closes, stats.ops, stats.polls,
         stats.reports, stats.fires, stats.refires, stats.works, stats.hooks, stats.grown);
  return 0;
}
#endif
