/*
 * The loop's engine: the ready queue, waking and suspending tasks, socket
 * interest and coalesced output, and one turn of the loop (run what is
 * ready, flush output, poll, wake, fire timers). The Lua-facing calls are
 * in tasks.c; the poll backends behind poller.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "loop.h"

static const char loop_key = 'L';   /* registry key: its address */
static const char yield_tag = 'Y';  /* what csock's own yields carry */

csock_Loop *csock_getloop(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key);
  csock_Loop *loop = (csock_Loop *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return loop;
}

csock_Task *csock_current(csock_Loop *loop, lua_State *L) {
  csock_Task *t = loop ? loop->current : NULL;
  /* A coroutine the task made itself is not the task: it blocks instead. */
  if (t == NULL || t->co != L || !lua_isyieldable(L)) return NULL;
  return t;
}

void csock_schedule(csock_Task *t, int how) {
  csock_Loop *loop = t->loop;
  csock_heap_remove(&loop->heap, &t->deadline);
  t->wake = how;
  t->state = CSOCK_TASK_READY;
  t->next_ready = NULL;
  if (loop->ready_tail) loop->ready_tail->next_ready = t;
  else loop->ready_head = t;
  loop->ready_tail = t;
}

void csock_waitin(csock_Task *t, csock_Task **list) {
  t->wait_list = list;
  t->next_wait = NULL;
  if (list) { /* append: first come, first woken */
    while (*list) list = &(*list)->next_wait;
    *list = t;
  }
}

static void unlink_wait(csock_Task *t) {
  csock_Task **p = t->wait_list;
  t->waitsock = NULL;
  if (p == NULL) return;
  while (*p && *p != t) p = &(*p)->next_wait;
  if (*p) *p = t->next_wait;
  t->wait_list = NULL;
  t->next_wait = NULL;
}

int csock_wakeone(csock_Task **list, int how) {
  csock_Task *t = *list;
  if (t == NULL) return 0;
  *list = t->next_wait;
  t->wait_list = NULL;
  t->waitsock = NULL;
  t->next_wait = NULL;
  csock_schedule(t, how);
  return 1;
}

void csock_wakeall(csock_Task **list, int how) {
  while (csock_wakeone(list, how)) {}
}

int csock_suspend(lua_State *L, csock_Task *t, int64_t deadline, lua_KContext ctx, lua_KFunction k) {
  if (deadline >= 0 && csock_heap_set(&t->loop->heap, &t->deadline, deadline) < 0) {
    unlink_wait(t);
    return luaL_error(L, "not enough memory");
  }
  t->state = CSOCK_TASK_WAITING;
  lua_pushlightuserdata(L, (void *)&yield_tag);
  return lua_yieldk(L, 1, ctx, k);
}

/* Sockets ---------------------------------------------------------------- */

csock_BufPool *csock_pool(csock_Socket *s) {
  return s->loop && !s->loop->closed ? &s->loop->pool : NULL;
}

char *csock_recvspace(csock_Socket *s, size_t want, char **owned) {
  *owned = NULL;
  if (s->loop && !s->loop->scratch_busy && want <= CSOCK_SCRATCH) {
    char *space = csock_loopscratch(s->loop);
    if (space) return space;
  }
  return *owned = malloc(want ? want : 1);
}

char *csock_loopscratch(csock_Loop *loop) {
  if (loop->scratch == NULL) loop->scratch = (char *)malloc(CSOCK_SCRATCH);
  return loop->scratch;
}

