/*
 * csock.signal(name, fn): a script's own signal handling, inside the loop.
 * While the loop runs, the signal is blocked and read from a signalfd the
 * engine watches, so no Lua ever runs in a signal handler; fn(name) runs
 * as a task. Outside the loop the signal keeps its usual effect (a script
 * blocked in plain code still dies of ^C). Only a script's explicit call
 * changes the thread's signal mask, and only while the loop runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "core.h"

static const char signals_key = 'S'; /* registry: the Signals userdata, its user value the handlers */

typedef struct Signals {
  csock_Hook hook;     /* enter and leave: hold and release; teardown */
  csock_Io io;         /* the signalfd, -1 until a signal is handled */
  csock_Work handle;   /* reads the signalfd and starts the handlers, from the ready queue */
  int queued;          /* handle is in the ready queue */
  csock_Sched *sched;
  sigset_t handled;    /* the signals scripts handle */
  sigset_t saved_mask; /* the thread's mask before the loop started */
  int holding;         /* the handled signals are blocked (the loop runs) */
} Signals;

static const struct { const char *name; int signo; } signal_names[] = {
  {"INT", SIGINT},   {"TERM", SIGTERM}, {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
  {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"CHLD", SIGCHLD}, {"WINCH", SIGWINCH},
  {"ALRM", SIGALRM}, {"PIPE", SIGPIPE},
};
#define NSIGNALS ((int)(sizeof signal_names / sizeof signal_names[0]))

static int checksignal(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (int i = 0; i < NSIGNALS; i++)
    if (strcmp(signal_names[i].name, name) == 0) return i;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
}

static void hold(Signals *sg) {
  if (sg->holding) return;
  pthread_sigmask(SIG_BLOCK, &sg->handled, &sg->saved_mask);
  sg->holding = 1;
}

static void release(Signals *sg) {
  if (!sg->holding) return;
  pthread_sigmask(SIG_SETMASK, &sg->saved_mask, NULL);
  sg->holding = 0;
}

/* Each signal the signalfd has for us starts its handler as a task. */
/* Each signal the signalfd has starts its handler as a task, to run before
 * anything else woken in the same turn, in the order the signals came: a
 * SIGTERM that arrives with new connections closes the listeners before
 * the accept loop takes them. (The kernel holds each standard signal
 * once, so a read has at most one of each.) */
static void handle(csock_Work *w) {
  Signals *sg = (Signals *)((char *)w - offsetof(Signals, handle));
  lua_State *L = csock_sched_state(sg->sched);
  struct signalfd_siginfo info[NSIGNALS];
  int got[NSIGNALS];
  int n = 0;
  ssize_t r;
  sg->queued = 0;
  while (n < NSIGNALS && (r = read(sg->io.fd, info, sizeof info)) > 0)
    for (size_t k = 0; k < (size_t)r / sizeof info[0] && n < NSIGNALS; k++)
      for (int i = 0; i < NSIGNALS; i++)
        if ((int)info[k].ssi_signo == signal_names[i].signo) got[n++] = i;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &signals_key);
  lua_getiuservalue(L, -1, 1); /* the handlers */
  while (n-- > 0) { /* last first: each goes to the front of the queue */
    if (lua_getfield(L, -1, signal_names[got[n]].name) == LUA_TFUNCTION) {
      lua_pushstring(L, signal_names[got[n]].name);
      csock_task_spawnnext(L, sg->sched, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* The signalfd is readable: its signals are handled first thing from the
 * ready queue (starting a task allocates, which may run Lua code). */
static void ready(csock_Io *io, int events) {
  (void)events;
  Signals *sg = (Signals *)((char *)io - offsetof(Signals, io));
  if (sg->queued) return;
  sg->queued = 1;
  csock_engine_queuefront(csock_sched_engine(sg->sched), &sg->handle);
}

static void on_phase(csock_Hook *h, int phase) {
  Signals *sg = (Signals *)h; /* the hook is first */
  if (phase == CSOCK_HOOK_ENTER) {
    hold(sg);
  } else if (phase == CSOCK_HOOK_LEAVE) {
    release(sg);
  } else { /* teardown */
    release(sg);
    sigemptyset(&sg->handled);
    if (sg->io.fd < 0) return;
    csock_engine_forget(csock_sched_engine(sg->sched), &sg->io);
    close(sg->io.fd);
    sg->io.fd = -1;
  }
}

/* This state's signal handling, made at the first csock.signal call. */
static Signals *getsignals(lua_State *L) {
  Signals *sg = (Signals *)csock_statedata(L, &signals_key);
  if (sg != NULL) return sg;
  sg = (Signals *)lua_newuserdatauv(L, sizeof *sg, 1);
  memset(sg, 0, sizeof *sg);
  sg->io.fd = -1;
  sg->io.ready = ready;
  sg->handle.run = handle;
  sg->sched = csock_getsched(L);
  sigemptyset(&sg->handled);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &signals_key);
  csock_Engine *e = csock_sched_engine(sg->sched);
  csock_engine_hook(e, &sg->hook, CSOCK_HOOK_ENTER | CSOCK_HOOK_LEAVE | CSOCK_HOOK_CLOSE, on_phase);
  if (e->running) hold(sg); /* called from a task: the loop runs already */
  return sg;
}

/* Points the signalfd (made on first use) at the handled set. */
static int update_fd(Signals *sg) {
  int fd = signalfd(sg->io.fd, &sg->handled, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return -errno;
  if (sg->io.fd < 0) {
    sg->io.fd = fd;
    return csock_engine_watch(csock_sched_engine(sg->sched), &sg->io, CSOCK_WANT_READ);
  }
  return 0;
}

static int l_signal(lua_State *L) {
  int i = checksignal(L, 1);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  Signals *sg = getsignals(L);
  int signo = signal_names[i].signo;
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &signals_key);
  lua_getiuservalue(L, -1, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, signal_names[i].name);
  if (lua_isnil(L, 2)) { /* give the signal back its usual behaviour */
    if (sigismember(&sg->handled, signo)) {
      sigdelset(&sg->handled, signo);
      if (sg->holding && !sigismember(&sg->saved_mask, signo))
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
      if (sg->io.fd >= 0) update_fd(sg);
    }
  } else if (!sigismember(&sg->handled, signo)) {
    sigaddset(&sg->handled, signo);
    if (sg->holding) pthread_sigmask(SIG_BLOCK, &one, NULL);
    int r = update_fd(sg);
    if (r < 0) return csock_oserror(L, r);
  }
  lua_pushboolean(L, 1);
  return 1;
}

void csock_open_signals(lua_State *L) {
  lua_pushcfunction(L, l_signal);
  lua_setfield(L, -3, "signal");
}
