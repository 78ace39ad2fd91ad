/*
 * Tasks: coroutines the engine runs. A task is ready work in the engine's
 * queue (resumed when its turn comes), or waits: in a wait list that some
 * other client wakes (a socket's, a condition's, a lookup's), with its
 * timer set for the wait's deadline, or both. The scheduler (csock_Sched,
 * one per Lua state, in the registry) keeps the running task, the pool of
 * coroutines, and how errors are reported.
 */
#ifndef CSOCK_TASKS_H
#define CSOCK_TASKS_H

#include "lua.h"
#include "lauxlib.h"

#include "csock.h"
#include "engine.h"

#define CSOCK_TASK_MT "csock.task"
#define CSOCK_KEEP_THREADS 256 /* finished tasks' coroutines kept for reuse */

/* How a waiting task was woken: what csock_task_woke returns. */
enum { CSOCK_WOKE_READY, CSOCK_WOKE_TIMEOUT, CSOCK_WOKE_CLOSED };
enum { CSOCK_TASK_READY, CSOCK_TASK_RUNNING, CSOCK_TASK_WAITING, CSOCK_TASK_DONE };

typedef struct csock_Sched csock_Sched;
typedef struct csock_Task csock_Task;

struct csock_Task {
  csock_Work work;         /* in the engine's ready queue */
  csock_Timer timer;       /* a sleep's end, a wait's deadline */
  csock_Sched *sched;
  lua_State *co;
  int nargs;               /* arguments for the first resume, -1 after */
  int ref;                 /* registry ref to the task's object while not done, or LUA_NOREF */
  int slot;                /* its coroutine's place in the threads table */
  unsigned state : 2;      /* CSOCK_TASK_* */
  unsigned wake : 2;       /* how it was woken (CSOCK_WOKE_*) */
  unsigned failed : 1;
  unsigned is_main : 1;    /* csock.run(fn)'s task: its error is run's */
  unsigned awaited : 1;    /* join() outside a task waits for it: its error goes there */
  unsigned embedded : 1;   /* in another object: `ended` is set, nobody joins it */
  unsigned looked : 1;     /* its socket operation's one look past the deadline is used (wait.c) */
  csock_Task **wait_list;  /* the list it waits in, if any */
  csock_Task *next_wait;
  /* The deadline of the socket operation it has under way (wait.c): in the
   * task, so that tasks sharing a socket keep their own. */
  int64_t deadline;
  union {
    csock_Task *joiners;   /* tasks waiting for this one to end */
    /* A task embedded in another object (a csock.listen connection's) has
     * its owner told when it ends, instead of keeping an outcome for join:
     * ended(L, t, ok) runs with the error (and traceback) at -1 when !ok.
     * After it returns the scheduler lets go of the object (t may then
     * be collected), and touches t no more. */
    void (*ended)(lua_State *L, csock_Task *t, int ok);
  } u;
};

/* Per-state data lives in userdata in the registry, each keyed by the
 * address of a static of the file that owns it: that data, or NULL. */
static inline void *csock_statedata(lua_State *L, const void *key) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  void *p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return p;
}

/* Makes this state's scheduler, running tasks on `engine`, or finds the
 * one made before (a second load of the module). */
csock_Sched *csock_sched_new(lua_State *L, csock_Engine *engine);
/* The scheduler of this Lua state (NULL before csock_sched_new). */
csock_Sched *csock_getsched(lua_State *L);
/* What the scheduler shows of itself (its first member); the rest is tasks.c's. */
typedef struct csock_SchedHead {
  csock_Task *current;   /* the task running now, if any */
  csock_Engine *engine;
} csock_SchedHead;

static inline csock_Engine *csock_sched_engine(csock_Sched *sched) {
  return ((csock_SchedHead *)sched)->engine;
}
/* The task whose coroutine is L, if L is a task that may yield now: a
 * coroutine a task made itself is not the task (it blocks instead). */
static inline csock_Task *csock_task_current(csock_Sched *sched, lua_State *L) {
  csock_Task *t = ((csock_SchedHead *)sched)->current;
  return t != NULL && t->co == L && lua_isyieldable(L) ? t : NULL;
}

/* Makes a task of the function and its nargs arguments on top of L's
 * stack (replacing them with the task object) and queues it; ..next
 * queues it to run before what is queued already (a signal's handler). */
csock_Task *csock_task_spawn(lua_State *L, csock_Sched *sched, int nargs);
csock_Task *csock_task_spawnnext(lua_State *L, csock_Sched *sched, int nargs);
/* For a task inside another object: csock_task_init clears t; then, with
 * that object, the function and its nargs arguments on top of the stack,
 * csock_task_start pops the function and arguments (the object is kept on
 * the task's own stack while it runs) and queues the task. */
void csock_task_init(csock_Task *t, csock_Sched *sched, void (*ended)(lua_State *, csock_Task *, int));
void csock_task_start(lua_State *L, csock_Task *t, int nargs);

/* Waiting. The current task t goes in *list (NULL: in none, a plain
 * sleep), then csock_task_suspend yields it until it is woken or the
 * deadline (CSOCK_FOREVER: none) passes; it comes back through k with the
 * wake code on top of its stack, which csock_task_woke pops. */
void csock_task_waitin(csock_Task *t, csock_Task **list);
int csock_task_suspend(lua_State *L, csock_Task *t, int64_t deadline, lua_KContext ctx,
                       lua_KFunction k);
int csock_task_woke(lua_State *L);
/* Takes t back out of the list csock_task_waitin put it in (it will not wait after all). */
void csock_task_cancelwait(csock_Task *t);
/* Wakes the first task on *list with `how`: 1, or 0 if there was none. */
int csock_task_wakeone(csock_Task **list, int how);
void csock_task_wakeall(csock_Task **list, int how);

/* What the loop drives: the Lua thread that resumes tasks during a run or
 * a step (set by csock_sched_enter, until csock_sched_leave). */
void csock_sched_enter(csock_Sched *sched, lua_State *L);
void csock_sched_leave(csock_Sched *sched);
lua_State *csock_sched_state(csock_Sched *sched);
/* Pushes the error csock.run's own task failed with, and forgets it; 0 if none. */
int csock_sched_mainerror(lua_State *L, csock_Sched *sched);
/* Where errors of tasks nobody joins go: a Lua handler (csock.onerror),
 * the embedder's hook, or stderr. */
void csock_sched_seterrhook(csock_Sched *sched, csock_ErrorHook hook, void *ud);
/* Pops the Lua handler (a function, or nil for none). */
void csock_sched_setonerror(lua_State *L, csock_Sched *sched);

/* Task objects (their metatable is CSOCK_TASK_MT; its methods are run.c's):
 * checks one; pushes a done one's outcome (results, or nil and error). */
csock_Task *csock_checktask(lua_State *L, int idx);
int csock_task_pushoutcome(lua_State *L, int idx);

#endif