void csock_rewatch(csock_Socket *s) {
  csock_Loop *loop = s->loop;
  if (loop == NULL || loop->closed || s->fd < 0) return;
  int want = (s->waiters[CSOCK_DIR_READ] ? CSOCK_WANT_READ : 0) |
             (s->waiters[CSOCK_DIR_WRITE] || s->flushing ? CSOCK_WANT_WRITE : 0);
  if (want == s->watch.watched) return; /* epoll's "both" covers any want: it returns at once */
  s->watch.fd = s->fd;
  int r = csock_loop_watch(loop, &s->watch, want);
  if (r < 0) { /* cannot watch: let the waiters retry and fail on their own */
    csock_wakeall(&s->waiters[CSOCK_DIR_READ], CSOCK_WOKE_READY);
    csock_wakeall(&s->waiters[CSOCK_DIR_WRITE], CSOCK_WOKE_READY);
  }
}

void csock_markdirty(csock_Socket *s) {
  csock_Loop *loop = s->loop;
  if (s->dirty_prev) return;
  s->dirty_next = loop->dirty;
  if (loop->dirty) loop->dirty->dirty_prev = &s->dirty_next;
  s->dirty_prev = &loop->dirty;
  loop->dirty = s;
}

static void unmark_dirty(csock_Socket *s) {
  if (s->dirty_prev == NULL) return;
  *s->dirty_prev = s->dirty_next;
  if (s->dirty_next) s->dirty_next->dirty_prev = s->dirty_prev;
  s->dirty_next = NULL;
  s->dirty_prev = NULL;
}

int csock_flushnow(csock_Socket *s) {
  while (csock_buf_len(&s->out) > 0) {
    ssize_t n = csock_sys_send(s->fd, csock_buf_head(&s->out), csock_buf_len(&s->out));
    if (n < 0) return (int)n;
    csock_buf_consume(&s->out, (size_t)n);
  }
  if (s->shut_after_flush) {
    shutdown(s->fd, s->shut_after_flush - 1);
    s->shut_after_flush = 0;
  }
  return 0;
}

/* The loop's flush of one socket: done, waiting for room, or failed. */
static void flush_socket(csock_Socket *s) {
  int r = csock_flushnow(s);
  int was = s->flushing;
  s->flushing = 0;
  if (r < 0 && csock_sys_again(r)) {
    s->flushing = 1; /* the rest goes when the kernel has room */
  } else {
    if (r < 0) s->out_err = -r;
    csock_buf_release(&s->out, csock_pool(s));
  }
  if (was != s->flushing) {
    s->loop->alive += s->flushing ? 1 : -1; /* output to send keeps the loop going */
    csock_rewatch(s);
  }
}

static void flush_dirty(csock_Loop *loop) {
  while (loop->dirty) {
    csock_Socket *s = loop->dirty;
    unmark_dirty(s);
    flush_socket(s);
  }
}

/* Orphans: closed sockets with output left ----------------------------------
 * close() never waits, yet output a task wrote must not be lost because the
 * kernel's buffer was full at that moment: the loop keeps the fd (not the
 * socket object) until the rest is sent, the peer fails, or ORPHAN_SECONDS
 * pass, then closes it. Until then the loop counts it as alive. */
#define ORPHAN_SECONDS 30

struct csock_Orphan {
  csock_Watch watch;          /* kind CSOCK_WATCH_ORPHAN */
  csock_HeapNode deadline;    /* kind CSOCK_HEAP_ORPHAN */
  csock_Buffer out;
  int shut, lingers;
  csock_Orphan *next, **prev;
};

static void orphan_end(csock_Loop *loop, csock_Orphan *o) {
  if (o->watch.watched) loop->ops->forget(loop->poller, &o->watch);
  csock_heap_remove(&loop->heap, &o->deadline);
  if (o->lingers) csock_sys_close_nolinger(o->watch.fd);
  else csock_sys_close(o->watch.fd);
  csock_buf_release(&o->out, &loop->pool);
  *o->prev = o->next;
  if (o->next) o->next->prev = o->prev;
  loop->alive--;
  free(o);
}

