/*
 * The loop, as the binding files see it: tasks (coroutines the loop
 * resumes), what they wait on, and the per-Lua-state loop itself. The
 * loop lives in a userdata in the registry, never in a C global, so one
 * process may run several Lua states.
 */
#ifndef CSOCK_LOOP_H
#define CSOCK_LOOP_H

#include <pthread.h>
#include <signal.h>

#include "core.h"
#include "heap.h"
#include "poller.h"

#define CSOCK_TASK_MT "csock.task"
#define CSOCK_LOOP_EVENTS 256 /* readiness reports taken per poll */
#define CSOCK_SCRATCH 262144  /* the most one recv call returns */
/* The part of it a buffered reader borrows: what one read leaves over is
 * copied to the socket's own buffer, which this keeps small. */
#define CSOCK_BORROW_MAX 65536

/* Owners of watches. */
enum { CSOCK_WATCH_SOCKET, CSOCK_WATCH_WAKEUP, CSOCK_WATCH_FD, CSOCK_WATCH_SIGNAL, CSOCK_WATCH_ORPHAN };

/* A task waiting on an fd that is not a csock socket (csock.waitfd, select). */
typedef struct csock_FdWatch {
  csock_Watch watch;
  csock_Task *waiters;
  csock_Loop *loop;
  int want;   /* the directions the waiter asked for: other reports are not for it */
  int owned;  /* close the fd when done with it */
} csock_FdWatch;

typedef struct csock_Orphan csock_Orphan;

/* How a waiting task was woken: what it is resumed with. */
enum { CSOCK_WOKE_READY, CSOCK_WOKE_TIMEOUT, CSOCK_WOKE_CLOSED };
/* Owners of heap nodes. */
enum { CSOCK_HEAP_TASK, CSOCK_HEAP_TIMER, CSOCK_HEAP_ORPHAN };
enum { CSOCK_TASK_READY, CSOCK_TASK_RUNNING, CSOCK_TASK_WAITING, CSOCK_TASK_DONE };

typedef struct csock_Resolve csock_Resolve;

struct csock_Task {
  csock_HeapNode deadline;   /* first: sleeps and wait timeouts */
  lua_State *co;
  csock_Loop *loop;
  int nargs;                 /* arguments for the first resume, -1 after */
  int ref;                   /* registry ref to the task's object while not done
                                (a connection's: its coroutine's stack holds it) */
  int slot;                  /* its coroutine's place in the threads table */
  unsigned state : 2;        /* CSOCK_TASK_* */
  unsigned wake : 2;         /* resume code once woken (CSOCK_WOKE_*) */
  unsigned failed : 1;
  unsigned is_main : 1;      /* csock.run(fn)'s task: its error is run's */
  unsigned is_conn : 1;      /* a csock.listen connection's task (see serve.c) */
  unsigned awaited : 1;      /* join() outside a task waits for it: its error goes there */
  csock_Task *next_ready;
  csock_Task **wait_list;    /* the list this task waits in, if any */
  csock_Socket *waitsock;    /* the socket that list belongs to, if any */
  csock_Task *next_wait;
  union {                    /* nobody can join a connection's task */
    csock_Task *joiners;       /* tasks waiting for this one to end */
    struct {                   /* a connection's task (is_conn) */
      struct csock_Server *server;
      csock_Task *next, **prev; /* in loop->conns while it runs */
    } conn;
  } u;
};

#define CSOCK_KEEP_THREADS 256
typedef struct csock_SpareThread {
  lua_State *co;
  int slot;                  /* in the threads table, which keeps it */
} csock_SpareThread;

