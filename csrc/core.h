/*
 * The interface between the Lua binding files of csock.core: the socket
 * object and its checkers, failure results, argument checks, waiting on a
 * socket, and what each file adds to the module. (The Lua-free layers
 * have their own headers: sys.h, sockaddr.h, buffer.h, heap.h, poller.h,
 * engine.h, resolver.h, socket.h, stream.h, output.h, orphans.h.)
 */
#ifndef CSOCK_CORE_H
#define CSOCK_CORE_H

#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"

#include "sockaddr.h"
#include "socket.h"
#include "tasks.h"

#define CSOCK_SOCKET_MT "csock.socket"
#define CSOCK_VERSION "csock 0.1.0"
#define CSOCK_DEFAULT_READLIMIT (1024 * 1024)

/* run.c: this state's engine (made with the module). */
csock_Engine *csock_getengine(lua_State *L);
/* run.c: runs the loop until `until` is done (NULL: until nothing is
 * left), stop, or csock.run's task fails (its error is raised). */
void csock_run_until(lua_State *L, csock_Task *until);
/* run.c: one turn, polling at most timeout_ns: 0 or -errno (an error out
 * of the turn, when memory runs out, is raised). The engine must not be
 * running (csock.step and csock_step check). */
int csock_run_step(lua_State *L, csock_Sched *sched, int64_t timeout_ns);

/* socket.c: getting a socket off the stack. At an entry point,
 * csock_checksocket (an open socket) or csock_checkanysocket (open or
 * closed: close, tostring, state); csock_testsocket where anything may
 * come (NULL if not a socket). In a continuation, csock_keptsocket: the
 * socket the entry point checked, unchecked (csock_resumed has told
 * whether it was closed meanwhile). */
csock_Socket *csock_checksocket(lua_State *L, int idx);
csock_Socket *csock_checkanysocket(lua_State *L, int idx);
csock_Socket *csock_testsocket(lua_State *L, int idx);
#define csock_keptsocket(L, idx) ((csock_Socket *)lua_touserdata((L), (idx)))
/* New sockets are pushed closed, the fd stored once nothing can fail. A
 * csock.listen connection's (`extra` bytes after it, for its task) has no
 * __gc: the server closes it (serve.c). */
csock_Socket *csock_newsocket(lua_State *L, csock_Net *net, int family, int type, size_t extra);
csock_Net *csock_getnet(lua_State *L);
void csock_close(csock_Socket *s); /* idempotent, never blocks */
int csock_checkfamily(lua_State *L, int idx);

/* errors.c: every failure result goes through these. */
int csock_oserror(lua_State *L, int err);        /* nil, message, errno */
int csock_fail(lua_State *L, const char *msg);   /* nil, message */
int csock_timeout(lua_State *L);                 /* nil, "timeout", ETIMEDOUT */
int csock_closed(lua_State *L);                  /* nil, "closed" */
int csock_result(lua_State *L, int r);           /* true, or the error of r < 0 */

/* auxlib.c: a metatable `name` (made if new, pushed) whose __index is a
 * new table of the methods. */
void csock_newclass(lua_State *L, const char *name, const luaL_Reg *methods);
/* auxlib.c: the argument checks every entry point shares. A time in seconds
 * raises if negative, NaN or not a number; from CSOCK_SECONDS_MAX up
 * (infinity too) it means no limit (CSOCK_FOREVER). csock_checktime: a
 * time that must be there; csock_opttimeout: nil or none is no limit. Both
 * return nanoseconds; csock_optdeadline the deadline that far from now. */
int64_t csock_checktime(lua_State *L, int idx);
int64_t csock_opttimeout(lua_State *L, int idx);
int64_t csock_optdeadline(lua_State *L, int idx);
int csock_checkport(lua_State *L, int idx);
/* A count argument (default def): negative raises. */
size_t csock_optcount(lua_State *L, int idx, lua_Integer def);

/* wait.c: the one place where an operation that would block waits.
 * Call csock_begin when an operation starts; when the transport says
 * EAGAIN, csock_wait. It returns 0 to retry the call, or, after pushing
 * the failure, the number of results to return. Inside a task it yields
 * and comes back through k instead of blocking; k starts with
 * csock_resumed. A wait never outlives the operation's deadline, and
 * readiness that keeps moving nothing makes it pause rather than spin:
 * every call that moves something (bytes, a connection) says so with
 * csock_progress. */
#define CSOCK_DEADLINE_UNSET INT64_MIN /* an operation's deadline before its first wait */
/* The operation's own state (its deadline, its look past it) is kept in
 * its task, so that tasks sharing a socket keep theirs, or in the socket
 * for a blocking call. */
