/*
 * Driving the loop from Lua: the engine's place in the registry (made
 * with the module, with the scheduler), csock.run, step, stop, spawn,
 * onerror, pollfd, nexttimeout and backend, and task objects' methods
 * (join, status). embed.c's C API drives it through the same functions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static const char engine_key = 'E'; /* registry key: its address */

csock_Engine *csock_getengine(lua_State *L) {
  return (csock_Engine *)csock_statedata(L, &engine_key);
}

static int engine_gc(lua_State *L) {
  csock_engine_close((csock_Engine *)lua_touserdata(L, 1));
  return 0;
}

/* The engine lives in a userdata in the registry: no C global, so a process
 * may run several Lua states; its memory outlives every socket's __gc, and
 * its own __gc (the last, as it was made first) tears everything down. */
static csock_Engine *newengine(lua_State *L) {
  const char *name = getenv("CSOCK_BACKEND");
  const csock_PollerOps *ops = csock_poller_find(name && *name ? name : NULL);
  if (ops == NULL) luaL_error(L, "CSOCK_BACKEND: unknown poll backend '%s' (epoll, poll)", name);
  csock_Engine *e = (csock_Engine *)lua_newuserdatauv(L, sizeof *e, 0);
  csock_engine_init(e, ops);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, engine_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &engine_key);
  return e;
}

static csock_Sched *checkidle(lua_State *L, const char *what) {
  csock_Sched *sched = csock_getsched(L);
  if (csock_sched_engine(sched)->running)
    luaL_error(L, "%s: the loop is already running (call it outside tasks)", what);
  return sched;
}

/* Driving ------------------------------------------------------------------- */

static void run_enter(lua_State *L, csock_Sched *sched) {
  csock_sched_enter(sched, L);
  csock_engine_enter(csock_sched_engine(sched));
}

static void run_leave(csock_Sched *sched) {
  csock_engine_leave(csock_sched_engine(sched));
  csock_sched_leave(sched);
}

/* The turns themselves, protected (see drive): 1 the engine, 2 the task
 * to run until (or nil), 3 the timeout of a single step, 4 whether to take
 * one step only. Returns the last step's result. */
static int turns(lua_State *L) {
  csock_Engine *e = (csock_Engine *)lua_touserdata(L, 1);
  csock_Task *until = (csock_Task *)lua_touserdata(L, 2);
  int r = 0;
  if (lua_toboolean(L, 4))
    r = csock_engine_step(e, (int64_t)lua_tointeger(L, 3));
  else
    while (!e->stop && e->alive > 0 && (until == NULL || until->state != CSOCK_TASK_DONE))
      if ((r = csock_engine_step(e, CSOCK_FOREVER)) < 0) break;
  lua_pushinteger(L, r);
  return 1;
}

/* Runs the turns between enter and leave; an error out of them (memory
 * running out where a task is started or finished) leaves the loop first,
 * so it is usable again, and is then raised. */
static int drive(lua_State *L, csock_Sched *sched, csock_Task *until, int64_t timeout_ns, int once) {
  run_enter(L, sched);
  lua_pushcfunction(L, turns);
  lua_pushlightuserdata(L, csock_sched_engine(sched));
  lua_pushlightuserdata(L, until);
  lua_pushinteger(L, (lua_Integer)timeout_ns);
  lua_pushboolean(L, once);
  int status = lua_pcall(L, 4, 1, 0);
  run_leave(sched);
  if (status != LUA_OK) lua_error(L);
  int r = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return r;
}

int csock_run_step(lua_State *L, csock_Sched *sched, int64_t timeout_ns) {
  return drive(L, sched, NULL, timeout_ns, 1);
}

void csock_run_until(lua_State *L, csock_Task *until) {
  csock_Sched *sched = checkidle(L, until ? "task:join" : "csock.run");
  int r = drive(L, sched, until, CSOCK_FOREVER, 0);
  if (csock_sched_mainerror(L, sched)) lua_error(L);
  if (r < 0) luaL_error(L, "csock loop: %s", strerror(-r));
}