struct csock_Loop {
  const csock_PollerOps *ops;
  csock_Poller *poller;      /* NULL until first needed (csock_loop_poller) */
  int closed;                /* the Lua state is closing: the loop is gone */
  csock_Heap heap;
  csock_Task *ready_head, *ready_tail;
  csock_Task *current;       /* the task running now, if any */
  int alive;                 /* tasks not done + timers set */
  int running;               /* inside run/step/join: no re-entry */
  int stop;
  int main_error;            /* registry ref of the main task's error, or LUA_NOREF */
  int onerror;               /* registry ref of the error handler, or LUA_NOREF */
  /* Registry refs of what hot paths fetch: an integer key is an array
   * read, a light userdata key a hash lookup. */
  int socket_mt, conn_mt, task_mt; /* metatables: sockets, csock.listen's connections, tasks */
  int threads;               /* the table of every coroutine csock made, running or spare */
  void (*errhook)(lua_State *L, const char *msg, void *ud); /* csock_onerror's */
  void *errhook_ud;
  csock_Socket *dirty;       /* sockets with coalesced output to send */
  int scratch_busy;          /* a socket's reader has borrowed it (see bufio.c) */
  csock_BufPool pool;        /* spare buffer blocks for sockets' in and out */
  int nspare;                /* coroutines in spare */
  csock_Orphan *orphans;     /* closed sockets whose output the loop still sends */
  csock_Task *conns;         /* csock.listen's connection tasks running (serve.c) */
  /* name resolution on helper threads */
  csock_Watch wakeup;        /* an eventfd the threads poke */
  pthread_mutex_t lock;
  pthread_cond_t idle;
  csock_Resolve *pending;    /* not started yet, under lock */
  csock_Resolve *resolved;   /* finished, under lock */
  int resolving;             /* threads running, under lock */
  /* csock.signal: a signalfd for the signals scripts handle */
  csock_Watch signals;
  sigset_t handled;          /* the signals scripts handle (csock.signal) */
  sigset_t saved_mask;       /* the thread's mask before the loop started */
  int holding;               /* the handled signals are blocked (the loop runs) */
  /* recv/recvfrom land here, then become Lua strings: no allocation per
   * call, and nothing on the Lua stack that a yield could strand. Made by
   * the first read (csock_loopscratch), not by require "csock", whose
   * start and exit it slowed (an mmap, a munmap, a page fault per 4 KiB
   * cleared). */
  char *scratch;
  /* Last, and not cleared when the loop is made: what is never used is
   * never touched, so a script that only requires csock pays no page
   * faults for them. */
  csock_SpareThread spare[CSOCK_KEEP_THREADS]; /* finished tasks' coroutines, for reuse */
  csock_Ready events[CSOCK_LOOP_EVENTS];       /* filled by the backend's wait */
};

/* The loop's scratch space (CSOCK_SCRATCH bytes), made on first use; NULL
 * if memory ran out. */
char *csock_loopscratch(csock_Loop *loop);
/* The loop's poller, made on first use; NULL (errno set) if it can't be
 * made or the loop is closed. */
csock_Poller *csock_loop_poller(csock_Loop *loop);
/* Watches w for `want` (making the poller if need be): 0 or -errno. */
int csock_loop_watch(csock_Loop *loop, csock_Watch *w, int want);
/* Makes the eventfd resolver threads poke, if not made yet: 0 or -errno. */
int csock_loop_wakeup(csock_Loop *loop);
/* The loop of this Lua state (created with the module). */
csock_Loop *csock_getloop(lua_State *L);
/* The task whose coroutine is L, if L is a task that may yield now. */
csock_Task *csock_current(csock_Loop *loop, lua_State *L);

/* Suspends the current task t (already put in whatever list will wake it)
 * until woken; comes back through k. Never returns. */
int csock_suspend(lua_State *L, csock_Task *t, int64_t deadline, lua_KContext ctx, lua_KFunction k);
/* Puts t (on list *list, or on none) to sleep until woken; the caller still
 * calls csock_suspend. */
void csock_waitin(csock_Task *t, csock_Task **list);
/* Wakes the first task on *list with `how`: 1, or 0 if there was none. */
int csock_wakeone(csock_Task **list, int how);
/* Wakes every task on *list with `how`. */
void csock_wakeall(csock_Task **list, int how);
void csock_schedule(csock_Task *t, int how);

