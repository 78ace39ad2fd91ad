/*
 * Waiting on descriptors csock does not own: csock.waitfd(fd, mode
 * [, timeout]) for a pipe, a terminal or another library's socket, and the
 * in-task half of csock.select. Inside a task the fd is watched by the
 * engine for the length of the wait; elsewhere it blocks in poll(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define CSOCK_FDWATCH_MT "csock.fdwatch"

/* A task waiting on an fd that is not a csock socket's. */
typedef struct FdWatch {
  csock_Io io;
  csock_Engine *engine;
  csock_Task *waiters;
  int want;   /* the directions the waiter asked for: other reports are not for it */
  int owned;  /* close the fd when done with it */
} FdWatch;

static void ready(csock_Io *io, int events) {
  FdWatch *fw = (FdWatch *)io; /* io is first */
  if (events & fw->want) csock_task_wakeall(&fw->waiters, CSOCK_WOKE_READY);
}

static void release(FdWatch *fw) {
  if (fw->io.fd < 0) return;
  csock_engine_forget(fw->engine, &fw->io);
  if (fw->owned) close(fw->io.fd);
  fw->io.fd = -1;
}

static int fdwatch_gc(lua_State *L) {
  release((FdWatch *)lua_touserdata(L, 1));
  return 0;
}

void *csock_fdwatch(lua_State *L) {
  FdWatch *fw = (FdWatch *)lua_newuserdatauv(L, sizeof *fw, 0);
  memset(fw, 0, sizeof *fw);
  fw->io.fd = -1;
  fw->io.ready = ready;
  luaL_setmetatable(L, CSOCK_FDWATCH_MT);
  return fw;
}

int csock_waitfd(lua_State *L, csock_Task *t, void *watch, int fd, int want, int owned,
                 int64_t deadline, lua_KContext ctx, lua_KFunction k) {
  csock_Engine *e = csock_sched_engine(t->sched);
  FdWatch *fw = (FdWatch *)watch;
  fw->io.fd = fd;
  fw->engine = e;
  fw->want = want;
  fw->owned = owned;
  int r = csock_engine_watch(e, &fw->io, want);
  if (r == -EEXIST && !owned) {
    /* the engine watches this fd already (a csock socket's): watch a
     * duplicate, which epoll counts as another entry */
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return csock_oserror(L, errno);
    fw->io.fd = dup_fd;
    fw->owned = 1;
    r = csock_engine_watch(e, &fw->io, want);
  }
  if (r < 0) {
    release(fw);
    return csock_oserror(L, r);
  }
  csock_task_waitin(t, &fw->waiters);
  return csock_task_suspend(L, t, deadline, ctx, k);
}

int csock_waitfd_end(lua_State *L, int idx) {
  int how = csock_task_woke(L);
  release((FdWatch *)luaL_checkudata(L, idx, CSOCK_FDWATCH_MT));
  return how == CSOCK_WOKE_READY;
}

static int waitfd_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  if (!csock_waitfd_end(L, lua_gettop(L) - 1)) return csock_timeout(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_waitfd(lua_State *L) {
  static const char *const modes[] = {"r", "w", "rw", NULL};
  static const int wants[] = {CSOCK_WANT_READ, CSOCK_WANT_WRITE, CSOCK_WANT_READ | CSOCK_WANT_WRITE};
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "bad file descriptor");
  int want = wants[luaL_checkoption(L, 2, "r", modes)];
  int64_t deadline = csock_optdeadline(L, 3);
  lua_settop(L, 0);
  csock_Task *t = csock_task_current(csock_getsched(L), L);
  if (t != NULL) return csock_waitfd(L, t, csock_fdwatch(L), (int)fd, want, 0, deadline, 0, waitfd_k);
  int r = csock_sys_wait((int)fd, want, deadline);
  if (r < 0) return csock_oserror(L, r);
  if (r == 0) return csock_timeout(L);
  lua_pushboolean(L, 1);
  return 1;
}

void csock_open_fdwait(lua_State *L) {
  luaL_newmetatable(L, CSOCK_FDWATCH_MT);
  lua_pushcfunction(L, fdwatch_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_waitfd);
  lua_setfield(L, -3, "waitfd");
}
