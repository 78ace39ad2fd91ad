/*
 * Name lookups off the loop: getaddrinfo runs on helper threads (a few,
 * started on demand, gone when idle), and an eventfd the engine watches
 * says when lookups are done. A lookup's owner is called back in the
 * loop's thread (lk->done); one that stopped waiting abandons it, and the
 * lookup is freed when its thread hands it back. Outside the loop a
 * lookup is waited for on the same eventfd, so it keeps a deadline too.
 * Lua-free.
 */
#ifndef CSOCK_RESOLVER_H
#define CSOCK_RESOLVER_H

#include <pthread.h>

#include "engine.h"
#include "sockaddr.h"

#define CSOCK_LOOKUP_MAX 16  /* addresses kept per lookup */
#define CSOCK_RESOLVER_THREADS 8

typedef struct csock_Resolver csock_Resolver;
typedef struct csock_Lookup csock_Lookup;

struct csock_Lookup {
  csock_Lookup *next;
  csock_Resolver *resolver;
  void (*done)(csock_Lookup *lk); /* in the loop's thread, when finished; or NULL */
  struct csock_Task *waiter;      /* for the owner's use (never touched here) */
  int finished;                   /* handed back by its thread */
  int abandoned;                  /* its owner stopped waiting */
  int port, family, socktype;
  int rc, err;                    /* getaddrinfo's code, and errno for EAI_SYSTEM */
  int count;
  csock_Addr addrs[CSOCK_LOOKUP_MAX];
  char host[];
};

struct csock_Resolver {
  csock_Hook hook;         /* enter: watch the eventfd; teardown: wait for the threads */
  csock_Engine *engine;
  csock_Io wakeup;         /* the eventfd the threads poke; -1 until the first lookup */
  pthread_mutex_t lock;
  pthread_cond_t idle;
  csock_Lookup *pending;   /* not started yet, under lock */
  csock_Lookup *resolved;  /* finished, under lock */
  int threads;             /* running, under lock */
};

void csock_resolver_init(csock_Resolver *r, csock_Engine *e);
/* Starts a lookup; NULL when it cannot (no memory, no thread, no eventfd):
 * then the caller resolves in place. */
csock_Lookup *csock_lookup_start(csock_Resolver *r, const char *host, int port, int family,
                                 int socktype, void (*done)(csock_Lookup *));
/* Outside the loop: waits until lk is finished (1), or the deadline
 * passes (0) or the wait fails (-errno): then lk is abandoned, do not
 * touch it. Other lookups finishing meanwhile get their done calls; lk's
 * own done should be NULL. */
int csock_lookup_wait(csock_Lookup *lk, int64_t deadline);
/* The owner is done with lk: freed, or abandoned if not finished yet. */
void csock_lookup_release(csock_Lookup *lk);

#endif