/* Socket interest: what its waiters (and pending output) need now. */
void csock_rewatch(csock_Socket *s);
/* Coalesced output: queue the socket for the next flush. */
void csock_markdirty(csock_Socket *s);
/* Sends what the kernel takes now, without waiting; 0, or -errno. */
int csock_flushnow(csock_Socket *s);
/* Before close: wakes waiters with "closed", drops watch and dirty mark.
 * Returns 1 when the loop has adopted the fd to send output the kernel
 * could not take yet (it closes the fd itself), 0 when the caller closes. */
int csock_detach(csock_Socket *s);

/* Around every run/step/join: marks the loop running and, for that long,
 * takes over the signals scripts handle (outside the loop they keep their
 * usual effect, so a script blocked outside the loop still dies of ^C). */
void csock_loop_enter(csock_Loop *loop);
void csock_loop_leave(csock_Loop *loop);
void csock_signals_hold(csock_Loop *loop);
void csock_signals_release(csock_Loop *loop);

/* Nanoseconds until the loop needs a turn even without fd activity: 0 when
 * tasks are ready or output waits, the next timer, or -1 (only fds). */
int64_t csock_loop_timeout(csock_Loop *loop);

/* One turn of the loop; timeout_ns < 0 waits as long as needed. */
int csock_loop_step(lua_State *L, csock_Loop *loop, int64_t timeout_ns);

/* fdwait.c: suspends task t until fd is ready for `want` or the deadline;
 * resumes through k with the FdWatch userdata left at the top of the stack
 * below the wake code. Returns the failure count pushed if it can't wait. */
int csock_waitfd(lua_State *L, csock_Task *t, int fd, int want, int owned, int64_t deadline,
                 lua_KContext ctx, lua_KFunction k);
/* In k: ends the wait started by csock_waitfd (FdWatch at idx); returns
 * 1 ready, 0 timed out. Pops the wake code. */
int csock_waitfd_end(lua_State *L, int idx);

/* tasks.c: makes a task of the function and its nargs arguments on top of
 * L's stack (replacing them with the task) and queues it. */
csock_Task *csock_newtask(lua_State *L, csock_Loop *loop, int nargs);
/* tasks.c: a task ended (its outcome is stored, what it owned ended):
 * lets go of its object and keeps its coroutine for reuse. A connection's
 * task may be freed by then: touch it no more. */
void csock_task_ended(lua_State *L, csock_Task *t);
/* tasks.c, for tasks that live inside another object (a csock.listen
 * connection's lives in its socket): csock_inittask clears t; then, with
 * that object, the function and its nargs arguments on top of the stack,
 * csock_starttask pops the function and arguments and queues the task. */
void csock_inittask(csock_Task *t, csock_Loop *loop);
void csock_starttask(lua_State *L, csock_Task *t, int nargs);
/* tasks.c: pushes a done, failed task object holding the error at -1. */
void csock_pushfailedtask(lua_State *L, csock_Loop *loop);

/* serve.c: a connection task ended: close its socket, free its place. */
void csock_conn_ended(csock_Task *t);
/* serve.c: the loop goes (its Lua state closes): ends the connections
 * whose tasks still run (their sockets have no __gc to do it). */
void csock_conns_close(csock_Loop *loop);

/* signals.c: the signalfd is readable; run the handlers. */
void csock_signal_dispatch(lua_State *L, csock_Loop *loop);
void csock_signal_close(csock_Loop *loop);

/* tasks.c: a timer object's node expired. */
void csock_fire_timer(lua_State *L, csock_Loop *loop, csock_HeapNode *node);

/* resolve.c */
void csock_resolve_done(csock_Loop *loop);    /* on wakeup: resume finished lookups */
void csock_resolve_drain(csock_Loop *loop);   /* at teardown: wait for threads */


#endif
