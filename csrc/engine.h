/*
 * The engine: the event loop underneath csock, Lua-free. It owns the
 * poller, the deadline heap and the ready queue, and knows nothing of
 * what uses them: whoever waits registers a watch (csock_Io: an fd and
 * the function to call when it is ready), a timer (csock_Timer: a
 * deadline and the function to call when it passes), a piece of work to
 * run at this turn's end (csock_Work), or a hook on the engine's own
 * phases (csock_Hook: entering and leaving a run, each turn before it
 * polls, and teardown), and keeps its own state in its own struct.
 *
 * One turn (csock_engine_step): run the ready queue until it is empty;
 * call the before-poll hooks; poll, for at most the time until the next
 * timer; call the ready function of every watch the poller reported;
 * fire the timers whose deadline passed; run the ready queue and the
 * before-poll hooks again.
 *
 * The rule that makes this safe: io, timer and hook functions must not
 * end another client's watch or timer (a report for it may follow in the
 * same turn). They record what happened and queue work; work runs from
 * the ready queue, where anything goes.
 *
 * The engine lives in memory its owner provides and never frees it:
 * csock_engine_close releases what the engine made (poller, heap) after
 * the teardown hooks ran, and leaves the struct readable, so a client
 * torn down later still sees csock_engine_closed.
 */
#ifndef CSOCK_ENGINE_H
#define CSOCK_ENGINE_H

#include <stdint.h>

#include "heap.h"
#include "poller.h"

#define CSOCK_ENGINE_EVENTS 256 /* readiness reports taken per poll */

typedef struct csock_Engine csock_Engine;

/* A deadline; fire runs once it passes (the timer is then unset). */
typedef struct csock_Timer csock_Timer;
struct csock_Timer {
  csock_HeapNode node; /* first */
  void (*fire)(csock_Timer *t);
};

/* Work for the ready queue: run is called once, in queue order. */
typedef struct csock_Work csock_Work;
struct csock_Work {
  csock_Work *next;
  void (*run)(csock_Work *w);
};

/* The engine's phases a hook may ask for (a mask). */
enum {
  CSOCK_HOOK_ENTER = 1,      /* a run or a step begins */
  CSOCK_HOOK_BEFOREPOLL = 2, /* each turn, once the ready queue is empty, before polling */
  CSOCK_HOOK_LEAVE = 4,      /* a run or a step ends */
  CSOCK_HOOK_CLOSE = 8       /* teardown: in the reverse order of csock_engine_hook */
};
typedef struct csock_Hook csock_Hook;
struct csock_Hook {
  csock_Hook *next;
  int phases;
  int due;   /* its owner's: it has work for the next before-poll phase */
  void (*fn)(csock_Hook *h, int phase);
};

struct csock_Engine {
  const csock_PollerOps *ops;
  csock_Poller *poller; /* made when first needed: a script that never waits never makes one */
  int closed;
  int running;          /* between csock_engine_enter and _leave */
  int stop;             /* csock_engine_stop was called: the current run ends */
  int alive;            /* what keeps a run going (csock_engine_ref) */
  csock_Heap heap;
  csock_Work *ready, **ready_tail;
  csock_Hook *hooks;    /* most recently added first */
  csock_Ready events[CSOCK_ENGINE_EVENTS]; /* last, and never cleared: untouched until a poll */
};

/* Prepares e (no system call, no allocation). */
void csock_engine_init(csock_Engine *e, const csock_PollerOps *ops);
/* Marks e closed, runs the teardown hooks, then releases the poller and
 * the heap. Idempotent. */
void csock_engine_close(csock_Engine *e);
static inline int csock_engine_closed(const csock_Engine *e) { return e->closed; }

/* The poller, made if need be; NULL (errno set) if it cannot be or e is closed. */
csock_Poller *csock_engine_poller(csock_Engine *e);
/* The poller's own fd (epoll's), or -1 (poll(2), or no poller). */
int csock_engine_pollfd(csock_Engine *e);

/* Makes io reported for (at least) `want`, 0 for nothing: 0 or -errno. */
int csock_engine_watch_slow(csock_Engine *e, csock_Io *io, int want);
static inline int csock_engine_watch(csock_Engine *e, csock_Io *io, int want) {
  return e->poller ? e->ops->watch(e->poller, io, want) : csock_engine_watch_slow(e, io, want);
}
/* Drops io from the poller; call before its fd is closed. */
static inline void csock_engine_forget(csock_Engine *e, csock_Io *io) {
  if (io->watched && e->poller) e->ops->forget(e->poller, io);
  io->watched = 0;
}

static inline void csock_timer_init(csock_Timer *t, void (*fire)(csock_Timer *)) {
  t->node.index = -1;
  t->fire = fire;
}
static inline int csock_timer_active(const csock_Timer *t) { return t->node.index >= 0; }
/* Sets (or moves) t to fire at `when`: 0, or -ENOMEM (t is then unset). */
int csock_engine_settimer(csock_Engine *e, csock_Timer *t, int64_t when);
static inline void csock_engine_canceltimer(csock_Engine *e, csock_Timer *t) {
  if (t->node.index >= 0) csock_heap_remove(&e->heap, &t->node); /* close unsets them all */
}

/* Queues w to run at this turn's end (FIFO); w must not be queued already. */
static inline void csock_engine_queue(csock_Engine *e, csock_Work *w) {
  w->next = NULL;
  *e->ready_tail = w;
  e->ready_tail = &w->next;
}
/* Queues w to run next, before what is queued already. */
static inline void csock_engine_queuefront(csock_Engine *e, csock_Work *w) {
  w->next = e->ready;
  if (e->ready == NULL) e->ready_tail = &w->next;
  e->ready = w;
}

/* Adds h, to be called with each of `phases` (a mask of CSOCK_HOOK_*).
 * Hooks are never removed: teardown ends them. */
void csock_engine_hook(csock_Engine *e, csock_Hook *h, int phases, void (*fn)(csock_Hook *, int));

/* What keeps a run going: a task not yet done, a timer set, output still
 * to send. A run ends when nothing is left (or on csock_engine_stop). */
static inline void csock_engine_ref(csock_Engine *e, int n) { e->alive += n; }
static inline void csock_engine_stop(csock_Engine *e) { e->stop = 1; }

/* Around a run or a step: the poller is made before anything runs (a
 * server that accepts up to its fd limit must not be left unable to make
 * it; a failure here is left to the first poll), then the enter hooks
 * run; the leave hooks run at the end. */
void csock_engine_enter(csock_Engine *e);
void csock_engine_leave(csock_Engine *e);

/* Nanoseconds until the engine needs a turn without fd activity: 0 when
 * work is queued or a hook is due, the time to the next timer, or
 * CSOCK_FOREVER. */
int64_t csock_engine_timeout(const csock_Engine *e);
/* One turn, polling at most timeout_ns (CSOCK_FOREVER: as long as
 * needed); no poll at all once nothing is alive or stop was called.
 * Returns 0, or -errno when polling failed. */
int csock_engine_step(csock_Engine *e, int64_t timeout_ns);

#endif