static void orphan_flush(csock_Loop *loop, csock_Orphan *o) {
  while (csock_buf_len(&o->out) > 0) {
    ssize_t n = csock_sys_send(o->watch.fd, csock_buf_head(&o->out), csock_buf_len(&o->out));
    if (n < 0 && csock_sys_again((int)n)) return; /* wait for room */
    if (n < 0) break; /* the peer is gone: nothing more to do */
    csock_buf_consume(&o->out, (size_t)n);
  }
  if (o->shut) shutdown(o->watch.fd, o->shut - 1);
  orphan_end(loop, o);
}

/* Takes s's fd and unsent output; 0 if it can't (then the caller closes). */
static int adopt(csock_Loop *loop, csock_Socket *s) {
  csock_Orphan *o = calloc(1, sizeof *o);
  if (o == NULL) return 0;
  if (s->watch.watched) loop->ops->forget(loop->poller, &s->watch);
  o->watch.fd = s->fd;
  o->watch.kind = CSOCK_WATCH_ORPHAN;
  o->deadline.index = -1;
  o->deadline.kind = CSOCK_HEAP_ORPHAN;
  if (csock_loop_watch(loop, &o->watch, CSOCK_WANT_WRITE) < 0 ||
      csock_heap_set(&loop->heap, &o->deadline, csock_sys_now() + (int64_t)ORPHAN_SECONDS * 1000000000) < 0) {
    if (o->watch.watched) loop->ops->forget(loop->poller, &o->watch);
    free(o);
    return 0;
  }
  o->out = s->out;
  memset(&s->out, 0, sizeof s->out);
  o->shut = s->shut_after_flush;
  o->lingers = s->lingers;
  o->next = loop->orphans;
  if (o->next) o->next->prev = &o->next;
  o->prev = &loop->orphans;
  loop->orphans = o;
  loop->alive++;
  return 1;
}

int csock_detach(csock_Socket *s) {
  csock_Loop *loop = s->loop;
  int adopted = 0;
  unmark_dirty(s);
  if (csock_buf_len(&s->out) > 0) { /* as far as it goes, never waiting */
    int r = csock_flushnow(s);
    if (r < 0 && csock_sys_again(r) && loop && !loop->closed) adopted = adopt(loop, s);
  }
  csock_buf_release(&s->out, csock_pool(s));
  if (s->borrowed) { /* a read that raised (out of memory) left the scratch lent */
    memset(&s->in, 0, sizeof s->in);
    s->borrowed = 0;
    if (loop) loop->scratch_busy = 0;
  }
  csock_buf_release(&s->in, csock_pool(s));
  if (s->flushing && loop) loop->alive--;
  s->flushing = 0;
  csock_wakeall(&s->waiters[CSOCK_DIR_READ], CSOCK_WOKE_CLOSED);
  csock_wakeall(&s->waiters[CSOCK_DIR_WRITE], CSOCK_WOKE_CLOSED);
  if (loop && !loop->closed && s->watch.watched) loop->ops->forget(loop->poller, &s->watch);
  return adopted;
}

/* Tasks ------------------------------------------------------------------ */

static void report(lua_State *L, csock_Loop *loop, int taskidx) {
  /* error message at -1 */
  if (loop->onerror != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->onerror);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, taskidx);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) return;
    fprintf(stderr, "csock: error in onerror handler: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (loop->errhook) {
    loop->errhook(L, lua_tostring(L, -1), loop->errhook_ud);
    return;
  }
  fprintf(stderr, "csock: error in task: %s\n", lua_tostring(L, -1));
  fflush(stderr);
}

static void close_thread(lua_State *co, lua_State *L) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  lua_closethread(co, L);
#else
  (void)L;
  lua_resetthread(co); /* closes its pending <close> variables */
#endif
}

/* The error at the top of co, with where it happened, pushed on L; then
 * co's stack is unwound (its <close> variables closed). */
static void pusherror(lua_State *L, lua_State *co) {
  const char *msg = lua_tostring(co, -1);
  if (msg == NULL) msg = lua_pushfstring(co, "(error object is a %s value)", luaL_typename(co, -1));
  luaL_traceback(L, co, msg, 0);
  close_thread(co, L);
}

