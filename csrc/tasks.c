/*
 * The loop as Lua sees it: csock.spawn, run, step, stop, sleep, timer,
 * onerror, pollfd, backend; task objects (join, status) and condition
 * variables (csock.cond) for tasks to wait on each other.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "loop.h"

#define CSOCK_TIMER_MT "csock.timer"
#define CSOCK_COND_MT "csock.cond"

/* Seconds argument in nanoseconds: checked, never wrapped (NaN and
 * negatives raise; anything past 30 years is 30 years). */
static int64_t checkseconds(lua_State *L, int idx) {
  lua_Number s = luaL_checknumber(L, idx);
  luaL_argcheck(L, s >= 0, idx, "time must be a non-negative number");
  return (int64_t)((s > 1e9 ? 1e9 : s) * 1e9);
}

static csock_Loop *checkidle(lua_State *L, const char *what) {
  csock_Loop *loop = csock_getloop(L);
  if (loop->running) luaL_error(L, "%s: the loop is already running (call it outside tasks)", what);
  return loop;
}

typedef struct Cond {
  csock_Task *waiters;
} Cond;

/* Tasks ------------------------------------------------------------------ */

/* Coroutines: every one csock made is in the threads table (registry ref
 * loop->threads) at a slot of its own, running a task or idle. The idle
 * ones are also listed in loop->spare, so starting and ending a task
 * usually touch no table at all. */
static lua_State *takethread(lua_State *L, csock_Loop *loop, int *slot) {
  if (loop->nspare > 0) {
    csock_SpareThread *e = &loop->spare[--loop->nspare];
    *slot = e->slot;
    return e->co;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->threads);
  lua_State *co = lua_newthread(L);
  *slot = luaL_ref(L, -2);
  lua_pop(L, 1);
  return co;
}

/* A finished coroutine (its stack unwound, <close> variables closed) is
 * kept for the next task; a failed one, or one too many, is let go. */
static void dropthread(lua_State *L, csock_Loop *loop, lua_State *co, int slot) {
  if (lua_status(co) == LUA_OK && loop->nspare < CSOCK_KEEP_THREADS) {
    lua_settop(co, 0);
    loop->spare[loop->nspare].co = co;
    loop->spare[loop->nspare++].slot = slot;
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->threads);
  luaL_unref(L, -1, slot);
  lua_pop(L, 1);
}

void csock_task_ended(lua_State *L, csock_Task *t) {
  lua_State *co = t->co;
  t->co = NULL;
  if (t->ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
    t->ref = LUA_NOREF;
  }
  /* Last: a connection's task may be collected once its coroutine lets go. */
  dropthread(L, t->loop, co, t->slot);
}

void csock_inittask(csock_Task *t, csock_Loop *loop) {
  memset(t, 0, sizeof *t);
  t->deadline.index = -1;
  t->deadline.kind = CSOCK_HEAP_TASK;
  t->loop = loop;
  t->ref = LUA_NOREF;
}

void csock_starttask(lua_State *L, csock_Task *t, int nargs) {
  int base = lua_gettop(L) - nargs - 1; /* the task's object, then fn, args... */
  lua_State *co = takethread(L, t->loop, &t->slot);
  if (!lua_checkstack(co, nargs + 2)) {
    dropthread(L, t->loop, co, t->slot);
    luaL_error(L, "too many arguments for a task");
  }
  lua_pushvalue(L, base);
  if (t->is_conn) /* below the function on the coroutine's own stack, which */
    lua_xmove(L, co, 1); /* the threads table keeps while the task runs */
  else
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_xmove(L, co, nargs + 1);
  t->co = co;
  t->nargs = nargs;
  t->loop->alive++;
  csock_schedule(t, CSOCK_WOKE_READY);
}

/* A task object (user value: the outcome, once done), pushed. */
static csock_Task *pushtask(lua_State *L, csock_Loop *loop) {
  csock_Task *t = (csock_Task *)lua_newuserdatauv(L, sizeof *t, 1);
  csock_inittask(t, loop);
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->task_mt);
  lua_setmetatable(L, -2);
  return t;
}

