/*
 * Poll backends: one small, Lua-free interface with an epoll and a poll(2)
 * implementation, picked at run time. The engine says what each watched fd
 * wants (CSOCK_WANT_READ/WRITE, 0 for nothing); a backend may report more
 * than asked (epoll watches both directions edge-triggered, so it needs no
 * syscall when interest changes), since every report is only a hint to
 * retry the syscall.
 */
#ifndef CSOCK_POLLER_H
#define CSOCK_POLLER_H

#include "sys.h"

/* A watched fd. Its owner sets fd and ready; the backend owns watched and
 * slot. The engine calls ready with what the backend reported. */
typedef struct csock_Io csock_Io;
struct csock_Io {
  int fd;
  unsigned watched : 2; /* directions the backend reports now, 0 = not registered */
  unsigned slot : 30;   /* the backend's private index */
  void (*ready)(csock_Io *io, int events);
};

/* Also reported: the peer hung up or the socket has an error. */
#define CSOCK_EVENT_HUP 4

typedef struct csock_Ready {
  csock_Io *io;
  int events;   /* CSOCK_WANT_READ | CSOCK_WANT_WRITE (errors report both) | CSOCK_EVENT_HUP */
} csock_Ready;

typedef struct csock_Poller csock_Poller;

typedef struct csock_PollerOps {
  const char *name;
  /* NULL and *err set when it cannot be made. */
  csock_Poller *(*create)(int *err);
  void (*destroy)(csock_Poller *p);
  /* Makes the backend report (at least) `want` for io: 0 or -errno. */
  int (*watch)(csock_Poller *p, csock_Io *io, int want);
  /* Drops io entirely; call before its fd is closed. */
  void (*forget)(csock_Poller *p, csock_Io *io);
  /* Waits up to timeout_ms (-1 forever): number of entries filled, or -errno. */
  int (*wait)(csock_Poller *p, csock_Ready *out, int max, int timeout_ms);
  /* An fd that is readable when wait would return at once, or -1. */
  int (*fd)(csock_Poller *p);
} csock_PollerOps;

extern const csock_PollerOps csock_poll_ops;
#ifdef __linux__
extern const csock_PollerOps csock_epoll_ops;
#endif

/* name: "epoll", "poll", or NULL for the platform's best. NULL if unknown. */
const csock_PollerOps *csock_poller_find(const char *name);

#endif