/* A connection's task ended. Nobody can join it: its results go, and an
 * error goes to onerror with a stand-in task object. Its socket (which
 * holds t) is closed before the coroutine lets go of it. */
static void finish_conn(lua_State *L, csock_Task *t, int ok) {
  csock_Loop *loop = t->loop;
  if (!ok) pusherror(L, t->co);
  t->state = CSOCK_TASK_DONE;
  t->failed = !ok;
  loop->alive--;
  csock_conn_ended(t);
  csock_task_ended(L, t);
  if (!ok) {
    csock_pushfailedtask(L, loop);
    lua_insert(L, -2);
    report(L, loop, lua_gettop(L) - 1);
    lua_pop(L, 2);
  }
}

/* The task ended: keep its results (or error) for join, wake joiners. */
static void finish(lua_State *L, csock_Task *t, int ok, int nres) {
  if (t->is_conn) {
    finish_conn(L, t, ok);
    return;
  }
  csock_Loop *loop = t->loop;
  lua_State *co = t->co;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref); /* the task's object */
  int taskidx = lua_gettop(L);
  if (ok && !lua_checkstack(L, nres + 2)) { /* results that cannot be moved */
    lua_settop(co, 0);
    lua_pushliteral(co, "too many results to return from a task");
    ok = 0;
  }
  if (ok) {
    lua_createtable(L, nres, 1);
    lua_xmove(co, L, nres);
    for (int i = nres; i >= 1; i--) lua_rawseti(L, taskidx + 1, i);
    lua_pushinteger(L, nres);
    lua_setfield(L, -2, "n");
  } else {
    pusherror(L, co);
    t->failed = 1;
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, taskidx, 1);
  t->state = CSOCK_TASK_DONE;
  loop->alive--;
  int joined = t->awaited || t->u.joiners != NULL;
  csock_wakeall(&t->u.joiners, CSOCK_WOKE_READY);
  if (t->failed) { /* the error at -1 */
    if (t->is_main) {
      loop->main_error = luaL_ref(L, LUA_REGISTRYINDEX);
      loop->stop = 1;
    } else if (!joined) {
      report(L, loop, taskidx);
    }
  }
  csock_task_ended(L, t);
  lua_settop(L, taskidx - 1);
}

static void run_task(lua_State *L, csock_Loop *loop, csock_Task *t) {
  lua_State *co = t->co;
  int nargs = t->nargs, nres;
  if (nargs < 0) {
    lua_pushinteger(co, t->wake);
    nargs = 1;
  }
  t->nargs = -1;
  t->state = CSOCK_TASK_RUNNING;
  loop->current = t;
  int st = lua_resume(co, L, nargs, &nres);
  loop->current = NULL;
  if (st == LUA_YIELD) {
    if (nres == 1 && lua_touserdata(co, -1) == &yield_tag) {
      lua_pop(co, 1); /* it is waiting where it said */
      return;
    }
    lua_pop(co, nres);
    lua_pushliteral(co, "coroutine.yield called directly in a csock task "
                        "(use csock.sleep(0) to let other tasks run)");
    st = LUA_ERRRUN;
  }
  finish(L, t, st == LUA_OK, nres);
}

static void run_ready(lua_State *L, csock_Loop *loop) {
  while (loop->ready_head && !loop->stop) {
    csock_Task *t = loop->ready_head;
    loop->ready_head = t->next_ready;
    if (loop->ready_head == NULL) loop->ready_tail = NULL;
    t->next_ready = NULL;
    run_task(L, loop, t);
  }
}

