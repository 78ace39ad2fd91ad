/* Name resolution on helper threads (see resolve.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resolve.h"

/* Under loop->lock: lookups not started yet. */
static csock_Resolve *take_pending(csock_Loop *loop) {
  csock_Resolve *r = loop->pending;
  if (r) loop->pending = r->next;
  return r;
}

static void *worker(void *arg) {
  csock_Loop *loop = (csock_Loop *)arg;
  pthread_mutex_lock(&loop->lock);
  csock_Resolve *r;
  while ((r = take_pending(loop)) != NULL) {
    pthread_mutex_unlock(&loop->lock);
    r->rc = csock_addr_resolve(r->host, r->port, r->family, r->socktype, r->addrs,
                               CSOCK_RESOLVE_MAX, &r->count);
    r->err = errno;
    pthread_mutex_lock(&loop->lock);
    r->next = loop->resolved;
    loop->resolved = r;
    uint64_t one = 1; /* under the lock: the loop cannot close the fd meanwhile */
    ssize_t n = write(loop->wakeup.fd, &one, sizeof one);
    (void)n; /* a full counter already means "wake up" */
  }
  if (--loop->resolving == 0) pthread_cond_signal(&loop->idle);
  pthread_mutex_unlock(&loop->lock);
  return NULL;
}

csock_Resolve *csock_resolve_start(csock_Loop *loop, const char *host, int port, int family, int socktype) {
  if (csock_loop_wakeup(loop) < 0) return NULL; /* the threads' only way to say "done" */
  size_t len = strlen(host);
  csock_Resolve *r = calloc(1, sizeof *r + len + 1);
  if (r == NULL) return NULL;
  memcpy(r->host, host, len + 1);
  r->loop = loop;
  r->port = port;
  r->family = family;
  r->socktype = socktype;
  pthread_mutex_lock(&loop->lock);
  csock_Resolve **tail = &loop->pending;
  while (*tail) tail = &(*tail)->next;
  *tail = r;
  int ok = 1;
  if (loop->resolving < CSOCK_RESOLVE_THREADS) {
    if (csock_sys_thread(worker, loop, 256 * 1024) == 0) loop->resolving++;
    else ok = loop->resolving > 0; /* a running worker will get to it */
  }
  if (!ok) { /* no thread at all: take it back */
    *tail = NULL;
    free(r);
    r = NULL;
  }
  pthread_mutex_unlock(&loop->lock);
  return r;
}

void csock_resolve_release(csock_Resolve *r, int gave_up) {
  if (gave_up && !r->finished) r->abandoned = 1; /* the loop frees it when it comes back */
  else free(r);
}

void csock_resolve_done(csock_Loop *loop) {
  uint64_t count;
  ssize_t n = read(loop->wakeup.fd, &count, sizeof count);
  (void)n;
  pthread_mutex_lock(&loop->lock);
  csock_Resolve *r = loop->resolved;
  loop->resolved = NULL;
  pthread_mutex_unlock(&loop->lock);
  while (r) {
    csock_Resolve *next = r->next;
    r->finished = 1;
    if (r->abandoned) free(r);
    else csock_wakeall(&r->waiter, CSOCK_WOKE_READY);
    r = next;
  }
}

void csock_resolve_drain(csock_Loop *loop) {
  pthread_mutex_lock(&loop->lock);
  csock_Resolve *r = loop->pending; /* not started: nobody will */
  loop->pending = NULL;
  while (r) {
    csock_Resolve *next = r->next;
    free(r);
    r = next;
  }
  while (loop->resolving > 0) pthread_cond_wait(&loop->idle, &loop->lock);
  r = loop->resolved;
  loop->resolved = NULL;
  pthread_mutex_unlock(&loop->lock);
  while (r) {
    csock_Resolve *next = r->next;
    free(r);
    r = next;
  }
}
