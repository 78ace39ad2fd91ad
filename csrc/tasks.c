/*
 * Tasks (see tasks.h): the scheduler, and a task's life: started,
 * resumed, suspended, woken, finished, its outcome kept or its error
 * reported. What Lua calls (csock.spawn, task:join...) is in run.c.
 */
#include <stdio.h>
#include <string.h>

#include "tasks.h"

typedef struct csock_SpareThread {
  lua_State *co;
  int slot; /* in the threads table, which keeps it */
} csock_SpareThread;

struct csock_Sched {
  csock_SchedHead head;  /* first: the running task, the engine */
  lua_State *L;          /* resumes tasks during a run or a step */
  int main_error;        /* registry ref of csock.run's task's error, or LUA_NOREF */
  int onerror;           /* registry ref of csock.onerror's handler, or LUA_NOREF */
  int task_mt;           /* registry ref of the task metatable */
  int threads;           /* registry ref of the table of every coroutine made, running or spare */
  csock_ErrorHook errhook;
  void *errhook_ud;
  int nspare;
  /* Last, and not cleared: untouched until tasks end. */
  csock_SpareThread spare[CSOCK_KEEP_THREADS];
};

static const char sched_key = 'T';  /* registry key: its address */
static const char yield_tag = 'Y';  /* what csock's own yields carry */

csock_Sched *csock_getsched(lua_State *L) {
  return (csock_Sched *)csock_statedata(L, &sched_key);
}


/* Waking ------------------------------------------------------------------- */

static void schedule(csock_Task *t, int how) {
  csock_engine_canceltimer(t->sched->head.engine, &t->timer);
  t->wake = how;
  t->state = CSOCK_TASK_READY;
  csock_engine_queue(t->sched->head.engine, &t->work);
}

void csock_task_waitin(csock_Task *t, csock_Task **list) {
  t->wait_list = list;
  t->next_wait = NULL;
  if (list) { /* append: first come, first woken */
    while (*list) list = &(*list)->next_wait;
    *list = t;
  }
}

void csock_task_cancelwait(csock_Task *t) {
  csock_Task **p = t->wait_list;
  if (p == NULL) return;
  while (*p && *p != t) p = &(*p)->next_wait;
  if (*p) *p = t->next_wait;
  t->wait_list = NULL;
  t->next_wait = NULL;
}

int csock_task_wakeone(csock_Task **list, int how) {
  csock_Task *t = *list;
  if (t == NULL) return 0;
  *list = t->next_wait;
  t->wait_list = NULL;
  t->next_wait = NULL;
  schedule(t, how);
  return 1;
}

void csock_task_wakeall(csock_Task **list, int how) {
  while (csock_task_wakeone(list, how)) {}
}

/* The wait's deadline passed: out of its list, woken with "timeout" (a
 * plain sleep, in no list, just ends). Whoever owns the list finds out
 * lazily: a socket stops watching at its next readiness report. */
static void timed_out(csock_Timer *timer) {
  csock_Task *t = (csock_Task *)((char *)timer - offsetof(csock_Task, timer));
  int how = t->wait_list ? CSOCK_WOKE_TIMEOUT : CSOCK_WOKE_READY;
  csock_task_cancelwait(t);
  schedule(t, how);
}

int csock_task_suspend(lua_State *L, csock_Task *t, int64_t deadline, lua_KContext ctx,
                       lua_KFunction k) {
  if (deadline >= 0 && csock_engine_settimer(t->sched->head.engine, &t->timer, deadline) < 0) {
    csock_task_cancelwait(t);
    return luaL_error(L, "not enough memory");
  }
  t->state = CSOCK_TASK_WAITING;
  lua_pushlightuserdata(L, (void *)&yield_tag);
  return lua_yieldk(L, 1, ctx, k);
}

int csock_task_woke(lua_State *L) {
  int how = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return how;
}

/* Coroutines ---------------------------------------------------------------
 * Every coroutine csock made is in the threads table at a slot of its own,
 * running a task or idle. The idle ones are also listed in spare, so
 * starting and ending a task usually touch no table at all. */

static lua_State *takethread(lua_State *L, csock_Sched *sched, int *slot) {
  if (sched->nspare > 0) {
    csock_SpareThread *e = &sched->spare[--sched->nspare];
    *slot = e->slot;
    return e->co;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, sched->threads);
  lua_State *co = lua_newthread(L);
  *slot = luaL_ref(L, -2);
  lua_pop(L, 1);
  return co;
}

/* A finished coroutine (its stack unwound, <close> variables closed) is
 * kept for the next task; a failed one, or one too many, is let go. */