static void expire(lua_State *L, csock_Loop *loop) {
  int64_t now = csock_sys_now();
  csock_HeapNode *node;
  while ((node = csock_heap_top(&loop->heap)) != NULL && node->when <= now) {
    csock_heap_remove(&loop->heap, node);
    if (node->kind == CSOCK_HEAP_TASK) {
      csock_Task *t = (csock_Task *)node; /* the node is the task's first member */
      int how = t->wait_list ? CSOCK_WOKE_TIMEOUT : CSOCK_WOKE_READY; /* a sleep just ends */
      csock_Socket *s = t->waitsock;
      unlink_wait(t);
      csock_schedule(t, how);
      if (s) csock_rewatch(s);
    } else if (node->kind == CSOCK_HEAP_ORPHAN) { /* gave up sending */
      orphan_end(loop, (csock_Orphan *)((char *)node - offsetof(csock_Orphan, deadline)));
    } else {
      csock_fire_timer(L, loop, node);
    }
  }
}

static void dispatch(lua_State *L, csock_Loop *loop, int n) {
  for (int i = 0; i < n; i++) {
    csock_Watch *w = loop->events[i].watch;
    int ev = loop->events[i].events;
    if (w->kind == CSOCK_WATCH_WAKEUP) {
      csock_resolve_done(loop);
      continue;
    }
    if (w->kind == CSOCK_WATCH_SIGNAL) {
      csock_signal_dispatch(L, loop);
      continue;
    }
    if (w->kind == CSOCK_WATCH_FD) {
      csock_FdWatch *fw = (csock_FdWatch *)w;
      if (ev & fw->want) csock_wakeall(&fw->waiters, CSOCK_WOKE_READY);
      continue;
    }
    if (w->kind == CSOCK_WATCH_ORPHAN) {
      orphan_flush(loop, (csock_Orphan *)w);
      continue;
    }
    csock_Socket *s = (csock_Socket *)((char *)w - offsetof(csock_Socket, watch));
    if (ev & CSOCK_EVENT_HUP) s->hup = 1; /* an EOF that came with the last bytes sends no new edge */
    if (ev & CSOCK_WANT_READ) {
      s->drained = 0; /* new bytes (or EOF, or an error) to read */
      if (s->waiters[CSOCK_DIR_READ]) csock_wakeall(&s->waiters[CSOCK_DIR_READ], CSOCK_WOKE_READY);
    }
    if (ev & CSOCK_WANT_WRITE) {
      if (s->waiters[CSOCK_DIR_WRITE]) csock_wakeall(&s->waiters[CSOCK_DIR_WRITE], CSOCK_WOKE_READY);
      if (s->flushing) flush_socket(s);
    }
    csock_rewatch(s);
  }
}

void csock_loop_enter(csock_Loop *loop) {
  loop->running = 1;
  loop->stop = 0;
  csock_signals_hold(loop);
  /* The poller's fd before any task runs: a server that accepts up to its
   * fd limit must not be left unable to make it. Failing here is left to
   * the first wait, which reports it. */
  (void)csock_loop_poller(loop);
}

void csock_loop_leave(csock_Loop *loop) {
  csock_signals_release(loop);
  loop->running = 0;
}

int64_t csock_loop_timeout(csock_Loop *loop) {
  if (loop->ready_head || loop->dirty) return 0;
  csock_HeapNode *top = csock_heap_top(&loop->heap);
  if (top == NULL) return -1;
  int64_t left = top->when - csock_sys_now();
  return left < 0 ? 0 : left;
}

int csock_loop_step(lua_State *L, csock_Loop *loop, int64_t timeout_ns) {
  run_ready(L, loop);
  flush_dirty(loop);
  if (loop->stop || loop->alive == 0) return 0; /* nothing could wake a wait */
  int64_t needed = csock_loop_timeout(loop);
  if (needed >= 0 && (timeout_ns < 0 || needed < timeout_ns)) timeout_ns = needed;
  int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000 > 0x7fffffff ? 0x7fffffff : (timeout_ns + 999999) / 1000000);
  if (csock_loop_poller(loop) == NULL) return -errno;
  int n = loop->ops->wait(loop->poller, loop->events, CSOCK_LOOP_EVENTS, ms);
  if (n < 0) return n;
  dispatch(L, loop, n);
  expire(L, loop);
  run_ready(L, loop);
  flush_dirty(loop);
  return 0;
}

