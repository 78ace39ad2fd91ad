/*
 * csock.cond(): condition variables, for tasks to wait on each other:
 * cond:wait([timeout]) suspends the task until cond:signal() or
 * cond:broadcast() wakes it, or the timeout passes.
 */
#include "core.h"

#define CSOCK_COND_MT "csock.cond"

typedef struct Cond {
  csock_Task *waiters;
} Cond;

static int l_cond(lua_State *L) {
  Cond *c = (Cond *)lua_newuserdatauv(L, sizeof *c, 0);
  c->waiters = NULL;
  luaL_setmetatable(L, CSOCK_COND_MT);
  return 1;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  if (csock_task_woke(L) == CSOCK_WOKE_TIMEOUT) return csock_timeout(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int cond_wait(lua_State *L) {
  Cond *c = (Cond *)luaL_checkudata(L, 1, CSOCK_COND_MT);
  int64_t deadline = csock_optdeadline(L, 2);
  csock_Task *t = csock_task_current(csock_getsched(L), L);
  if (t == NULL) return luaL_error(L, "cond:wait outside a task (nothing could signal it)");
  lua_settop(L, 1);
  csock_task_waitin(t, &c->waiters);
  return csock_task_suspend(L, t, deadline, 0, wait_k);
}

static int cond_signal(lua_State *L) {
  Cond *c = (Cond *)luaL_checkudata(L, 1, CSOCK_COND_MT);
  int all = lua_toboolean(L, 2);
  int woke = 0;
  while ((all || woke == 0) && csock_task_wakeone(&c->waiters, CSOCK_WOKE_READY)) woke++;
  lua_pushinteger(L, woke);
  return 1;
}

static int cond_broadcast(lua_State *L) {
  lua_settop(L, 1);
  lua_pushboolean(L, 1);
  return cond_signal(L);
}

void csock_open_cond(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"wait", cond_wait}, {"signal", cond_signal}, {"broadcast", cond_broadcast}, {NULL, NULL}};
  csock_newclass(L, CSOCK_COND_MT, methods);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_cond);
  lua_setfield(L, -3, "cond");
}