csock_Task *csock_newtask(lua_State *L, csock_Loop *loop, int nargs) {
  int base = lua_gettop(L) - nargs; /* the function */
  csock_Task *t = pushtask(L, loop);
  lua_insert(L, base);                 /* task, fn, args... */
  csock_starttask(L, t, nargs);
  return t;
}

/* A connection's task has no task object (its socket holds it); when one
 * fails, onerror gets this stand-in: a done, failed task holding the error
 * at -1. Pushed above it. */
void csock_pushfailedtask(lua_State *L, csock_Loop *loop) {
  csock_Task *t = pushtask(L, loop);
  t->state = CSOCK_TASK_DONE;
  t->failed = 1;
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, 1);
}

static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  csock_newtask(L, csock_getloop(L), lua_gettop(L) - 1);
  return 1;
}

static csock_Task *checktask(lua_State *L, int idx) {
  return (csock_Task *)luaL_checkudata(L, idx, CSOCK_TASK_MT);
}

/* The task's outcome: its results, or nil and its error. */
static int pushoutcome(lua_State *L, int idx) {
  csock_Task *t = checktask(L, idx);
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

/* Runs the loop until pred says stop; raises the main task's error. */
static void drive(lua_State *L, csock_Loop *loop, csock_Task *until) {
  csock_loop_enter(loop);
  int r = 0;
  while (!loop->stop && loop->alive > 0 && (until == NULL || until->state != CSOCK_TASK_DONE))
    if ((r = csock_loop_step(L, loop, -1)) < 0) break;
  csock_loop_leave(loop);
  if (loop->main_error != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->main_error);
    luaL_unref(L, LUA_REGISTRYINDEX, loop->main_error);
    loop->main_error = LUA_NOREF;
    lua_error(L);
  }
  if (r < 0) luaL_error(L, "csock loop: %s", strerror(-r));
}

static int l_run(lua_State *L) {
  csock_Loop *loop = checkidle(L, "csock.run");
  if (lua_isnoneornil(L, 1)) {
    drive(L, loop, NULL);
    return 0;
  }
  luaL_checktype(L, 1, LUA_TFUNCTION);
  csock_Task *t = csock_newtask(L, loop, lua_gettop(L) - 1);
  t->is_main = 1;
  drive(L, loop, NULL);
  if (t->state != CSOCK_TASK_DONE) return 0; /* stopped early */
  return pushoutcome(L, lua_gettop(L));
}

static int l_step(lua_State *L) {
  csock_Loop *loop = checkidle(L, "csock.step");
  int64_t timeout = lua_isnoneornil(L, 1) ? 0 : checkseconds(L, 1);
  csock_loop_enter(loop);
  int r = csock_loop_step(L, loop, timeout);
  csock_loop_leave(loop);
  if (r < 0) return csock_oserror(L, r);
  lua_pushboolean(L, loop->alive > 0);
  return 1;
}

static int l_stop(lua_State *L) {
  csock_getloop(L)->stop = 1;
  return 0;
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lua_pop(L, 1); /* the wake code: a joined task only ends */
  return pushoutcome(L, 1);
}

static int t_join(lua_State *L) {
  csock_Task *t = checktask(L, 1);
  lua_settop(L, 1);
  if (t->state == CSOCK_TASK_DONE) return pushoutcome(L, 1);
  csock_Task *me = csock_current(t->loop, L);
  if (me == t) return luaL_error(L, "a task cannot join itself");
  if (me != NULL) {
    csock_waitin(me, &t->u.joiners);
    return csock_suspend(L, me, -1, 0, join_k);
  }
  t->awaited = 1;
  drive(L, checkidle(L, "task:join"), t);
  t->awaited = 0;
  if (t->state != CSOCK_TASK_DONE) return csock_fail(L, "stopped");
  return pushoutcome(L, 1);
}