/* The loop object ----------------------------------------------------------- */

/* The poller and the resolver's eventfd are made when first needed (the
 * poller when the loop starts: csock_loop_enter), not by require "csock":
 * a script that only makes blocking calls never needs either, and making
 * and closing them was a tenth of its start-up. */
csock_Poller *csock_loop_poller(csock_Loop *loop) {
  if (loop->poller) return loop->poller;
  if (loop->closed) {
    errno = EBADF;
    return NULL;
  }
  int err = 0;
  csock_Poller *p = loop->ops->create(&err);
  if (p == NULL) {
    errno = err;
    return NULL;
  }
  if (loop->wakeup.fd >= 0) {
    int r = loop->ops->watch(p, &loop->wakeup, CSOCK_WANT_READ);
    if (r < 0) {
      loop->ops->destroy(p);
      errno = -r;
      return NULL;
    }
  }
  return loop->poller = p;
}

int csock_loop_watch(csock_Loop *loop, csock_Watch *w, int want) {
  if (csock_loop_poller(loop) == NULL) return -errno;
  return loop->ops->watch(loop->poller, w, want);
}

int csock_loop_wakeup(csock_Loop *loop) {
  if (loop->wakeup.fd >= 0) return 0;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return -errno;
  loop->wakeup.fd = fd;
  if (loop->poller) { /* else csock_loop_poller watches it */
    int r = loop->ops->watch(loop->poller, &loop->wakeup, CSOCK_WANT_READ);
    if (r < 0) {
      close(fd);
      loop->wakeup.fd = -1;
      return r;
    }
  }
  return 0;
}

static int loop_gc(lua_State *L) {
  csock_Loop *loop = (csock_Loop *)lua_touserdata(L, 1);
  if (loop->closed) return 0;
  csock_resolve_drain(loop);
  csock_signal_close(loop);
  csock_conns_close(loop); /* first: their output may become orphans */
  while (loop->orphans) orphan_end(loop, loop->orphans);
  if (loop->wakeup.fd >= 0) {
    if (loop->wakeup.watched) loop->ops->forget(loop->poller, &loop->wakeup);
    close(loop->wakeup.fd);
  }
  if (loop->poller) loop->ops->destroy(loop->poller);
  loop->poller = NULL;
  loop->closed = 1;
  csock_heap_free(&loop->heap);
  csock_pool_free(&loop->pool);
  free(loop->scratch);
  loop->scratch = NULL;
  pthread_mutex_destroy(&loop->lock);
  pthread_cond_destroy(&loop->idle);
  return 0;
}

/* Makes this state's loop once; later loads of the module find it. */
void csock_open_loop(lua_State *L) {
  if (csock_getloop(L) != NULL) return;
  const char *name = getenv("CSOCK_BACKEND");
  const csock_PollerOps *ops = csock_poller_find(name && *name ? name : NULL);
  if (ops == NULL) luaL_error(L, "CSOCK_BACKEND: unknown poll backend '%s' (epoll, poll)", name);
  csock_Loop *loop = (csock_Loop *)lua_newuserdatauv(L, sizeof *loop, 0);
  memset(loop, 0, offsetof(csock_Loop, spare));
  loop->ops = ops;
  loop->main_error = loop->onerror = LUA_NOREF;
  loop->socket_mt = loop->conn_mt = loop->task_mt = loop->threads = LUA_NOREF;
  loop->wakeup.fd = -1;
  loop->wakeup.kind = CSOCK_WATCH_WAKEUP;
  loop->signals.fd = -1;
  loop->signals.kind = CSOCK_WATCH_SIGNAL;
  sigemptyset(&loop->handled);
  pthread_mutex_init(&loop->lock, NULL);
  pthread_cond_init(&loop->idle, NULL);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &loop_key);
}