static inline void csock_begin(lua_State *L, csock_Socket *s, int dir) {
  csock_Task *t = csock_task_current(s->net->sched, L);
  if (t != NULL) {
    t->deadline = CSOCK_DEADLINE_UNSET;
    t->looked = 0;
  } else { /* blocking calls come one at a time */
    s->deadline = CSOCK_DEADLINE_UNSET;
    s->looked = 0;
  }
  s->stalls &= ~(7u << (3 * dir)); /* reports before it were not its stalls */
}
/* Something moved on s: readiness reports before this were not for nothing. */
static inline void csock_progress(csock_Socket *s) {
  s->stalls = 0;
}
int csock_wait(lua_State *L, csock_Socket *s, int dir, lua_KContext ctx, lua_KFunction k);
/* A wait for no readiness, until the monotonic time `until`: suspends the
 * task (back through k) or sleeps (returns 0). For what nothing signals. */
int csock_pause(lua_State *L, csock_Socket *s, int64_t until, lua_KContext ctx, lua_KFunction k);
/* The operation's deadline (CSOCK_FOREVER for none), fixed at its first ask. */
int64_t csock_deadline(lua_State *L, csock_Socket *s);
/* In k: the wait's outcome, as csock_wait returns it. */
int csock_resumed(lua_State *L, csock_Socket *s);
/* The engine's report for a socket (its io.ready). */
void csock_socket_ready(csock_Io *io, int events);

/* lookup.c: host, port (or a unix path) at idx, for socket s, into *a.
 * Returns 0, or the number of failure results pushed. Inside a task a
 * name is looked up off the loop: the call suspends and continues in k,
 * which calls csock_getaddr_resumed(L, ctx, a). The lookup is bounded by
 * the socket's write deadline (callers csock_begin it first). */
int csock_getaddr(lua_State *L, csock_Socket *s, int idx, csock_Addr *a, lua_KFunction k);
int csock_getaddr_resumed(lua_State *L, lua_KContext ctx, csock_Addr *a);
int csock_pushaddr(lua_State *L, const struct sockaddr *sa, socklen_t len);

/* bufio.c: the buffered reader's plumbing, for readers of other shapes
 * (resp.c). A reader's function and its continuation start with
 * csock_readresume (NULL: return *nres, the wait's failure, pushed), scan
 * s->in, call csock_readmore when it needs `want` more bytes (0: scan
 * again, s->eof may now be set; else the failure was pushed: stop) and end
 * with csock_readdone (0, or the failure it pushed). */
csock_Socket *csock_readresume(lua_State *L, int status, int *nres);
int csock_readmore(lua_State *L, csock_Socket *s, size_t want, lua_KContext ctx,
                   lua_KFunction k);
int csock_readdone(lua_State *L, csock_Socket *s);
/* Writers of other shapes: csock_outfailed first (the failure of output
 * sent earlier, pushed, or 0); then csock_outreserve gives room for n bytes
 * of coalesced output (in a task, when they fit; fill it, then
 * csock_outcommit) or NULL: then put the bytes as strings at 2..top and
 * return csock_sendnow, which sends them as write does. */
int csock_outfailed(lua_State *L, csock_Socket *s);
char *csock_outreserve(lua_State *L, csock_Socket *s, size_t n);
void csock_outcommit(csock_Socket *s, size_t n);
int csock_sendnow(lua_State *L, csock_Socket *s);

/* fdwait.c: csock_fdwatch pushes a watch for an fd csock does not own
 * (made before the fd, so an fd made for it never leaks); csock_waitfd
 * gives it fd (closed with the watch if `owned`) and suspends task t until
 * fd is ready for `want` or the deadline; it resumes through k with the
 * watch below the wake code. Returns the failure results pushed if it
 * can't wait. */
void *csock_fdwatch(lua_State *L);
int csock_waitfd(lua_State *L, csock_Task *t, void *watch, int fd, int want, int owned,
                 int64_t deadline, lua_KContext ctx, lua_KFunction k);
/* In k: ends that wait (watch at idx): 1 ready, 0 timed out. Pops the wake code. */
int csock_waitfd_end(lua_State *L, int idx);

/* What each file adds to the module: called with the module table at -2
 * and the socket methods table at -1 (module.c). run.c's comes first: it
 * makes the engine and the scheduler; socket.c's makes csock_Net. */
void csock_open_run(lua_State *L);
void csock_open_timers(lua_State *L);
void csock_open_cond(lua_State *L);
void csock_open_fdwait(lua_State *L);
void csock_open_signals(lua_State *L);
void csock_open_socket(lua_State *L);
void csock_open_errors(lua_State *L);
void csock_open_lookup(lua_State *L);
void csock_open_options(lua_State *L);
void csock_open_transfer(lua_State *L);
void csock_open_bufio(lua_State *L);
void csock_open_resp(lua_State *L);
void csock_open_select(lua_State *L);
void csock_open_serve(lua_State *L);
void csock_open_relay(lua_State *L);

#endif