static int t_status(lua_State *L) {
  static const char *const names[] = {"ready", "running", "waiting", "done"};
  csock_Task *t = checktask(L, 1);
  lua_pushstring(L, t->state == CSOCK_TASK_DONE && t->failed ? "failed" : names[t->state]);
  return 1;
}

static int t_tostring(lua_State *L) {
  csock_Task *t = checktask(L, 1);
  lua_pushfstring(L, "%s (%p)", CSOCK_TASK_MT, (void *)t);
  return 1;
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lua_pop(L, 1);
  return 0;
}

static int l_sleep(lua_State *L) {
  int64_t ns = checkseconds(L, 1);
  csock_Loop *loop = csock_getloop(L);
  csock_Task *t = csock_current(loop, L);
  int64_t deadline = csock_sys_now() + ns;
  if (t != NULL) {
    csock_waitin(t, NULL);
    return csock_suspend(L, t, deadline, 0, sleep_k);
  }
  csock_sys_sleep_until(deadline);
  return 0;
}

static int l_onerror(lua_State *L) {
  csock_Loop *loop = csock_getloop(L);
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, loop->onerror);
  lua_settop(L, 1);
  loop->onerror = lua_isnil(L, 1) ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int l_pollfd(lua_State *L) {
  csock_Loop *loop = csock_getloop(L);
  if (csock_loop_poller(loop) == NULL) return csock_oserror(L, errno);
  int fd = loop->ops->fd(loop->poller);
  if (fd < 0) return csock_fail(L, "this poll backend has no pollable fd");
  lua_pushinteger(L, fd);
  return 1;
}

/* Seconds until the loop needs a step even without fd activity, or nil:
 * for a host loop in Lua that watches csock.pollfd(). */
static int l_nexttimeout(lua_State *L) {
  int64_t ns = csock_loop_timeout(csock_getloop(L));
  if (ns < 0) return 0;
  lua_pushnumber(L, (lua_Number)ns / 1e9);
  return 1;
}

static int l_backend(lua_State *L) {
  lua_pushstring(L, csock_getloop(L)->ops->name);
  return 1;
}

/* Timers ------------------------------------------------------------------ */

typedef struct Timer {
  csock_HeapNode node; /* first: the loop finds the timer from it */
  int64_t interval;    /* 0: fires once */
  int ref;             /* registry ref while set */
  csock_Loop *loop;
} Timer;

void csock_fire_timer(lua_State *L, csock_Loop *loop, csock_HeapNode *node) {
  Timer *tm = (Timer *)node;
  lua_rawgeti(L, LUA_REGISTRYINDEX, tm->ref); /* the timer */
  lua_getiuservalue(L, -1, 1);               /* its function */
  lua_insert(L, -2);
  if (tm->interval > 0) {
    csock_heap_set(&loop->heap, node, csock_sys_now() + tm->interval);
  } else {
    luaL_unref(L, LUA_REGISTRYINDEX, tm->ref);
    tm->ref = LUA_NOREF;
    loop->alive--;
  }
  csock_newtask(L, loop, 1); /* fn(timer), as a task of its own */
  lua_pop(L, 1);
}

