/*
 * Time in tasks: csock.sleep, and csock.timer(after, fn [, every]), whose
 * function runs as a task of its own each time the timer fires. A timer
 * set keeps the loop alive until it is cancelled or has fired its last.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core.h"

#define CSOCK_TIMER_MT "csock.timer"

/* A timer's function starts from the ready queue, not from the engine's
 * timer callback: starting a task allocates, and Lua code (a __gc) may
 * run then. The registry ref keeps the timer while it is set or its
 * start is queued, and as long, the loop alive. */
typedef struct Timer {
  csock_Timer timer;
  csock_Work start;
  csock_Sched *sched;
  int64_t interval;        /* 0: fires once */
  int ref;                 /* registry ref while set or queued */
  unsigned set : 1;        /* active(): armed, or firing again after this start */
  unsigned queued : 1;     /* a start is in the ready queue (a firing cancel does not undo) */
} Timer;

static void release(lua_State *L, Timer *tm) {
  luaL_unref(L, LUA_REGISTRYINDEX, tm->ref);
  tm->ref = LUA_NOREF;
  csock_engine_ref(csock_sched_engine(tm->sched), -1);
}

static void start(csock_Work *w) {
  Timer *tm = (Timer *)((char *)w - offsetof(Timer, start));
  lua_State *L = csock_sched_state(tm->sched);
  tm->queued = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, tm->ref); /* the timer */
  lua_getiuservalue(L, -1, 1);               /* its function */
  lua_insert(L, -2);
  csock_task_spawn(L, tm->sched, 1); /* fn(timer), as a task of its own */
  lua_pop(L, 1);
  if (!tm->set) release(L, tm); /* its last firing, or cancelled meanwhile */
}

static void fire(csock_Timer *timer) {
  Timer *tm = (Timer *)timer; /* the engine's timer is first */
  csock_Engine *e = csock_sched_engine(tm->sched);
  if (tm->interval > 0) csock_engine_settimer(e, &tm->timer, csock_sys_now() + tm->interval);
  tm->set = csock_timer_active(&tm->timer); /* a repeat set again, unless memory ran out */
  if (tm->queued) return; /* the last start has not run yet: one is enough */
  tm->queued = 1;
  csock_engine_queue(e, &tm->start);
}

static int l_timer(lua_State *L) {
  int64_t after = csock_checktime(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int64_t every = 0;
  if (!lua_isnoneornil(L, 3)) {
    every = csock_checktime(L, 3);
    luaL_argcheck(L, lua_tonumber(L, 3) > 0, 3, "repeat interval must be positive");
    if (every == 0) every = 1; /* below a nanosecond: as often as the loop turns */
  }
  csock_Sched *sched = csock_getsched(L);
  csock_Engine *e = csock_sched_engine(sched);
  Timer *tm = (Timer *)lua_newuserdatauv(L, sizeof *tm, 1);
  memset(tm, 0, sizeof *tm);
  csock_timer_init(&tm->timer, fire);
  tm->start.run = start;
  tm->sched = sched;
  tm->interval = every;
  tm->ref = LUA_NOREF;
  luaL_setmetatable(L, CSOCK_TIMER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  /* Never (CSOCK_FOREVER) is still a timer set: it keeps the loop going until cancelled. */
  int64_t when = after < 0 ? INT64_MAX : csock_sys_now() + after;
  if (csock_engine_settimer(e, &tm->timer, when) < 0)
    return luaL_error(L, "not enough memory");
  lua_pushvalue(L, -1);
  tm->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  tm->set = 1;
  csock_engine_ref(e, 1);
  return 1;
}

static int tm_cancel(lua_State *L) {
  Timer *tm = (Timer *)luaL_checkudata(L, 1, CSOCK_TIMER_MT);
  if (tm->set) {
    csock_engine_canceltimer(csock_sched_engine(tm->sched), &tm->timer);
    tm->set = 0;
    if (!tm->queued) release(L, tm); /* else the queued start lets go */
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int tm_active(lua_State *L) {
  Timer *tm = (Timer *)luaL_checkudata(L, 1, CSOCK_TIMER_MT);
  lua_pushboolean(L, tm->set);
  return 1;
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  csock_task_woke(L);
  return 0;
}

static int l_sleep(lua_State *L) {
  int64_t ns = csock_checktime(L, 1);
  csock_Task *t = csock_task_current(csock_getsched(L), L);
  int64_t deadline = csock_sys_deadline(ns);
  if (t != NULL) {
    csock_task_waitin(t, NULL);
    return csock_task_suspend(L, t, deadline, 0, sleep_k);
  }
  if (deadline < 0) for (;;) csock_sys_sleep_until(csock_sys_now() + (int64_t)3600 * 1000000000);
  csock_sys_sleep_until(deadline);
  return 0;
}

void csock_open_timers(lua_State *L) {
  static const luaL_Reg methods[] = {{"cancel", tm_cancel}, {"active", tm_active}, {NULL, NULL}};
  csock_newclass(L, CSOCK_TIMER_MT, methods);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_timer);
  lua_setfield(L, -3, "timer");
  lua_pushcfunction(L, l_sleep);
  lua_setfield(L, -3, "sleep");
}