static void dropthread(lua_State *L, csock_Sched *sched, lua_State *co, int slot) {
  if (lua_status(co) == LUA_OK && sched->nspare < CSOCK_KEEP_THREADS) {
    lua_settop(co, 0);
    sched->spare[sched->nspare].co = co;
    sched->spare[sched->nspare++].slot = slot;
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, sched->threads);
  luaL_unref(L, -1, slot);
  lua_pop(L, 1);
}

static void close_thread(lua_State *co, lua_State *L) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  lua_closethread(co, L);
#else
  (void)L;
  lua_resetthread(co); /* closes its pending <close> variables */
#endif
}

/* Starting ------------------------------------------------------------------ */

static void run_task(csock_Work *w);

void csock_task_init(csock_Task *t, csock_Sched *sched, void (*ended)(lua_State *, csock_Task *, int)) {
  memset(t, 0, sizeof *t);
  t->work.run = run_task;
  csock_timer_init(&t->timer, timed_out);
  t->sched = sched;
  t->ref = LUA_NOREF;
  t->embedded = ended != NULL;
  if (ended) t->u.ended = ended;
}

/* Starts t (see csock_task_start): queued last, or next. */
static void start(lua_State *L, csock_Task *t, int nargs, int next) {
  csock_Sched *sched = t->sched;
  int base = lua_gettop(L) - nargs - 1; /* the task's object, then fn, args... */
  lua_State *co = takethread(L, sched, &t->slot);
  if (!lua_checkstack(co, nargs + 2)) {
    dropthread(L, sched, co, t->slot);
    luaL_error(L, "too many arguments for a task");
  }
  lua_pushvalue(L, base);
  if (t->embedded)       /* below the function on the coroutine's own stack, */
    lua_xmove(L, co, 1); /* which the threads table keeps while the task runs */
  else
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_xmove(L, co, nargs + 1);
  t->co = co;
  t->nargs = nargs;
  csock_engine_ref(sched->head.engine, 1);
  t->wake = CSOCK_WOKE_READY;
  t->state = CSOCK_TASK_READY;
  if (next) csock_engine_queuefront(sched->head.engine, &t->work);
  else csock_engine_queue(sched->head.engine, &t->work);
}

void csock_task_start(lua_State *L, csock_Task *t, int nargs) {
  start(L, t, nargs, 0);
}

/* A task object (user value: the outcome, once done), pushed. */
static csock_Task *pushtask(lua_State *L, csock_Sched *sched) {
  csock_Task *t = (csock_Task *)lua_newuserdatauv(L, sizeof *t, 1);
  csock_task_init(t, sched, NULL);
  lua_rawgeti(L, LUA_REGISTRYINDEX, sched->task_mt);
  lua_setmetatable(L, -2);
  return t;
}

static csock_Task *spawn(lua_State *L, csock_Sched *sched, int nargs, int next) {
  int base = lua_gettop(L) - nargs; /* the function */
  csock_Task *t = pushtask(L, sched);
  lua_insert(L, base);              /* task, fn, args... */
  start(L, t, nargs, next);
  return t;
}

csock_Task *csock_task_spawn(lua_State *L, csock_Sched *sched, int nargs) {
  return spawn(L, sched, nargs, 0);
}

csock_Task *csock_task_spawnnext(lua_State *L, csock_Sched *sched, int nargs) {
  return spawn(L, sched, nargs, 1);
}

/* Ending ---------------------------------------------------------------------- */

/* The error (message at -1) of a task nobody joins; taskidx: its object. */
static void report(lua_State *L, csock_Sched *sched, int taskidx) {
  if (sched->onerror != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, sched->onerror);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, taskidx);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) return;
    fprintf(stderr, "csock: error in onerror handler: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (sched->errhook) {
    sched->errhook(L, lua_tostring(L, -1), sched->errhook_ud);
    return;
  }
  fprintf(stderr, "csock: error in task: %s\n", lua_tostring(L, -1));
  fflush(stderr);
}

/* The error at the top of co, with where it happened, pushed on L; then
 * co's stack is unwound (its <close> variables closed). */
static void pusherror(lua_State *L, lua_State *co) {
  const char *msg = lua_tostring(co, -1);
  if (msg == NULL) msg = lua_pushfstring(co, "(error object is a %s value)", luaL_typename(co, -1));
  luaL_traceback(L, co, msg, 0);
  close_thread(co, L);
}

/* Lets go of a finished task's object and keeps its coroutine for reuse;
 * an embedded task may be freed by then. */
static void release(lua_State *L, csock_Task *t) {
  lua_State *co = t->co;
  csock_Sched *sched = t->sched;
  int slot = t->slot;
  t->co = NULL;
  if (t->ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
    t->ref = LUA_NOREF;
  }
  dropthread(L, sched, co, slot); /* last: it may hold the object t lives in */
}

/* An embedded task ended: its owner is told; an error goes to onerror with
 * a stand-in task object (a done, failed task holding the error). The
 * object t lives in is held on L's stack meanwhile: unwinding the
 * coroutine, and giving it back, let go of the copy at its bottom. */