static int l_timer(lua_State *L) {
  int64_t after = checkseconds(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int64_t every = 0;
  if (!lua_isnoneornil(L, 3)) {
    every = checkseconds(L, 3);
    luaL_argcheck(L, lua_tonumber(L, 3) > 0, 3, "repeat interval must be positive");
    if (every == 0) every = 1; /* below a nanosecond: as often as the loop turns */
  }
  csock_Loop *loop = csock_getloop(L);
  Timer *tm = (Timer *)lua_newuserdatauv(L, sizeof *tm, 1);
  memset(tm, 0, sizeof *tm);
  tm->node.index = -1;
  tm->node.kind = CSOCK_HEAP_TIMER;
  tm->interval = every;
  tm->loop = loop;
  luaL_setmetatable(L, CSOCK_TIMER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  tm->ref = LUA_NOREF;
  if (csock_heap_set(&loop->heap, &tm->node, csock_sys_now() + after) < 0)
    return luaL_error(L, "not enough memory");
  lua_pushvalue(L, -1);
  tm->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  loop->alive++;
  return 1;
}

static int tm_cancel(lua_State *L) {
  Timer *tm = (Timer *)luaL_checkudata(L, 1, CSOCK_TIMER_MT);
  if (tm->ref != LUA_NOREF) {
    csock_heap_remove(&tm->loop->heap, &tm->node);
    luaL_unref(L, LUA_REGISTRYINDEX, tm->ref);
    tm->ref = LUA_NOREF;
    tm->loop->alive--;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int tm_active(lua_State *L) {
  Timer *tm = (Timer *)luaL_checkudata(L, 1, CSOCK_TIMER_MT);
  lua_pushboolean(L, tm->ref != LUA_NOREF);
  return 1;
}

/* Conditions -------------------------------------------------------------- */

static int l_cond(lua_State *L) {
  Cond *c = (Cond *)lua_newuserdatauv(L, sizeof *c, 0);
  c->waiters = NULL;
  luaL_setmetatable(L, CSOCK_COND_MT);
  return 1;
}

static int cond_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  int how = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (how == CSOCK_WOKE_TIMEOUT) return csock_timeout(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int cond_wait(lua_State *L) {
  Cond *c = (Cond *)luaL_checkudata(L, 1, CSOCK_COND_MT);
  int64_t ns = lua_isnoneornil(L, 2) ? -1 : checkseconds(L, 2);
  int64_t deadline = ns < 0 ? -1 : csock_sys_now() + ns;
  csock_Task *t = csock_current(csock_getloop(L), L);
  if (t == NULL) return luaL_error(L, "cond:wait outside a task (nothing could signal it)");
  lua_settop(L, 1);
  csock_waitin(t, &c->waiters);
  return csock_suspend(L, t, deadline, 0, cond_k);
}

static int cond_signal(lua_State *L) {
  Cond *c = (Cond *)luaL_checkudata(L, 1, CSOCK_COND_MT);
  int all = lua_toboolean(L, 2);
  int woke = 0;
  while ((all || woke == 0) && csock_wakeone(&c->waiters, CSOCK_WOKE_READY)) woke++;
  lua_pushinteger(L, woke);
  return 1;
}

static int cond_broadcast(lua_State *L) {
  lua_settop(L, 1);
  lua_pushboolean(L, 1);
  return cond_signal(L);
}

/* Registration ------------------------------------------------------------ */

static const luaL_Reg functions[] = {
  {"spawn", l_spawn},   {"run", l_run},         {"step", l_step},
  {"stop", l_stop},     {"sleep", l_sleep},     {"timer", l_timer},
  {"onerror", l_onerror}, {"pollfd", l_pollfd}, {"backend", l_backend},
  {"cond", l_cond},     {"nexttimeout", l_nexttimeout},
  {NULL, NULL},
};

static void newclass(lua_State *L, const char *name, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* Expects the module table at -2 and the methods table at -1. */
void csock_open_tasks(lua_State *L) {
  static const luaL_Reg task_methods[] = {{"join", t_join}, {"status", t_status}, {NULL, NULL}};
  static const luaL_Reg timer_methods[] = {{"cancel", tm_cancel}, {"active", tm_active}, {NULL, NULL}};
  static const luaL_Reg cond_methods[] = {
    {"wait", cond_wait}, {"signal", cond_signal}, {"broadcast", cond_broadcast}, {NULL, NULL}};
  newclass(L, CSOCK_TASK_MT, task_methods);
  luaL_getmetatable(L, CSOCK_TASK_MT);
  lua_pushcfunction(L, t_tostring);
  lua_setfield(L, -2, "__tostring");
  csock_Loop *loop = csock_getloop(L);
  if (loop->task_mt == LUA_NOREF) {
    loop->task_mt = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    loop->threads = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    lua_pop(L, 1);
  }
  newclass(L, CSOCK_TIMER_MT, timer_methods);
  newclass(L, CSOCK_COND_MT, cond_methods);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, functions, 0);
  lua_pop(L, 1);
}
