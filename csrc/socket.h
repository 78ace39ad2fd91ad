/*
 * A socket below Lua: its fd and the engine's watch on it, its transport
 * (how stream bytes move: stream.h), its receive buffer, its coalesced
 * output, and the tasks waiting on it. Also csock_Net, the socket layer's
 * per-state data: the services every socket uses. Lua-free; the Lua
 * object wrapping a csock_Socket is socket.c's.
 */
#ifndef CSOCK_SOCKET_H
#define CSOCK_SOCKET_H

#include <stdint.h>

#include "buffer.h"
#include "engine.h"
#include "orphans.h"
#include "output.h"
#include "stream.h"

enum { CSOCK_DIR_READ, CSOCK_DIR_WRITE };

#define CSOCK_OUT_MAX 65536 /* coalesced output per socket, at most */
#define CSOCK_SCRATCH 262144 /* the most one recv call returns */
/* The part of it a buffered reader borrows: what one read leaves over is
 * copied to the socket's own buffer, which this keeps small. */
#define CSOCK_BORROW_MAX 65536

struct csock_Task; /* tasks.h: a socket's waiters are tasks */
typedef struct csock_Net csock_Net;

typedef struct csock_Socket {
  csock_Io io;           /* io.fd: the socket's fd, -1 once closed */
  const csock_Transport *tp; /* every stream read and write goes through it */
  csock_Net *net;
  int64_t timeout;       /* nanoseconds; CSOCK_FOREVER for none */
  int64_t deadline;      /* of the blocking call under way (wait.c; a task keeps its own) */
  csock_Buffer in;       /* received, not yet taken */
  csock_Buffer out;      /* coalesced output, sent before the engine polls (output.c) */
  struct csock_Task *waiters[2]; /* by the readiness they need: [0] read, [1] write */
  struct csock_Socket *dirty_next, **dirty_prev; /* in the output queue */
  uint32_t readlimit;    /* longest line read/lines will buffer */
  uint16_t out_err;      /* a deferred send's failure, reported by the next write */
  uint8_t family;        /* AF_INET, AF_INET6, AF_UNIX */
  uint8_t type;          /* SOCK_STREAM, SOCK_DGRAM */
  /* Flags, packed: ten thousand idle connections are ten thousand sockets. */
  unsigned eof : 1;      /* the buffered reader saw the peer's end of stream */
  unsigned drained : 1;  /* the transport knows a recv would say EAGAIN: wait for readiness first */
  unsigned hup : 1;      /* the engine saw the peer hang up (or an error): a short read proves nothing */
  unsigned borrowed : 1; /* `in` is the scratch space for the length of one read call */
  unsigned lingers : 1;  /* SO_LINGER set with a time: close(2) would block */
  unsigned flushing : 1; /* output left over: wants writability without a waiter */
  unsigned shut_after_flush : 2; /* shutdown(how)+1 once the output is sent; 0 for none */
  unsigned looked : 1;   /* the blocking call's one look past its deadline is used (wait.c) */
  unsigned stalls : 6;   /* 3 bits per readiness: reports since something last moved (wait.c) */
  unsigned cross : 2;    /* per direction: the transport needs the other readiness to go on */
} csock_Socket;

/* The socket layer's per-state data (socket.c makes it, with the module). */
struct csock_Net {
  csock_Engine *engine;
  struct csock_Sched *sched;
  csock_Output output;   /* the queue of sockets with coalesced output */
  csock_Orphans orphans; /* closed sockets whose output is still being sent */
  csock_BufPool pool;    /* spare buffer blocks for sockets' in and out */
  csock_Hook hook;       /* teardown: the pool and the scratch space go */
  int scratch_busy;      /* a buffered reader has borrowed the scratch space */
  int socket_mt, conn_mt; /* registry refs: sockets', csock.listen connections' metatables */
  /* recv/recvfrom land here, then become Lua strings: no allocation per
   * call, and nothing on the Lua stack that a yield could strand. Made
   * by the first read, not with the module. */
  char *scratch;
};

static inline int csock_isopen(const csock_Socket *s) { return s->io.fd >= 0; }

/* The buffer pool (NULL once the engine is closed: buffers are freed). */
static inline csock_BufPool *csock_pool(const csock_Socket *s) {
  return csock_engine_closed(s->net->engine) ? NULL : &s->net->pool;
}

/* The scratch space (CSOCK_SCRATCH bytes), made on first use; NULL if memory ran out. */
char *csock_net_scratch(csock_Net *net);
/* Room for one recv of up to `want` bytes: the scratch space, or a fresh
 * allocation (*owned, to free) while a reader has borrowed it; NULL when
 * memory is short. */
char *csock_recvspace(csock_Socket *s, size_t want, char **owned);

/* Tells the engine the readiness that the tasks waiting on s, and its
 * unsent output, need now: 0 or -errno. */
static inline int csock_socket_rewatch(csock_Socket *s) {
  int want = (s->waiters[CSOCK_WANT_READ - 1] ? CSOCK_WANT_READ : 0) |
             (s->waiters[CSOCK_WANT_WRITE - 1] || s->flushing ? CSOCK_WANT_WRITE : 0);
  if (want == s->io.watched || s->io.fd < 0) return 0; /* epoll's "both" covers any want */
  return csock_engine_watch(s->net->engine, &s->io, want);
}

#endif