static void finish_embedded(lua_State *L, csock_Task *t, int ok) {
  csock_Sched *sched = t->sched;
  lua_pushvalue(t->co, 1);
  lua_xmove(t->co, L, 1);
  if (!ok) pusherror(L, t->co);
  t->state = CSOCK_TASK_DONE;
  t->failed = !ok;
  csock_engine_ref(sched->head.engine, -1);
  t->u.ended(L, t, ok);
  release(L, t);
  if (!ok) {
    csock_Task *standin = pushtask(L, sched);
    standin->state = CSOCK_TASK_DONE;
    standin->failed = 1;
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 1);
    lua_insert(L, -2);
    report(L, sched, lua_gettop(L) - 1);
    lua_pop(L, 2);
  }
  lua_pop(L, 1); /* the object: t may be collected from here on */
}

/* The task ended: keep its results (or error) for join, wake joiners. */
static void finish(lua_State *L, csock_Task *t, int ok, int nres) {
  if (t->embedded) {
    finish_embedded(L, t, ok);
    return;
  }
  csock_Sched *sched = t->sched;
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
  csock_engine_ref(sched->head.engine, -1);
  int joined = t->awaited || t->u.joiners != NULL;
  csock_task_wakeall(&t->u.joiners, CSOCK_WOKE_READY);
  if (t->failed) { /* the error at -1 */
    if (t->is_main) {
      sched->main_error = luaL_ref(L, LUA_REGISTRYINDEX);
      csock_engine_stop(sched->head.engine);
    } else if (!joined) {
      report(L, sched, taskidx);
    }
  }
  release(L, t);
  lua_settop(L, taskidx - 1);
}

/* The engine's work for a ready task: resume it. */
static void run_task(csock_Work *w) {
  csock_Task *t = (csock_Task *)w; /* work is the task's first member */
  csock_Sched *sched = t->sched;
  lua_State *L = sched->L, *co = t->co;
  int nargs = t->nargs, nres;
  if (nargs < 0) {
    lua_pushinteger(co, t->wake);
    nargs = 1;
  }
  t->nargs = -1;
  t->state = CSOCK_TASK_RUNNING;
  sched->head.current = t;
  int st = lua_resume(co, L, nargs, &nres);
  sched->head.current = NULL;
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

/* The loop's driver ------------------------------------------------------------ */

void csock_sched_enter(csock_Sched *sched, lua_State *L) { sched->L = L; }
void csock_sched_leave(csock_Sched *sched) { sched->L = NULL; }
lua_State *csock_sched_state(csock_Sched *sched) { return sched->L; }

int csock_sched_mainerror(lua_State *L, csock_Sched *sched) {
  if (sched->main_error == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, sched->main_error);
  luaL_unref(L, LUA_REGISTRYINDEX, sched->main_error);
  sched->main_error = LUA_NOREF;
  return 1;
}

void csock_sched_seterrhook(csock_Sched *sched, csock_ErrorHook hook, void *ud) {
  sched->errhook = hook;
  sched->errhook_ud = ud;
}

/* Task objects: their outcome ---------------------------------------------------- */

csock_Task *csock_checktask(lua_State *L, int idx) {
  return (csock_Task *)luaL_checkudata(L, idx, CSOCK_TASK_MT);
}

int csock_task_pushoutcome(lua_State *L, int idx) {
  csock_Task *t = csock_checktask(L, idx);
  lua_getiuservalue(L, idx, 1);
  if (t->failed) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  int n = (int)(lua_getfield(L, -1, "n"), lua_tointeger(L, -1));
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  int tbl = lua_gettop(L);
  for (int i = 1; i <= n; i++) lua_rawgeti(L, tbl, i);
  return n;
}

void csock_sched_setonerror(lua_State *L, csock_Sched *sched) {
  luaL_unref(L, LUA_REGISTRYINDEX, sched->onerror);
  sched->onerror = lua_isnil(L, -1) ? (lua_pop(L, 1), LUA_NOREF) : luaL_ref(L, LUA_REGISTRYINDEX);
}

csock_Sched *csock_sched_new(lua_State *L, csock_Engine *engine) {
  csock_Sched *sched = csock_getsched(L);
  if (sched != NULL) return sched;
  sched = (csock_Sched *)lua_newuserdatauv(L, sizeof *sched, 0);
  memset(sched, 0, offsetof(csock_Sched, spare));
  sched->head.engine = engine;
  sched->main_error = sched->onerror = LUA_NOREF;
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sched_key);
  luaL_newmetatable(L, CSOCK_TASK_MT);
  sched->task_mt = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  sched->threads = luaL_ref(L, LUA_REGISTRYINDEX);
  return sched;
}
