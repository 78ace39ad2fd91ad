/* The engine (see engine.h). No Lua here. */
#include "engine.h"

#include <errno.h>
#include <string.h>

void csock_engine_init(csock_Engine *e, const csock_PollerOps *ops) {
  memset(e, 0, offsetof(csock_Engine, events));
  e->ops = ops;
  e->ready_tail = &e->ready;
}

static void run_hooks(csock_Engine *e, int phase) {
  for (csock_Hook *h = e->hooks; h != NULL; h = h->next)
    if (h->phases & phase) h->fn(h, phase);
}

void csock_engine_close(csock_Engine *e) {
  if (e->closed) return;
  e->closed = 1;
  run_hooks(e, CSOCK_HOOK_CLOSE); /* newest first: a client goes before what it uses */
  if (e->poller) e->ops->destroy(e->poller);
  e->poller = NULL;
  for (int i = 0; i < e->heap.n; i++) e->heap.nodes[i]->index = -1; /* unset, for who cancels later */
  csock_heap_free(&e->heap);
  e->ready = NULL;
  e->ready_tail = &e->ready;
}

csock_Poller *csock_engine_poller(csock_Engine *e) {
  if (e->poller) return e->poller;
  if (e->closed) {
    errno = EBADF;
    return NULL;
  }
  int err = 0;
  e->poller = e->ops->create(&err);
  if (e->poller == NULL) errno = err;
  return e->poller;
}

int csock_engine_pollfd(csock_Engine *e) {
  return csock_engine_poller(e) ? e->ops->fd(e->poller) : -1;
}

int csock_engine_watch_slow(csock_Engine *e, csock_Io *io, int want) {
  if (csock_engine_poller(e) == NULL) return -errno;
  return e->ops->watch(e->poller, io, want);
}

int csock_engine_settimer(csock_Engine *e, csock_Timer *t, int64_t when) {
  if (e->closed) return -EBADF;
  return csock_heap_set(&e->heap, &t->node, when);
}


void csock_engine_hook(csock_Engine *e, csock_Hook *h, int phases, void (*fn)(csock_Hook *, int)) {
  h->phases = phases;
  h->due = 0;
  h->fn = fn;
  h->next = e->hooks;
  e->hooks = h;
}

void csock_engine_enter(csock_Engine *e) {
  e->running = 1;
  e->stop = 0;
  (void)csock_engine_poller(e);
  run_hooks(e, CSOCK_HOOK_ENTER);
}

void csock_engine_leave(csock_Engine *e) {
  run_hooks(e, CSOCK_HOOK_LEAVE);
  e->running = 0;
}

int64_t csock_engine_timeout(const csock_Engine *e) {
  if (e->ready) return 0;
  for (const csock_Hook *h = e->hooks; h != NULL; h = h->next)
    if (h->due) return 0;
  csock_HeapNode *top = csock_heap_top(&e->heap);
  if (top == NULL) return CSOCK_FOREVER;
  int64_t left = top->when - csock_sys_now();
  return left < 0 ? 0 : left;
}

/* Runs queued work, including what it queues, until none is left or stop. */
static void run_ready(csock_Engine *e) {
  while (e->ready && !e->stop) {
    csock_Work *w = e->ready;
    e->ready = w->next;
    if (e->ready == NULL) e->ready_tail = &e->ready;
    w->next = NULL;
    w->run(w);
  }
}

static void expire(csock_Engine *e) {
  int64_t now = csock_sys_now();
  csock_HeapNode *node;
  while ((node = csock_heap_top(&e->heap)) != NULL && node->when <= now) {
    csock_heap_remove(&e->heap, node);
    csock_Timer *t = (csock_Timer *)node; /* the node is the timer's first member */
    t->fire(t);
  }
}

int csock_engine_step(csock_Engine *e, int64_t timeout_ns) {
  run_ready(e);
  if (e->closed) return 0; /* work closed it: its hooks are over */
  run_hooks(e, CSOCK_HOOK_BEFOREPOLL);
  if (e->stop || e->alive == 0) return 0; /* nothing could end a poll */
  int64_t needed = csock_engine_timeout(e);
  if (needed >= 0 && (timeout_ns < 0 || needed < timeout_ns)) timeout_ns = needed;
  if (csock_engine_poller(e) == NULL) return -errno;
  int n = e->ops->wait(e->poller, e->events, CSOCK_ENGINE_EVENTS, csock_sys_ms(timeout_ns));
  if (n < 0) return n;
  for (int i = 0; i < n; i++) e->events[i].io->ready(e->events[i].io, e->events[i].events);
  expire(e);
  run_ready(e);
  if (!e->closed) run_hooks(e, CSOCK_HOOK_BEFOREPOLL);
  return 0;
}
