/*
 * Name resolution off the loop: getaddrinfo runs on helper threads (a few,
 * started on demand, gone when idle) and the loop's eventfd says when a
 * lookup is done. Used by tasks; plain scripts resolve in place.
 */
#ifndef CSOCK_RESOLVE_H
#define CSOCK_RESOLVE_H

#include "loop.h"

#define CSOCK_RESOLVE_MAX 16  /* addresses kept per lookup */
#define CSOCK_RESOLVE_THREADS 8

struct csock_Resolve {
  csock_Resolve *next;
  csock_Loop *loop;
  csock_Task *waiter;   /* the task waiting for it (a wait list of one) */
  int finished;         /* the loop has handed it back */
  int abandoned;        /* its task gave up (timeout) */
  int port, family, socktype;
  int rc, err;          /* getaddrinfo's code, and errno for EAI_SYSTEM */
  int count;
  csock_Addr addrs[CSOCK_RESOLVE_MAX];
  char host[];
};

/* Starts a lookup; NULL when it cannot (the caller resolves in place). */
csock_Resolve *csock_resolve_start(csock_Loop *loop, const char *host, int port, int family, int socktype);
/* The waiting task is done with r (read it, or gave up). */
void csock_resolve_release(csock_Resolve *r, int gave_up);

#endif
