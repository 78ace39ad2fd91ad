/*
 * Internal interface between the Lua binding files of csock.core.
 * (The Lua-free layers are sys.h, addr.h and buffer.h.)
 */
#ifndef CSOCK_CORE_H
#define CSOCK_CORE_H

#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"

#include "addr.h"
#include "buffer.h"
#include "poller.h"
#include "sys.h"

#define CSOCK_SOCKET_MT "csock.socket"
#define CSOCK_VERSION "csock 0.1.0"

#define CSOCK_DEFAULT_READLIMIT (1024 * 1024)
#define CSOCK_NO_DEADLINE (-1)
#define CSOCK_UNSET_DEADLINE INT64_MIN

enum { CSOCK_DIR_READ, CSOCK_DIR_WRITE };

typedef struct csock_Loop csock_Loop;
typedef struct csock_Task csock_Task;

#define CSOCK_OUT_MAX 65536 /* coalesced output per socket, at most */

typedef struct csock_Socket {
  int fd;            /* -1 once closed */
  int out_err;       /* a deferred send's failure, reported by the next write */
  uint8_t family;    /* AF_INET, AF_INET6, AF_UNIX */
  uint8_t type;      /* SOCK_STREAM, SOCK_DGRAM */
  /* Flags, packed: ten thousand idle connections are ten thousand sockets. */
  unsigned eof : 1;      /* the buffered reader saw the peer's end of stream */
  unsigned drained : 1;  /* a short read emptied the kernel's queue: wait before the next recv */
  unsigned hup : 1;      /* the loop saw the peer hang up (or an error): a short read proves nothing */
  unsigned borrowed : 1; /* `in` is the loop's scratch space for the length of one read call */
  unsigned lingers : 1;  /* SO_LINGER set with a time: close(2) would block */
  unsigned flushing : 1; /* output left over: wants writability without a waiter */
  unsigned shut_after_flush : 2; /* shutdown(how)+1 once the output is sent; 0 for none */
  uint32_t readlimit; /* longest line read/lines will buffer */
  int64_t timeout;   /* nanoseconds; CSOCK_NO_DEADLINE for none */
  int64_t deadline[2]; /* of the operation under way, per direction */
  csock_Buffer in;   /* received, not yet taken */
  /* the loop's side */
  csock_Loop *loop;
  csock_Watch watch;
  csock_Task *waiters[2];      /* per direction */
  csock_Buffer out;            /* coalesced output, sent before the loop polls */
  struct csock_Socket *dirty_next, **dirty_prev;
} csock_Socket;

/* The buffer pool of the socket's loop (NULL once the loop is gone). */
csock_BufPool *csock_pool(csock_Socket *s);
/* The loop's scratch space for one recv of up to `want` bytes, or a fresh
 * allocation (*owned, to free) while a reader has borrowed the scratch;
 * NULL when memory is short. */
char *csock_recvspace(csock_Socket *s, size_t want, char **owned);

/* socket.c */
csock_Socket *csock_checksocket(lua_State *L, int idx); /* raises if closed */
csock_Socket *csock_testsocket(lua_State *L, int idx);  /* NULL if not a socket */
/* The socket at idx that csock_checksocket vetted earlier in this call (a
 * continuation's stack keeps it): only whether it was closed since is
 * checked, which spares every read and write a second metatable lookup. */
static inline csock_Socket *csock_vettedsocket(lua_State *L, int idx) {
  csock_Socket *s = (csock_Socket *)lua_touserdata(L, idx);
  if (s->fd < 0) luaL_error(L, "attempt to use a closed socket");
  return s;
}
csock_Socket *csock_newsocket(lua_State *L, int fd, int family, int type);
/* A csock.listen connection's socket, in loop, with its task (`extra`
 * bytes) after it; pushed closed (the caller stores the fd). Its
 * metatable has no __gc (a finalizer per connection costs the collector
 * dearly): the loop closes it when its task ends, or with the loop
 * (csock_conns_close). */
csock_Socket *csock_newconnsocket(lua_State *L, csock_Loop *loop, int family, int type,
                                  size_t extra);
void csock_close(csock_Socket *s); /* idempotent, never blocks */
int csock_checkfamily(lua_State *L, int idx);
const char *csock_familyname(int family);
void csock_open_socket(lua_State *L);

/* errors.c: every failure result goes through these. */
int csock_oserror(lua_State *L, int err);        /* nil, message, errno */
int csock_fail(lua_State *L, const char *msg);   /* nil, message */
int csock_timeout(lua_State *L);                 /* nil, "timeout", ETIMEDOUT */
int csock_closed(lua_State *L);                  /* nil, "closed" */
int csock_result(lua_State *L, int r);           /* true, or the error of r < 0 */
void csock_open_errors(lua_State *L);

/* wait.c: the one place where an operation that would block waits.
 * Call csock_begin when an operation starts; on EAGAIN call csock_wait.
 * It returns 0 when the socket may be ready (retry the syscall) or, after
 * pushing the failure, the number of results to return. Inside a task it
 * will yield and come back through k instead of blocking. */
static inline void csock_begin(csock_Socket *s, int dir) {
  s->deadline[dir] = CSOCK_UNSET_DEADLINE;
}
int csock_wait(lua_State *L, csock_Socket *s, int dir, lua_KContext ctx, lua_KFunction k);
/* The operation's deadline (CSOCK_NO_DEADLINE for none), fixed at first ask. */
int64_t csock_deadline(csock_Socket *s, int dir);
/* In k: the wait's outcome, as csock_wait. s: the socket waited on (at 1,
 * vetted before the wait), to report it closed meanwhile; or NULL. */
int csock_resumed(lua_State *L, csock_Socket *s);
/* The socket at 1 of an operation's continuation, vetted before it waited. */
#define csock_waitedsocket(L) ((csock_Socket *)lua_touserdata((L), 1))

/* address.c */
int csock_checkport(lua_State *L, int idx);
/* Reads host, port (or a unix path) at idx into *a for socket s; returns 0,
 * or the number of failure results it pushed (name resolution failed).
 * Inside a task a host name is looked up off the loop: the call suspends
 * and continues in k, which calls csock_getaddr_resumed(L, ctx, a). */
int csock_getaddr(lua_State *L, csock_Socket *s, int idx, csock_Addr *a, lua_KFunction k);
int csock_getaddr_resumed(lua_State *L, lua_KContext ctx, csock_Addr *a);
int csock_pushaddr(lua_State *L, const struct sockaddr *sa, socklen_t len);
void csock_open_address(lua_State *L);
void csock_open_loop(lua_State *L);
void csock_open_tasks(lua_State *L);
void csock_open_fdwait(lua_State *L);
void csock_open_signals(lua_State *L);

/* options.c, transfer.c, bufio.c, select.c */
void csock_open_options(lua_State *L);
void csock_open_transfer(lua_State *L);
void csock_open_bufio(lua_State *L);
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
/* With nothing queued on s: sends the n pieces at once and queues what the
 * kernel does not take if that is at most `most` bytes. Returns the bytes
 * sent or queued (fewer than all when the rest did not fit, or memory ran
 * short), or -errno when the send failed. */
ssize_t csock_sendqueue(csock_Socket *s, const struct iovec *iov, int n, size_t most);
void csock_open_resp(lua_State *L);
void csock_open_select(lua_State *L);
void csock_open_serve(lua_State *L);
void csock_open_relay(lua_State *L);

#endif
