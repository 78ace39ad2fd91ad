/*
 * csock.signal(name, fn): a script's own signal handling, inside the loop.
 * While the loop runs, the signal is blocked and read from a signalfd the
 * loop watches, so no Lua ever runs in a signal handler; fn(name) runs as
 * a task. Outside the loop the signal keeps its usual effect (a script
 * blocked in plain code still dies of ^C). Only a script's explicit call
 * changes the thread's signal mask, and only while the loop runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "loop.h"

static const char handlers_key = 'S'; /* registry: name -> function */

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

/* Points the signalfd (made on first use) at the handled set. */
static int update_fd(csock_Loop *loop) {
  int fd = signalfd(loop->signals.fd, &loop->handled, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return -errno;
  if (loop->signals.fd < 0) {
    loop->signals.fd = fd;
    int r = csock_loop_watch(loop, &loop->signals, CSOCK_WANT_READ);
    if (r < 0) return r;
  }
  return 0;
}

static int l_signal(lua_State *L) {
  int i = checksignal(L, 1);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  csock_Loop *loop = csock_getloop(L);
  int signo = signal_names[i].signo;
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &handlers_key);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, signal_names[i].name);
  if (lua_isnil(L, 2)) { /* give the signal back its usual behaviour */
    if (sigismember(&loop->handled, signo)) {
      sigdelset(&loop->handled, signo);
      if (loop->holding && !sigismember(&loop->saved_mask, signo))
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
      if (loop->signals.fd >= 0) update_fd(loop);
    }
  } else if (!sigismember(&loop->handled, signo)) {
    sigaddset(&loop->handled, signo);
    if (loop->holding) pthread_sigmask(SIG_BLOCK, &one, NULL);
    int r = update_fd(loop);
    if (r < 0) return csock_oserror(L, r);
  }
  lua_pushboolean(L, 1);
  return 1;
}

void csock_signal_dispatch(lua_State *L, csock_Loop *loop) {
  struct signalfd_siginfo info[8];
  ssize_t n;
  while ((n = read(loop->signals.fd, info, sizeof info)) > 0) {
    for (size_t k = 0; k < (size_t)n / sizeof info[0]; k++) {
      for (int i = 0; i < NSIGNALS; i++) {
        if ((int)info[k].ssi_signo != signal_names[i].signo) continue;
        lua_rawgetp(L, LUA_REGISTRYINDEX, &handlers_key);
        if (lua_getfield(L, -1, signal_names[i].name) == LUA_TFUNCTION) {
          lua_pushstring(L, signal_names[i].name);
          csock_newtask(L, loop, 1);
        }
        lua_pop(L, 2);
      }
    }
  }
}

void csock_signals_hold(csock_Loop *loop) {
  if (loop->holding) return;
  pthread_sigmask(SIG_BLOCK, &loop->handled, &loop->saved_mask);
  loop->holding = 1;
}

void csock_signals_release(csock_Loop *loop) {
  if (!loop->holding) return;
  pthread_sigmask(SIG_SETMASK, &loop->saved_mask, NULL);
  loop->holding = 0;
}

void csock_signal_close(csock_Loop *loop) {
  csock_signals_release(loop);
  sigemptyset(&loop->handled);
  if (loop->signals.fd < 0) return;
  if (loop->signals.watched) loop->ops->forget(loop->poller, &loop->signals);
  close(loop->signals.fd);
  loop->signals.fd = -1;
}

/* Expects the module table at -2 and the methods table at -1. */
void csock_open_signals(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &handlers_key) == LUA_TNIL) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &handlers_key);
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_signal);
  lua_setfield(L, -3, "signal");
}