static int l_run(lua_State *L) {
  csock_Sched *sched = checkidle(L, "csock.run");
  if (lua_isnoneornil(L, 1)) {
    csock_run_until(L, NULL);
    return 0;
  }
  luaL_checktype(L, 1, LUA_TFUNCTION);
  csock_Task *t = csock_task_spawn(L, sched, lua_gettop(L) - 1);
  t->is_main = 1;
  csock_run_until(L, NULL);
  if (t->state != CSOCK_TASK_DONE) return 0; /* stopped early */
  return csock_task_pushoutcome(L, lua_gettop(L));
}

static int l_step(lua_State *L) {
  csock_Sched *sched = checkidle(L, "csock.step");
  int64_t timeout = lua_isnoneornil(L, 1) ? 0 : csock_checktime(L, 1);
  int r = csock_run_step(L, sched, timeout);
  if (r < 0) return csock_oserror(L, r);
  lua_pushboolean(L, csock_sched_engine(sched)->alive > 0);
  return 1;
}

static int l_stop(lua_State *L) {
  csock_engine_stop(csock_getengine(L));
  return 0;
}

static int l_pollfd(lua_State *L) {
  csock_Engine *e = csock_getengine(L);
  if (csock_engine_poller(e) == NULL) return csock_oserror(L, errno);
  int fd = csock_engine_pollfd(e);
  if (fd < 0) return csock_fail(L, "this poll backend has no pollable fd");
  lua_pushinteger(L, fd);
  return 1;
}

/* Seconds until the loop needs a step even without fd activity, or nil:
 * for a host loop in Lua that watches csock.pollfd(). */
static int l_nexttimeout(lua_State *L) {
  int64_t ns = csock_engine_timeout(csock_getengine(L));
  if (ns < 0) return 0;
  lua_pushnumber(L, (lua_Number)ns / 1e9);
  return 1;
}

static int l_backend(lua_State *L) {
  lua_pushstring(L, csock_getengine(L)->ops->name);
  return 1;
}

/* Tasks as Lua sees them ------------------------------------------------------ */

static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  csock_task_spawn(L, csock_getsched(L), lua_gettop(L) - 1);
  return 1;
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  csock_task_woke(L); /* a joined task only ends */
  return csock_task_pushoutcome(L, 1);
}

static int t_join(lua_State *L) {
  csock_Task *t = csock_checktask(L, 1);
  lua_settop(L, 1);
  if (t->state == CSOCK_TASK_DONE) return csock_task_pushoutcome(L, 1);
  csock_Task *me = csock_task_current(t->sched, L);
  if (me == t) return luaL_error(L, "a task cannot join itself");
  if (me != NULL) {
    csock_task_waitin(me, &t->u.joiners);
    return csock_task_suspend(L, me, CSOCK_FOREVER, 0, join_k);
  }
  t->awaited = 1;
  csock_run_until(L, t);
  t->awaited = 0;
  if (t->state != CSOCK_TASK_DONE) return csock_fail(L, "stopped");
  return csock_task_pushoutcome(L, 1);
}

static int t_status(lua_State *L) {
  static const char *const names[] = {"ready", "running", "waiting", "done"};
  csock_Task *t = csock_checktask(L, 1);
  lua_pushstring(L, t->state == CSOCK_TASK_DONE && t->failed ? "failed" : names[t->state]);
  return 1;
}

static int t_tostring(lua_State *L) {
  csock_Task *t = csock_checktask(L, 1);
  lua_pushfstring(L, "%s (%p)", CSOCK_TASK_MT, (void *)t);
  return 1;
}

static int l_onerror(lua_State *L) {
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  csock_sched_setonerror(L, csock_getsched(L));
  return 0;
}

/* Makes this state's engine and scheduler once; a second load of the
 * module finds them. */
void csock_open_run(lua_State *L) {
  static const luaL_Reg functions[] = {
    {"run", l_run},       {"step", l_step},       {"stop", l_stop},
    {"spawn", l_spawn},   {"onerror", l_onerror}, {"pollfd", l_pollfd},
    {"backend", l_backend}, {"nexttimeout", l_nexttimeout},
    {NULL, NULL},
  };
  static const luaL_Reg task_methods[] = {{"join", t_join}, {"status", t_status}, {NULL, NULL}};
  csock_Engine *e = csock_getengine(L);
  if (e == NULL) e = newengine(L);
  csock_sched_new(L, e);
  csock_newclass(L, CSOCK_TASK_MT, task_methods); /* the scheduler made it */
  lua_pushcfunction(L, t_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, functions, 0);
  lua_pop(L, 1);
}
